/**
 * Mirroring: each person's message, thread reply, edit and delete in a channel associated
 * with an incident (or task) becomes one note on it (DESIGN.md "Mirroring"). The handler
 * set for the inbound router.
 *
 * - What is mirrored and the note keys: mirror-events.ts. The key makes a redelivered
 *   event, or a copy of it under another envelope, add nothing (Platform.addNote).
 * - A note: the readable text (readable-text.ts), the author's name and email
 *   (users.info, remembered), the message's permalink (built locally), its channel and ts.
 * - Nothing is ever posted to Slack from here: notes only go to the platform.
 * - A channel associated with several incidents or tasks gives each its note; archived
 *   associations get none. `[fn_slack] mirror = off` turns it all off.
 * - Files shared with a message are named with their Slack links in the note, not
 *   copied (see the README: Mirroring).
 */
import { errorCode, WorkerError } from '../../../core/runtime/errors.js';
import type { NewNote, NoteAuthor } from '../../../platforms/platform.js';
import { cachedChannelById } from '../channels/index.js';
import { messagePermalink } from '../permalink.js';
import type { CallOptions } from '../slack-client.js';
import { slackIdentity, type SlackState } from '../state.js';
import { classifyMessageEvent, tsDate, type MirrorItem } from './mirror-events.js';
import { readableText, type NameResolver } from './readable-text.js';
import type { InboundContext, InboundHandlers } from './router.js';

/**
 * How old a users.info answer may be to name a note's author or a mention: an hour (a
 * renamed person shows under the old name that long; users.info is a shared Tier 4 budget).
 */
const AUTHOR_MAX_AGE_MS = 60 * 60_000;

/** Names for mentions: people from users.info, channels from the channel cache. */
function nameResolver(state: SlackState, callOpts: CallOptions): NameResolver {
  return {
    user: async (id) => (await state.people.get(id, AUTHOR_MAX_AGE_MS, callOpts)).name,
    channel: async (id) => {
      try {
        return (await cachedChannelById({ client: state.client, cache: state.channels, callOpts, conversations: state.conversations }, id)).info.name;
      } catch (err) {
        // A channel the app cannot see is named by its id; an outage is retried.
        if (err instanceof WorkerError && !err.retryable) return undefined;
        throw err;
      }
    },
  };
}

const UNKNOWN_AUTHOR: NoteAuthor = { id: 'unknown', name: 'Someone', email: null };

/** The note's text for `item`, before the platform escapes it. */
async function noteText(item: MirrorItem, names: NameResolver): Promise<string> {
  if (item.kind === 'delete') return `Deleted the message of ${tsDate(item.ts)?.toISOString() ?? item.ts} in Slack`;
  const text = await readableText(item.text, names);
  if (item.kind === 'edit') return `Edited the message in Slack; it now reads:\n${text}`;
  const files = item.files.map((f) => `[file] ${f.name}${f.permalink ? ` (${f.permalink})` : ''}`);
  return [text, ...files].filter((line) => line !== '').join('\n');
}

/**
 * The message's permalink. Without a workspace URL Slack is asked, and it knows no link
 * for a deleted message: a note without a link beats no note (or one retried forever).
 */
async function notePermalink(state: SlackState, item: MirrorItem, callOpts: CallOptions): Promise<string | undefined> {
  try {
    return await messagePermalink(state, { channelId: item.channelId, ts: item.ts, threadTs: item.threadTs }, callOpts);
  } catch (err) {
    if (err instanceof WorkerError && !err.retryable) return undefined;
    throw err;
  }
}

/** Handles one `message` event: see the module comment. */
export async function mirrorMessage(event: Record<string, unknown>, ctx: InboundContext): Promise<void> {
  const { state, log } = ctx;
  if (state.config.mirror === 'off') return;
  const callOpts: CallOptions = { signal: ctx.signal };
  // Bots and system messages are known from the event alone: no lookup for them.
  let item = classifyMessageEvent(event, undefined);
  if (item.kind === 'skip') {
    log.debug(`Not mirrored: ${item.reason}`, { channel: event.channel, ts: event.ts });
    return;
  }
  const targets = (await state.conversations.findByChannelId(item.channelId)).filter((row) => !row.archived);
  if (targets.length === 0) return;
  item = classifyMessageEvent(event, (await slackIdentity(state, callOpts)).userId);
  if (item.kind === 'skip') {
    log.debug(`Not mirrored: ${item.reason}`, { channel: event.channel, ts: event.ts });
    return;
  }

  const names = nameResolver(state, callOpts);
  const author = item.userId ? await state.people.get(item.userId, AUTHOR_MAX_AGE_MS, callOpts) : UNKNOWN_AUTHOR;
  const text = await noteText(item, names);
  const permalink = await notePermalink(state, item, callOpts);
  const seen = new Set<string>();
  for (const row of targets) {
    const target = `${row.incidentId}:${row.taskId ?? ''}`;
    if (seen.has(target)) continue;
    seen.add(target);
    const note: NewNote = {
      incidentId: row.incidentId,
      ...(row.taskId !== null ? { taskId: row.taskId } : {}),
      text,
      author: { id: author.id, name: author.name, email: author.email },
      created: item.created,
      source: 'slack',
      slack: {
        channel_id: item.channelId,
        ts: item.ts,
        ...(item.threadTs ? { thread_ts: item.threadTs } : {}),
        ...(permalink ? { permalink } : {}),
      },
      key: item.key,
    };
    const where = row.taskId !== null ? `task ${row.taskId} of incident ${row.incidentId}` : `incident ${row.incidentId}`;
    try {
      const added = await ctx.platform.addNote(note);
      log.info(added.created ? `Mirrored ${item.key} to ${where} as note ${added.id}` : `${item.key} is already a note on ${where}`);
    } catch (err) {
      // The incident (or task) is gone from the platform: no retry can add the note.
      if (errorCode(err) !== 'not_found') throw err;
      log.warn(`Not mirrored: ${where} (associated with ${item.channelId}) is not on the platform: ${(err as Error).message}`);
    }
  }
}

/** The mirroring handler set (see inbound/handlers.ts). */
export const MIRROR_HANDLERS: InboundHandlers = { events: { message: mirrorMessage } };
