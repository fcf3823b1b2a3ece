/**
 * Dates as fn_slack shows them, in the configured `[fn_slack] time_zone`: one formatter for
 * messages (container `datetime` values) and for channel exports.
 *
 * An unknown zone is an error in both (a RangeError naming the zone), never a silent switch
 * to UTC: a date labelled with the wrong zone in an exported conversation is wrong evidence.
 * The config loader checks `[fn_slack] time_zone` (its schema's `time-zone` format) when the
 * worker starts, so at run time neither a post nor an archive can meet an unknown zone.
 */

const PART_OPTIONS: Intl.DateTimeFormatOptions = {
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
};

function formatterFor(timeZone: string, withOffset: boolean): Intl.DateTimeFormat {
  try {
    return new Intl.DateTimeFormat('en-US', { ...PART_OPTIONS, timeZone, ...(withOffset ? { timeZoneName: 'longOffset' } : {}) });
  } catch (err) {
    throw new RangeError(`Invalid time zone "${timeZone}": ${(err as Error).message}`);
  }
}

function parts(fmt: Intl.DateTimeFormat, date: Date): Record<string, string> {
  const p: Record<string, string> = {};
  for (const part of fmt.formatToParts(date)) p[part.type] = part.value;
  return p;
}

function stamp(p: Record<string, string>): string {
  return `${(p['year'] ?? '').padStart(4, '0')}-${p['month']}-${p['day']} ${p['hour']}:${p['minute']}:${p['second']}`;
}

const labelledFormats = new Map<string, { fmt: Intl.DateTimeFormat; utc: boolean }>();

/**
 * Epoch milliseconds (a number or a numeric string) → `YYYY-MM-DD HH:mm:ss UTC`, or
 * `… Zone/Name (UTC±hh:mm)` outside UTC; null when `data` is not a valid date.
 */
export function formatEpochMillis(data: unknown, timeZone: string): string | null {
  let ms: number;
  if (typeof data === 'number') ms = data;
  else if (typeof data === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(data)) ms = Number(data);
  else return null;
  if (!Number.isFinite(ms)) return null;
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return null;
  let f = labelledFormats.get(timeZone);
  if (!f) {
    const fmt = formatterFor(timeZone, true);
    const utc = /^(etc\/)?(utc|uct|gmt|zulu|universal)$/i.test(timeZone) || fmt.resolvedOptions().timeZone === 'UTC';
    f = { fmt, utc };
    labelledFormats.set(timeZone, f);
  }
  const p = parts(f.fmt, date);
  if (f.utc) return `${stamp(p)} UTC`;
  const offset = (p['timeZoneName'] ?? 'GMT').replace(/^GMT/, '') || '+00:00';
  return `${stamp(p)} ${timeZone} (UTC${offset})`;
}

/**
 * Returns a function turning a Slack `ts` (seconds.micros) or a Date into
 * `YYYY-MM-DD HH:MM:SS` in `timeZone`. Throws a RangeError for an unknown zone.
 *
 * An export formats the date of every message and reply (130,000 in a large channel),
 * and `formatToParts` allocates ~1 KB each time. Every time zone's UTC offset has been
 * a whole number of minutes since 1972, so the function formats the start of a minute
 * once and appends the seconds for the following dates in that minute (messages come
 * in bursts); a minute whose start does not format as `:00` (an old offset with
 * seconds) is formatted in full each time.
 */
export function makeDateFormatter(timeZone: string): (value: string | Date) => string {
  const fmt = formatterFor(timeZone, false);
  const full = (date: Date): string => stamp(parts(fmt, date));
  let cachedMinute = NaN;
  let cachedPrefix = ''; // `YYYY-MM-DD HH:MM:` of cachedMinute
  return (value) => {
    const date = typeof value === 'string' ? new Date(Math.floor(Number(value) * 1000)) : value;
    const ms = date.getTime();
    if (Number.isNaN(ms)) return String(value);
    const minute = Math.floor(ms / 60_000);
    if (minute !== cachedMinute) {
      const start = full(new Date(minute * 60_000));
      if (!start.endsWith(':00')) return full(date);
      cachedMinute = minute;
      cachedPrefix = start.slice(0, -2);
    }
    const second = Math.floor(ms / 1000) - minute * 60;
    return `${cachedPrefix}${second < 10 ? '0' : ''}${second}`;
  };
}
