/**
 * A click on an ask's button (`block_actions`, action_id `ask:<ask id>:<answer index>`):
 * the first allowed click ends the ask with its answer, then the ask is finished (questions
 * updated, note, final reply). A click by someone not allowed, or after the end, gets an
 * ephemeral note and changes nothing.
 *
 * "First" is decided by the store, not here: the ending is a conditional UPDATE of the
 * pending row, so of two clicks at two workers at the same moment exactly one changes it.
 * The reads before it only pick what to say to people whose click cannot win.
 */
import type { ActionHandler, BlockAction, InboundContext, InboundHandlers } from '../inbound/router.js';
import { ASK_ACTION_PREFIX, parseAnswerActionId } from './ask-blocks.js';
import { askResult, finishOrLeave, type AskRuntime } from './ask-finish.js';
import type { AskRow, Responder } from './ask-table.js';

export const NOT_ALLOWED_TEXT = 'You are not allowed to answer this question.';
export const NO_LONGER_OPEN_TEXT = 'This question is no longer open.';
const NOT_STORED_YET_TEXT = 'This question is not open (it is unknown to the worker, or still being posted: try again in a moment).';

/**
 * What to tell someone who clicked a question the store does not know. The row is stored
 * just after the question is posted, so a click on a fresh question may come first; but a
 * question posted longer ago than the retention was finished and then pruned (a pending ask
 * is never pruned): it is over, and "try again" would be wrong.
 */
function unknownAskText(rt: AskRuntime, payload: Record<string, unknown>): string {
  const container = payload.container as { message_ts?: string } | undefined;
  const postedAt = Number(container?.message_ts ?? (payload.message as { ts?: string } | undefined)?.ts) * 1000;
  const pruned = rt.retentionMs !== undefined && Number.isFinite(postedAt) && rt.now() - postedAt > rt.retentionMs;
  return pruned ? NO_LONGER_OPEN_TEXT : NOT_STORED_YET_TEXT;
}

function alreadyText(row: AskRow, userId: string): string {
  // Their own click again (a retried envelope, a double click): no "already answered by" themselves.
  if (row.state === 'answered' && row.responder?.id === userId) return `You answered this question: ${row.answer ?? ''}.`;
  if (row.state === 'answered' && row.responder) {
    return `This question was already answered by ${row.responder.name || `<@${row.responder.id}>`}: ${row.answer ?? ''}.`;
  }
  if (row.state === 'expired') return `This question expired${row.answer === null ? '' : ` (default answer: ${row.answer})`}.`;
  return NO_LONGER_OPEN_TEXT;
}

async function ephemeral(rt: AskRuntime, channel: string, user: string, text: string): Promise<void> {
  try {
    await rt.client.call('chat.postEphemeral', { channel, user, text });
  } catch (err) {
    // Only a courtesy: the click changes nothing either way.
    rt.log.warn(`Could not tell ${user} in ${channel} why their click changed nothing: ${(err as Error).message}`);
  }
}

async function responderOf(rt: AskRuntime, userId: string): Promise<Responder> {
  try {
    const res = await rt.client.call('users.info', { user: userId });
    const u = res.user as { name?: string; real_name?: string; profile?: { email?: string; real_name?: string } };
    return { id: userId, name: u.real_name || u.profile?.real_name || u.name || userId, email: u.profile?.email ?? null };
  } catch (err) {
    if ((err as { retryable?: boolean }).retryable) throw err;
    return { id: userId, name: userId, email: null };
  }
}

/** Handles one click; `rt` undefined means this worker cannot handle asks (no store SQL / no deferred replies). */
export async function handleAnswerClick(rt: AskRuntime, action: BlockAction, payload: Record<string, unknown>): Promise<void> {
  const parsed = parseAnswerActionId(action.action_id);
  const userId = (payload.user as { id?: string } | undefined)?.id;
  const container = payload.container as { channel_id?: string } | undefined;
  const channelId = container?.channel_id ?? (payload.channel as { id?: string } | undefined)?.id;
  if (!parsed || !userId || !channelId) {
    rt.log.warn(`Ignored an ask click without an ask id, user or channel (action_id ${JSON.stringify(action.action_id)})`);
    return;
  }
  const row = await rt.table.get(parsed.askId);
  if (!row) {
    await ephemeral(rt, channelId, userId, unknownAskText(rt, payload));
    return;
  }
  if (row.state !== 'pending') {
    await ephemeral(rt, channelId, userId, alreadyText(row, userId));
    return;
  }
  if (row.allowed && !row.allowed.includes(userId)) {
    await ephemeral(rt, channelId, userId, NOT_ALLOWED_TEXT);
    return;
  }
  const answer = row.answers[parsed.index];
  if (answer === undefined) {
    await ephemeral(rt, channelId, userId, "That answer is not one of this question's answers.");
    return;
  }
  const responder = await responderOf(rt, userId);
  const endedAt = rt.now();
  const post = row.posts.find((p) => p.channel_id === channelId) ?? row.posts[0];
  const reply = rt.deferred.finalReply(row.ticket, askResult(row, { answer, responder, endedAt, timedOut: false }, post));
  const won = await rt.table.answer(row.askId, { answer, responder, endedAt, reply, claimUntil: endedAt + rt.leaseMs });
  const now = (await rt.table.get(row.askId)) as AskRow;
  if (!won) {
    await ephemeral(rt, channelId, userId, alreadyText(now, userId));
    return;
  }
  await finishOrLeave(rt, now);
}

/** The ask's contribution to the inbound router (src/functions/slack/inbound/handlers.ts). */
export function askHandlers(runtimeOf: (ctx: InboundContext) => AskRuntime | undefined): InboundHandlers {
  const onClick: ActionHandler = async (action, payload, ctx) => {
    const rt = runtimeOf(ctx);
    if (!rt) {
      ctx.log.warn('An ask button was clicked, but this worker has no ask runtime (slack_ask needs `worker run` with a store)');
      return;
    }
    await handleAnswerClick(rt, action, payload);
  };
  return { actions: { [ASK_ACTION_PREFIX]: onClick } };
}
