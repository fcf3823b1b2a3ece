/** Splitting escaped text into pieces within Slack's limits, never inside a character or an entity. */
import { SLACK_LIMITS } from './limits.js';

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
export function splitText(s: string, max: number): string[] {
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
export function truncateHeader(s: string): string {
  const max = SLACK_LIMITS.headerText;
  if (s.length <= max) return s;
  return s.slice(0, safeCut(s, 0, max - 1)).trimEnd() + '…';
}
