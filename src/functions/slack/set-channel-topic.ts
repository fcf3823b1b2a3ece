/**
 * slack_set_channel_topic: sets the topic and/or the purpose (description) of a channel.
 * Setting the same value again changes nothing, so a redelivery is harmless.
 */
import { FunctionError } from '../../core/runtime/errors.js';
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import type { SlackState } from './state.js';
import { onChannel } from './verbs.js';

/** Slack's limit for a topic and for a purpose. */
const MAX_CHARS = 250;

function optionalText(inputs: Record<string, unknown>, name: string): string | undefined {
  const v = inputs[name];
  if (typeof v !== 'string') return undefined;
  if ([...v].length > MAX_CHARS) {
    throw new FunctionError(`${name} is ${[...v].length} characters long; Slack allows at most ${MAX_CHARS}`, 'slack_too_long');
  }
  return v;
}

export async function setChannelTopic(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const topic = optionalText(ctx.inputs, 'slack_topic');
  const purpose = optionalText(ctx.inputs, 'slack_purpose');
  if (topic === undefined && purpose === undefined) {
    throw new FunctionError('Give slack_topic, slack_purpose or both (an empty string clears it)', 'missing_topic');
  }
  const { channel } = await onChannel(ctx, state, async (channel, deps) => {
    const opts = { ...deps.callOpts, what: `#${channel.name}` };
    if (topic !== undefined) await state.client.call('conversations.setTopic', { channel: channel.id, topic }, opts);
    if (purpose !== undefined) await state.client.call('conversations.setPurpose', { channel: channel.id, purpose }, opts);
  });
  if (topic !== undefined) await ctx.status(`Set the topic of #${channel.name}`);
  if (purpose !== undefined) await ctx.status(`Set the purpose of #${channel.name}`);
  return { content: { channel: channel.name, channel_id: channel.id, topic: topic ?? null, purpose: purpose ?? null } };
}
