/** Rendering of one container value (typed or bare) to escaped text. */
import { isPlainObject } from './container.js';
import { formatEpochMillis } from './dates.js';
import { escapeSlackText, normalizeNewlines } from './escape.js';
import { htmlToMrkdwn, htmlToPlain } from './html.js';
import type { RenderOptions } from './limits.js';

/** A SOAR link longer than this is not built (the raw value is shown instead). */
const MAX_URL_LENGTH = 2000;

export interface Typed {
  type: string;
  data: unknown;
}

/** `{type, data}` objects are typed values; anything else is a bare value rendered as a string. */
export function toTyped(v: unknown, defaultType = 'string'): Typed {
  if (isPlainObject(v) && (Object.hasOwn(v, 'type') || Object.hasOwn(v, 'data'))) {
    const type = typeof v['type'] === 'string' ? v['type'].trim().toLowerCase() : defaultType;
    return { type: type || defaultType, data: v['data'] };
  }
  return { type: defaultType, data: v };
}

export function isEmptyData(d: unknown): boolean {
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

export interface RenderContext {
  mrkdwn: boolean;
  timeZone: string;
}

/**
 * Renders one container value to escaped text (mrkdwn or plain). Returns '' for empty data so
 * callers can decide between "-" (fields) and omission (header, introduction).
 */
export function renderValue(v: unknown, ctx: RenderContext): string {
  const { type, data } = toTyped(v);
  if (isEmptyData(data)) return '';
  const raw = (): string => escapeSlackText(normalizeNewlines(stringifyData(data)));
  switch (type) {
    case 'richtext':
      if (typeof data !== 'string') return raw();
      return (ctx.mrkdwn ? htmlToMrkdwn(data) : htmlToPlain(data)).trim();
    case 'datetime':
      return formatEpochMillis(data, ctx.timeZone) ?? raw();
    case 'boolean':
      return formatBoolean(data) ?? raw();
    case 'number':
      return formatNumber(data) ?? raw();
    default: // 'string' and any type fn_slack does not know: shown as text
      return raw();
  }
}

/** Escaped label for a key (whitespace runs, including newlines, collapsed). */
export function renderLabel(key: string): string {
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
export function buildSoarLink(typed: Typed, opts: RenderOptions): SoarLink | null {
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

