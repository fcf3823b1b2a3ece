/**
 * The look-up commands' inbound handlers: `@bot incident 2103` (an `app_mention`,
 * answered in the mention's thread) and the slash command (`[fn_slack] command`,
 * answered to the person alone through the command's `response_url`, or
 * `chat.postEphemeral` when that fails).
 *
 * A mention's answer carries metadata naming the mention, so a later delivery of the same
 * envelope (its answer's post made but not heard back, a crash before the envelope was
 * done) finds it in the thread instead of answering twice. The slash command's answer is
 * ephemeral, which Slack keeps nowhere to look: a repeat there can show the person a
 * second copy, seen by them alone.
 */
import { isSlackError } from '../../slack-errors.js';
import type { InboundContext, InboundHandlers } from '../router.js';
import { answerCommand, type Answer } from './answer.js';
import { parseCommand } from './parse.js';
import { postToResponseUrl } from './response-url.js';

type Json = Record<string, any>;

/** Slack message metadata that marks a mention's answer (payload: the mention's ts). */
export const MENTION_ANSWER_EVENT_TYPE = 'soar_worker_mention_answer';
const REPLIES_PAGE = 200;

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

async function onMention(event: Json, ctx: InboundContext): Promise<void> {
  const channelId = str(event.channel);
  const userId = str(event.user);
  const ts = str(event.ts);
  // Bots (this one included) are not answered: two bots could answer each other forever.
  if (!channelId || !userId || !ts || event.bot_id || event.subtype) return;
  const threadTs = str(event.thread_ts) ?? ts;
  // Only a later delivery can find an answer an earlier one posted.
  if (ctx.attempt > 1 && (await mentionAnswered(ctx, channelId, threadTs, ts))) return;
  const answer = await answerCommand(parseCommand(event.text), ctx, { channelId, userId });
  await ctx.state.client.call(
    'chat.postMessage',
    {
      channel: channelId,
      thread_ts: threadTs,
      text: answer.text,
      blocks: JSON.stringify(answer.blocks),
      unfurl_links: false,
      unfurl_media: false,
      metadata: JSON.stringify({ event_type: MENTION_ANSWER_EVENT_TYPE, event_payload: { mention_ts: ts } }),
    },
    { signal: ctx.signal, what: `the answer to a mention in ${channelId}` },
  );
}

/** True when the thread holds this mention's answer (after the mention, found by its metadata). */
async function mentionAnswered(ctx: InboundContext, channelId: string, threadTs: string, mentionTs: string): Promise<boolean> {
  const params = { channel: channelId, ts: threadTs, oldest: mentionTs, limit: REPLIES_PAGE, include_all_metadata: true };
  try {
    for await (const page of ctx.state.client.paginate('conversations.replies', params, { signal: ctx.signal })) {
      const messages = (page.messages ?? []) as { metadata?: { event_type?: string; event_payload?: { mention_ts?: string } } }[];
      if (messages.some((m) => m.metadata?.event_type === MENTION_ANSWER_EVENT_TYPE && m.metadata.event_payload?.mention_ts === mentionTs)) return true;
    }
  } catch (err) {
    // The thread is gone (its parent deleted): no answer to find there.
    if (isSlackError(err, 'thread_not_found', 'message_not_found')) return false;
    throw err;
  }
  return false;
}

async function onSlashCommand(payload: Json, ctx: InboundContext): Promise<void> {
  const channelId = str(payload.channel_id);
  const userId = str(payload.user_id);
  if (!channelId || !userId) {
    ctx.log.warn('A slash command without a channel or user; ignored');
    return;
  }
  const answer = await answerCommand(parseCommand(payload.text), ctx, { channelId, userId });
  await reply(ctx, str(payload.response_url), channelId, userId, answer);
}

async function reply(
  ctx: InboundContext,
  responseUrl: string | undefined,
  channelId: string,
  userId: string,
  answer: Answer,
): Promise<void> {
  if (responseUrl) {
    const failure = await postToResponseUrl(
      responseUrl,
      { response_type: 'ephemeral', text: answer.text, blocks: answer.blocks },
      ctx.state.config.timeout * 1000,
    );
    if (failure === undefined) return;
    ctx.log.warn(`The slash command's response_url failed (${failure}); answering with chat.postEphemeral`);
  }
  await ctx.state.client.call(
    'chat.postEphemeral',
    { channel: channelId, user: userId, text: answer.text, blocks: JSON.stringify(answer.blocks) },
    { signal: ctx.signal, what: `the answer to a slash command in ${channelId}` },
  );
}

/** The look-up commands' set of inbound handlers. */
export const COMMAND_HANDLERS: InboundHandlers = {
  events: { app_mention: onMention },
  command: onSlashCommand,
};
