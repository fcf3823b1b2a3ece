/**
 * slack_pin_message: pins a message. Slack's already_pinned (an earlier attempt, or
 * someone in Slack, pinned it) is success.
 */
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import type { SlackState } from './state.js';
import { onChannel, unlessAlready } from './verbs.js';
import { strInput } from './inputs.js';

export async function pinMessage(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const ts = strInput(ctx.inputs, 'slack_ts') as string;
  const { channel, value: already } = await onChannel(ctx, state, (channel, deps) =>
    unlessAlready(
      () => state.client.call('pins.add', { channel: channel.id, timestamp: ts }, { ...deps.callOpts, what: `${ts} in #${channel.name}` }),
      'already_pinned',
    ),
  );
  await ctx.status(already ? `Message ${ts} was already pinned in #${channel.name}` : `Pinned message ${ts} in #${channel.name}`);
  return { content: { channel: channel.name, channel_id: channel.id, ts, pinned: true, already_pinned: already } };
}
