/** Escaping untrusted text for Slack. */

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
export const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069]/g;

export function normalizeNewlines(s: string): string {
  return s.indexOf('\r') < 0 ? s : s.replace(/\r\n?/g, '\n');
}
