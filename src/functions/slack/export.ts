/**
 * Streaming export of a Slack channel's conversation (threads included) to a
 * text file, used by `slack_archive_channel` before the channel is archived.
 *
 * ## Why two passes
 *
 * Readers expect the export oldest-first and numbered 1..N, but
 * `conversations.history` pages arrive newest-first, and a channel can hold
 * 100,000 messages and 10,000 threads. Building the whole conversation in
 * memory and reversing it would make memory grow with the channel. Instead:
 *
 * 1. **Collect** (pass 1): page through `conversations.history`. For each
 *    message, resolve the author's name, fetch its thread replies when it has
 *    any, and append one JSON line (the "render-ready" record) to a scratch
 *    file. For each history page we only remember where its lines start in
 *    the scratch file and how many bytes they take (two numbers per page).
 * 2. **Render** (pass 2): read the pages back in reverse order, reverse the
 *    lines within each page, number the messages, and render them into the
 *    output file with backpressure.
 *
 * Peak memory is therefore proportional to one page (plus its threads), the
 * bounded user-name cache and the tiny page index, never to the channel size.
 * The scratch directory is always removed, on success and on failure.
 *
 * @module
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import type { Template } from 'nunjucks';
import { makeDateFormatter } from './format/dates.js';
import { paginate, type SlackCall } from './slack-client.js';
import { isSlackError } from './slack-errors.js';
import type { SlackMessage } from './slack-types.js';

/** Counts reported to {@link ExportOptions.onProgress}. */
export interface ExportProgress {
  /** Top-level (channel) messages collected so far. */
  messages: number;
  /** Thread replies collected so far. */
  replies: number;
}

/** Options of {@link exportConversation}. */
export interface ExportOptions {
  /** The channel to export; `name` is only used for the header line. */
  channel: { id: string; name: string };
  /** Path of the text file to write (created or truncated). */
  outFile: string;
  /** Directory for scratch files (default `os.tmpdir()`); they are always removed afterwards. */
  tmpDir?: string;
  /**
   * A Jinja2-compatible (nunjucks) template rendered once per top-level
   * message instead of the default format. Autoescaping is off (the output is
   * plain text). The header line is still written first. See
   * {@link ExportTemplateContext} for the variables available. A caller that has
   * checked the template already passes it compiled ({@link compileTemplate}).
   */
  template?: string | Template;
  /** IANA time zone for the dates in the export (default `UTC`). */
  timeZone?: string;
  /** `limit` for `conversations.history` / `conversations.replies` pages (default 200). */
  pageSize?: number;
  /** Called about every 1,000 collected messages (replies included), never more often. */
  onProgress?: (p: ExportProgress) => void | Promise<void>;
  /** Aborting rejects the export promptly (with `signal.reason`) after cleaning up. */
  signal?: AbortSignal;
  /** Clock for the "exported" timestamp (default `() => new Date()`). */
  now?: () => Date;
}

/** What {@link exportConversation} resolves with. */
export interface ExportResult {
  /** Top-level messages written. */
  messages: number;
  /** Thread replies written. */
  replies: number;
  /** Messages whose thread was fetched (`reply_count > 0`). */
  threads: number;
  /** File references listed (messages and replies). */
  files: number;
  /** Size of the output file in bytes. */
  bytes: number;
  /** The output file's path. */
  outFile: string;
}

/** A file shared in a message, as listed in the export. */
export interface ExportFile {
  name: string;
  permalink: string;
}

/** A thread reply as seen by templates. */
export interface ExportReply {
  /** Display name (real name, bot name, or the id when the user cannot be resolved). */
  user: string;
  /** Slack user id (or bot id for bot messages; '' when neither exists). */
  user_id: string;
  /** `YYYY-MM-DD HH:MM:SS` in the export's time zone. */
  posted_on: string;
  /** Slack's message timestamp, e.g. `1730000000.000100`. */
  ts: string;
  /** Message text with Slack's `&amp; &lt; &gt;` unescaped. */
  text: string;
  files: ExportFile[];
}

/** A top-level message as seen by templates. */
export interface ExportMessage extends ExportReply {
  /** Running number, 1 for the oldest message. */
  number: number;
  /** Thread replies, oldest first. */
  replies: ExportReply[];
}

/** The context a custom template is rendered with, once per top-level message. */
export interface ExportTemplateContext {
  message: ExportMessage;
  channel: { id: string; name: string };
  /** `YYYY-MM-DD HH:MM:SS` in the export's time zone. */
  exported_at: string;
}

/** Upper bound of the user-name cache used by {@link exportConversation}. */
export const USER_CACHE_MAX = 5000;

const DEFAULT_PAGE_SIZE = 200;
const PROGRESS_EVERY = 1000;
const TEMPLATE_NAME = 'export-template';

/**
 * A small LRU map from Slack user id to display name. Bounded so that a
 * workspace with many authors cannot make the export's memory grow without
 * limit; an evicted user is simply looked up again.
 */
export class UserNameCache {
  private readonly map = new Map<string, string>();
  /** The most recently used id: looking it up again needs no reordering (and no Map churn). */
  private newest: string | undefined;

  constructor(readonly max: number = USER_CACHE_MAX) {
    if (!(max >= 1)) throw new RangeError('UserNameCache max must be >= 1');
  }

  get size(): number {
    return this.map.size;
  }

  get(id: string): string | undefined {
    const name = this.map.get(id);
    if (name !== undefined && id !== this.newest) {
      // refresh recency: Map iteration order is insertion order
      this.map.delete(id);
      this.map.set(id, name);
      this.newest = id;
    }
    return name;
  }

  set(id: string, name: string): void {
    this.map.delete(id);
    this.map.set(id, name);
    this.newest = id;
    while (this.map.size > this.max) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
    }
  }
}

/** Undo Slack's three text escapes in a single pass (so `&amp;lt;` becomes `&lt;`, not `<`). */
export function unescapeSlackText(text: string): string {
  return text.replace(/&(amp|lt|gt);/g, (_m, e: string) => (e === 'amp' ? '&' : e === 'lt' ? '<' : '>'));
}

/** One line of the scratch file: a top-level message, ready to render except for its number. */
interface ScratchRecord extends ExportReply {
  replies: ExportReply[];
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error(reason === undefined ? 'The export was aborted' : `The export was aborted: ${String(reason)}`);
  err.name = 'AbortError';
  return err;
}

function filesOf(msg: SlackMessage): ExportFile[] {
  if (!Array.isArray(msg.files)) return [];
  return msg.files.map((f) => ({
    name: String(f.name || f.title || f.id || '(unnamed file)'),
    permalink: String(f.permalink || ''),
  }));
}

/**
 * The message text, plus the pretext/text of legacy attachments (fn_slack's
 * own `slack_post_message` posts its content as an attachment with no text).
 */
function textOf(msg: SlackMessage): string {
  const main = typeof msg.text === 'string' ? msg.text : '';
  if (!Array.isArray(msg.attachments)) return unescapeSlackText(main); // the usual case: no array to build
  const parts: string[] = [];
  if (main) parts.push(main);
  for (const a of msg.attachments) {
    for (const t of [a.pretext, a.text]) {
      if (typeof t === 'string' && t !== '' && t !== main) parts.push(t);
    }
  }
  return unescapeSlackText(parts.join('\n'));
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `\t${line}`)
    .join('\n');
}

/** The default (fn_slack-style) rendering of one top-level message and its thread. */
function renderDefault(m: ExportMessage): string {
  let out = `${m.number} - ${m.user} POSTED ON ${m.posted_on}:\n`;
  if (m.text) out += `${m.text}\n`;
  for (const f of m.files) out += `\tFile: ${fileLabel(f)}\n`;
  for (const r of m.replies) {
    out += `\t${r.user} POSTED A REPLY ON ${r.posted_on}:\n`;
    if (r.text) out += `${indent(r.text)}\n`;
    for (const f of r.files) out += `\tFile: ${fileLabel(f)}\n`;
  }
  return `${out}\n`;
}

function fileLabel(f: ExportFile): string {
  return f.permalink ? `${f.name} (${f.permalink})` : f.name;
}

/** Compile once, eagerly, so syntax errors surface before any Slack call. nunjucks is loaded lazily (~6 MB). */
export async function compileTemplate(src: string): Promise<Template> {
  const { default: nunjucks } = await import('nunjucks');
  const env = new nunjucks.Environment(null, { autoescape: false });
  try {
    return new nunjucks.Template(src, env, TEMPLATE_NAME, true);
  } catch (err) {
    throw new Error(`Invalid export template: ${cleanTemplateMessage(err)}`, { cause: err });
  }
}

function cleanTemplateMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/\s+/g, ' ').trim();
}

/**
 * `p`, or a rejection as soon as `signal` aborts. The abort listener is removed when `p`
 * settles. (Racing every call against one long-lived abort promise instead would keep a
 * reaction, and through it each call's result, on that promise until the export ends:
 * memory that grew with the channel's size, ~10,000 Slack responses for 10,000 threads.)
 */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/**
 * A write stream wrapper that honours backpressure and surfaces stream errors
 * (an 'error' while nobody awaits is remembered and rethrown on the next write).
 */
class Sink {
  bytes = 0;
  private error: Error | undefined;

  constructor(
    readonly stream: WriteStream,
    private readonly signal: AbortSignal | undefined,
  ) {
    stream.on('error', (err) => {
      this.error ??= err;
    });
  }

  async write(chunk: string): Promise<void> {
    if (this.error) throw this.error;
    if (chunk === '') return;
    this.bytes += Buffer.byteLength(chunk, 'utf8');
    if (!this.stream.write(chunk, 'utf8')) {
      const drained = once(this.stream, 'drain');
      await raceAbort(drained, this.signal);
    }
    if (this.error) throw this.error;
  }

  async close(): Promise<void> {
    if (this.error) throw this.error;
    this.stream.end();
    await finished(this.stream);
    if (this.error) throw this.error;
  }

  /** Destroy the stream and wait until its file descriptor is closed (so a later unlink cannot race the open). */
  async dispose(): Promise<void> {
    if (this.stream.closed) return;
    const closed = once(this.stream, 'close').catch(() => undefined);
    this.stream.destroy();
    await closed;
  }
}

/**
 * Export a channel's whole conversation (threads included) to `opts.outFile`,
 * oldest message first, numbered 1..N.
 *
 * Default format (close to IBM fn_slack's numbered text export):
 *
 * ```text
 * Slack channel #general (C0123) conversation history, exported 2024-10-27 03:40:00 UTC
 *
 * 1 - Alice Example POSTED ON 2024-10-27 03:33:20:
 * Deploy is done & verified <ok>
 * 	File: report.pdf (https://example.slack.com/files/U1/F1/report.pdf)
 * 	Bob POSTED A REPLY ON 2024-10-27 03:35:00:
 * 	thanks!
 * 	second line
 *
 * 2 - deploy-bot POSTED ON 2024-10-27 04:00:00:
 * build #42 passed
 *
 * ```
 * (Slack sends that text as `Deploy is done &amp; verified &lt;ok&gt;`; the export unescapes it.)
 *
 * Memory stays bounded regardless of channel size: history pages are spooled
 * to a scratch file in pass 1 and rendered in reverse page order in pass 2
 * (see the module documentation for why). Errors from `call` (the worker's
 * SlackClient errors: a Slack error answer is a SlackApiError) and abort
 * rejections propagate after the scratch files (and a partial output file)
 * have been removed. An invalid `template` or `timeZone` is rejected before
 * any Slack call is made.
 */
export async function exportConversation(call: SlackCall, opts: ExportOptions): Promise<ExportResult> {
  const { channel, outFile, signal } = opts;
  const pageSize = opts.pageSize ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError(`Invalid pageSize: ${opts.pageSize}`);
  const timeZone = opts.timeZone ?? 'UTC';
  const formatDate = makeDateFormatter(timeZone);
  const template = typeof opts.template === 'string' ? await compileTemplate(opts.template) : opts.template;
  const now = opts.now ?? (() => new Date());

  if (signal?.aborted) throw abortError(signal);

  // Every await that could block is raced against the abort signal.
  const guard = <T>(p: Promise<T>): Promise<T> => raceAbort(p, signal);
  const checkAbort = (): void => {
    if (signal?.aborted) throw abortError(signal);
  };
  const slack: SlackCall = (method, params) => {
    checkAbort();
    return guard(Promise.resolve().then(() => call(method, params)));
  };

  const users = new UserNameCache();
  const resolveAuthor = async (msg: SlackMessage): Promise<{ user: string; user_id: string }> => {
    const id = typeof msg.user === 'string' ? msg.user : '';
    if (!id) {
      const name = msg.username || msg.bot_profile?.name || 'bot';
      return { user: String(name), user_id: typeof msg.bot_id === 'string' ? msg.bot_id : '' };
    }
    const cached = users.get(id);
    if (cached !== undefined) return { user: cached, user_id: id };
    let name = id;
    try {
      const res = await slack('users.info', { user: id });
      const u = res.user;
      if (u && !u.deleted) name = u.real_name || u.profile?.real_name || u.name || id;
    } catch (err) {
      if (signal?.aborted) throw err;
      // A departed author's account may be gone: export the message under the id.
      if (!isSlackError(err, 'user_not_found', 'users_not_found')) throw err;
    }
    users.set(id, name);
    return { user: name, user_id: id };
  };

  const toReply = async (msg: SlackMessage): Promise<ExportReply> => {
    const author = await resolveAuthor(msg);
    const ts = String(msg.ts ?? '');
    return { ...author, posted_on: formatDate(ts), ts, text: textOf(msg), files: filesOf(msg) };
  };

  let scratchDir: string | undefined;
  let scratch: Sink | undefined;
  let out: Sink | undefined;
  let outCreated = false;
  let ok = false;
  try {
    scratchDir = await guard(mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), 'slack-export-')));
    const scratchFile = path.join(scratchDir, 'pages.jsonl');
    scratch = new Sink(createWriteStream(scratchFile), signal);

    // ---- pass 1: collect newest-first pages into the scratch file ----
    const pages: Array<{ offset: number; length: number }> = [];
    let messages = 0;
    let replies = 0;
    let threads = 0;
    let files = 0;
    let nextProgressAt = PROGRESS_EVERY;
    for await (const res of paginate(slack, 'conversations.history', { channel: channel.id, limit: pageSize })) {
      let pageLines = '';
      for (const msg of res.messages ?? []) {
        const record: ScratchRecord = { ...(await toReply(msg)), replies: [] };
        files += record.files.length;
        const isParent = Number(msg.reply_count) > 0 && (msg.thread_ts === undefined || msg.thread_ts === msg.ts);
        if (isParent) {
          threads++;
          for await (const rRes of paginate(slack, 'conversations.replies', { channel: channel.id, ts: msg.ts, limit: pageSize })) {
            for (const r of rRes.messages ?? []) {
              // The parent comes first (and some pages repeat it): skip it wherever it appears.
              if (r.ts === msg.ts) continue;
              const reply = await toReply(r);
              files += reply.files.length;
              record.replies.push(reply);
            }
          }
          replies += record.replies.length;
        }
        messages++;
        pageLines += `${JSON.stringify(record)}\n`;
        if (opts.onProgress && messages + replies >= nextProgressAt) {
          while (nextProgressAt <= messages + replies) nextProgressAt += PROGRESS_EVERY;
          await guard(Promise.resolve(opts.onProgress({ messages, replies })));
        }
      }
      if (pageLines) {
        const offset = scratch.bytes;
        await scratch.write(pageLines); // one write per page: its records are in memory anyway
        pages.push({ offset, length: scratch.bytes - offset });
      }
    }
    await guard(scratch.close());
    scratch = undefined;

    // ---- pass 2: render oldest-first into the output file ----
    const exportedAt = formatDate(now());
    out = new Sink(createWriteStream(outFile), signal);
    outCreated = true;
    await out.write(
      `Slack channel #${channel.name} (${channel.id}) conversation history, exported ${exportedAt} ${timeZone}\n\n`,
    );
    const channelCtx = { id: channel.id, name: channel.name };
    const fh = await guard(open(scratchFile, 'r'));
    try {
      let number = 0;
      for (let p = pages.length - 1; p >= 0; p--) {
        checkAbort();
        const { offset, length } = pages[p]!;
        const buf = Buffer.allocUnsafe(length);
        let read = 0;
        while (read < length) {
          const { bytesRead } = await fh.read(buf, read, length - read, offset + read);
          if (bytesRead === 0) throw new Error('Slack export scratch file is truncated');
          read += bytesRead;
        }
        const lines = buf.toString('utf8').split('\n');
        let chunk = '';
        for (let i = lines.length - 1; i >= 0; i--) {
          const line = lines[i]!;
          if (!line) continue;
          const message: ExportMessage = { number: ++number, ...(JSON.parse(line) as ScratchRecord) };
          let text: string;
          if (template) {
            const ctx: ExportTemplateContext = { message, channel: channelCtx, exported_at: exportedAt };
            try {
              text = template.render(ctx);
            } catch (err) {
              throw new Error(`Export template failed on message ${message.number}: ${cleanTemplateMessage(err)}`, {
                cause: err,
              });
            }
          } else {
            text = renderDefault(message);
          }
          chunk += text;
        }
        await out.write(chunk); // one write per page: the page is in memory anyway
      }
    } finally {
      await fh.close();
    }
    await guard(out.close());
    const bytes = out.bytes;
    out = undefined;
    ok = true;
    return { messages, replies, threads, files, bytes, outFile };
  } finally {
    await scratch?.dispose();
    await out?.dispose();
    if (scratchDir) await rm(scratchDir, { recursive: true, force: true }).catch(() => undefined);
    if (!ok && outCreated) await rm(outFile, { force: true }).catch(() => undefined);
  }
}
