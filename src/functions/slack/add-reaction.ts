/**
 * slack_add_reaction: adds an emoji reaction to a message. Slack's already_reacted (an
 * earlier attempt reacted) is success.
 */
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import type { SlackState } from './state.js';
import { onChannel, unlessAlready } from './verbs.js';
import { strInput } from './inputs.js';

export async function addReaction(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const ts = strInput(ctx.inputs, 'slack_ts') as string;
  // ":white_check_mark:" and "white_check_mark" are the same emoji; Slack wants the bare name.
  const name = (strInput(ctx.inputs, 'slack_reaction') as string).trim().replace(/^:|:$/g, '');
  const { channel, value: already } = await onChannel(ctx, state, (channel, deps) =>
    unlessAlready(
      () => state.client.call('reactions.add', { channel: channel.id, timestamp: ts, name }, { ...deps.callOpts, what: `${ts} in #${channel.name}` }),
      'already_reacted',
    ),
  );
  await ctx.status(already ? `:${name}: was already on message ${ts} in #${channel.name}` : `Reacted with :${name}: to message ${ts} in #${channel.name}`);
  return { content: { channel: channel.name, channel_id: channel.id, ts, reaction: name, already_reacted: already } };
}
