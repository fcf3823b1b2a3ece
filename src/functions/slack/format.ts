/**
 * Rendering of the `slack_text` input of `slack_post_message` into Slack Block Kit messages.
 *
 * `slack_text` is either plain text or an fn_slack style JSON "container" of labelled, typed
 * fields built by a SOAR pre-process script. Every value in it is untrusted incident data, so
 * everything that reaches Slack is escaped (`&`, `<`, `>`): no value can produce a mention
 * (`<!channel>`, `<@U123>`, `<!subteam^…>`), a date token or a disguised link. The only Slack
 * link this module ever emits is the SOAR link it builds itself from the configured template.
 *
 * Output always respects Slack's Block Kit limits; content that does not fit in one message is
 * split (never truncated) and continues in further messages that the caller posts as thread
 * replies.
 */

/** Slack limits this renderer keeps to (characters are counted in UTF-16 code units). */
export const SLACK_LIMITS = {
  sectionText: 3000,
  blocksPerMessage: 50,
  messageText: 40000,
  fieldText: 2000,
  fieldsPerSection: 10,
  headerText: 150,
} as const;

export interface RenderOptions {
  /** slack_mrkdwn (default true by caller); false → plain_text objects / mrkdwn:false */
  mrkdwn: boolean;
  /** e.g. https://soar.example.com/#incidents/{incident_id} ({task_id} is also available) */
  soarUrlTemplate?: string;
  incidentId: number;
  taskId?: number;
  /** IANA time zone for datetime values; default 'UTC' */
  timeZone?: string;
}

export interface RenderedMessage {
  /** Plain-text/mrkdwn fallback (notification text) carrying the same content as `blocks`. */
  text: string;
  blocks: Record<string, unknown>[];
}

type Block = Record<string, unknown>;

/** Keys with a special meaning in an fn_slack container. */
const TYPE_OF_DATA_KEY = 'Type of data';
const ADDITIONAL_TEXT_KEY = 'Additional Text';
/** "Resilient URL" is the fn_slack 2.x name of "SOAR URL". */
const SOAR_URL_KEYS: ReadonlySet<string> = new Set(['SOAR URL', 'Resilient URL']);

/** One block of every message is kept free for the "(continued k/N)" marker. */
const CONTENT_BLOCKS = SLACK_LIMITS.blocksPerMessage - 1;
/** Room kept in every message's fallback text for the marker line. */
const MARKER_RESERVE = 64;
const TEXT_BUDGET = SLACK_LIMITS.messageText - MARKER_RESERVE;
/** A SOAR link longer than this is not built (the raw value is shown instead). */
const MAX_URL_LENGTH = 2000;
/** Maximum nesting of inline formatting tags honoured by the HTML converter. */
const MAX_FORMAT_DEPTH = 32;

// ---------------------------------------------------------------------------------------------
// Escaping

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };

/**
 * Escapes the three characters Slack treats as control characters (`&` → `&amp;`, `<` → `&lt;`,
 * `>` → `&gt;`). Slack requires this for all message text, and it is what prevents untrusted
 * data from forming mentions (`<!here>`, `<@U1>`), date tokens or links (`<http://x|y>`).
 * Also drops bidi override controls ({@link BIDI_CONTROLS}), which can disguise a link.
 */
export function escapeSlackText(s: string): string {
  return s.replace(/[&<>]/g, (c) => ESCAPES[c] ?? c).replace(BIDI_CONTROLS, '');
}

/**
 * Unicode bidi embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069).
 * Untrusted data uses them to make text display in an order other than the one it has,
 * e.g. a link that reads as `…/https://good.example` while it goes elsewhere ("Trojan
 * Source"). They are dropped; the implicit bidi of right-to-left scripts and the
 * direction marks (U+200E, U+200F) are kept, so Arabic and Hebrew still display right.
 */
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069]/g;

function normalizeNewlines(s: string): string {
  return s.indexOf('\r') < 0 ? s : s.replace(/\r\n?/g, '\n');
}

// ---------------------------------------------------------------------------------------------
// HTML entities

const NAMED_ENTITIES: ReadonlyMap<string, string> = new Map([
  ['amp', '&'], ['lt', '<'], ['gt', '>'], ['quot', '"'], ['apos', "'"], ['nbsp', '\u00a0'],
  ['ensp', '\u2002'], ['emsp', '\u2003'], ['thinsp', '\u2009'], ['zwnj', '\u200c'], ['zwj', '\u200d'],
  ['shy', '\u00ad'], ['copy', '©'], ['reg', '®'], ['trade', '™'], ['hellip', '…'], ['mdash', '—'],
  ['ndash', '–'], ['lsquo', '‘'], ['rsquo', '’'], ['sbquo', '‚'], ['ldquo', '“'], ['rdquo', '”'],
  ['bdquo', '„'], ['laquo', '«'], ['raquo', '»'], ['lsaquo', '‹'], ['rsaquo', '›'], ['bull', '•'],
  ['middot', '·'], ['deg', '°'], ['plusmn', '±'], ['times', '×'], ['divide', '÷'], ['micro', 'µ'],
  ['para', '¶'], ['sect', '§'], ['cent', '¢'], ['pound', '£'], ['yen', '¥'], ['euro', '€'],
  ['curren', '¤'], ['iexcl', '¡'], ['iquest', '¿'], ['frac12', '½'], ['frac14', '¼'], ['frac34', '¾'],
  ['sup1', '¹'], ['sup2', '²'], ['sup3', '³'], ['larr', '←'], ['rarr', '→'], ['uarr', '↑'],
  ['darr', '↓'], ['harr', '↔'], ['rArr', '⇒'], ['lArr', '⇐'], ['hArr', '⇔'], ['ne', '≠'], ['le', '≤'],
  ['ge', '≥'], ['infin', '∞'], ['check', '✓'], ['dagger', '†'], ['Dagger', '‡'], ['permil', '‰'],
  ['prime', '′'], ['Prime', '″'], ['acute', '´'], ['uml', '¨'], ['cedil', '¸'], ['macr', '¯'],
  ['ordf', 'ª'], ['ordm', 'º'], ['not', '¬'], ['brvbar', '¦'], ['szlig', 'ß'], ['agrave', 'à'],
  ['aacute', 'á'], ['acirc', 'â'], ['atilde', 'ã'], ['auml', 'ä'], ['aring', 'å'], ['aelig', 'æ'],
  ['ccedil', 'ç'], ['egrave', 'è'], ['eacute', 'é'], ['ecirc', 'ê'], ['euml', 'ë'], ['igrave', 'ì'],
  ['iacute', 'í'], ['icirc', 'î'], ['iuml', 'ï'], ['ntilde', 'ñ'], ['ograve', 'ò'], ['oacute', 'ó'],
  ['ocirc', 'ô'], ['otilde', 'õ'], ['ouml', 'ö'], ['oslash', 'ø'], ['ugrave', 'ù'], ['uacute', 'ú'],
  ['ucirc', 'û'], ['uuml', 'ü'], ['yacute', 'ý'], ['yuml', 'ÿ'], ['Agrave', 'À'], ['Aacute', 'Á'],
  ['Acirc', 'Â'], ['Atilde', 'Ã'], ['Auml', 'Ä'], ['Aring', 'Å'], ['AElig', 'Æ'], ['Ccedil', 'Ç'],
  ['Egrave', 'È'], ['Eacute', 'É'], ['Ecirc', 'Ê'], ['Euml', 'Ë'], ['Ntilde', 'Ñ'], ['Oacute', 'Ó'],
  ['Ouml', 'Ö'], ['Oslash', 'Ø'], ['Uacute', 'Ú'], ['Uuml', 'Ü'],
]);
/** Entities HTML also recognises without the trailing semicolon. */
const LEGACY_ENTITIES: ReadonlySet<string> = new Set(['amp', 'lt', 'gt', 'quot', 'nbsp', 'copy', 'reg']);

function codePointToString(cp: number): string {
  if (!Number.isFinite(cp) || cp <= 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return '\ufffd';
  return String.fromCodePoint(cp);
}

/** Decodes HTML character references (named, decimal and hex). Unknown names are kept as typed. */
function decodeEntities(s: string): string {
  if (s.indexOf('&') < 0) return s;
  return s.replace(
    /&(?:#(\d{1,8})|#[xX]([0-9a-fA-F]{1,7})|([a-zA-Z][a-zA-Z0-9]{1,31}))(;?)/g,
    (m: string, dec?: string, hex?: string, name?: string, semi?: string) => {
      if (dec !== undefined) return codePointToString(parseInt(dec, 10));
      if (hex !== undefined) return codePointToString(parseInt(hex, 16));
      if (name !== undefined) {
        const v = NAMED_ENTITIES.get(name);
        if (v !== undefined && (semi === ';' || LEGACY_ENTITIES.has(name))) return v;
      }
      return m;
    },
  );
}

// ---------------------------------------------------------------------------------------------
// HTML → mrkdwn

const BLOCK_TAGS: ReadonlySet<string> = new Set([
  'address', 'article', 'aside', 'blockquote', 'body', 'caption', 'center', 'dd', 'details', 'dialog',
  'dir', 'div', 'dl', 'dt', 'fieldset', 'figcaption', 'figure', 'footer', 'form', 'header', 'hgroup',
  'hr', 'html', 'main', 'menu', 'nav', 'ol', 'p', 'section', 'summary', 'table', 'tbody', 'tfoot',
  'thead', 'tr', 'ul',
]);
const HEADING_TAGS: ReadonlySet<string> = new Set(['h1', 'h2', 'h3', 'h4', 'h5', 'h6']);
const INLINE_MARKS: ReadonlyMap<string, string> = new Map([
  ['b', '*'], ['strong', '*'], ['i', '_'], ['em', '_'], ['cite', '_'], ['s', '~'], ['strike', '~'],
  ['del', '~'], ['code', '`'], ['tt', '`'], ['kbd', '`'], ['samp', '`'],
]);
/** Elements whose content is not displayable text. */
const SKIPPED_CONTENT_TAGS: ReadonlySet<string> = new Set(['script', 'style', 'template']);

interface Frame {
  tag: string;
  kind: 'root' | 'mark' | 'anchor';
  mark?: string;
  href?: string;
  parts: string[];
}

interface ParsedTag {
  name: string;
  closing: boolean;
  attrs: string;
  end: number; // index of the closing '>'
}

/** Wraps every non-blank line of `inner` in `mark` (mrkdwn formatting cannot span lines or
 *  start/end with whitespace), keeping surrounding whitespace outside the markers. */
function wrapLines(inner: string, mark: string): string {
  return inner
    .split('\n')
    .map((line) => {
      const m = /^(\s*)([\s\S]*?)(\s*)$/.exec(line);
      if (!m || m[2] === '') return line;
      return `${m[1]}${mark}${m[2]}${mark}${m[3]}`;
    })
    .join('\n');
}

function getAttribute(attrs: string, name: string): string | undefined {
  const re = new RegExp(`(?:^|[\\s/])${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s"'=<>\`]+))`, 'i');
  const m = re.exec(attrs);
  if (!m) return undefined;
  return m[1] ?? m[2] ?? m[3];
}

/**
 * Streaming HTML → mrkdwn (or plain text) converter. A small tolerant tokenizer, linear in the
 * input size; all text it emits is entity-decoded and then Slack-escaped.
 */
class HtmlConverter {
  private readonly stack: Frame[] = [{ tag: '', kind: 'root', parts: [] }];
  private pendingNl = 0;
  private pendingSp = false;
  private started = false;
  private afterBullet = false;
  private preDepth = 0;
  private preFresh = false;
  private preFenceOpen = false;
  private quoteAware = true;
  private noGtFrom = Infinity;
  private noCommentEndFrom = Infinity;
  private readonly noCloseFrom = new Map<string, number>();
  /** Open tags that got no frame, by name, so their end tags are ignored too. */
  private readonly suppressed = new Map<string, number>();

  constructor(private readonly plain: boolean) {}

  convert(html: string): string {
    const src = normalizeNewlines(html);
    const len = src.length;
    let i = 0;
    while (i < len) {
      const lt = src.indexOf('<', i);
      if (lt < 0) {
        this.text(src.slice(i));
        break;
      }
      if (lt > i) this.text(src.slice(i, lt));
      i = this.markup(src, lt);
    }
    while (this.stack.length > 1) this.closeTop();
    if (this.preFenceOpen) this.closePreFence();
    return this.stack[0]!.parts.join('');
  }

  /** Handles markup starting at `lt` (a '<'); returns the index to continue from. */
  private markup(src: string, lt: number): number {
    const next = src.charCodeAt(lt + 1);
    if (src.startsWith('<!--', lt)) {
      const close = lt >= this.noCommentEndFrom ? -1 : src.indexOf('-->', lt + 4);
      if (close < 0) {
        this.noCommentEndFrom = Math.min(this.noCommentEndFrom, lt);
        this.text('<');
        return lt + 1;
      }
      return close + 3;
    }
    if (next === 0x21 /* ! */ || next === 0x3f /* ? */) {
      const gt = this.findGt(src, lt);
      if (gt < 0) {
        this.text('<');
        return lt + 1;
      }
      return gt + 1;
    }
    const tag = this.parseTag(src, lt);
    if (!tag) {
      this.text('<');
      return lt + 1;
    }
    if (tag.closing) this.closeTag(tag.name);
    else {
      if (SKIPPED_CONTENT_TAGS.has(tag.name) && tag.end < (this.noCloseFrom.get(tag.name) ?? Infinity)) {
        const re = new RegExp(`</${tag.name}\\s*>`, 'gi');
        re.lastIndex = tag.end + 1;
        const m = re.exec(src);
        if (m) return m.index + m[0].length;
        // Unterminated: keep the content visible rather than dropping the rest of the text.
        this.noCloseFrom.set(tag.name, tag.end);
      }
      this.openTag(tag.name, tag.attrs, /\/\s*$/.test(tag.attrs));
    }
    return tag.end + 1;
  }

  private findGt(src: string, from: number): number {
    if (from >= this.noGtFrom) return -1;
    const gt = src.indexOf('>', from);
    if (gt < 0) this.noGtFrom = from;
    return gt;
  }

  private parseTag(src: string, lt: number): ParsedTag | null {
    let j = lt + 1;
    const closing = src.charCodeAt(j) === 0x2f; /* / */
    if (closing) j++;
    const nameMatch = /[a-zA-Z][a-zA-Z0-9:-]*/y;
    nameMatch.lastIndex = j;
    const m = nameMatch.exec(src);
    if (!m) return null;
    const name = m[0].toLowerCase();
    const attrStart = j + m[0].length;
    let end = -1;
    if (this.quoteAware) {
      let k = attrStart;
      const len = src.length;
      while (k < len) {
        const c = src.charCodeAt(k);
        if (c === 0x3e /* > */) {
          end = k;
          break;
        }
        if (c === 0x3d /* = */) {
          k++;
          while (k < len && /\s/.test(src[k]!)) k++;
          const q = src[k];
          if (q === '"' || q === "'") {
            const close = src.indexOf(q, k + 1);
            if (close < 0) break; // unbalanced quote: give up quote awareness below
            k = close + 1;
            continue;
          }
          continue;
        }
        k++;
      }
      if (end < 0) this.quoteAware = false; // malformed quoting: fall back to first '>' (linear)
    }
    if (end < 0) end = this.findGt(src, attrStart);
    if (end < 0) return null;
    return { name, closing, attrs: src.slice(attrStart, end), end };
  }

  private openTag(name: string, attrs: string, selfClosing: boolean): void {
    if (name === 'br') {
      this.lineBreak();
      return;
    }
    if (name === 'pre') {
      this.block();
      if (this.preDepth === 0) this.preFresh = true;
      this.preDepth++;
      return;
    }
    if (name === 'li') {
      this.block();
      this.write('•');
      this.pendingSp = true;
      this.afterBullet = true;
      return;
    }
    if (BLOCK_TAGS.has(name)) {
      this.block();
      return;
    }
    if (selfClosing) return;
    const depthOk = this.stack.length <= MAX_FORMAT_DEPTH;
    if (name === 'a') {
      if (depthOk) this.stack.push({ tag: 'a', kind: 'anchor', href: getAttribute(attrs, 'href') ?? '', parts: [] });
      else this.suppress(name);
      return;
    }
    const heading = HEADING_TAGS.has(name);
    if (heading) this.block();
    const mark = heading ? '*' : INLINE_MARKS.get(name);
    if (mark === undefined) return;
    // No frame in plain mode, inside pre, too deep, or for a marker already open (`**x**` would
    // not render as bold); its end tag must then not close an outer element of the same name.
    if (this.plain || this.preDepth > 0 || !depthOk || this.stack.some((f) => f.kind === 'mark' && f.mark === mark)) {
      this.suppress(name);
      return;
    }
    this.stack.push({ tag: name, kind: 'mark', mark, parts: [] });
  }

  private suppress(name: string): void {
    this.suppressed.set(name, (this.suppressed.get(name) ?? 0) + 1);
  }

  private closeTag(name: string): void {
    if (name === 'pre') {
      if (this.preDepth > 0) {
        this.preDepth--;
        if (this.preDepth === 0) {
          this.pendingNl = 0; // trailing newlines of preformatted text are not content
          if (this.preFenceOpen) this.closePreFence();
        }
      }
      this.block();
      return;
    }
    const suppressed = this.suppressed.get(name) ?? 0;
    if (suppressed > 0) this.suppressed.set(name, suppressed - 1);
    else for (let idx = this.stack.length - 1; idx >= 1; idx--) {
      if (this.stack[idx]!.tag === name) {
        while (this.stack.length > idx) this.closeTop();
        break;
      }
    }
    if (BLOCK_TAGS.has(name) || HEADING_TAGS.has(name) || name === 'li') this.block();
    else if (name === 'td' || name === 'th') this.space();
  }

  private closePreFence(): void {
    this.preFenceOpen = false;
    this.pendingNl = 0;
    this.pendingSp = false;
    this.top().parts.push('```');
  }

  private closeTop(): void {
    const f = this.stack.pop()!;
    const inner = f.parts.join('');
    if (inner === '') return;
    let out: string;
    if (f.kind === 'mark') out = wrapLines(inner, f.mark!);
    else {
      const m = /^(\s*)([\s\S]*?)(\s*)$/.exec(inner)!;
      const text = m[2]!;
      const href = escapeSlackText(decodeEntities(f.href ?? '').replace(/\s+/g, ' ').trim());
      let body: string;
      if (href === '' || text === href) body = text;
      else if (text === '') body = href;
      else body = `${text} (${href})`;
      out = `${m[1]}${body}${m[3]}`;
    }
    this.top().parts.push(out);
  }

  private top(): Frame {
    return this.stack[this.stack.length - 1]!;
  }

  private write(s: string): void {
    if (s === '') return;
    const f = this.top();
    if (this.started) {
      if (this.pendingNl > 0) f.parts.push('\n'.repeat(this.pendingNl));
      else if (this.pendingSp) f.parts.push(' ');
    }
    this.pendingNl = 0;
    this.pendingSp = false;
    this.afterBullet = false;
    this.started = true;
    f.parts.push(s);
  }

  private space(): void {
    if (this.started && this.pendingNl === 0) this.pendingSp = true;
  }

  private block(): void {
    if (this.afterBullet || !this.started) return;
    this.pendingNl = Math.max(this.pendingNl, 1);
    this.pendingSp = false;
  }

  private lineBreak(): void {
    if (!this.started) return;
    this.afterBullet = false;
    this.pendingNl = Math.min(this.preDepth > 0 ? Infinity : 2, this.pendingNl + 1);
    this.pendingSp = false;
  }

  private text(raw: string): void {
    if (raw === '') return;
    if (this.preDepth > 0) {
      this.preText(raw);
      return;
    }
    const collapsed = raw.replace(/[ \t\n\r\f]+/g, ' ');
    if (collapsed === ' ') {
      this.space();
      return;
    }
    const lead = collapsed.startsWith(' ');
    const trail = collapsed.endsWith(' ');
    const core = collapsed.slice(lead ? 1 : 0, trail ? collapsed.length - 1 : collapsed.length);
    if (lead) this.space();
    this.write(escapeSlackText(decodeEntities(core).replace(/\u00a0/g, ' ')));
    if (trail) this.space();
  }

  private preText(raw: string): void {
    let s = decodeEntities(raw).replace(/\u00a0/g, ' ');
    if (this.preFresh) {
      s = s.replace(/^\n/, '');
      if (s === '') return;
      this.preFresh = false;
    }
    const m = /\n*$/.exec(s)!;
    const body = s.slice(0, m.index);
    if (body !== '') {
      let out = escapeSlackText(body);
      if (!this.plain && !this.preFenceOpen) {
        this.preFenceOpen = true;
        out = '```' + out;
      }
      this.write(out);
    }
    this.pendingNl += s.length - m.index;
  }
}

/**
 * Converts SOAR richtext (HTML) into Slack mrkdwn that is safe to post: block elements
 * (p, div, br, headings, list items…) become newlines, b/strong → *bold*, i/em → _italic_,
 * s/del → ~strike~, li → "• ", code → `code`, pre → ``` block; HTML entities are decoded and the
 * result re-escaped, every other tag is stripped. Links are never reproduced as Slack links:
 * `<a href="x">y</a>` becomes `y (x)` so the real target is always visible.
 */
export function htmlToMrkdwn(html: string): string {
  return new HtmlConverter(false).convert(html);
}

/** Same conversion as {@link htmlToMrkdwn} but without mrkdwn formatting markers. */
function htmlToPlain(html: string): string {
  return new HtmlConverter(true).convert(html);
}

// ---------------------------------------------------------------------------------------------
// Container parsing

/** Escapes raw control characters inside JSON strings (Python's json.loads(strict=False),
 *  used by fn_slack, accepts them; JSON.parse does not). */
function escapeControlCharsInStrings(s: string): string {
  let out = '';
  let last = 0;
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      else if (c < 0x20) {
        out += s.slice(last, i) + '\\u' + c.toString(16).padStart(4, '0');
        last = i + 1;
      }
    } else if (c === 0x22) inString = true;
  }
  return last === 0 ? s : out + s.slice(last);
}

/** Top-level keys of a valid JSON object text in source order (first occurrence wins). */
function topLevelKeys(json: string): string[] {
  const keys: string[] = [];
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      while (j < json.length) {
        const d = json.charCodeAt(j);
        if (d === 0x5c) j += 2;
        else if (d === 0x22) break;
        else j++;
      }
      if (depth === 1 && expectKey) {
        const key = JSON.parse(json.slice(i, j + 1)) as string;
        if (!seen.has(key)) {
          seen.add(key);
          keys.push(key);
        }
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x2c /* , */ && depth === 1) expectKey = true;
  }
  return keys;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses an fn_slack container, keeping key order; null when `slackText` is not one. */
function parseContainer(slackText: string): Array<[string, unknown]> | null {
  const t = slackText.trim();
  if (!t.startsWith('{')) return null;
  let src = t;
  let value: unknown;
  try {
    value = JSON.parse(src);
  } catch {
    src = escapeControlCharsInStrings(t);
    try {
      value = JSON.parse(src);
    } catch {
      return null;
    }
  }
  if (!isPlainObject(value)) return null;
  let keys = Object.keys(value);
  if (keys.length === 0) return null;
  // Object.keys() moves integer-like keys first; recover the author's order from the source.
  if (keys.some((k) => /^(0|[1-9]\d*)$/.test(k))) keys = topLevelKeys(src);
  return keys.filter((k) => Object.hasOwn(value, k)).map((k) => [k, value[k]]);
}

/**
 * Tells whether `slackText` is an fn_slack JSON container (a non-empty JSON object) rather than
 * plain text. JSON that parses to anything else (array, number, string…) is plain text.
 */
export function isContainer(slackText: string): boolean {
  return typeof slackText === 'string' && parseContainer(slackText) !== null;
}

// ---------------------------------------------------------------------------------------------
// Value rendering

interface Typed {
  type: string;
  data: unknown;
}

/** `{type, data}` objects are typed values; anything else is a bare value rendered as a string. */
function toTyped(v: unknown, defaultType = 'string'): Typed {
  if (isPlainObject(v) && (Object.hasOwn(v, 'type') || Object.hasOwn(v, 'data'))) {
    const type = typeof v['type'] === 'string' ? v['type'].trim().toLowerCase() : defaultType;
    return { type: type || defaultType, data: v['data'] };
  }
  return { type: defaultType, data: v };
}

function isEmptyData(d: unknown): boolean {
  return d === null || d === undefined || (typeof d === 'string' && d.trim() === '') || (Array.isArray(d) && d.length === 0);
}

function stringifyData(d: unknown): string {
  if (typeof d === 'string') {
    // fn_slack: a Python list repr such as "[u'Malware', u'Lost PC']" is shown as "Malware, Lost PC".
    if (/^\[\s*u'[^']*'(?:\s*,\s*u'[^']*')*\s*\]$/.test(d)) {
      return Array.from(d.matchAll(/u'([^']*)'/g), (m) => m[1]).join(', ');
    }
    return d;
  }
  if (typeof d === 'number' || typeof d === 'boolean' || typeof d === 'bigint') return String(d);
  if (Array.isArray(d)) return d.map((e) => (typeof e === 'object' && e !== null ? JSON.stringify(e) : String(e))).join(', ');
  if (d === null || d === undefined) return '';
  return JSON.stringify(d) ?? String(d);
}

const dateFormats = new Map<string, { fmt: Intl.DateTimeFormat; zone: string; utc: boolean }>();

function dateFormat(timeZone: string): { fmt: Intl.DateTimeFormat; zone: string; utc: boolean } {
  let f = dateFormats.get(timeZone);
  if (!f) {
    const options: Intl.DateTimeFormatOptions = {
      year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
      second: '2-digit', hourCycle: 'h23', timeZoneName: 'longOffset',
    };
    let fmt: Intl.DateTimeFormat;
    let zone = timeZone;
    try {
      fmt = new Intl.DateTimeFormat('en-US', { ...options, timeZone });
    } catch {
      // An invalid configured zone must not make posting fail: render in (and label as) UTC.
      fmt = new Intl.DateTimeFormat('en-US', { ...options, timeZone: 'UTC' });
      zone = 'UTC';
    }
    const resolved = fmt.resolvedOptions().timeZone;
    const utc = /^(etc\/)?(utc|uct|gmt|zulu|universal)$/i.test(zone) || resolved === 'UTC';
    f = { fmt, zone, utc };
    dateFormats.set(timeZone, f);
  }
  return f;
}

/** Epoch milliseconds → "YYYY-MM-DD HH:mm:ss UTC" (or "… Zone/Name (UTC±hh:mm)"); null if invalid. */
function formatDatetime(data: unknown, timeZone: string): string | null {
  let ms: number;
  if (typeof data === 'number') ms = data;
  else if (typeof data === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(data)) ms = Number(data);
  else return null;
  if (!Number.isFinite(ms)) return null;
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return null;
  const { fmt, zone, utc } = dateFormat(timeZone);
  const parts: Record<string, string> = {};
  for (const p of fmt.formatToParts(date)) parts[p.type] = p.value;
  const year = (parts['year'] ?? '').padStart(4, '0');
  const stamp = `${year}-${parts['month']}-${parts['day']} ${parts['hour']}:${parts['minute']}:${parts['second']}`;
  if (utc) return `${stamp} UTC`;
  const offset = (parts['timeZoneName'] ?? 'GMT').replace(/^GMT/, '') || '+00:00';
  return `${stamp} ${zone} (UTC${offset})`;
}

function formatBoolean(data: unknown): string | null {
  if (typeof data === 'boolean') return data ? 'Yes' : 'No';
  if (typeof data === 'number') return data === 1 ? 'Yes' : data === 0 ? 'No' : null;
  if (typeof data === 'string') {
    const s = data.trim().toLowerCase();
    if (s === 'true' || s === 'yes' || s === '1') return 'Yes';
    if (s === 'false' || s === 'no' || s === '0') return 'No';
  }
  return null;
}

function formatNumber(data: unknown): string | null {
  if (typeof data === 'number') return Number.isFinite(data) ? String(data) : null;
  if (typeof data === 'bigint') return String(data);
  if (typeof data === 'string' && /^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/.test(data)) return data.trim();
  return null;
}

interface RenderContext {
  mrkdwn: boolean;
  timeZone: string;
}

/**
 * Renders one container value to escaped text (mrkdwn or plain). Returns '' for empty data so
 * callers can decide between "-" (fields) and omission (header, introduction).
 */
function renderValue(v: unknown, ctx: RenderContext): string {
  const { type, data } = toTyped(v);
  if (isEmptyData(data)) return '';
  const raw = (): string => escapeSlackText(normalizeNewlines(stringifyData(data)));
  switch (type) {
    case 'richtext':
      if (typeof data !== 'string') return raw();
      return (ctx.mrkdwn ? htmlToMrkdwn(data) : htmlToPlain(data)).trim();
    case 'datetime':
      return formatDatetime(data, ctx.timeZone) ?? raw();
    case 'boolean':
      return formatBoolean(data) ?? raw();
    case 'number':
      return formatNumber(data) ?? raw();
    default: // 'string' and any type fn_slack does not know: shown as text
      return raw();
  }
}

/** Escaped label for a key (whitespace runs, including newlines, collapsed). */
function renderLabel(key: string): string {
  return escapeSlackText(key.replace(/\s+/g, ' ').trim());
}

function positiveIntString(v: unknown): string | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? String(v) : null;
  if (typeof v === 'string') {
    const s = v.trim();
    return /^[1-9]\d{0,15}$/.test(s) && Number.isSafeInteger(Number(s)) ? s : null;
  }
  return null;
}

interface SoarLink {
  url: string;
  label: string;
}

/**
 * Builds the link back to SOAR from the configured template. The id must be a positive integer
 * and the resulting URL a plain http(s) URL that cannot break out of Slack's `<url|label>`.
 */
function buildSoarLink(typed: Typed, opts: RenderOptions): SoarLink | null {
  const template = opts.soarUrlTemplate?.trim();
  if (!template) return null;
  const id = positiveIntString(isEmptyData(typed.data) ? opts.incidentId : typed.data);
  if (!id) return null;
  let url = template.split('{incident_id}').join(id);
  let taskId: string | null = null;
  if (url.includes('{task_id}')) {
    taskId = positiveIntString(opts.taskId);
    if (!taskId) return null;
    url = url.split('{task_id}').join(taskId);
  }
  if (url.length > MAX_URL_LENGTH || /[\s<>|"\u0000-\u001f\u007f]/.test(url)) return null;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return null;
  } catch {
    return null;
  }
  const label = typed.type === 'task' && taskId ? `Open task ${taskId} in SOAR` : `Open incident ${id} in SOAR`;
  return { url, label };
}

// ---------------------------------------------------------------------------------------------
// Splitting

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}
/** Code units that must stay attached to the preceding character (ZWJ, variation selectors, combining marks). */
function isJoiner(c: number): boolean {
  return c === 0x200d || (c >= 0xfe00 && c <= 0xfe0f) || (c >= 0x0300 && c <= 0x036f);
}

/** A hard cut position ≤ limit that does not break an escape entity or a character. */
function safeCut(s: string, start: number, limit: number): number {
  let cut = limit;
  for (let guard = 0; guard < 16 && cut > start + 1; guard++) {
    const before = cut;
    // inside &amp; / &lt; / &gt; ? (the only entities escaped text contains; at most 5 units)
    for (let amp = cut - 1; amp >= Math.max(start, cut - 4); amp--) {
      if (s.charCodeAt(amp) !== 0x26 /* & */) continue;
      const entity = ['&amp;', '&lt;', '&gt;'].find((e) => s.startsWith(e, amp));
      if (entity && amp + entity.length > cut) cut = amp;
      break;
    }
    if (cut > start + 1 && isHighSurrogate(s.charCodeAt(cut - 1)) && isLowSurrogate(s.charCodeAt(cut))) cut--;
    if (cut > start + 1 && (isJoiner(s.charCodeAt(cut)) || s.charCodeAt(cut - 1) === 0x200d)) cut--;
    if (cut === before) break;
  }
  return cut > start ? cut : limit;
}

/**
 * Splits `s` into chunks of at most `max` code units whose concatenation is exactly `s`.
 * Cuts after the last newline in the second half of the window, else after the last space,
 * else at a safe position (never inside an escape entity or a surrogate pair).
 */
function splitText(s: string, max: number): string[] {
  const chunks: string[] = [];
  let start = 0;
  while (s.length - start > max) {
    const limit = start + max;
    const floor = start + Math.floor(max / 2);
    let cut = -1;
    for (let k = limit; k > floor; k--) {
      if (s.charCodeAt(k - 1) === 0x0a) {
        cut = k;
        break;
      }
    }
    if (cut < 0) {
      for (let k = limit; k > floor; k--) {
        const c = s.charCodeAt(k - 1);
        if (c === 0x20 || c === 0x09) {
          cut = k;
          break;
        }
      }
    }
    if (cut < 0) cut = safeCut(s, start, limit);
    chunks.push(s.slice(start, cut));
    start = cut;
  }
  chunks.push(s.slice(start));
  return chunks;
}

/** Header text: ≤ headerText chars, cut at a safe position and marked with "…". */
function truncateHeader(s: string): string {
  const max = SLACK_LIMITS.headerText;
  if (s.length <= max) return s;
  return s.slice(0, safeCut(s, 0, max - 1)).trimEnd() + '…';
}

// ---------------------------------------------------------------------------------------------
// Message assembly

interface Draft {
  blocks: Block[];
  pieces: string[];
  textLength: number;
}

/** Packs blocks into messages within Slack's limits, keeping each message's fallback text in step. */
class MessageBuilder {
  private readonly drafts: Draft[] = [];
  private pendingFields: Array<{ text: string; fallback: string }> = [];

  constructor(private readonly mrkdwn: boolean) {}

  textObject(text: string): Record<string, unknown> {
    return this.mrkdwn ? { type: 'mrkdwn', text, verbatim: true } : { type: 'plain_text', text, emoji: true };
  }

  /** `text` is the escaped header; `fallback` the (possibly longer) text for the notification. */
  header(text: string, fallback: string): void {
    this.flushFields();
    this.push({ type: 'header', text: { type: 'plain_text', text, emoji: true } }, fallback);
  }

  /** One or more sections; text longer than a section allows is split. */
  section(text: string): void {
    this.flushFields();
    for (const chunk of splitText(text, SLACK_LIMITS.sectionText)) {
      if (chunk.trim() === '') continue; // Slack rejects blank text; whitespace carries no content
      this.push({ type: 'section', text: this.textObject(chunk) }, chunk);
    }
  }

  /**
   * A labelled field (`*Label*\nvalue`; `Label: value` in the fallback text); one too long for a
   * field becomes its own section(s).
   */
  field(label: string, value: string): void {
    const text = label === '' ? value : this.mrkdwn ? `*${label}*\n${value}` : `${label}:\n${value}`;
    if (text.length > SLACK_LIMITS.fieldText) {
      this.section(text);
      return;
    }
    const fallback = label === '' ? value : this.mrkdwn ? `*${label}*: ${value}` : `${label}: ${value}`;
    this.pendingFields.push({ text, fallback });
    if (this.pendingFields.length >= SLACK_LIMITS.fieldsPerSection) this.flushFields();
  }

  context(text: string): void {
    this.flushFields();
    this.push({ type: 'context', elements: [this.textObject(text)] }, text);
  }

  finish(): RenderedMessage[] {
    this.flushFields();
    const total = this.drafts.length;
    return this.drafts.map((d, idx) => {
      const blocks = [...d.blocks];
      const pieces = [...d.pieces];
      if (total > 1) {
        const marker = idx === 0 ? `(1/${total}, continued in thread)` : `(continued ${idx + 1}/${total})`;
        const markerBlock = { type: 'context', elements: [this.textObject(marker)] };
        if (idx === 0) {
          blocks.push(markerBlock);
          pieces.push(marker);
        } else {
          blocks.unshift(markerBlock);
          pieces.unshift(marker);
        }
      }
      return { text: pieces.join('\n'), blocks };
    });
  }

  private flushFields(): void {
    if (this.pendingFields.length === 0) return;
    const fields = this.pendingFields;
    this.pendingFields = [];
    this.push(
      { type: 'section', fields: fields.map((f) => this.textObject(f.text)) },
      fields.map((f) => f.fallback).join('\n'),
    );
  }

  private push(block: Block, piece: string): void {
    let d = this.drafts[this.drafts.length - 1];
    if (!d || d.blocks.length >= CONTENT_BLOCKS || d.textLength + 1 + piece.length > TEXT_BUDGET) {
      d = { blocks: [], pieces: [], textLength: 0 };
      this.drafts.push(d);
    }
    d.textLength += (d.pieces.length > 0 ? 1 : 0) + piece.length;
    d.blocks.push(block);
    d.pieces.push(piece);
  }
}

function renderContainer(entries: Array<[string, unknown]>, opts: RenderOptions, b: MessageBuilder): void {
  const ctx: RenderContext = { mrkdwn: opts.mrkdwn, timeZone: opts.timeZone?.trim() || 'UTC' };
  const plainCtx: RenderContext = { ...ctx, mrkdwn: false };
  let header: unknown;
  let intro: unknown;
  const fields: Array<[string, unknown]> = [];
  const links: Array<[string, unknown]> = [];
  for (const [key, value] of entries) {
    if (key === TYPE_OF_DATA_KEY) header = value;
    else if (key === ADDITIONAL_TEXT_KEY) intro = value;
    else if (SOAR_URL_KEYS.has(key)) links.push([key, value]);
    else fields.push([key, value]);
  }

  // Header (plain_text only): one line, truncated; the full value goes to the fallback text,
  // or — when too long even for that — into sections so it is never lost.
  const headerText = renderValue(header, plainCtx).replace(/\s+/g, ' ').trim();
  if (headerText !== '') {
    const short = truncateHeader(headerText);
    if (headerText.length <= SLACK_LIMITS.sectionText) b.header(short, headerText);
    else {
      b.header(short, short);
      b.section(headerText);
    }
  }

  const introText = renderValue(intro, ctx);
  if (introText.trim() !== '') b.section(introText);

  for (const [key, value] of fields) b.field(renderLabel(key), renderValue(value, ctx) || '-');

  for (const [key, value] of links) {
    const typed = toTyped(value, 'incident');
    const link = buildSoarLink(typed, opts);
    if (!link) {
      b.field(renderLabel(key), renderValue(typed.data, ctx) || '-');
      continue;
    }
    const url = escapeSlackText(link.url);
    b.context(opts.mrkdwn ? `<${url}|${link.label}>` : `${link.label}: ${url}`);
  }
}

/**
 * Renders `slack_text` (plain text or an fn_slack JSON container) into Slack messages.
 *
 * The first message is posted to the channel and the rest, if any, as replies in its thread, in
 * order; continuation messages are marked "(continued k/N)". Each message has Block Kit `blocks`
 * and a fallback `text` with the same content, both within Slack's limits (see
 * {@link SLACK_LIMITS}). All untrusted content is escaped so it cannot mention or link.
 *
 * @throws Error when `slackText` is empty or whitespace only, or is a container with nothing to show.
 */
export function renderSlackText(slackText: string, opts: RenderOptions): RenderedMessage[] {
  if (typeof slackText !== 'string' || slackText.trim() === '') {
    throw new Error('slack_text is empty: there is nothing to post to Slack');
  }
  const b = new MessageBuilder(opts.mrkdwn);
  const entries = parseContainer(slackText);
  if (entries) renderContainer(entries, opts, b);
  else b.section(escapeSlackText(normalizeNewlines(slackText)));
  const messages = b.finish();
  if (messages.length === 0) {
    // Only possible for a container whose header and introduction are blank and has nothing else.
    throw new Error('slack_text has nothing to display: its "Type of data" and "Additional Text" are empty');
  }
  return messages;
}
