/**
 * Slack message text made readable for a note: what a person saw in Slack, without
 * Slack's markup.
 *
 * - `<@U1>` → `@Alice Analyst` (the name from users.info), `<@U1|alice>` → `@alice`;
 * - `<#C1|incident-2103>` → `#incident-2103`, `<#C1>` → `#` and the channel's name;
 * - `<!here>`, `<!channel>`, `<!everyone>` → `@here`, `@channel`, `@everyone`;
 *   `<!subteam^S1|@oncall>` → `@oncall`; `<!date^…|fallback>` → the fallback;
 * - `<https://a|label>` → `label (https://a)`, `<https://a>` → `https://a`,
 *   `<mailto:a@b|a@b>` → `a@b`;
 * - `&amp;`, `&lt;`, `&gt;` → `&`, `<`, `>` (the only characters Slack escapes).
 *
 * Emphasis marks (`*bold*`, `_italic_`, `~strike~`, backticks) stay: they read as meant.
 */

/** Looks up names for mentions; a resolver that cannot name something returns undefined. */
export interface NameResolver {
  user(id: string): Promise<string | undefined>;
  channel(id: string): Promise<string | undefined>;
}

const SPECIAL_MENTIONS: Record<string, string> = { here: '@here', channel: '@channel', everyone: '@everyone' };

/** Slack escapes exactly these three; `&amp;` last, so `&amp;lt;` stays `&lt;`. */
export function unescapeSlack(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

async function readableToken(inner: string, names: NameResolver): Promise<string> {
  const bar = inner.indexOf('|');
  const target = bar < 0 ? inner : inner.slice(0, bar);
  const label = bar < 0 ? undefined : unescapeSlack(inner.slice(bar + 1));
  if (target.startsWith('@')) {
    const id = target.slice(1);
    return `@${label || (await names.user(id)) || id}`;
  }
  if (target.startsWith('#')) {
    const id = target.slice(1);
    return `#${label || (await names.channel(id)) || id}`;
  }
  if (target.startsWith('!')) {
    const command = target.slice(1);
    const special = SPECIAL_MENTIONS[command];
    if (special) return special;
    if (label) return label.startsWith('@') || command.startsWith('date^') ? label : `@${label}`;
    return command.startsWith('subteam^') ? '@group' : `@${command.split('^')[0]}`;
  }
  const url = unescapeSlack(target);
  if (url.startsWith('mailto:')) {
    const address = url.slice('mailto:'.length);
    return label && label !== address ? `${label} (${address})` : address;
  }
  return label && label !== url ? `${label} (${url})` : url;
}

/** Turns Slack's markup in `text` into plain readable text (see the module comment). */
export async function readableText(text: string, names: NameResolver): Promise<string> {
  const out: string[] = [];
  const token = /<([^<>\n]*)>/g;
  let last = 0;
  for (let m = token.exec(text); m; m = token.exec(text)) {
    out.push(unescapeSlack(text.slice(last, m.index)), await readableToken(m[1]!, names));
    last = m.index + m[0].length;
  }
  out.push(unescapeSlack(text.slice(last)));
  return out.join('');
}
