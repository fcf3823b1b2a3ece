/**
 * Unicode bidirectional controls in names the worker passes on to Slack.
 *
 * An override or isolate makes text display in another order than it is stored:
 * `invoice\u202Efdp.exe` shows as "invoiceexe.pdf", so an analyst sees a PDF where Slack
 * holds an executable; a poster name can be made to read as someone else's. Names have
 * no use for them, so they are removed (not escaped: Slack would render an escape
 * literally), and what remains is exactly what is stored and shown.
 *
 * Removed: LRE, RLE, PDF, LRO, RLO (U+202A–U+202E), LRI, RLI, FSI, PDI (U+2066–U+2069),
 * and the invisible marks LRM, RLM (U+200E, U+200F) and ALM (U+061C).
 */

const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

/** True when `text` holds any bidi control listed above. */
export function hasBidiControls(text: string): boolean {
  BIDI_CONTROLS.lastIndex = 0;
  const found = BIDI_CONTROLS.test(text);
  BIDI_CONTROLS.lastIndex = 0;
  return found;
}

/** `text` without its bidi controls. */
export function stripBidiControls(text: string): string {
  return text.replace(BIDI_CONTROLS, '');
}
