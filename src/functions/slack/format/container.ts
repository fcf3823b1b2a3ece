/** Parsing of fn_slack's JSON "container" form of `slack_text`. */

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

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses an fn_slack container, keeping key order; null when `slackText` is not one. */
export function parseContainer(slackText: string): Array<[string, unknown]> | null {
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
