/**
 * What an ask owes once it ended (answered, or expired): every posted copy of the question
 * updated in place, a note on the incident, the escalation post (expired, with
 * slack_escalation_channel), and the final reply to the workflow, in that order, then the
 * row marked finished.
 *
 * Ending and finishing are apart on purpose: the ending is one conditional UPDATE that
 * also stores the reply to send, and this runs after it. A worker that dies in between
 * leaves a row that is ended, unfinished and no longer held: the sweeper claims it and
 * runs this again. Each step is safe to repeat: chat.update writes the same content, the
 * note's key makes the platform keep one, the escalation post is looked for before it is
 * made, and the final reply is the one stored (a repeat after a confirmed reply publishes
 * nothing; one that raced an unconfirmed send may reach the caller twice, identical).
 *
 * Two finishers of one ask can run at once (the ender slow past its hold, and a sweeper
 * that claimed the row meanwhile). Finishing is therefore one critical section across
 * workers (the store's lock on the ask): the second finisher waits, then finds the row
 * finished and does nothing, so neither the escalation's look-then-post nor the final
 * reply's send is done twice. The look reads every message of the escalation channel
 * since just before the ask expired (all pages), however busy the channel is.
 */
import type { DeferredReplies } from '../../../core/runtime/plugin.js';
import type { FunctionResult } from '../../../core/runtime/plugin.js';
import type { Logger } from '../../../core/logging.js';
import type { Platform } from '../../../platforms/platform.js';
import { ensureMember, findChannelByName, type ChannelCache, type ChannelDeps } from '../channels/index.js';
import type { SlackClient } from '../slack-client.js';
import type { ConversationTable } from '../store/conversations.js';
import { isSlackError } from '../slack-errors.js';
import { endedBlocks, endedText, endingLine, escalationBlocks, escalationText, plainLine } from './ask-blocks.js';
import type { AskPost, AskRow, AskTable, Responder } from './ask-table.js';

/** Slack message metadata that marks an escalation post, so a repeat finds it. */
export const ESCALATION_EVENT_TYPE = 'soar_worker_ask_escalation';

/** What the ask code needs at run time; built in the plugin's setup (SlackState.asks). */
export interface AskRuntime {
  table: AskTable;
  client: SlackClient;
  channels: ChannelCache;
  conversations: ConversationTable;
  deferred: DeferredReplies;
  platform: Platform;
  log: Logger;
  /** How long the worker that ends an ask holds it to finish before a sweeper may take over (ms). */
  leaseMs: number;
  /**
   * How long a finished ask is kept before the sweeper prunes it (ms; the worker's
   * retention). Undefined: never pruned (no worker retention was given).
   */
  retentionMs?: number;
  now: () => number;
  /** The store's lock (`Store.withLock`): one holder of a key across every worker. */
  withLock: <T>(key: string, fn: () => Promise<T>) => Promise<T>;
}

/**
 * How far before the ask's expiry the escalation channel's history is read: the post is
 * made after the expiry by this host's clock, and Slack's ts is by Slack's.
 */
const CLOCK_SKEW_MS = 5 * 60_000;
const HISTORY_PAGE = 200;

function deps(rt: AskRuntime): ChannelDeps {
  return { client: rt.client, cache: rt.channels, callOpts: {}, conversations: rt.conversations };
}

/** The ResultPayload content of an ended ask (DESIGN: slack_ask's result). */
export function askResult(
  row: AskRow,
  ending: { answer: string | null; responder: Responder | null; endedAt: number; timedOut: boolean },
  post: AskPost | undefined,
): FunctionResult {
  return {
    content: {
      answer: ending.answer,
      timed_out: ending.timedOut,
      responder: ending.responder,
      answered_at: ending.timedOut ? null : new Date(ending.endedAt).toISOString(),
      channel: post?.channel ?? null,
      channel_id: post?.channel_id ?? null,
      ts: post?.ts ?? null,
      url: post?.url ?? null,
      ask_id: row.askId,
    },
    reason: ending.timedOut ? `No answer by ${new Date(row.deadline).toISOString()}` : null,
  };
}

/**
 * Ends a pending ask whose deadline passed with its default answer; true for the one caller
 * that ended it.
 */
export async function expireAsk(rt: AskRuntime, row: AskRow): Promise<boolean> {
  const now = rt.now();
  const ending = { answer: row.defaultAnswer, responder: null, endedAt: now, timedOut: true };
  const reply = rt.deferred.finalReply(row.ticket, askResult(row, ending, row.posts[0]));
  return rt.table.expire(row.askId, { answer: row.defaultAnswer, responder: null, endedAt: now, reply, claimUntil: now + rt.leaseMs });
}

/** True for Slack answers that mean the message or channel is gone: nothing left to update. */
function gone(err: unknown): boolean {
  return isSlackError(err, 'message_not_found', 'channel_not_found', 'is_archived', 'cant_update_message');
}

async function updateQuestions(rt: AskRuntime, row: AskRow): Promise<void> {
  const blocks = JSON.stringify(endedBlocks(row));
  const text = endedText(row);
  for (const post of row.posts) {
    try {
      await rt.client.call('chat.update', { channel: post.channel_id, ts: post.ts, text, blocks }, { what: post.channel });
    } catch (err) {
      if (!gone(err)) throw err;
      rt.log.warn(`Ask ${row.askId}: the question in ${post.channel} could not be updated (${(err as Error).message}); leaving it`);
    }
  }
}

async function addNote(rt: AskRuntime, row: AskRow): Promise<void> {
  const r = row.responder;
  const line = plainLine(endingLine(row)).replace(/<@[A-Z0-9]+>/g, r?.email ?? r?.name ?? 'someone');
  const post = row.posts[0];
  try {
    await rt.platform.addNote({
      incidentId: row.incidentId,
      taskId: row.taskId ?? undefined,
      text: `Slack question: ${row.question.text}\n${line}`,
      author: r ? { id: r.id, name: r.name, email: r.email } : { id: '', name: 'Slack ask (no answer)', email: null },
      created: new Date(row.endedAt ?? rt.now()),
      source: 'slack',
      slack: post ? { channel_id: post.channel_id, ts: post.ts, permalink: post.url || undefined } : undefined,
      key: `ask:${row.askId}`,
    });
  } catch (err) {
    const e = err as { code?: string; retryable?: boolean; message: string };
    if (e.retryable) throw err;
    // A platform without notes, or an incident gone: the answer still reaches the workflow.
    const log = e.code === 'unsupported' ? rt.log.debug.bind(rt.log) : rt.log.warn.bind(rt.log);
    log(`Ask ${row.askId}: no note added to incident ${row.incidentId}: ${e.message}`);
  }
}

async function escalationChannelId(rt: AskRuntime, ref: string): Promise<string> {
  if (/^[CGD][A-Z0-9]{2,}$/.test(ref)) return ref;
  const name = ref.replace(/^#/, '');
  const found = await findChannelByName(deps(rt), name);
  if (!found) throw new Error(`slack_escalation_channel #${name} does not exist`);
  await ensureMember(deps(rt), found);
  return found.id;
}

/** True when the channel holds the ask's escalation post (found by its metadata, in every message since the expiry). */
async function escalationPosted(rt: AskRuntime, channel: string, row: AskRow): Promise<boolean> {
  const since = Math.max(0, Math.min(row.deadline, row.endedAt ?? row.deadline) - CLOCK_SKEW_MS);
  const params = { channel, oldest: (since / 1000).toFixed(6), limit: HISTORY_PAGE, include_all_metadata: true };
  for await (const page of rt.client.paginate('conversations.history', params, { what: row.escalationChannel ?? channel })) {
    const messages = (page.messages ?? []) as { metadata?: { event_type?: string; event_payload?: { ask_id?: string } } }[];
    if (messages.some((m) => m.metadata?.event_type === ESCALATION_EVENT_TYPE && m.metadata.event_payload?.ask_id === row.askId)) return true;
  }
  return false;
}

async function escalate(rt: AskRuntime, row: AskRow): Promise<void> {
  if (row.state !== 'expired' || !row.escalationChannel) return;
  try {
    const channel = await escalationChannelId(rt, row.escalationChannel);
    if (await escalationPosted(rt, channel, row)) return;
    await rt.client.call('chat.postMessage', {
      channel,
      text: escalationText(row),
      blocks: JSON.stringify(escalationBlocks(row)),
      unfurl_links: false,
      metadata: JSON.stringify({ event_type: ESCALATION_EVENT_TYPE, event_payload: { ask_id: row.askId } }),
    });
  } catch (err) {
    if ((err as { retryable?: boolean }).retryable) throw err;
    rt.log.warn(`Ask ${row.askId}: could not escalate to ${row.escalationChannel}: ${(err as Error).message}`);
  }
}

/** Does what an ended ask owes (see the file comment); throws when a step should be tried again later. */
export async function finishAsk(rt: AskRuntime, ended: AskRow): Promise<void> {
  if (ended.state === 'pending' || !ended.reply) throw new Error(`Ask ${ended.askId} has not ended`);
  await rt.withLock(`slack-ask:${ended.askId}`, async () => {
    // Read again under the lock: another finisher may have done it all while this one waited.
    // A row that is gone was finished and pruned (retention is at least a day): nothing is owed.
    const row = await rt.table.get(ended.askId);
    if (!row || row.finishedAt !== null || !row.reply) return;
    await updateQuestions(rt, row);
    await addNote(rt, row);
    await escalate(rt, row);
    await rt.deferred.send(row.ticket, row.reply);
    await rt.table.markFinished(row.askId, rt.now());
    rt.log.info(
      `Ask ${row.askId} (invocation ${row.invocationId}) ${row.state}: ${row.answer === null ? 'no answer' : `"${row.answer}"`}; final reply sent`,
    );
  });
}

/** {@link finishAsk}, logging a failure: the sweeper finishes the ask once its hold lapses. */
export async function finishOrLeave(rt: AskRuntime, row: AskRow): Promise<void> {
  try {
    await finishAsk(rt, row);
  } catch (err) {
    rt.log.warn(`Ask ${row.askId}: not finished yet (${(err as Error).message}); the sweeper tries again in ${Math.round(rt.leaseMs / 1000)}s`);
  }
}
