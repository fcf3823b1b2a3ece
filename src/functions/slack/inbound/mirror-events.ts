/**
 * Which `message` events mirroring turns into notes, and what each note is about. Pure:
 * no Slack or store calls, so every rule is testable on the payloads Slack documents.
 *
 * Mirrored:
 * - a person's message or thread reply (no subtype, or `thread_broadcast`, `file_share`,
 *   `me_message`): key `<channel>:<ts>`;
 * - an edit of a person's message (`message_changed` whose text changed and that carries
 *   `edited`): key `<channel>:<ts>:edit:<edited.ts>`;
 * - a deleted person's message (`message_deleted`): key `<channel>:<deleted ts>:deleted`.
 * Not mirrored: anything from a bot (a `bot_id`, subtype `bot_message`: the worker's own
 * posts and other apps'), and system subtypes (joins, leaves, topic, purpose and name
 * changes, pins, …): they say nothing a responder wrote. A `message_changed` without a
 * text change (an unfurl, a reply count) is not an edit.
 */

/** Subtypes of messages a person writes; every other subtype is a system or bot message. */
const PERSON_SUBTYPES: ReadonlySet<string> = new Set(['thread_broadcast', 'file_share', 'me_message']);

/** A file shared with a message, as the event names it. */
export interface SharedFile {
  id: string;
  name: string;
  permalink: string | undefined;
}

interface ItemBase {
  channelId: string;
  /** The message's own ts (for an edit or a delete: the message edited or deleted). */
  ts: string;
  /** The thread's parent ts, for a reply. */
  threadTs: string | undefined;
  /** The author of the message; undefined when a delete does not say. */
  userId: string | undefined;
  /** When it happened in the channel (the message, the edit, the delete). */
  created: Date;
  key: string;
}

export type MirrorItem =
  | (ItemBase & { kind: 'message'; text: string; files: SharedFile[] })
  | (ItemBase & { kind: 'edit'; text: string })
  | (ItemBase & { kind: 'delete' });

export type Classified = MirrorItem | { kind: 'skip'; reason: string };

type Obj = Record<string, unknown>;

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function obj(v: unknown): Obj | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}

/** A Slack ts (`1700000000.000100`) as a Date; undefined when it is not one. */
export function tsDate(ts: string | undefined): Date | undefined {
  if (!ts || !/^\d+(\.\d+)?$/.test(ts)) return undefined;
  const date = new Date(Math.floor(Number(ts) * 1000));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** Why a message (the event itself, or the message inside an edit) is not a person's. */
function notAPerson(m: Obj, botUserId: string | undefined): string | undefined {
  if (m.bot_id !== undefined || m.subtype === 'bot_message') return 'a bot message';
  if (!str(m.user)) return 'a message without a user';
  if (botUserId && m.user === botUserId) return "the worker's own message";
  const subtype = str(m.subtype);
  if (subtype && !PERSON_SUBTYPES.has(subtype)) return `a ${subtype} message`;
  return undefined;
}

/** The thread parent of a reply; undefined for a top-level message (or a thread's parent itself). */
function threadOf(m: Obj): string | undefined {
  const thread = str(m.thread_ts);
  return thread && thread !== str(m.ts) ? thread : undefined;
}

function filesOf(m: Obj): SharedFile[] {
  if (!Array.isArray(m.files)) return [];
  const out: SharedFile[] = [];
  for (const raw of m.files) {
    const f = obj(raw);
    // Tombstoned and over-the-limit files have no name or content to point at.
    if (!f || !str(f.id) || f.mode === 'tombstone' || f.mode === 'hidden_by_limit') continue;
    out.push({ id: f.id as string, name: str(f.name) ?? str(f.title) ?? (f.id as string), permalink: str(f.permalink) });
  }
  return out;
}

/** Classifies one `message` event (see the module comment). `botUserId`: the worker's own user. */
export function classifyMessageEvent(event: Obj, botUserId: string | undefined): Classified {
  const channelId = str(event.channel);
  if (!channelId) return { kind: 'skip', reason: 'no channel' };
  const subtype = str(event.subtype);

  if (subtype === 'message_changed') {
    const message = obj(event.message);
    const previous = obj(event.previous_message);
    if (!message) return { kind: 'skip', reason: 'an edit without the message' };
    const why = notAPerson(message, botUserId);
    if (why) return { kind: 'skip', reason: `an edit of ${why}` };
    const editTs = str(obj(message.edited)?.ts);
    const ts = str(message.ts);
    if (!editTs || !ts) return { kind: 'skip', reason: 'a change that is not an edit (no edited ts)' };
    if (previous && previous.text === message.text) return { kind: 'skip', reason: 'a change that left the text as it was' };
    return {
      kind: 'edit',
      channelId,
      ts,
      threadTs: threadOf(message),
      userId: str(message.user),
      created: tsDate(editTs) ?? new Date(),
      key: `${channelId}:${ts}:edit:${editTs}`,
      text: typeof message.text === 'string' ? message.text : '',
    };
  }

  if (subtype === 'message_deleted') {
    const ts = str(event.deleted_ts);
    if (!ts) return { kind: 'skip', reason: 'a delete without deleted_ts' };
    const previous = obj(event.previous_message);
    const why = previous ? notAPerson(previous, botUserId) : undefined;
    if (why) return { kind: 'skip', reason: `the delete of ${why}` };
    return {
      kind: 'delete',
      channelId,
      ts,
      threadTs: previous ? threadOf(previous) : undefined,
      userId: previous ? str(previous.user) : undefined,
      created: tsDate(str(event.event_ts) ?? str(event.ts)) ?? new Date(),
      key: `${channelId}:${ts}:deleted`,
    };
  }

  const why = notAPerson(event, botUserId);
  if (why) return { kind: 'skip', reason: why };
  const ts = str(event.ts);
  const created = tsDate(ts);
  if (!ts || !created) return { kind: 'skip', reason: 'a message without a ts' };
  return {
    kind: 'message',
    channelId,
    ts,
    threadTs: threadOf(event),
    userId: event.user as string,
    created,
    key: `${channelId}:${ts}`,
    text: typeof event.text === 'string' ? event.text : '',
    files: filesOf(event),
  };
}
