/**
 * A stateful, in-process emulator of the parts of Slack's Web API that the worker uses.
 *
 * Point a real `WebClient` at it over HTTP:
 *
 *   const emu = await SlackEmulator.start();
 *   const client = new WebClient(emu.botToken, { slackApiUrl: emu.apiUrl });
 *
 * Design notes (where Slack's docs leave room, the choices are documented here and next to the code):
 *
 * - Every API response is HTTP 200 + JSON `{ok:true,...}` / `{ok:false,error}` except injected faults, `setDown`,
 *   and rate limiting (HTTP 429 + `Retry-After`, body `{ok:false,error:"ratelimited"}`).
 * - Message timestamps come from one monotonic micro-second clock shared by all channels, so `ts` values are unique
 *   and strictly increasing (`"<10 digit seconds>.<6 digits>"`). Top-level messages of a channel are kept in one array
 *   ordered by ts (plus a parallel numeric array) and located by binary search; replies live in one array per thread.
 * - Cursors are opaque base64 strings in Slack's style (`next_ts:<ts digits>` for history/replies,
 *   `channel:<id>` for conversations.list, `user:<id>` for members / users.list). A cursor that can't be decoded
 *   gives `invalid_cursor`.
 * - Visibility model (bot tokens): public channels are visible to everyone; private channels only to members.
 *   `conversations.info` / `conversations.members` / `chat.getPermalink` on a private channel the caller isn't in give
 *   `channel_not_found` (what Slack does); `conversations.history`/`replies`, `chat.postMessage`,
 *   `conversations.invite` and `conversations.archive` give `not_in_channel`; `conversations.join` gives
 *   `method_not_supported_for_channel_type`.
 *   Bot tokens need membership to read history of public channels too (Slack: "any conversation the bot is a member
 *   of"); user tokens can read any public channel.
 * - Rate limiting (`setRateLimits`) uses token buckets on an emulated "Slack clock" that runs `timeScale` times faster
 *   than real time. `Retry-After` is reported in whole REAL seconds (>= 1), i.e. ceil(slackSecondsToWait / timeScale),
 *   so a client that honours it literally waits long enough. The un-scaled value is in `X-Emulator-Retry-After-Slack`.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SocketModeServer, type SocketModeOptions } from './slack-socket-mode.js';
import { Interactive, type ClickOptions, type EphemeralMessage } from './slack-interactive.js';
import { ViewError, Views } from './slack-views.js';

// ---------------------------------------------------------------------------------------------------------------------
// Public constants & types
// ---------------------------------------------------------------------------------------------------------------------

/** Scopes given to the default bot token (everything the worker needs). */
export const DEFAULT_BOT_SCOPES: readonly string[] = Object.freeze([
  'channels:read',
  'channels:manage',
  'channels:history',
  'channels:join',
  'groups:read',
  'groups:write',
  'groups:history',
  'chat:write',
  'chat:write.public',
  'chat:write.customize',
  'files:read',
  'files:write',
  'users:read',
  'users:read.email',
  'team:read',
  'metadata.message:read',
  'im:write',
  'im:history',
  'pins:write',
  'reactions:write',
  'bookmarks:read',
  'bookmarks:write',
  // The inbound half (worker slack-manifest asks for them): @mentions and the slash command.
  'app_mentions:read',
  'commands',
]);

/** Pseudo method name used for calls/faults of the external upload URL (`POST|PUT ${baseUrl}/upload/F…`). */
export const UPLOAD_METHOD = 'upload';

export const TEAM_ID = 'T0001';
export const TEAM_DOMAIN = 'emulated';

/** Slack's limits enforced by chat.postMessage. */
export const LIMITS = Object.freeze({
  textMaxChars: 40_000,
  maxBlocks: 50,
  sectionTextMaxChars: 3_000,
  sectionFieldMaxChars: 2_000,
  sectionMaxFields: 10,
  headerTextMaxChars: 150,
  markdownBlockMaxChars: 12_000,
  contextMaxElements: 10,
  actionsMaxElements: 25,
  blockIdMaxChars: 255,
  maxAttachments: 100,
  channelNameMaxChars: 80,
  historyDefaultLimit: 100,
  historyMaxLimit: 999,
  repliesDefaultLimit: 1000,
  repliesMaxLimit: 1000,
  listDefaultLimit: 100,
  listMaxLimit: 1000,
  membersDefaultLimit: 100,
  membersMaxLimit: 1000,
  inviteMaxUsers: 1000,
});

export interface EmulatorStartOptions {
  /** Port to listen on (127.0.0.1). Default 0 = ephemeral. */
  port?: number;
  /** Delay before a completed upload's shares become visible in files.info (eventual consistency). Default 0. */
  shareDelayMs?: number;
  /** Workspace name. Default "Emulated Workspace". */
  teamName?: string;
  /** Keep `callLog` entries (default true). Counting via `calls()` is always on. */
  logCalls?: boolean;
  /** Maximum kept callLog entries; older ones are dropped. Default 200,000. */
  maxCallLog?: number;
  /** Socket Mode timings and limits (see slack-socket-mode.ts). */
  socketMode?: SocketModeOptions;
}

/** Events API subscriptions (the app manifest's bot events) the emulator can deliver. */
export type EventSubscription = 'message.channels' | 'message.groups' | 'message.im' | 'app_mention';

export interface TokenOptions {
  scopes: readonly string[];
  /** User id the token acts as. Created if it doesn't exist (a bot user for bot tokens). */
  botUserId?: string;
  userType?: 'bot' | 'user';
  /** Display name of the (new) user behind the token. */
  name?: string;
}

export interface TokenRecord {
  token: string;
  /** `app`: an app-level token (`xapp-…`), good only for apps.connections.open. */
  type: 'bot' | 'user' | 'app';
  scopes: string[];
  userId: string;
  botId?: string;
  appId: string;
  revoked: boolean;
}

export interface EmulatedUser {
  id: string;
  team_id: string;
  name: string;
  real_name: string;
  deleted: boolean;
  is_bot: boolean;
  is_app_user: boolean;
  is_admin: boolean;
  is_owner: boolean;
  is_restricted: boolean;
  is_ultra_restricted: boolean;
  updated: number;
  tz: string;
  tz_label: string;
  tz_offset: number;
  color: string;
  profile: {
    email?: string;
    real_name: string;
    real_name_normalized: string;
    display_name: string;
    display_name_normalized: string;
    bot_id?: string;
    api_app_id?: string;
    team: string;
    image_48: string;
  };
}

export interface EmulatedChannel {
  id: string;
  name: string;
  isPrivate: boolean;
  isArchived: boolean;
  isGeneral: boolean;
  /** Unix seconds. */
  created: number;
  creator: string;
  /** Member user ids in join order. Live set: don't mutate from tests (use the emulator's API). */
  members: Set<string>;
  topic: { value: string; creator: string; last_set: number };
  purpose: { value: string; creator: string; last_set: number };
  /** A direct message (conversations.open): id `D…`, no name, not listed by conversations.list. */
  isIm?: boolean;
}

/** A reaction on a message, in Slack's shape. */
export interface EmulatedReaction {
  name: string;
  users: string[];
  count: number;
}

/** A channel bookmark (bookmarks.add), in Slack's shape. */
export interface EmulatedBookmark {
  id: string;
  channel_id: string;
  title: string;
  link: string;
  emoji: string;
  icon_url: null;
  type: 'link';
  date_created: number;
  date_updated: number;
  rank: string;
  last_updated_by_user_id: string;
  last_updated_by_team_id: string;
  shortcut_id: null;
  entity_id: null;
  app_id: null;
}

/** Emoji names reactions.add accepts (plus any added with `addEmoji`); others give invalid_name. */
const STANDARD_EMOJI: readonly string[] = [
  '+1', 'thumbsup', '-1', 'thumbsdown', 'white_check_mark', 'heavy_check_mark', 'x', 'eyes', 'warning', 'rotating_light',
  'fire', 'lock', 'unlock', 'rocket', 'tada', 'hourglass', 'hourglass_flowing_sand', 'mag', 'bug', 'shield', 'no_entry',
  'red_circle', 'large_green_circle', 'ok', 'pushpin', 'memo', 'bell', 'stop_sign',
];

export interface MessageMetadata {
  event_type: string;
  event_payload: Record<string, unknown>;
}

/** A stored message, already in Slack's shape (metadata is stripped on output unless requested). */
export interface EmulatedMessage {
  type: 'message';
  subtype?: string;
  ts: string;
  user?: string;
  bot_id?: string;
  app_id?: string;
  team?: string;
  text: string;
  mrkdwn?: boolean;
  blocks?: unknown[];
  attachments?: Record<string, unknown>[];
  files?: Record<string, unknown>[];
  upload?: boolean;
  display_as_bot?: boolean;
  username?: string;
  icons?: Record<string, string>;
  bot_profile?: Record<string, unknown>;
  thread_ts?: string;
  parent_user_id?: string;
  reply_count?: number;
  reply_users_count?: number;
  reply_users?: string[];
  latest_reply?: string;
  is_locked?: boolean;
  subscribed?: boolean;
  metadata?: MessageMetadata;
  reactions?: EmulatedReaction[];
  /** Set by chat.update. */
  edited?: { user: string; ts: string };
  pinned_to?: string[];
}

export interface FileShare {
  channelId: string;
  ts: string;
  threadTs?: string;
  /** Epoch ms at which the share becomes visible through files.info. */
  visibleAt: number;
  shareUserId: string;
}

export interface EmulatedFile {
  id: string;
  name: string;
  title: string;
  size: number;
  declaredLength: number;
  mimetype: string;
  filetype: string;
  prettyType: string;
  user: string;
  created: number;
  uploaded: boolean;
  completed: boolean;
  bytes: Buffer | undefined;
  altText?: string;
  snippetType?: string;
  shares: FileShare[];
}

export interface Fault {
  /** HTTP status to answer with (e.g. 500, 503). 429 implies `retryAfter` (default 1). */
  status?: number;
  /** Slack error code returned with HTTP 200 (`{ok:false,error}`). */
  error?: string;
  /** Seconds; answer 429 with this Retry-After and body `{ok:false,error:"ratelimited"}`. */
  retryAfter?: number;
  /** How many consecutive calls this fault applies to. Default 1. */
  times?: number;
  /** Let this many calls of the method through before the fault applies (e.g. fail the second post). Default 0. */
  after?: number;
  /** Wait before answering (or before processing normally if nothing else is set). */
  delayMs?: number;
  /** Destroy the socket without answering. */
  closeSocket?: boolean;
  /**
   * Apply the fault after the method ran: its effect happens (a channel is archived, a
   * message posted) and only the answer is late (`delayMs`), lost (`closeSocket`) or an
   * error. What a client sees when Slack did the work but the reply did not arrive in time.
   */
  afterEffect?: boolean;
  /**
   * Upload URL only: destroy the socket once this many bytes of the request body have
   * arrived (an upload cut off mid-body). Nothing is stored.
   */
  closeAfterBytes?: number;
}

export interface RateLimitOptions {
  /** Calls per (emulated) minute allowed per method and token, e.g. `{ 'chat.postMessage': 60 }`. */
  perMethod?: Record<string, number>;
  /** chat.postMessage calls per (emulated) second allowed per channel (Slack: ~1). */
  perChannelPostsPerSecond?: number;
  /**
   * Bucket capacity (how many calls may go through back to back). Defaults: per-method bucket = the per-minute
   * allowance; per-channel bucket = max(1, perChannelPostsPerSecond).
   */
  burst?: number;
  /**
   * Capacity of each channel's posting bucket, when it should differ from `burst`: Slack documents chat.postMessage
   * as about one message per second per channel with short bursts allowed, a burst unrelated to the method tiers'.
   * Default: `burst`, else max(1, perChannelPostsPerSecond).
   */
  perChannelBurst?: number;
  /** Emulated Slack seconds per real second (default 1). With 10, one real second counts as ten. */
  timeScale?: number;
}

export interface CallLogEntry {
  method: string;
  /** Parameters without `token` (binary parts replaced by `<N bytes>`). */
  params: Record<string, unknown>;
  /** Epoch ms. */
  time: number;
}

export interface SeedChannelOptions {
  name: string;
  isPrivate?: boolean;
  /** Member ids. Default: the default bot user only. */
  members?: string[];
  archived?: boolean;
  creator?: string;
  isGeneral?: boolean;
}

export interface SeedMessagesOptions {
  /** How many of the new top-level messages become thread parents (spread evenly). Default 0. */
  threads?: number;
  /** Replies per thread parent. Default 3 when `threads` is set. */
  repliesPerThread?: number;
  /** Authors, used round-robin. Default: the workspace admin user. */
  users?: string[];
  /** Attach a small file to every 10th top-level message. */
  withFiles?: boolean;
  /** Text prefix; message i gets `${text} ${i}`. Default "seed message". */
  text?: string;
}

// ---------------------------------------------------------------------------------------------------------------------
// Internal types & helpers
// ---------------------------------------------------------------------------------------------------------------------

type Params = Record<string, unknown>;
type Body = Record<string, unknown>;

interface Thread {
  replies: EmulatedMessage[];
  ts: number[];
  users: Set<string>;
}

interface ChannelState {
  info: EmulatedChannel;
  top: EmulatedMessage[];
  topTs: number[];
  threads: Map<string, Thread>;
  /** reply ts -> parent ts */
  replyParent: Map<string, string>;
  /** reply ts -> reply (for lookups by ts) */
  replyIndex: Map<string, EmulatedMessage>;
}

interface Ctx {
  tok: TokenRecord;
  p: Params;
}

interface MethodSpec {
  /** Scopes advertised in X-Accepted-OAuth-Scopes. The token must hold at least one of them (unless empty). */
  accepted: string[];
  /** The handler checks the scope for the channel type itself (so `needed` names one scope, e.g. groups:write). */
  perType?: boolean;
  noAuth?: boolean;
  handler: (ctx: Ctx) => Body;
}

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string>;
}

interface Bucket {
  tokens: number;
  last: number;
}

class SlackApiError extends Error {
  constructor(
    public readonly code: string,
    public readonly extra: Body = {},
  ) {
    super(code);
  }
}

class RateLimited extends Error {
  constructor(public readonly slackSeconds: number) {
    super('ratelimited');
  }
}

function fail(code: string, extra?: Body): never {
  throw new SlackApiError(code, extra);
}

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

function unb64(s: string): string {
  return Buffer.from(s, 'base64').toString('utf8');
}

/** "1730000000.000100" -> micro-seconds as a JS number (exact up to year 2255). NaN if malformed. */
export function parseTs(s: string): number {
  const m = /^(\d{1,12})(?:\.(\d{0,9}))?$/.exec(s.trim());
  if (!m) return Number.NaN;
  const frac = (m[2] ?? '').padEnd(6, '0').slice(0, 6);
  return Number(m[1]) * 1_000_000 + Number(frac);
}

export function formatTs(micros: number): string {
  const sec = Math.floor(micros / 1_000_000);
  const frac = micros - sec * 1_000_000;
  return `${sec}.${String(frac).padStart(6, '0')}`;
}

/**
 * Binary search in a sorted array: the first index i with arr[i] >= x, or with
 * arr[i] > x when `after` is set (lower and upper bound).
 */
function bisect<T extends number | string>(arr: readonly T[], x: T, after = false): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! < x || (after && arr[mid] === x)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Slack's channel-name rules. Returns an error code or null when valid:
 * lowercase letters (Unicode lowercase/caseless letters allowed), digits, hyphens, underscores; at most 80 characters.
 */
export function channelNameError(name: string | undefined): string | null {
  if (name === undefined || name.trim() === '') return 'invalid_name_required';
  if ([...name].length > LIMITS.channelNameMaxChars) return 'invalid_name_maxlength';
  if (/^[-_]+$/.test(name)) return 'invalid_name_punctuation';
  if (!/^[\p{Ll}\p{Lo}\p{Nd}_-]+$/u.test(name)) return 'invalid_name_specials';
  return null;
}

const MIME_BY_EXT: Record<string, string> = {
  txt: 'text/plain',
  log: 'text/plain',
  md: 'text/markdown',
  csv: 'text/csv',
  json: 'application/json',
  html: 'text/html',
  xml: 'application/xml',
  pdf: 'application/pdf',
  zip: 'application/zip',
  gz: 'application/gzip',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  eml: 'message/rfc822',
};

function fileTypeOf(name: string): { mimetype: string; filetype: string; prettyType: string } {
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
  const mimetype = MIME_BY_EXT[ext] ?? 'application/octet-stream';
  const filetype = ext === 'txt' || ext === 'log' ? 'text' : ext || 'binary';
  const prettyType = ext === '' ? 'Binary' : ext === 'txt' ? 'Plain Text' : ext.toUpperCase();
  return { mimetype, filetype, prettyType };
}

function str(p: Params, key: string): string | undefined {
  const v = p[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return JSON.stringify(v);
}

/** Slack-style boolean: true/"true"/"1"/1 → true; anything else (incl. absent) → default/false. */
function bool(p: Params, key: string, def = false): boolean {
  const v = p[key];
  if (v === undefined || v === null || v === '') return def;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  const s = String(v).toLowerCase();
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0') return false;
  return def;
}

function int(p: Params, key: string): number | undefined {
  const v = p[key];
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : Number.parseInt(String(v), 10);
  return Number.isFinite(n) ? Math.trunc(n) : undefined;
}

/** Limit handling: absent/0/garbage → default, negative → default, above max → max. */
function limitOf(p: Params, def: number, max: number): number {
  const n = int(p, 'limit');
  if (n === undefined || n <= 0) return def;
  return Math.min(n, max);
}

/** JSON-typed param: a JSON string (form bodies) or an already-typed value (JSON bodies). */
function jsonParam(p: Params, key: string): { present: boolean; ok: boolean; value: unknown } {
  const v = p[key];
  if (v === undefined || v === null || v === '') return { present: false, ok: true, value: undefined };
  if (typeof v !== 'string') return { present: true, ok: true, value: v };
  try {
    return { present: true, ok: true, value: JSON.parse(v) };
  } catch {
    return { present: true, ok: false, value: undefined };
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function textLen(t: unknown): number {
  if (isObj(t) && typeof t.text === 'string') return [...t.text].length;
  return 0;
}

const KNOWN_BLOCK_TYPES = new Set([
  'section',
  'divider',
  'header',
  'context',
  'actions',
  'image',
  'rich_text',
  'markdown',
  'input',
  'file',
  'video',
  'call',
  'table',
  'context_actions',
]);

/** Returns null if valid, otherwise a human readable problem (reported in response_metadata.messages). */
function blocksProblem(blocks: unknown): string | null {
  if (!Array.isArray(blocks)) return 'blocks must be an array';
  if (blocks.length > LIMITS.maxBlocks) return `no more than ${LIMITS.maxBlocks} items allowed [json-pointer:/blocks]`;
  for (let i = 0; i < blocks.length; i++) {
    const b: unknown = blocks[i];
    const at = `[json-pointer:/blocks/${i}]`;
    if (!isObj(b) || typeof b.type !== 'string') return `missing required field: type ${at}`;
    if (!KNOWN_BLOCK_TYPES.has(b.type)) return `unsupported type: ${b.type} ${at}`;
    if (typeof b.block_id === 'string' && b.block_id.length > LIMITS.blockIdMaxChars) {
      return `must be less than ${LIMITS.blockIdMaxChars + 1} characters [json-pointer:/blocks/${i}/block_id]`;
    }
    switch (b.type) {
      case 'section': {
        const hasText = isObj(b.text) && typeof b.text.text === 'string';
        const fields = b.fields;
        if (!hasText && !Array.isArray(fields)) {
          return `must provide either text or fields ${at}`;
        }
        if (b.text !== undefined && !hasText) return `invalid text object [json-pointer:/blocks/${i}/text]`;
        if (hasText && textLen(b.text) > LIMITS.sectionTextMaxChars) {
          return `must be less than ${LIMITS.sectionTextMaxChars + 1} characters [json-pointer:/blocks/${i}/text/text]`;
        }
        if (Array.isArray(fields)) {
          if (fields.length > LIMITS.sectionMaxFields) {
            return `no more than ${LIMITS.sectionMaxFields} items allowed [json-pointer:/blocks/${i}/fields]`;
          }
          for (let f = 0; f < fields.length; f++) {
            if (textLen(fields[f]) > LIMITS.sectionFieldMaxChars) {
              return `must be less than ${LIMITS.sectionFieldMaxChars + 1} characters [json-pointer:/blocks/${i}/fields/${f}/text]`;
            }
          }
        }
        break;
      }
      case 'header': {
        if (!isObj(b.text) || typeof b.text.text !== 'string') return `missing required field: text ${at}`;
        if (b.text.type !== 'plain_text') return `must be plain_text [json-pointer:/blocks/${i}/text/type]`;
        if (textLen(b.text) > LIMITS.headerTextMaxChars) {
          return `must be less than ${LIMITS.headerTextMaxChars + 1} characters [json-pointer:/blocks/${i}/text/text]`;
        }
        break;
      }
      case 'context': {
        if (!Array.isArray(b.elements) || b.elements.length === 0) return `missing required field: elements ${at}`;
        if (b.elements.length > LIMITS.contextMaxElements) {
          return `no more than ${LIMITS.contextMaxElements} items allowed [json-pointer:/blocks/${i}/elements]`;
        }
        break;
      }
      case 'actions': {
        if (!Array.isArray(b.elements) || b.elements.length === 0) return `missing required field: elements ${at}`;
        if (b.elements.length > LIMITS.actionsMaxElements) {
          return `no more than ${LIMITS.actionsMaxElements} items allowed [json-pointer:/blocks/${i}/elements]`;
        }
        break;
      }
      case 'image': {
        if (typeof b.image_url !== 'string' && !isObj(b.slack_file)) return `missing required field: image_url ${at}`;
        if (typeof b.alt_text !== 'string') return `missing required field: alt_text ${at}`;
        break;
      }
      case 'markdown': {
        if (typeof b.text !== 'string') return `missing required field: text ${at}`;
        if ([...b.text].length > LIMITS.markdownBlockMaxChars) {
          return `must be less than ${LIMITS.markdownBlockMaxChars + 1} characters [json-pointer:/blocks/${i}/text]`;
        }
        break;
      }
      case 'rich_text': {
        if (!Array.isArray(b.elements)) return `missing required field: elements ${at}`;
        break;
      }
      default:
        break;
    }
  }
  return null;
}

interface MultipartPart {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer;
}

function parseMultipart(body: Buffer, contentType: string): MultipartPart[] {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  if (!m) return [];
  const boundary = Buffer.from(`--${(m[1] ?? m[2]).trim()}`);
  const parts: MultipartPart[] = [];
  let pos = body.indexOf(boundary);
  while (pos !== -1) {
    let start = pos + boundary.length;
    if (body[start] === 0x2d && body[start + 1] === 0x2d) break; // closing "--"
    if (body[start] === 0x0d && body[start + 1] === 0x0a) start += 2;
    const next = body.indexOf(boundary, start);
    if (next === -1) break;
    let end = next;
    if (body[end - 2] === 0x0d && body[end - 1] === 0x0a) end -= 2;
    const headerEnd = body.indexOf('\r\n\r\n', start);
    if (headerEnd !== -1 && headerEnd < end) {
      const headers = body.subarray(start, headerEnd).toString('utf8');
      const disp = /content-disposition:[^\r\n]*/i.exec(headers)?.[0] ?? '';
      const name = /\bname="([^"]*)"/i.exec(disp)?.[1] ?? '';
      const filename = /\bfilename="([^"]*)"/i.exec(disp)?.[1];
      const ct = /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1];
      parts.push({ name, filename, contentType: ct, data: body.subarray(headerEnd + 4, end) });
    }
    pos = next;
  }
  return parts;
}

const HTTP_STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

// ---------------------------------------------------------------------------------------------------------------------
// The emulator
// ---------------------------------------------------------------------------------------------------------------------

export class SlackEmulator {
  /** `http://127.0.0.1:PORT/api/` — pass as WebClient's `slackApiUrl`. */
  readonly apiUrl: string;
  /** `http://127.0.0.1:PORT` */
  readonly baseUrl: string;
  readonly port: number;
  /** The default bot token (`xoxb-test-token`) with DEFAULT_BOT_SCOPES. */
  readonly botToken = 'xoxb-test-token';
  readonly botUserId: string;
  readonly botId: string;
  /** A human workspace admin, member of #general. */
  readonly adminUserId: string;
  readonly team: { id: string; name: string; domain: string; email_domain: string };
  /** Delay (ms) before completed uploads' shares show up in files.info. Can be changed at any time. */
  shareDelayMs: number;
  /** Last unexpected exception raised while handling a request (the emulator answers `internal_error`). */
  lastInternalError: unknown;
  /**
   * auth.test's `url` (`https://emulated.slack.com/`, the base of every permalink chat.getPermalink gives);
   * false leaves it out, as for a caller that must fall back to chat.getPermalink.
   */
  authTestUrl = true;
  /** The default app-level token (`xapp-test-token`, scope connections:write) of the bot's app. */
  readonly appToken = 'xapp-test-token';
  /** Socket Mode: connections opened with `apps.connections.open`, and the envelopes sent to them. */
  readonly socketMode: SocketModeServer;
  /** Clicks, response_url endpoints and ephemeral messages (slack-interactive.ts). */
  readonly interactive: Interactive;
  /** Modals (views.open / views.update, submissions) and slash commands (slack-views.ts). */
  readonly views: Views;
  private readonly subscriptions = new Set<EventSubscription>();

  private readonly server: http.Server;
  private readonly logCalls: boolean;
  private readonly maxCallLog: number;
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly usersById = new Map<string, EmulatedUser>();
  private readonly userOrder: string[] = [];
  private readonly chans = new Map<string, ChannelState>();
  private readonly channelOrder: string[] = [];
  private readonly nameIndex = new Map<string, string>();
  private readonly filesById = new Map<string, EmulatedFile>();
  private readonly faults = new Map<string, Fault[]>();
  private readonly callCounts = new Map<string, number>();
  private callLogEntries: CallLogEntry[] = [];
  private totalCalls = 0;
  private down = false;
  private rateLimits: RateLimitOptions | undefined;
  private rlEpoch = 0;
  private readonly methodBuckets = new Map<string, Bucket>();
  private readonly channelBuckets = new Map<string, Bucket>();
  private rateLimited429 = 0;
  private lastTsMicros = 0;
  private idCounter = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly methods: Record<string, MethodSpec>;
  private readonly pinned = new Map<string, string[]>();
  private readonly bookmarkLists = new Map<string, EmulatedBookmark[]>();
  /** `${caller user id}:${other user id}` → the IM's id. */
  private readonly ims = new Map<string, string>();
  private readonly customEmoji = new Set<string>();

  private constructor(server: http.Server, port: number, opts: EmulatorStartOptions) {
    this.server = server;
    this.port = port;
    this.baseUrl = `http://127.0.0.1:${port}`;
    this.apiUrl = `${this.baseUrl}/api/`;
    this.shareDelayMs = opts.shareDelayMs ?? 0;
    this.logCalls = opts.logCalls ?? true;
    this.maxCallLog = opts.maxCallLog ?? 200_000;
    this.team = {
      id: TEAM_ID,
      name: opts.teamName ?? 'Emulated Workspace',
      domain: TEAM_DOMAIN,
      email_domain: 'emulated.test',
    };
    this.methods = this.buildMethods();

    const admin = this.addUser({ name: 'admin', email: 'admin@emulated.test', real_name: 'Workspace Admin' });
    admin.is_admin = true;
    admin.is_owner = true;
    this.adminUserId = admin.id;
    this.seedChannel({ name: 'general', isGeneral: true, members: [admin.id], creator: admin.id });
    const rec = this.addToken(this.botToken, { scopes: DEFAULT_BOT_SCOPES, userType: 'bot', name: 'soar-bot' });
    this.botUserId = rec.userId;
    this.botId = rec.botId as string;
    this.socketMode = new SocketModeServer(`ws://127.0.0.1:${port}`, opts.socketMode);
    this.addAppToken(this.appToken);
    this.interactive = new Interactive({
      baseUrl: this.baseUrl,
      team: this.team,
      appId: () => (this.tokens.get(this.appToken) as TokenRecord).appId,
      user: (id) => this.usersById.get(id),
      channel: (id) => this.chans.get(id)?.info,
      message: (channelId, ts) => this.message(channelId, ts),
      replaceMessage: (channelId, ts, text, blocks) => {
        const m = this.message(channelId, ts) as EmulatedMessage;
        m.text = text;
        if (blocks) m.blocks = blocks;
        else delete m.blocks;
        m.edited = { user: this.botUserId, ts: formatTs(this.nextTsMicros()) };
      },
      deleteMessage: (channelId, ts) => this.removeMessage(channelId, ts),
      postAsBot: (channelId, text, blocks, threadTs) => this.postAsBot(channelId, text, blocks, threadTs),
      nextTs: () => formatTs(this.nextTsMicros()),
      deliverInteractive: (payload) => this.socketMode.deliver('interactive', payload),
    });
    this.views = new Views({
      team: this.team,
      appId: () => (this.tokens.get(this.appToken) as TokenRecord).appId,
      botId: () => this.botId,
      user: (id) => this.usersById.get(id),
      channel: (id) => this.chans.get(id)?.info,
      responseUrl: (channelId, userId) => this.interactive.responseUrlFor(channelId, userId),
      deliver: (type, payload) => this.socketMode.deliver(type, payload),
    });
  }

  /** Start an emulator listening on 127.0.0.1. */
  static async start(opts: EmulatorStartOptions = {}): Promise<SlackEmulator> {
    const server = http.createServer({ keepAlive: true, noDelay: true });
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    server.requestTimeout = 0;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    const emu = new SlackEmulator(server, port, opts);
    server.on('upgrade', (req, socket, head) => {
      if (!emu.socketMode.handleUpgrade(req, socket, head)) socket.destroy();
    });
    server.on('request', (req, res) => {
      emu.onRequest(req, res).catch((err: unknown) => {
        emu.lastInternalError = err;
        if (!res.headersSent) {
          res.writeHead(500, { 'Content-Type': 'text/plain' });
        }
        res.end();
      });
    });
    return emu;
  }

  /** Stop listening and drop all connections. */
  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.socketMode.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Workspace state: users & tokens
  // -------------------------------------------------------------------------------------------------------------------

  private newId(prefix: string): string {
    this.idCounter += 1;
    return prefix + this.idCounter.toString(36).toUpperCase().padStart(10, '0');
  }

  /** Add a human user. New users join #general, as in Slack. */
  addUser(u: { name: string; email?: string; real_name?: string; id?: string; is_bot?: boolean; deleted?: boolean }): EmulatedUser {
    const id = u.id ?? this.newId('U');
    if (this.usersById.has(id)) throw new Error(`user ${id} already exists`);
    const realName = u.real_name ?? u.name;
    const user: EmulatedUser = {
      id,
      team_id: TEAM_ID,
      name: u.name,
      real_name: realName,
      deleted: u.deleted ?? false,
      is_bot: u.is_bot ?? false,
      is_app_user: false,
      is_admin: false,
      is_owner: false,
      is_restricted: false,
      is_ultra_restricted: false,
      updated: Math.floor(Date.now() / 1000),
      tz: 'Etc/UTC',
      tz_label: 'Coordinated Universal Time',
      tz_offset: 0,
      color: '9f69e7',
      profile: {
        email: u.email,
        real_name: realName,
        real_name_normalized: realName,
        display_name: u.is_bot ? realName : u.name,
        display_name_normalized: u.is_bot ? realName : u.name,
        team: TEAM_ID,
        image_48: `https://emulated.slack.com/avatars/${id}_48.png`,
      },
    };
    this.usersById.set(id, user);
    this.userOrder.push(id);
    if (!user.is_bot) {
      const general = this.channelOrder.map((c) => this.chans.get(c) as ChannelState).find((c) => c.info.isGeneral);
      general?.info.members.add(id);
    }
    return user;
  }

  /** Mark a user deactivated (`deleted: true`). */
  deactivateUser(userId: string): void {
    const u = this.usersById.get(userId);
    if (!u) throw new Error(`no user ${userId}`);
    u.deleted = true;
  }

  user(userId: string): EmulatedUser | undefined {
    return this.usersById.get(userId);
  }

  users(): EmulatedUser[] {
    return this.userOrder.map((id) => this.usersById.get(id) as EmulatedUser);
  }

  /**
   * Register a token. Bot tokens get a bot user (created unless `botUserId` names an existing user), a bot id `B…`
   * and an app id `A…`. User tokens act as `botUserId` (created as a human user when missing).
   */
  addToken(token: string, opts: TokenOptions): TokenRecord {
    const type = opts.userType ?? 'bot';
    let userId = opts.botUserId;
    if (userId === undefined || !this.usersById.has(userId)) {
      const u = this.addUser({
        id: userId,
        name: opts.name ?? (type === 'bot' ? `bot${this.idCounter + 1}` : `user${this.idCounter + 1}`),
        is_bot: type === 'bot',
        email: type === 'user' ? `${opts.name ?? `user${this.idCounter + 1}`}@emulated.test` : undefined,
      });
      userId = u.id;
    }
    const appId = this.newId('A');
    const rec: TokenRecord = { token, type, scopes: [...opts.scopes], userId, appId, revoked: false };
    if (type === 'bot') {
      rec.botId = this.newId('B');
      const u = this.usersById.get(userId) as EmulatedUser;
      if (u.is_bot) {
        u.is_app_user = false;
        u.profile.bot_id = rec.botId;
        u.profile.api_app_id = appId;
      }
    }
    this.tokens.set(token, rec);
    return rec;
  }

  /** Register an app-level token (`xapp-…`) of the default bot's app, e.g. one lacking connections:write. */
  addAppToken(token: string, scopes: readonly string[] = ['connections:write']): TokenRecord {
    const bot = this.tokens.get(this.botToken) as TokenRecord;
    const rec: TokenRecord = { token, type: 'app', scopes: [...scopes], userId: bot.userId, appId: bot.appId, revoked: false };
    this.tokens.set(token, rec);
    return rec;
  }

  /** Subsequent calls with this token get `token_revoked`. */
  revokeToken(token: string): void {
    const rec = this.tokens.get(token);
    if (rec) rec.revoked = true;
  }

  tokenInfo(token: string): TokenRecord | undefined {
    return this.tokens.get(token);
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Channels, messages, files: state access for tests
  // -------------------------------------------------------------------------------------------------------------------

  channels(): EmulatedChannel[] {
    return this.channelOrder.map((id) => (this.chans.get(id) as ChannelState).info);
  }

  channel(channelId: string): EmulatedChannel | undefined {
    return this.chans.get(channelId)?.info;
  }

  channelByName(name: string): EmulatedChannel | undefined {
    const id = this.nameIndex.get(name.startsWith('#') ? name.slice(1) : name);
    return id === undefined ? undefined : this.chans.get(id)?.info;
  }

  /** Top-level messages (incl. thread parents and broadcast replies), oldest first. A copy of the array. */
  messages(channelId: string): EmulatedMessage[] {
    return this.state(channelId).top.slice();
  }

  /** Replies of a thread (without the parent), oldest first. */
  replies(channelId: string, threadTs: string): EmulatedMessage[] {
    return this.state(channelId).threads.get(threadTs)?.replies.slice() ?? [];
  }

  /** Find any message (top-level or reply) by ts. */
  message(channelId: string, ts: string): EmulatedMessage | undefined {
    const st = this.chans.get(channelId);
    return st ? this.findMessage(st, ts) : undefined;
  }

  members(channelId: string): string[] {
    return [...this.state(channelId).info.members];
  }

  files(): EmulatedFile[] {
    return [...this.filesById.values()];
  }

  file(fileId: string): EmulatedFile | undefined {
    return this.filesById.get(fileId);
  }

  /** The uploaded bytes of a file (undefined until uploaded). */
  fileBytes(fileId: string): Buffer | undefined {
    return this.filesById.get(fileId)?.bytes;
  }

  /** Create a channel directly (validates the name like conversations.create; throws on errors). */
  seedChannel(o: SeedChannelOptions): EmulatedChannel {
    const err = channelNameError(o.name);
    if (err) throw new Error(`seedChannel(${o.name}): ${err}`);
    if (this.nameIndex.has(o.name)) throw new Error(`seedChannel(${o.name}): name_taken`);
    const members = o.members ?? (this.botUserId ? [this.botUserId] : []);
    for (const m of members) if (!this.usersById.has(m)) throw new Error(`seedChannel: unknown user ${m}`);
    return this.createChannel(o.name, o.isPrivate ?? false, o.creator ?? members[0] ?? this.adminUserId, members, {
      archived: o.archived ?? false,
      isGeneral: o.isGeneral ?? false,
    }).info;
  }

  /** Add members directly (no checks). */
  addMembers(channelId: string, userIds: string[]): void {
    const st = this.state(channelId);
    for (const u of userIds) st.info.members.add(u);
  }

  /**
   * Append `count` top-level messages quickly (100,000 in well under a second). Returns the new top-level messages.
   */
  seedMessages(channelId: string, count: number, o: SeedMessagesOptions = {}): EmulatedMessage[] {
    const st = this.state(channelId);
    const users = o.users && o.users.length > 0 ? o.users : [this.adminUserId];
    const threads = Math.min(o.threads ?? 0, count);
    const perThread = threads > 0 ? (o.repliesPerThread ?? 3) : 0;
    const every = threads > 0 ? Math.max(1, Math.floor(count / threads)) : 0;
    let threadsLeft = threads;
    const prefix = o.text ?? 'seed message';
    const created: EmulatedMessage[] = new Array<EmulatedMessage>(count);
    for (let i = 0; i < count; i++) {
      const micros = this.nextTsMicros();
      const author = users[i % users.length];
      const msg: EmulatedMessage = {
        type: 'message',
        ts: formatTs(micros),
        user: author,
        team: TEAM_ID,
        text: `${prefix} ${i}`,
      };
      if (o.withFiles && i % 10 === 0) {
        const f = this.seedFile(`seed-${i}.txt`, Buffer.from(`seed file ${i}\n`), author);
        f.shares.push({ channelId, ts: msg.ts, visibleAt: 0, shareUserId: author });
        msg.files = [this.renderFile(f, false)];
        msg.upload = true;
      }
      st.top.push(msg);
      st.topTs.push(micros);
      created[i] = msg;
      if (threadsLeft > 0 && i % every === 0) {
        threadsLeft -= 1;
        for (let r = 0; r < perThread; r++) {
          const ruser = users[(i + r + 1) % users.length];
          const reply: EmulatedMessage = {
            type: 'message',
            ts: formatTs(this.nextTsMicros()),
            user: ruser,
            team: TEAM_ID,
            text: `reply ${r} to ${prefix} ${i}`,
          };
          this.attachReply(st, msg, reply);
        }
      }
    }
    return created;
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Faults, counters, rate limits
  // -------------------------------------------------------------------------------------------------------------------

  // -------------------------------------------------------------------------------------------------------------------
  // Events API (delivered over Socket Mode)
  // -------------------------------------------------------------------------------------------------------------------

  /** Delivers events of these subscriptions from now on (none by default, as for an app without event subscriptions). */
  subscribe(...events: EventSubscription[]): void {
    for (const e of events) this.subscriptions.add(e);
  }

  /**
   * A person posts `text` in a channel or a thread, as from Slack's own client: the message is stored and the events it
   * raises are delivered.
   */
  postAsUser(
    userId: string,
    channelId: string,
    text: string,
    o: { threadTs?: string; files?: { name: string; content: string | Buffer }[] } = {},
  ): EmulatedMessage {
    const st = this.state(channelId);
    if (!this.usersById.has(userId)) throw new Error(`no user ${userId}`);
    if (!st.info.members.has(userId)) throw new Error(`${userId} is not a member of ${channelId}`);
    if (st.info.isArchived) throw new Error(`${channelId} is archived`);
    const micros = this.nextTsMicros();
    const msg: EmulatedMessage = { type: 'message', ts: formatTs(micros), user: userId, team: TEAM_ID, text };
    if (o.files?.length) {
      // A message with files shared from Slack's client: subtype file_share, the files rendered as in history.
      msg.subtype = 'file_share';
      msg.upload = true;
      msg.files = o.files.map((file) => {
        const f = this.seedFile(file.name, Buffer.from(file.content), userId);
        f.shares.push({ channelId, ts: msg.ts, visibleAt: 0, shareUserId: userId });
        return this.renderFile(f, false);
      });
    }
    if (o.threadTs) {
      const parent = this.findTop(st, o.threadTs);
      if (!parent) throw new Error(`no thread ${o.threadTs} in ${channelId}`);
      this.attachReply(st, parent, msg);
    } else {
      this.appendTop(st, msg, micros);
    }
    this.messageEvents(st, msg);
    return msg;
  }

  /**
   * A person edits their own message, as from Slack's client: the text changes, `edited` is set and a
   * `message_changed` event (hidden, with `message` and `previous_message`) is delivered.
   */
  editAsUser(userId: string, channelId: string, ts: string, text: string): EmulatedMessage {
    const st = this.state(channelId);
    const m = this.findMessage(st, ts);
    if (!m) throw new Error(`no message ${ts} in ${channelId}`);
    if (m.user !== userId) throw new Error(`${userId} did not write ${ts}`);
    const previous = { ...m };
    const editTs = formatTs(this.nextTsMicros());
    m.text = text;
    m.edited = { user: userId, ts: editTs };
    this.changeEvent(st, { subtype: 'message_changed', hidden: true, message: { ...m }, previous_message: previous, ts: editTs, event_ts: editTs });
    return m;
  }

  /** A person deletes their own message: it leaves the history and a `message_deleted` event is delivered. */
  deleteAsUser(userId: string, channelId: string, ts: string): void {
    const st = this.state(channelId);
    const m = this.findMessage(st, ts);
    if (!m) throw new Error(`no message ${ts} in ${channelId}`);
    if (m.user !== userId) throw new Error(`${userId} did not write ${ts}`);
    const parentTs = st.replyParent.get(ts);
    if (parentTs !== undefined) {
      const th = st.threads.get(parentTs)!;
      const i = th.replies.indexOf(m);
      th.replies.splice(i, 1);
      th.ts.splice(i, 1);
      st.replyParent.delete(ts);
      st.replyIndex.delete(ts);
    } else {
      const i = st.top.indexOf(m);
      st.top.splice(i, 1);
      st.topTs.splice(i, 1);
    }
    const eventTs = formatTs(this.nextTsMicros());
    this.changeEvent(st, { subtype: 'message_deleted', hidden: true, deleted_ts: ts, previous_message: { ...m }, ts: eventTs, event_ts: eventTs });
  }

  /** Delivers a hidden change (edit, delete) of a channel's message to the app, as `message` events are. */
  private changeEvent(st: ChannelState, fields: Record<string, unknown>): void {
    const ch = st.info;
    if (!ch.members.has(this.botUserId) || !this.subscriptions.has(ch.isPrivate ? 'message.groups' : 'message.channels')) return;
    this.emitEvent({ type: 'message', channel: ch.id, channel_type: ch.isPrivate ? 'group' : 'channel', ...fields });
  }

  /**
   * Delivers one Events API event, wrapped in its `event_callback`, over Socket Mode. A given `eventId` repeats an
   * earlier event (what a Slack retry carries); by default each call is a new event. Returns the event_id.
   */
  emitEvent(event: Record<string, unknown>, o: { eventId?: string } = {}): string {
    const payload = this.eventCallback(event, o);
    this.socketMode.deliver('events_api', payload);
    return payload.event_id as string;
  }

  /**
   * The `event_callback` Slack wraps `event` in (what Socket Mode carries as the payload
   * and the HTTP Events API posts as the body). A given `eventId` repeats an earlier event.
   */
  eventCallback(event: Record<string, unknown>, o: { eventId?: string } = {}): Record<string, unknown> {
    const eventId = o.eventId ?? this.newId('Ev');
    const app = this.tokens.get(this.appToken) as TokenRecord;
    return {
      token: 'emulated-verification-token',
      team_id: TEAM_ID,
      api_app_id: app.appId,
      event,
      type: 'event_callback',
      event_id: eventId,
      event_time: Math.floor(Date.now() / 1000),
      authorizations: [{ enterprise_id: null, team_id: TEAM_ID, user_id: this.botUserId, is_bot: true, is_enterprise_install: false }],
      is_ext_shared_channel: false,
    };
  }

  /**
   * `userId` clicks the button (or picks `selectedOption` of the static_select) with `actionId`
   * in a stored message: the `block_actions` payload Slack sends is delivered over Socket Mode
   * as an `interactive` envelope, and returned.
   */
  click(userId: string, channelId: string, messageTs: string, actionId: string, opts: ClickOptions = {}): Record<string, unknown> {
    return this.interactive.click(userId, channelId, messageTs, actionId, opts);
  }

  /** `userId` submits the open modal `viewId` (values by input block id); the view_submission payload is delivered and returned. */
  submitView(userId: string, viewId: string, values: Record<string, string>): Record<string, unknown> {
    return this.views.submit(userId, viewId, values);
  }

  /** `userId` types `command text` in `channelId`; the slash_commands payload is delivered and returned. */
  slashCommand(userId: string, channelId: string, text: string, command = '/soar'): Record<string, unknown> {
    return this.views.slashCommand(userId, channelId, text, command);
  }

  /** Runs a views method, turning its refusals into Slack errors. */
  private viewsCall(fn: () => Body): Body {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ViewError) fail(err.code);
      throw err;
    }
  }

  /** Ephemeral messages (chat.postEphemeral, response_url) shown so far, to one user when given. */
  ephemerals(userId?: string): EphemeralMessage[] {
    return this.interactive.ephemerals(userId);
  }

  /** A top-level message (or reply) removed, as `delete_original` removes it. */
  private removeMessage(channelId: string, ts: string): void {
    const st = this.state(channelId);
    const i = st.top.findIndex((m) => m.ts === ts);
    if (i >= 0) {
      st.top.splice(i, 1);
      st.topTs.splice(i, 1);
      return;
    }
    const parentTs = st.replyParent.get(ts);
    const th = parentTs ? st.threads.get(parentTs) : undefined;
    if (!th) return;
    const j = th.replies.findIndex((m) => m.ts === ts);
    th.replies.splice(j, 1);
    th.ts.splice(j, 1);
    st.replyParent.delete(ts);
    st.replyIndex.delete(ts);
  }

  /** A message posted as the bot without the Web API (a response_url's in_channel answer). */
  private postAsBot(channelId: string, text: string, blocks: unknown[] | undefined, threadTs?: string): EmulatedMessage {
    const st = this.state(channelId);
    const msg = this.buildMessage(this.tokens.get(this.botToken) as TokenRecord, { text, ...(blocks ? { blocks } : {}) });
    const micros = this.nextTsMicros();
    msg.ts = formatTs(micros);
    const parent = threadTs ? this.findTop(st, threadTs) : undefined;
    if (parent) this.attachReply(st, parent, msg);
    else this.appendTop(st, msg, micros);
    this.messageEvents(st, msg);
    return msg;
  }

  /** The `message` (and `app_mention`) events a stored message raises for the app, as Slack sends them. */
  private messageEvents(st: ChannelState, msg: EmulatedMessage): void {
    const ch = st.info;
    // Bot events come only from conversations the app's bot user is in.
    if (!ch.members.has(this.botUserId)) return;
    const fields: Record<string, unknown> = { user: msg.user, text: msg.text, ts: msg.ts, event_ts: msg.ts, team: msg.team };
    for (const k of ['subtype', 'bot_id', 'app_id', 'bot_profile', 'thread_ts', 'parent_user_id', 'files', 'blocks'] as const) {
      if (msg[k] !== undefined) fields[k] = msg[k];
    }
    if (this.subscriptions.has(ch.isPrivate ? 'message.groups' : 'message.channels')) {
      this.emitEvent({ type: 'message', channel: ch.id, channel_type: ch.isPrivate ? 'group' : 'channel', ...fields });
    }
    if (this.subscriptions.has('app_mention') && msg.user !== this.botUserId && msg.text.includes(`<@${this.botUserId}>`)) {
      this.emitEvent({ type: 'app_mention', channel: ch.id, ...fields });
    }
  }

  /**
   * Make the next call(s) of `method` fail (`'*'` matches any method; UPLOAD_METHOD the upload URL).
   * Faults queue up per method and are consumed in order.
   */
  failNext(method: string, fault: Fault): void {
    const q = this.faults.get(method) ?? [];
    q.push({ ...fault, times: fault.times ?? 1 });
    this.faults.set(method, q);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** While down, every request (API and upload) gets HTTP 503. */
  setDown(down: boolean): void {
    this.down = down;
  }

  /** Number of requests received for `method` (all methods when omitted), including failed ones. */
  calls(method?: string): number {
    if (method === undefined) return this.totalCalls;
    return this.callCounts.get(method) ?? 0;
  }

  get callLog(): readonly CallLogEntry[] {
    return this.callLogEntries;
  }

  resetCalls(): void {
    this.callCounts.clear();
    this.callLogEntries = [];
    this.totalCalls = 0;
    this.rateLimited429 = 0;
  }

  /** How many HTTP 429 answers were given (enforced limits and injected faults). */
  get rateLimitedCount(): number {
    return this.rateLimited429;
  }

  /** Enable (or with `undefined`, disable) rate-limit enforcement. Resets all buckets. */
  setRateLimits(opts: RateLimitOptions | undefined): void {
    this.rateLimits = opts && (opts.perMethod || opts.perChannelPostsPerSecond) ? { ...opts } : undefined;
    this.methodBuckets.clear();
    this.channelBuckets.clear();
    this.rlEpoch = Date.now();
  }

  /** Emulated Slack clock in ms (scaled by timeScale since setRateLimits). */
  private slackNow(): number {
    const scale = this.rateLimits?.timeScale ?? 1;
    const now = Date.now();
    return this.rlEpoch + (now - this.rlEpoch) * scale;
  }

  /** Take one token; returns 0 when allowed, else the Slack-seconds to wait. */
  private takeToken(map: Map<string, Bucket>, key: string, perSecond: number, capacity: number): number {
    const now = this.slackNow();
    let b = map.get(key);
    if (!b) {
      b = { tokens: capacity, last: now };
      map.set(key, b);
    } else {
      b.tokens = Math.min(capacity, b.tokens + ((now - b.last) / 1000) * perSecond);
      b.last = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / perSecond;
  }

  private checkMethodLimit(method: string, tok: TokenRecord): void {
    const perMin = this.rateLimits?.perMethod?.[method];
    if (!perMin || perMin <= 0) return;
    const cap = this.rateLimits?.burst ?? perMin;
    const wait = this.takeToken(this.methodBuckets, `${method}\u0000${tok.token}`, perMin / 60, Math.max(1, cap));
    if (wait > 0) throw new RateLimited(wait);
  }

  private checkChannelPostLimit(channelId: string): void {
    const perSec = this.rateLimits?.perChannelPostsPerSecond;
    if (!perSec || perSec <= 0) return;
    const cap = this.rateLimits?.perChannelBurst ?? this.rateLimits?.burst ?? Math.max(1, perSec);
    const wait = this.takeToken(this.channelBuckets, channelId, perSec, Math.max(1, cap));
    if (wait > 0) throw new RateLimited(wait);
  }

  // -------------------------------------------------------------------------------------------------------------------
  // HTTP plumbing
  // -------------------------------------------------------------------------------------------------------------------

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const query = q === -1 ? '' : url.slice(q + 1);
    if (path.startsWith('/upload/') && !this.down && this.peekFault(UPLOAD_METHOD)?.closeAfterBytes !== undefined) {
      const f = this.takeFault(UPLOAD_METHOD)!;
      this.record(UPLOAD_METHOD, { file_id: decodeURIComponent(path.slice(8).split('/')[0]!), cut_after: f.closeAfterBytes });
      await cutOff(req, f.closeAfterBytes!);
      return;
    }
    const body = await readBody(req);

    if (path.startsWith('/api/')) {
      const method = decodeURIComponent(path.slice(5));
      await this.handleApi(method, req, res, body, query);
      return;
    }
    if (path.startsWith('/upload/') && (req.method === 'POST' || req.method === 'PUT')) {
      await this.handleUpload(path.slice(8), req, res, body);
      return;
    }
    if (this.interactive.handles(path) && req.method === 'POST') {
      const r = this.interactive.respond(path, body);
      send(res, { ...jsonReply(r.body), status: r.status });
      return;
    }
    if (path.startsWith('/files-pri/') && req.method === 'GET') {
      this.handleDownload(path, req, res);
      return;
    }
    send(res, { status: 404, body: 'Not Found', headers: { 'Content-Type': 'text/plain' } });
  }

  private record(method: string, params: Params): void {
    this.totalCalls += 1;
    this.callCounts.set(method, (this.callCounts.get(method) ?? 0) + 1);
    if (!this.logCalls) return;
    const clean: Params = {};
    for (const k of Object.keys(params)) {
      if (k === 'token') continue;
      const v = params[k];
      clean[k] = Buffer.isBuffer(v) ? `<${v.length} bytes>` : v;
    }
    this.callLogEntries.push({ method, params: clean, time: Date.now() });
    if (this.callLogEntries.length > this.maxCallLog * 1.5) {
      this.callLogEntries = this.callLogEntries.slice(this.callLogEntries.length - this.maxCallLog);
    }
  }

  private takeFault(method: string): Fault | undefined {
    for (const key of [method, '*']) {
      const q = this.faults.get(key);
      if (!q || q.length === 0) continue;
      const f = q[0];
      if ((f.after ?? 0) > 0) {
        f.after = (f.after as number) - 1;
        continue;
      }
      f.times = (f.times ?? 1) - 1;
      if (f.times <= 0) q.shift();
      if (q.length === 0) this.faults.delete(key);
      return f;
    }
    return undefined;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  /** Apply `setDown` and injected faults. Returns true when the request has been answered. */
  private async applyFaults(method: string, res: http.ServerResponse): Promise<boolean> {
    if (this.down) {
      send(res, httpError(503));
      return true;
    }
    const f = this.takeFault(method);
    if (!f) return false;
    return this.applyFault(f, res);
  }

  /** The next fault queued for `method` (or '*'), without taking it. */
  private peekFault(method: string): Fault | undefined {
    for (const key of [method, '*']) {
      const q = this.faults.get(key);
      if (q && q.length > 0) return q[0];
    }
    return undefined;
  }

  /** Answers with fault `f`; returns true when the request has been answered. */
  private async applyFault(f: Fault, res: http.ServerResponse): Promise<boolean> {
    if (f.delayMs && f.delayMs > 0) await this.sleep(f.delayMs);
    if (f.closeSocket) {
      res.socket?.destroy();
      return true;
    }
    if (f.retryAfter !== undefined || f.status === 429) {
      this.rateLimited429 += 1;
      send(res, rateLimitedReply(f.retryAfter ?? 1));
      return true;
    }
    if (f.status !== undefined && f.status !== 200) {
      send(res, httpError(f.status));
      return true;
    }
    if (f.error) {
      send(res, jsonReply({ ok: false, error: f.error }));
      return true;
    }
    return false; // delay only
  }

  private parseParams(req: http.IncomingMessage, body: Buffer, query: string): Params | SlackApiError {
    const params: Params = {};
    if (query) for (const [k, v] of new URLSearchParams(query)) params[k] = v;
    if (body.length === 0) return params;
    const ct = (req.headers['content-type'] ?? '').toLowerCase();
    if (ct.startsWith('application/json')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        return new SlackApiError('invalid_json');
      }
      if (!isObj(parsed)) return new SlackApiError('json_not_object');
      return Object.assign(params, parsed);
    }
    if (ct.startsWith('multipart/form-data')) {
      for (const part of parseMultipart(body, req.headers['content-type'] ?? '')) {
        params[part.name] = part.filename !== undefined ? part.data : part.data.toString('utf8');
      }
      return params;
    }
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) params[k] = v;
    return params;
  }

  private async handleApi(
    method: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: Buffer,
    query: string,
  ): Promise<void> {
    const parsed = this.parseParams(req, body, query);
    const params = parsed instanceof SlackApiError ? {} : parsed;
    this.record(method, params);
    // A fault meant for after the effect is taken now (so a concurrent call does not
    // take it) and applied once the method has run.
    const late = !this.down && this.peekFault(method)?.afterEffect ? this.takeFault(method) : undefined;
    if (!late && (await this.applyFaults(method, res))) return;
    if (parsed instanceof SlackApiError) {
      send(res, jsonReply({ ok: false, error: parsed.code }));
      return;
    }

    const spec = Object.prototype.hasOwnProperty.call(this.methods, method) ? this.methods[method] : undefined;
    if (!spec) {
      send(res, jsonReply({ ok: false, error: 'unknown_method', req_method: method }));
      return;
    }
    const headers: Record<string, string> = {};
    if (spec.accepted.length > 0) headers['X-Accepted-OAuth-Scopes'] = spec.accepted.join(',');

    // Authentication
    let tok: TokenRecord | undefined;
    const auth = req.headers.authorization;
    let tokenStr: string | undefined;
    if (auth) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      tokenStr = m ? m[1] : undefined;
    }
    if (tokenStr === undefined) tokenStr = str(params, 'token');
    if (!spec.noAuth) {
      if (!tokenStr) {
        send(res, jsonReply({ ok: false, error: 'not_authed' }, headers));
        return;
      }
      tok = this.tokens.get(tokenStr);
      if (!tok) {
        send(res, jsonReply({ ok: false, error: 'invalid_auth' }, headers));
        return;
      }
      headers['X-OAuth-Scopes'] = tok.scopes.join(',');
      if (tok.revoked) {
        send(res, jsonReply({ ok: false, error: 'token_revoked' }, headers));
        return;
      }
      if ((tok.type === 'app') !== (method === 'apps.connections.open')) {
        send(res, jsonReply({ ok: false, error: 'not_allowed_token_type' }, headers));
        return;
      }
    }

    let out: Body;
    try {
      if (tok) {
        const t = tok;
        this.checkMethodLimit(method, t);
        if (!spec.perType && spec.accepted.length > 0 && !spec.accepted.some((s) => t.scopes.includes(s))) {
          fail('missing_scope', { needed: spec.accepted.join(','), provided: t.scopes.join(',') });
        }
      }
      out = spec.handler({ tok: tok as TokenRecord, p: params });
    } catch (err) {
      if (err instanceof SlackApiError) {
        out = { ok: false, error: err.code, ...err.extra };
      } else if (err instanceof RateLimited) {
        this.rateLimited429 += 1;
        const scale = this.rateLimits?.timeScale ?? 1;
        const reply = rateLimitedReply(Math.max(1, Math.ceil(err.slackSeconds / scale)));
        reply.headers['X-Emulator-Retry-After-Slack'] = String(Math.max(1, Math.ceil(err.slackSeconds)));
        Object.assign(reply.headers, headers);
        send(res, reply);
        return;
      } else {
        this.lastInternalError = err;
        out = { ok: false, error: 'internal_error', emulator_error: String((err as Error)?.stack ?? err) };
      }
    }
    if (late && (await this.applyFault(late, res))) return;
    send(res, jsonReply(out, headers));
  }

  private async handleUpload(fileId: string, req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    const id = decodeURIComponent(fileId.split('/')[0]);
    this.record(UPLOAD_METHOD, { file_id: id, bytes: body.length });
    if (await this.applyFaults(UPLOAD_METHOD, res)) return;
    const f = this.filesById.get(id);
    if (!f || f.completed) {
      send(res, { status: 404, body: 'Not Found', headers: { 'Content-Type': 'text/plain' } });
      return;
    }
    let bytes = body;
    const ct = req.headers['content-type'] ?? '';
    if (/^multipart\/form-data/i.test(ct)) {
      const parts = parseMultipart(body, ct);
      const part =
        parts.find((x) => x.filename !== undefined) ??
        parts.find((x) => x.name === 'file' || x.name === 'filename' || x.name === 'body') ??
        parts[0];
      bytes = part ? Buffer.from(part.data) : Buffer.alloc(0);
    } else {
      bytes = Buffer.from(body);
    }
    f.bytes = bytes;
    f.size = bytes.length;
    f.uploaded = true;
    send(res, { status: 200, body: `OK - ${bytes.length}`, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  }

  private handleDownload(path: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    // /files-pri/T0001-F…/name
    const seg = path.split('/')[2] ?? '';
    const id = seg.slice(seg.indexOf('-') + 1);
    const auth = /^Bearer\s+(\S+)/i.exec(req.headers.authorization ?? '')?.[1];
    const tok = auth ? this.tokens.get(auth) : undefined;
    const f = this.filesById.get(id);
    if (!tok || !tok.scopes.includes('files:read')) {
      send(res, { status: 403, body: 'Forbidden', headers: { 'Content-Type': 'text/plain' } });
      return;
    }
    if (!f || !f.bytes) {
      send(res, httpError(404));
      return;
    }
    res.writeHead(200, { 'Content-Type': f.mimetype, 'Content-Length': String(f.bytes.length) });
    res.end(f.bytes);
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Internal state helpers
  // -------------------------------------------------------------------------------------------------------------------

  private state(channelId: string): ChannelState {
    const st = this.chans.get(channelId);
    if (!st) throw new Error(`no channel ${channelId}`);
    return st;
  }

  private nextTsMicros(): number {
    const now = Date.now() * 1000;
    this.lastTsMicros = now > this.lastTsMicros ? now : this.lastTsMicros + 1;
    return this.lastTsMicros;
  }

  private createChannel(
    name: string,
    isPrivate: boolean,
    creator: string,
    members: string[],
    o: { archived: boolean; isGeneral: boolean },
  ): ChannelState {
    const now = Math.floor(Date.now() / 1000);
    const info: EmulatedChannel = {
      id: this.newId('C'),
      name,
      isPrivate,
      isArchived: o.archived,
      isGeneral: o.isGeneral,
      created: now,
      creator,
      members: new Set(members),
      topic: { value: '', creator: '', last_set: 0 },
      purpose: { value: '', creator: '', last_set: 0 },
    };
    const st: ChannelState = {
      info,
      top: [],
      topTs: [],
      threads: new Map(),
      replyParent: new Map(),
      replyIndex: new Map(),
    };
    this.chans.set(info.id, st);
    this.channelOrder.push(info.id);
    this.nameIndex.set(name, info.id);
    return st;
  }

  private findTop(st: ChannelState, ts: string): EmulatedMessage | undefined {
    const n = parseTs(ts);
    if (Number.isNaN(n)) return undefined;
    const i = bisect(st.topTs, n);
    return i < st.topTs.length && st.topTs[i] === n ? st.top[i] : undefined;
  }

  private findMessage(st: ChannelState, ts: string): EmulatedMessage | undefined {
    return this.findTop(st, ts) ?? st.replyIndex.get(ts);
  }

  private attachReply(st: ChannelState, parent: EmulatedMessage, reply: EmulatedMessage): void {
    let th = st.threads.get(parent.ts);
    if (!th) {
      th = { replies: [], ts: [], users: new Set() };
      st.threads.set(parent.ts, th);
    }
    reply.thread_ts = parent.ts;
    reply.parent_user_id = parent.user;
    th.replies.push(reply);
    th.ts.push(parseTs(reply.ts));
    st.replyParent.set(reply.ts, parent.ts);
    st.replyIndex.set(reply.ts, reply);
    const author = reply.user ?? '';
    if (!th.users.has(author)) {
      th.users.add(author);
      if ((parent.reply_users?.length ?? 0) < 5) parent.reply_users = [...(parent.reply_users ?? []), author];
    }
    parent.thread_ts = parent.ts;
    parent.reply_count = th.replies.length;
    parent.reply_users_count = th.users.size;
    parent.latest_reply = reply.ts;
    parent.is_locked = false;
    parent.subscribed = false;
  }

  private appendTop(st: ChannelState, msg: EmulatedMessage, micros: number): void {
    st.top.push(msg);
    st.topTs.push(micros);
  }

  private seedFile(name: string, bytes: Buffer, user: string): EmulatedFile {
    const t = fileTypeOf(name);
    const f: EmulatedFile = {
      id: this.newId('F'),
      name,
      title: name,
      size: bytes.length,
      declaredLength: bytes.length,
      mimetype: t.mimetype,
      filetype: t.filetype,
      prettyType: t.prettyType,
      user,
      created: Math.floor(Date.now() / 1000),
      uploaded: true,
      completed: true,
      bytes,
      shares: [],
    };
    this.filesById.set(f.id, f);
    return f;
  }

  private isMember(ch: EmulatedChannel, tok: TokenRecord): boolean {
    return ch.members.has(tok.userId);
  }

  private needScope(tok: TokenRecord, scope: string): void {
    if (!tok.scopes.includes(scope)) fail('missing_scope', { needed: scope, provided: tok.scopes.join(',') });
  }

  /** Channel by id; private channels the caller isn't in → `hiddenError` (default channel_not_found). */
  private channelFor(ctx: Ctx, key = 'channel', hiddenError = 'channel_not_found'): ChannelState {
    const id = str(ctx.p, key);
    const st = id ? this.chans.get(id) : undefined;
    if (!st) fail('channel_not_found');
    if (st.info.isPrivate && !this.isMember(st.info, ctx.tok)) fail(hiddenError);
    return st;
  }

  private renderChannel(ch: EmulatedChannel, tok: TokenRecord | undefined, numMembers: boolean): Body {
    const out: Body = {
      id: ch.id,
      name: ch.name,
      is_channel: true,
      is_group: false,
      is_im: false,
      is_mpim: false,
      is_private: ch.isPrivate,
      created: ch.created,
      is_archived: ch.isArchived,
      is_general: ch.isGeneral,
      unlinked: 0,
      name_normalized: ch.name,
      is_shared: false,
      is_org_shared: false,
      is_ext_shared: false,
      is_pending_ext_shared: false,
      pending_shared: [],
      context_team_id: TEAM_ID,
      updated: ch.created * 1000,
      parent_conversation: null,
      creator: ch.creator,
      shared_team_ids: [TEAM_ID],
      pending_connected_team_ids: [],
      is_member: tok ? ch.members.has(tok.userId) : false,
      topic: { ...ch.topic },
      purpose: { ...ch.purpose },
      previous_names: [],
    };
    if (numMembers) out.num_members = ch.members.size;
    return out;
  }

  private renderUser(u: EmulatedUser): Body {
    return { ...u, profile: { ...u.profile } };
  }

  private renderFile(f: EmulatedFile, withShares: boolean): Record<string, unknown> {
    const enc = encodeURIComponent(f.name);
    const out: Record<string, unknown> = {
      id: f.id,
      created: f.created,
      timestamp: f.created,
      name: f.name,
      title: f.title,
      mimetype: f.mimetype,
      filetype: f.filetype,
      pretty_type: f.prettyType,
      user: f.user,
      user_team: TEAM_ID,
      editable: false,
      size: f.size,
      mode: 'hosted',
      is_external: false,
      external_type: '',
      is_public: false,
      public_url_shared: false,
      display_as_bot: false,
      username: '',
      url_private: `${this.baseUrl}/files-pri/${TEAM_ID}-${f.id}/${enc}`,
      url_private_download: `${this.baseUrl}/files-pri/${TEAM_ID}-${f.id}/download/${enc}`,
      permalink: `https://${TEAM_DOMAIN}.slack.com/files/${f.user}/${f.id}/${enc}`,
      permalink_public: `https://slack-files.com/${TEAM_ID}-${f.id}-${f.id.toLowerCase()}`,
      has_rich_preview: false,
      file_access: 'visible',
    };
    if (f.altText) out.alt_txt = f.altText;
    if (withShares) {
      const now = Date.now();
      const pub: Record<string, unknown[]> = {};
      const priv: Record<string, unknown[]> = {};
      const channels: string[] = [];
      const groups: string[] = [];
      for (const s of f.shares) {
        if (s.visibleAt > now) continue;
        const st = this.chans.get(s.channelId);
        if (!st) continue;
        const target = st.info.isPrivate ? priv : pub;
        const list = st.info.isPrivate ? groups : channels;
        if (!list.includes(s.channelId)) list.push(s.channelId);
        const entry: Record<string, unknown> = {
          reply_users: [],
          reply_users_count: 0,
          reply_count: 0,
          ts: s.ts,
          channel_name: st.info.name,
          team_id: TEAM_ID,
          share_user_id: s.shareUserId,
          source: 'UNKNOWN',
          is_silent_share: false,
        };
        if (s.threadTs) {
          entry.thread_ts = s.threadTs;
          const parent = this.findTop(st, s.threadTs);
          if (parent) {
            entry.reply_count = parent.reply_count ?? 0;
            entry.reply_users = parent.reply_users ?? [];
            entry.reply_users_count = parent.reply_users_count ?? 0;
            entry.latest_reply = parent.latest_reply;
          }
        }
        (target[s.channelId] ??= []).push(entry);
      }
      const shares: Record<string, unknown> = {};
      if (Object.keys(pub).length > 0) shares.public = pub;
      if (Object.keys(priv).length > 0) shares.private = priv;
      out.shares = shares;
      out.channels = channels;
      out.groups = groups;
      out.ims = [];
      out.is_public = channels.length > 0;
      out.comments_count = 0;
    }
    return out;
  }

  private canSeeMetadata(m: EmulatedMessage, tok: TokenRecord): boolean {
    return tok.scopes.includes('metadata.message:read') || (m.app_id !== undefined && m.app_id === tok.appId);
  }

  private renderMessage(m: EmulatedMessage, tok: TokenRecord, withMeta: boolean): Body {
    const out: Body = { ...m };
    if (m.metadata && !(withMeta && this.canSeeMetadata(m, tok))) delete out.metadata;
    return out;
  }

  private permalinkOf(st: ChannelState, m: EmulatedMessage): string {
    const base = `https://${TEAM_DOMAIN}.slack.com/archives/${st.info.id}/p${m.ts.replace('.', '')}`;
    const parent = st.replyParent.get(m.ts);
    return parent ? `${base}?thread_ts=${parent}&cid=${st.info.id}` : base;
  }

  private decodeCursor(p: Params, prefix: string): string | undefined {
    const c = str(p, 'cursor');
    if (!c) return undefined;
    let s: string;
    try {
      s = unb64(c);
    } catch {
      fail('invalid_cursor');
    }
    if (!s.startsWith(prefix) || s.length === prefix.length) fail('invalid_cursor');
    return s.slice(prefix.length);
  }

  private decodeTsCursor(p: Params): number | undefined {
    const v = this.decodeCursor(p, 'next_ts:');
    if (v === undefined) return undefined;
    if (!/^\d{7,}$/.test(v)) fail('invalid_cursor');
    return Number(v);
  }

  private tsCursor(micros: number): string {
    return b64(`next_ts:${micros}`);
  }

  /** Resolve [lo, hi) index range of `arr` for oldest/latest/inclusive. */
  private timeRange(p: Params, arr: number[]): [number, number] {
    const inclusive = bool(p, 'inclusive');
    const oldestS = str(p, 'oldest');
    const latestS = str(p, 'latest');
    let lo = 0;
    let hi = arr.length;
    if (oldestS) {
      const o = parseTs(oldestS);
      if (Number.isNaN(o)) fail('invalid_ts_oldest');
      lo = bisect(arr, o, !inclusive);
    }
    if (latestS) {
      const l = parseTs(latestS);
      if (Number.isNaN(l)) fail('invalid_ts_latest');
      hi = bisect(arr, l, inclusive);
    }
    return [lo, Math.max(lo, hi)];
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Methods
  // -------------------------------------------------------------------------------------------------------------------

  private buildMethods(): Record<string, MethodSpec> {
    const chanRead = ['channels:read', 'groups:read', 'im:read', 'mpim:read'];
    const chanWrite = ['channels:manage', 'groups:write', 'im:write', 'mpim:write'];
    const chanHistory = ['channels:history', 'groups:history', 'im:history', 'mpim:history'];
    return {
      'api.test': { accepted: [], noAuth: true, handler: (c) => ({ ok: true, args: stripToken(c.p) }) },
      'auth.test': { accepted: [], handler: (c) => this.authTest(c) },
      'team.info': { accepted: ['team:read'], handler: () => ({ ok: true, team: { ...this.team, icon: { image_default: true } } }) },
      'users.info': { accepted: ['users:read'], handler: (c) => this.usersInfo(c) },
      'users.list': { accepted: ['users:read'], handler: (c) => this.usersList(c) },
      'users.lookupByEmail': { accepted: ['users:read.email'], handler: (c) => this.usersLookupByEmail(c) },
      'conversations.create': { accepted: chanWrite, perType: true, handler: (c) => this.convCreate(c) },
      'conversations.info': { accepted: chanRead, perType: true, handler: (c) => this.convInfo(c) },
      'conversations.list': { accepted: chanRead, perType: true, handler: (c) => this.convList(c) },
      'conversations.members': { accepted: chanRead, perType: true, handler: (c) => this.convMembers(c) },
      'conversations.join': { accepted: ['channels:join'], handler: (c) => this.convJoin(c) },
      'conversations.invite': { accepted: chanWrite, perType: true, handler: (c) => this.convInvite(c) },
      'conversations.archive': { accepted: chanWrite, perType: true, handler: (c) => this.convArchive(c) },
      'conversations.history': { accepted: chanHistory, perType: true, handler: (c) => this.convHistory(c) },
      'conversations.replies': { accepted: chanHistory, perType: true, handler: (c) => this.convReplies(c) },
      'chat.postMessage': { accepted: ['chat:write'], handler: (c) => this.chatPostMessage(c) },
      'apps.connections.open': { accepted: ['connections:write'], handler: (c) => ({ ok: true, url: this.socketMode.issueUrl(c.tok.appId) }) },
      'chat.getPermalink': { accepted: [], handler: (c) => this.chatGetPermalink(c) },
      'files.upload': { accepted: ['files:write'], handler: () => fail('method_deprecated') },
      'files.getUploadURLExternal': { accepted: ['files:write'], handler: (c) => this.filesGetUploadURLExternal(c) },
      'files.completeUploadExternal': { accepted: ['files:write'], handler: (c) => this.filesCompleteUploadExternal(c) },
      'files.info': { accepted: ['files:read'], handler: (c) => this.filesInfo(c) },
      ...this.verbMethods(chanWrite),
    };
  }

  private authTest({ tok }: Ctx): Body {
    const u = this.usersById.get(tok.userId) as EmulatedUser;
    const out: Body = {
      ok: true,
      ...(this.authTestUrl ? { url: `https://${TEAM_DOMAIN}.slack.com/` } : {}),
      team: this.team.name,
      user: u.name,
      team_id: TEAM_ID,
      user_id: u.id,
      is_enterprise_install: false,
    };
    if (tok.botId) out.bot_id = tok.botId;
    return out;
  }

  private usersInfo({ p }: Ctx): Body {
    const id = str(p, 'user');
    const u = id ? this.usersById.get(id) : undefined;
    if (!u) fail('user_not_found');
    return { ok: true, user: this.renderUser(u) };
  }

  private usersList({ p }: Ctx): Body {
    const limit = limitOf(p, LIMITS.listMaxLimit, LIMITS.listMaxLimit);
    const after = this.decodeCursor(p, 'user:');
    let i = after === undefined ? 0 : this.userOrder.indexOf(after);
    if (i < 0) fail('invalid_cursor');
    const members: Body[] = [];
    for (; i < this.userOrder.length && members.length < limit; i++) {
      members.push(this.renderUser(this.usersById.get(this.userOrder[i]) as EmulatedUser));
    }
    const next = i < this.userOrder.length ? b64(`user:${this.userOrder[i]}`) : '';
    return { ok: true, members, cache_ts: Math.floor(Date.now() / 1000), response_metadata: { next_cursor: next } };
  }

  /** Deactivated users are not found (choice: the product can't invite them anyway). */
  private usersLookupByEmail({ p }: Ctx): Body {
    const email = str(p, 'email')?.trim().toLowerCase();
    if (!email) fail('users_not_found');
    for (const id of this.userOrder) {
      const u = this.usersById.get(id) as EmulatedUser;
      if (!u.deleted && u.profile.email?.toLowerCase() === email) return { ok: true, user: this.renderUser(u) };
    }
    fail('users_not_found');
  }

  private convCreate(ctx: Ctx): Body {
    const { tok, p } = ctx;
    const isPrivate = bool(p, 'is_private');
    this.needScope(tok, isPrivate ? 'groups:write' : 'channels:manage');
    const name = str(p, 'name');
    const err = channelNameError(name);
    if (err) fail(err);
    if (this.nameIndex.has(name as string)) fail('name_taken');
    const st = this.createChannel(name as string, isPrivate, tok.userId, [tok.userId], { archived: false, isGeneral: false });
    return { ok: true, channel: this.renderChannel(st.info, tok, true) };
  }

  private convInfo(ctx: Ctx): Body {
    const st = this.channelFor(ctx);
    this.needScope(ctx.tok, st.info.isPrivate ? 'groups:read' : 'channels:read');
    return { ok: true, channel: this.renderChannel(st.info, ctx.tok, bool(ctx.p, 'include_num_members')) };
  }

  private convList({ tok, p }: Ctx): Body {
    const types = (str(p, 'types') ?? 'public_channel')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const t of types) if (!['public_channel', 'private_channel', 'im', 'mpim'].includes(t)) fail('invalid_types');
    const wantPublic = types.includes('public_channel');
    const wantPrivate = types.includes('private_channel');
    if (wantPublic) this.needScope(tok, 'channels:read');
    if (wantPrivate) this.needScope(tok, 'groups:read');
    const excludeArchived = bool(p, 'exclude_archived');
    const limit = limitOf(p, LIMITS.listDefaultLimit, LIMITS.listMaxLimit);
    const from = this.decodeCursor(p, 'channel:');
    let i = from === undefined ? 0 : bisect(this.channelOrder, from);
    const channels: Body[] = [];
    let next = '';
    for (; i < this.channelOrder.length; i++) {
      const ch = (this.chans.get(this.channelOrder[i]) as ChannelState).info;
      if (excludeArchived && ch.isArchived) continue;
      if (ch.isPrivate ? !(wantPrivate && ch.members.has(tok.userId)) : !wantPublic) continue;
      if (channels.length === limit) {
        next = b64(`channel:${ch.id}`);
        break;
      }
      channels.push(this.renderChannel(ch, tok, true));
    }
    return { ok: true, channels, response_metadata: { next_cursor: next } };
  }

  private convMembers(ctx: Ctx): Body {
    const st = this.channelFor(ctx);
    this.needScope(ctx.tok, st.info.isPrivate ? 'groups:read' : 'channels:read');
    const all = [...st.info.members];
    const limit = limitOf(ctx.p, LIMITS.membersDefaultLimit, LIMITS.membersMaxLimit);
    const after = this.decodeCursor(ctx.p, 'user:');
    const start = after === undefined ? 0 : all.indexOf(after);
    if (start < 0) fail('invalid_cursor');
    const members = all.slice(start, start + limit);
    const next = start + limit < all.length ? b64(`user:${all[start + limit]}`) : '';
    return { ok: true, members, response_metadata: { next_cursor: next } };
  }

  private convJoin(ctx: Ctx): Body {
    const id = str(ctx.p, 'channel');
    const st = id ? this.chans.get(id) : undefined;
    if (!st) fail('channel_not_found');
    if (st.info.isPrivate) fail('method_not_supported_for_channel_type');
    if (st.info.isArchived) fail('is_archived');
    if (st.info.members.has(ctx.tok.userId)) {
      return {
        ok: true,
        channel: this.renderChannel(st.info, ctx.tok, false),
        warning: 'already_in_channel',
        response_metadata: { warnings: ['already_in_channel'] },
      };
    }
    st.info.members.add(ctx.tok.userId);
    return { ok: true, channel: this.renderChannel(st.info, ctx.tok, false) };
  }

  /**
   * Without `force`: any invalid user (not found, self, deactivated) fails the whole call with that error; users already
   * in the channel are skipped and only when *all* are already members the call fails with `already_in_channel`.
   * With `force=true`: valid users are added; per-user failures are listed in `errors` (`ok:true` if anyone was added,
   * otherwise `ok:false` with the first error).
   */
  private convInvite(ctx: Ctx): Body {
    const { tok, p } = ctx;
    const st = this.channelFor(ctx, 'channel', 'not_in_channel');
    this.needScope(tok, st.info.isPrivate ? 'groups:write' : 'channels:manage');
    if (st.info.isArchived) fail('is_archived');
    if (!this.isMember(st.info, tok)) fail('not_in_channel');
    const ids = (str(p, 'users') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (ids.length === 0) fail('no_user');
    if (ids.length > LIMITS.inviteMaxUsers) fail('too_many_users');
    const force = bool(p, 'force');
    const errors: { user: string; ok: false; error: string }[] = [];
    const toAdd: string[] = [];
    for (const id of ids) {
      const u = this.usersById.get(id);
      let e: string | undefined;
      if (id === tok.userId) e = 'cant_invite_self';
      else if (!u) e = 'user_not_found';
      else if (u.deleted) e = 'cant_invite';
      else if (st.info.members.has(id)) e = 'already_in_channel';
      if (e) errors.push({ user: id, ok: false, error: e });
      else if (!toAdd.includes(id)) toAdd.push(id);
    }
    if (!force) {
      const fatal = errors.find((x) => x.error !== 'already_in_channel');
      if (fatal) fail(fatal.error);
      if (toAdd.length === 0) fail('already_in_channel');
    } else if (toAdd.length === 0) {
      fail(errors[0].error, { errors });
    }
    for (const id of toAdd) st.info.members.add(id);
    const out: Body = { ok: true, channel: this.renderChannel(st.info, tok, false) };
    if (force && errors.length > 0) out.errors = errors;
    return out;
  }

  private convArchive(ctx: Ctx): Body {
    const st = this.channelFor(ctx, 'channel', 'not_in_channel');
    this.needScope(ctx.tok, st.info.isPrivate ? 'groups:write' : 'channels:manage');
    if (st.info.isGeneral) fail('cant_archive_general');
    if (st.info.isArchived) fail('already_archived');
    if (!this.isMember(st.info, ctx.tok)) fail('not_in_channel');
    st.info.isArchived = true;
    return { ok: true };
  }

  private historyAccess(ctx: Ctx): ChannelState {
    const st = this.channelFor(ctx, 'channel', 'not_in_channel');
    this.needScope(ctx.tok, st.info.isIm ? 'im:history' : st.info.isPrivate ? 'groups:history' : 'channels:history');
    if (ctx.tok.type === 'bot' && !this.isMember(st.info, ctx.tok)) fail('not_in_channel');
    return st;
  }

  private convHistory(ctx: Ctx): Body {
    const { tok, p } = ctx;
    const st = this.historyAccess(ctx);
    const limit = limitOf(p, LIMITS.historyDefaultLimit, LIMITS.historyMaxLimit);
    const withMeta = bool(p, 'include_all_metadata');
    const [lo, hi0] = this.timeRange(p, st.topTs);
    let hi = hi0;
    const cur = this.decodeTsCursor(p);
    if (cur !== undefined) hi = Math.max(lo, Math.min(hi, bisect(st.topTs, cur, true)));
    const start = Math.max(lo, hi - limit);
    const messages: Body[] = new Array<Body>(hi - start);
    for (let i = hi - 1, j = 0; i >= start; i--, j++) messages[j] = this.renderMessage(st.top[i], tok, withMeta);
    const hasMore = start > lo;
    const out: Body = {
      ok: true,
      messages,
      has_more: hasMore,
      pin_count: 0,
      channel_actions_ts: null,
      channel_actions_count: 0,
      response_metadata: { next_cursor: hasMore ? this.tsCursor(st.topTs[start - 1]) : '' },
    };
    const latest = str(p, 'latest');
    if (latest) out.latest = latest;
    const oldest = str(p, 'oldest');
    if (oldest) out.oldest = oldest;
    return out;
  }

  /**
   * The parent is the first message of every page; `limit` counts replies. `ts` may be a reply's ts (the whole
   * thread is returned) or a message without replies (just that message).
   */
  private convReplies(ctx: Ctx): Body {
    const { tok, p } = ctx;
    const st = this.historyAccess(ctx);
    const ts = str(p, 'ts');
    if (!ts) fail('thread_not_found');
    let parent = this.findTop(st, ts);
    if (!parent) {
      const pts = st.replyParent.get(ts);
      parent = pts ? this.findTop(st, pts) : undefined;
    }
    if (!parent) fail('thread_not_found');
    const withMeta = bool(p, 'include_all_metadata');
    const th = st.threads.get(parent.ts);
    const rts = th?.ts ?? [];
    const limit = limitOf(p, LIMITS.repliesDefaultLimit, LIMITS.repliesMaxLimit);
    let [lo, hi] = this.timeRange(p, rts);
    const cur = this.decodeTsCursor(p);
    if (cur !== undefined) lo = Math.min(hi, Math.max(lo, bisect(rts, cur)));
    const end = Math.min(hi, lo + limit);
    const messages: Body[] = [this.renderMessage(parent, tok, withMeta)];
    for (let i = lo; i < end; i++) messages.push(this.renderMessage((th as Thread).replies[i], tok, withMeta));
    const hasMore = end < hi;
    return {
      ok: true,
      messages,
      has_more: hasMore,
      response_metadata: { next_cursor: hasMore ? this.tsCursor(rts[end]) : '' },
    };
  }

  private chatPostMessage(ctx: Ctx): Body {
    const { tok, p } = ctx;
    const ref = str(p, 'channel');
    let st: ChannelState | undefined;
    if (ref) {
      st = this.chans.get(ref);
      if (!st) {
        const id = this.nameIndex.get(ref.startsWith('#') ? ref.slice(1) : ref);
        st = id ? this.chans.get(id) : undefined;
      }
    }
    if (!st) fail('channel_not_found');
    const ch = st.info;
    const member = this.isMember(ch, tok);
    if (ch.isPrivate && !member) fail('not_in_channel');
    if (ch.isArchived) fail('is_archived');
    if (!member && !(tok.type === 'bot' && tok.scopes.includes('chat:write.public'))) fail('not_in_channel');

    const msg = this.buildMessage(tok, p);
    this.checkChannelPostLimit(ch.id);

    const threadTs = str(p, 'thread_ts');
    let parent: EmulatedMessage | undefined;
    if (threadTs) {
      parent = this.findTop(st, threadTs);
      if (!parent) {
        const pts = st.replyParent.get(threadTs);
        parent = pts ? this.findTop(st, pts) : undefined;
      }
      if (!parent) fail('invalid_thread_ts');
    }
    const micros = this.nextTsMicros();
    msg.ts = formatTs(micros);
    if (parent) {
      this.attachReply(st, parent, msg);
      if (bool(p, 'reply_broadcast')) {
        msg.subtype = 'thread_broadcast';
        this.appendTop(st, msg, micros);
      }
    } else {
      this.appendTop(st, msg, micros);
    }
    this.messageEvents(st, msg);
    return { ok: true, channel: ch.id, ts: msg.ts, message: this.renderMessage(msg, tok, true) };
  }

  /** Validate and build a message body from chat.postMessage params (ts is filled in by the caller). */
  private buildMessage(tok: TokenRecord, p: Params): EmulatedMessage {
    const text = str(p, 'text') ?? str(p, 'markdown_text') ?? '';
    const blocksP = jsonParam(p, 'blocks');
    const attP = jsonParam(p, 'attachments');
    const metaP = jsonParam(p, 'metadata');
    if (blocksP.present && !blocksP.ok) fail('invalid_blocks_format');
    if (attP.present && !attP.ok) fail('invalid_attachments');
    const blocks = blocksP.value;
    const attachments = attP.value;
    if (blocks !== undefined && !Array.isArray(blocks)) fail('invalid_blocks_format');
    if (attachments !== undefined && !Array.isArray(attachments)) fail('invalid_attachments');
    const hasBlocks = Array.isArray(blocks) && blocks.length > 0;
    const hasAtt = Array.isArray(attachments) && attachments.length > 0;
    if (text.trim() === '' && !hasBlocks && !hasAtt) fail('no_text');
    if ([...text].length > LIMITS.textMaxChars) fail('msg_too_long');
    if (blocks !== undefined) {
      const problem = blocksProblem(blocks);
      if (problem) fail('invalid_blocks', { response_metadata: { messages: [`[ERROR] ${problem}`] } });
    }
    if (Array.isArray(attachments) && attachments.length > LIMITS.maxAttachments) fail('too_many_attachments');
    let metadata: MessageMetadata | undefined;
    if (metaP.present) {
      const m = metaP.value;
      if (!metaP.ok || !isObj(m) || typeof m.event_type !== 'string' || m.event_type === '' || !isObj(m.event_payload)) {
        fail('invalid_metadata_format');
      }
      metadata = { event_type: m.event_type as string, event_payload: m.event_payload as Record<string, unknown> };
    }

    const u = this.usersById.get(tok.userId) as EmulatedUser;
    const msg: EmulatedMessage = { type: 'message', ts: '', user: tok.userId, team: TEAM_ID, text };
    if (tok.type === 'bot') {
      msg.bot_id = tok.botId;
      msg.app_id = tok.appId;
      msg.bot_profile = {
        id: tok.botId,
        app_id: tok.appId,
        name: u.real_name,
        deleted: false,
        team_id: TEAM_ID,
        updated: u.updated,
        icons: { image_48: u.profile.image_48 },
      };
    }
    if (hasBlocks) msg.blocks = blocks as unknown[];
    if (hasAtt) {
      msg.attachments = (attachments as unknown[]).map((a, i) => {
        const o: Record<string, unknown> = isObj(a) ? { ...a } : {};
        o.id = i + 1;
        if (typeof o.fallback !== 'string' || o.fallback === '') o.fallback = '[no preview available]';
        return o;
      });
    }
    if (p.mrkdwn !== undefined && !bool(p, 'mrkdwn', true)) msg.mrkdwn = false;
    if (metadata) msg.metadata = metadata;
    if (tok.scopes.includes('chat:write.customize')) {
      const username = str(p, 'username');
      const emoji = str(p, 'icon_emoji');
      const iconUrl = str(p, 'icon_url');
      if (username) msg.username = username;
      if (emoji) msg.icons = { emoji };
      else if (iconUrl) msg.icons = { image_48: iconUrl };
      if (username || emoji || iconUrl) msg.subtype = 'bot_message';
    }
    return msg;
  }

  private chatGetPermalink(ctx: Ctx): Body {
    const st = this.channelFor(ctx);
    const ts = str(ctx.p, 'message_ts');
    const m = ts ? this.findMessage(st, ts) : undefined;
    if (!m) fail('message_not_found');
    return { ok: true, channel: st.info.id, permalink: this.permalinkOf(st, m) };
  }

  private filesGetUploadURLExternal({ tok, p }: Ctx): Body {
    const filename = str(p, 'filename');
    const lengthRaw = p.length;
    if (!filename || lengthRaw === undefined || lengthRaw === '') fail('invalid_arguments');
    const length = int(p, 'length');
    if (length === undefined || length < 0) fail('invalid_arguments');
    if (length === 0) fail('missing_argument');
    const alt = str(p, 'alt_txt') ?? str(p, 'alt_text');
    if (alt && [...alt].length > 1000) fail('alt_txt_too_large');
    const t = fileTypeOf(filename);
    const f: EmulatedFile = {
      id: this.newId('F'),
      name: filename,
      title: filename,
      size: length,
      declaredLength: length,
      mimetype: t.mimetype,
      filetype: t.filetype,
      prettyType: t.prettyType,
      user: tok.userId,
      created: Math.floor(Date.now() / 1000),
      uploaded: false,
      completed: false,
      bytes: undefined,
      altText: alt,
      snippetType: str(p, 'snippet_type'),
      shares: [],
    };
    this.filesById.set(f.id, f);
    return { ok: true, upload_url: `${this.baseUrl}/upload/${f.id}?k=${randomBytes(6).toString('hex')}`, file_id: f.id };
  }

  /**
   * Completes uploads; with a channel it posts one message carrying all files (text = initial_comment; blocks are
   * used only without initial_comment, as documented), as a reply when thread_ts is given. Shares become visible in
   * files.info after `shareDelayMs`. Files never uploaded or unknown → `file_not_found`.
   */
  private filesCompleteUploadExternal(ctx: Ctx): Body {
    const { tok, p } = ctx;
    const filesP = jsonParam(p, 'files');
    if (!filesP.present || !filesP.ok || !Array.isArray(filesP.value) || filesP.value.length === 0) {
      fail('invalid_arguments');
    }
    const entries = filesP.value as unknown[];
    const files: EmulatedFile[] = [];
    for (const e of entries) {
      if (!isObj(e) || typeof e.id !== 'string') fail('invalid_arguments');
      const f = this.filesById.get(e.id);
      if (!f || !f.uploaded || f.user !== tok.userId) fail('file_not_found');
      if (f.completed) fail('file_not_found');
      files.push(f);
    }
    const chanIds = [
      ...new Set(
        [str(p, 'channel_id'), ...(str(p, 'channels') ?? '').split(',')]
          .map((s) => (s ?? '').trim())
          .filter(Boolean),
      ),
    ];
    const threadTs = str(p, 'thread_ts');
    if (threadTs && chanIds.length > 1) fail('invalid_arguments');
    const targets: ChannelState[] = [];
    for (const id of chanIds) {
      const st = this.chans.get(id);
      if (!st) fail('channel_not_found');
      if (!this.isMember(st.info, tok)) fail(st.info.isPrivate ? 'channel_not_found' : 'not_in_channel');
      if (st.info.isArchived) fail('is_archived');
      targets.push(st);
    }
    const parents: (EmulatedMessage | undefined)[] = targets.map((st) => {
      if (!threadTs) return undefined;
      const parent = this.findTop(st, threadTs) ?? this.findTop(st, st.replyParent.get(threadTs) ?? '');
      if (!parent) fail('invalid_thread_ts');
      return parent;
    });
    const initialComment = str(p, 'initial_comment') ?? '';
    const blocksP = jsonParam(p, 'blocks');
    if (!initialComment && blocksP.present) {
      if (!blocksP.ok || !Array.isArray(blocksP.value)) fail('invalid_blocks_format');
      const problem = blocksProblem(blocksP.value);
      if (problem) fail('invalid_blocks', { response_metadata: { messages: [`[ERROR] ${problem}`] } });
    }

    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Record<string, unknown>;
      if (typeof e.title === 'string' && e.title !== '') files[i].title = e.title;
      files[i].completed = true;
    }
    const visibleAt = Date.now() + this.shareDelayMs;
    targets.forEach((st, idx) => {
      const micros = this.nextTsMicros();
      const msg: EmulatedMessage = {
        type: 'message',
        ts: formatTs(micros),
        user: tok.userId,
        team: TEAM_ID,
        text: initialComment,
        files: files.map((f) => this.renderFile(f, false)),
        upload: true,
        display_as_bot: false,
      };
      if (!initialComment && blocksP.present) msg.blocks = blocksP.value as unknown[];
      const parent = parents[idx];
      if (parent) this.attachReply(st, parent, msg);
      else this.appendTop(st, msg, micros);
      for (const f of files) {
        f.shares.push({ channelId: st.info.id, ts: msg.ts, threadTs: parent?.ts, visibleAt, shareUserId: tok.userId });
      }
    });
    return { ok: true, files: files.map((f) => this.renderFile(f, true)) };
  }

  private filesInfo({ p }: Ctx): Body {
    const id = str(p, 'file');
    const f = id ? this.filesById.get(id) : undefined;
    if (!f || !f.completed) fail('file_not_found');
    return { ok: true, file: this.renderFile(f, true), comments: [], response_metadata: { next_cursor: '' } };
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Responder verbs: edits, topic/purpose, rename, kick, direct messages, pins, reactions, bookmarks
  // -------------------------------------------------------------------------------------------------------------------

  /** Timestamps pinned in a channel, in pin order. */
  pins(channelId: string): string[] {
    return [...(this.pinned.get(channelId) ?? [])];
  }

  bookmarks(channelId: string): EmulatedBookmark[] {
    return (this.bookmarkLists.get(channelId) ?? []).map((b) => ({ ...b }));
  }

  /** The id of the direct message between the bot and `userId`, once conversations.open made it. */
  imWith(userId: string, callerId = this.botUserId): string | undefined {
    return this.ims.get(`${callerId}:${userId}`);
  }

  /** A workspace custom emoji that reactions.add then accepts. */
  addEmoji(name: string): void {
    this.customEmoji.add(name);
  }

  private verbMethods(chanWrite: string[]): Record<string, MethodSpec> {
    return {
      'chat.update': { accepted: ['chat:write'], handler: (c) => this.chatUpdate(c) },
      'chat.postEphemeral': { accepted: ['chat:write'], handler: (c) => this.chatPostEphemeral(c) },
      // Modals need no scope beyond the app's interactivity.
      'views.open': { accepted: [], handler: (c) => this.viewsCall(() => this.views.open(c.p)) },
      'views.update': { accepted: [], handler: (c) => this.viewsCall(() => this.views.update(c.p)) },
      'conversations.setTopic': { accepted: chanWrite, perType: true, handler: (c) => this.convSetText(c, 'topic') },
      'conversations.setPurpose': { accepted: chanWrite, perType: true, handler: (c) => this.convSetText(c, 'purpose') },
      'conversations.rename': { accepted: chanWrite, perType: true, handler: (c) => this.convRename(c) },
      'conversations.kick': { accepted: chanWrite, perType: true, handler: (c) => this.convKick(c) },
      'conversations.open': { accepted: ['im:write', 'mpim:write'], handler: (c) => this.convOpen(c) },
      'pins.add': { accepted: ['pins:write'], handler: (c) => this.pinsAdd(c) },
      'reactions.add': { accepted: ['reactions:write'], handler: (c) => this.reactionsAdd(c) },
      'bookmarks.add': { accepted: ['bookmarks:write'], handler: (c) => this.bookmarksAdd(c) },
      'bookmarks.list': { accepted: ['bookmarks:read'], handler: (c) => this.bookmarksList(c) },
    };
  }

  /** A channel the caller can act in: visible, a member, not archived (Slack's order of checks). */
  private actingChannel(ctx: Ctx, key = 'channel', scope = true): ChannelState {
    const st = this.channelFor(ctx, key);
    if (scope) this.needScope(ctx.tok, st.info.isPrivate ? 'groups:write' : 'channels:manage');
    if (st.info.isArchived) fail('is_archived');
    if (!this.isMember(st.info, ctx.tok)) fail('not_in_channel');
    return st;
  }

  /** The message at `timestamp` (or `ts`) in the channel, or message_not_found. */
  private messageAt(st: ChannelState, p: Params, key: string): EmulatedMessage {
    const ts = str(p, key);
    const m = ts ? this.findMessage(st, ts) : undefined;
    if (!m) fail('message_not_found');
    return m;
  }

  /** Only the author may edit (cant_update_message); the text and blocks are checked as chat.postMessage checks them. */
  private chatUpdate(ctx: Ctx): Body {
    const st = this.channelFor(ctx);
    const m = this.messageAt(st, ctx.p, 'ts');
    if (st.info.isArchived) fail('is_archived');
    if (m.user !== ctx.tok.userId) fail('cant_update_message');
    const next = this.buildMessage(ctx.tok, ctx.p);
    m.text = next.text;
    if (next.blocks) m.blocks = next.blocks;
    else delete m.blocks;
    if (next.mrkdwn === false) m.mrkdwn = false;
    else delete m.mrkdwn;
    m.edited = { user: ctx.tok.userId, ts: formatTs(this.nextTsMicros()) };
    return { ok: true, channel: st.info.id, ts: m.ts, text: m.text, message: this.renderMessage(m, ctx.tok, false) };
  }

  /**
   * Shown to one member only and never stored in the channel (Slack's docs): the user must be
   * in the channel (user_not_in_channel), the bot too unless the channel is public and it
   * has chat:write.public; text and blocks are checked as chat.postMessage checks them.
   */
  private chatPostEphemeral(ctx: Ctx): Body {
    const st = this.channelFor(ctx);
    const ch = st.info;
    if (ch.isArchived) fail('is_archived');
    const member = this.isMember(ch, ctx.tok);
    if (!member && (ch.isPrivate || !ctx.tok.scopes.includes('chat:write.public'))) fail('not_in_channel');
    const userId = str(ctx.p, 'user');
    if (!userId || !this.usersById.has(userId)) fail('user_not_found');
    if (!ch.members.has(userId)) fail('user_not_in_channel');
    const msg = this.buildMessage(ctx.tok, ctx.p);
    const messageTs = formatTs(this.nextTsMicros());
    const threadTs = str(ctx.p, 'thread_ts');
    this.interactive.recordEphemeral({
      user: userId,
      channel: ch.id,
      text: msg.text,
      ...(msg.blocks ? { blocks: msg.blocks } : {}),
      messageTs,
      ...(threadTs ? { threadTs } : {}),
      via: 'chat.postEphemeral',
    });
    return { ok: true, message_ts: messageTs };
  }

  /** Slack allows 250 characters in a topic or a purpose (too_long). */
  private convSetText(ctx: Ctx, which: 'topic' | 'purpose'): Body {
    const st = this.actingChannel(ctx);
    const value = str(ctx.p, which) ?? '';
    if ([...value].length > 250) fail('too_long');
    st.info[which] = { value, creator: ctx.tok.userId, last_set: Math.floor(Date.now() / 1000) };
    return { ok: true, channel: this.renderChannel(st.info, ctx.tok, false) };
  }

  private convRename(ctx: Ctx): Body {
    const st = this.actingChannel(ctx);
    const name = str(ctx.p, 'name');
    const err = channelNameError(name);
    if (err) fail(err);
    const holder = this.nameIndex.get(name as string);
    if (holder !== undefined && holder !== st.info.id) fail('name_taken');
    this.nameIndex.delete(st.info.name);
    st.info.name = name as string;
    this.nameIndex.set(st.info.name, st.info.id);
    return { ok: true, channel: this.renderChannel(st.info, ctx.tok, false) };
  }

  /** not_in_channel when the caller or the user is not in it (Slack's docs give one code for both). */
  private convKick(ctx: Ctx): Body {
    const st = this.channelFor(ctx);
    this.needScope(ctx.tok, st.info.isPrivate ? 'groups:write' : 'channels:manage');
    const userId = str(ctx.p, 'user');
    if (!userId || !this.usersById.has(userId)) fail('user_not_found');
    if (userId === ctx.tok.userId) fail('cant_kick_self');
    if (st.info.isGeneral) fail('cant_kick_from_general');
    if (st.info.isArchived) fail('is_archived');
    if (!this.isMember(st.info, ctx.tok) || !st.info.members.has(userId)) fail('not_in_channel');
    st.info.members.delete(userId);
    return { ok: true, errors: {} };
  }

  /** One user only (a group DM is not emulated). Opening an open IM answers the same id with already_open. */
  private convOpen(ctx: Ctx): Body {
    const ids = (str(ctx.p, 'users') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    if (ids.length === 0) fail('users_list_not_supplied');
    if (ids.length > 1) fail('not_supported');
    const u = this.usersById.get(ids[0] as string);
    if (!u) fail('user_not_found');
    if (u.deleted) fail('user_disabled');
    if (u.is_bot) fail('cannot_dm_bot');
    const key = `${ctx.tok.userId}:${u.id}`;
    const open = this.ims.get(key);
    if (open) return { ok: true, no_op: true, already_open: true, channel: { id: open } };
    const id = this.newId('D');
    const now = Math.floor(Date.now() / 1000);
    const info: EmulatedChannel = {
      id,
      name: '',
      isPrivate: true,
      isArchived: false,
      isGeneral: false,
      created: now,
      creator: ctx.tok.userId,
      members: new Set([ctx.tok.userId, u.id]),
      topic: { value: '', creator: '', last_set: 0 },
      purpose: { value: '', creator: '', last_set: 0 },
      isIm: true,
    };
    this.chans.set(id, { info, top: [], topTs: [], threads: new Map(), replyParent: new Map(), replyIndex: new Map() });
    this.ims.set(key, id);
    return { ok: true, channel: { id } };
  }

  private pinsAdd(ctx: Ctx): Body {
    const st = this.actingChannel(ctx, 'channel', false);
    const m = this.messageAt(st, ctx.p, 'timestamp');
    const list = this.pinned.get(st.info.id) ?? [];
    if (list.includes(m.ts)) fail('already_pinned');
    if (list.length >= 100) fail('too_many_pins');
    list.push(m.ts);
    this.pinned.set(st.info.id, list);
    m.pinned_to = [st.info.id];
    return { ok: true };
  }

  private reactionsAdd(ctx: Ctx): Body {
    const st = this.channelFor(ctx);
    if (st.info.isArchived) fail('is_archived');
    const m = this.messageAt(st, ctx.p, 'timestamp');
    const name = str(ctx.p, 'name') ?? '';
    const base = name.replace(/::skin-tone-[2-6]$/, '');
    if (!STANDARD_EMOJI.includes(base) && !this.customEmoji.has(base)) fail('invalid_name');
    const reactions = m.reactions ?? [];
    let r = reactions.find((x) => x.name === name);
    if (r?.users.includes(ctx.tok.userId)) fail('already_reacted');
    if (!r) {
      if (reactions.length >= 50) fail('too_many_reactions');
      r = { name, users: [], count: 0 };
      reactions.push(r);
    }
    r.users.push(ctx.tok.userId);
    r.count = r.users.length;
    m.reactions = reactions;
    return { ok: true };
  }

  private bookmarksAdd(ctx: Ctx): Body {
    const st = this.actingChannel(ctx, 'channel_id', false);
    const title = str(ctx.p, 'title');
    if (!title) fail('invalid_title');
    if (str(ctx.p, 'type') !== 'link') fail('invalid_bookmark_type');
    const link = str(ctx.p, 'link') ?? '';
    if (!/^https?:\/\/[^\s]+$/.test(link)) fail('invalid_link');
    const now = Math.floor(Date.now() / 1000);
    const list = this.bookmarkLists.get(st.info.id) ?? [];
    const b: EmulatedBookmark = {
      id: this.newId('Bk'),
      channel_id: st.info.id,
      title,
      link,
      emoji: str(ctx.p, 'emoji') ?? '',
      icon_url: null,
      type: 'link',
      date_created: now,
      date_updated: now,
      rank: String.fromCharCode(97 + Math.min(list.length, 25)),
      last_updated_by_user_id: ctx.tok.userId,
      last_updated_by_team_id: TEAM_ID,
      shortcut_id: null,
      entity_id: null,
      app_id: null,
    };
    list.push(b);
    this.bookmarkLists.set(st.info.id, list);
    return { ok: true, bookmark: { ...b } };
  }

  private bookmarksList(ctx: Ctx): Body {
    const st = this.channelFor(ctx, 'channel_id');
    return { ok: true, bookmarks: this.bookmarks(st.info.id) };
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Response helpers
// ---------------------------------------------------------------------------------------------------------------------

/** Reads the request body until `limit` bytes arrived (or it ended), then destroys the socket. */
function cutOff(req: http.IncomingMessage, limit: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const done = () => {
      req.socket.destroy();
      resolve();
    };
    req.on('data', (c: Buffer) => {
      seen += c.length;
      if (seen >= limit) done();
    });
    req.on('end', done);
    req.on('error', () => resolve());
  });
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function stripToken(p: Params): Params {
  const out: Params = { ...p };
  delete out.token;
  return out;
}

function jsonReply(body: Body, headers: Record<string, string> = {}): Reply {
  return { status: 200, body: JSON.stringify(body), headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers } };
}

function rateLimitedReply(retryAfter: number): Reply {
  return {
    status: 429,
    body: JSON.stringify({ ok: false, error: 'ratelimited' }),
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Retry-After': String(Math.max(0, Math.round(retryAfter))) },
  };
}

function httpError(status: number): Reply {
  return {
    status,
    body: HTTP_STATUS_TEXT[status] ?? `HTTP ${status}`,
    headers: { 'Content-Type': 'text/plain; charset=utf-8' },
  };
}

function send(res: http.ServerResponse, r: Reply): void {
  if (res.destroyed) return;
  res.writeHead(r.status, { ...r.headers, 'Content-Length': String(Buffer.byteLength(r.body)) });
  res.end(r.body);
}
