/**
 * The look-up commands' inbound handlers: `@bot incident 2103` (an `app_mention`,
 * answered in the mention's thread) and the slash command (`[fn_slack] command`,
 * answered to the person alone through the command's `response_url`, or
 * `chat.postEphemeral` when that fails).
 */
import type { InboundContext, InboundHandlers } from '../router.js';
import { answerCommand, type Answer } from './answer.js';
import { parseCommand } from './parse.js';
import { postToResponseUrl } from './response-url.js';

type Json = Record<string, unknown>;

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

async function onMention(event: Json, ctx: InboundContext): Promise<void> {
  const channelId = str(event.channel);
  const userId = str(event.user);
  const ts = str(event.ts);
  // Bots (this one included) are not answered: two bots could answer each other forever.
  if (!channelId || !userId || !ts || event.bot_id || event.subtype) return;
  const answer = await answerCommand(parseCommand(event.text), ctx, { channelId, userId });
  await ctx.state.client.call(
    'chat.postMessage',
    {
      channel: channelId,
      thread_ts: str(event.thread_ts) ?? ts,
      text: answer.text,
      blocks: JSON.stringify(answer.blocks),
      unfurl_links: false,
      unfurl_media: false,
    },
    { signal: ctx.signal, what: `the answer to a mention in ${channelId}` },
  );
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
