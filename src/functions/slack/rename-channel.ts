/**
 * slack_rename_channel: renames a channel; every association with it follows the new name.
 * A redelivery finds the channel already renamed and only brings the associations up to date.
 */
import { FunctionError } from '../../core/runtime/errors.js';
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import { CHANNEL_NAME } from './channels/index.js';
import type { SlackState } from './state.js';
import { onChannel } from './verbs.js';
import { strInput } from './inputs.js';
import { isSlackError } from './slack-errors.js';

function newNameInput(inputs: Record<string, unknown>): string {
  const raw = strInput(inputs, 'slack_new_name') ?? '';
  const name = raw.trim().replace(/^#/, '');
  if (!CHANNEL_NAME.test(name)) {
    throw new FunctionError(
      `slack_new_name "${raw}" is not a Slack channel name: use lowercase letters, digits, hyphens (-) and underscores (_), at most 80 characters`,
      'invalid_channel_name',
    );
  }
  return name;
}

export async function renameChannel(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const newName = newNameInput(ctx.inputs);
  const { channel, value: previousName } = await onChannel(ctx, state, async (channel, deps) => {
    if (channel.name === newName) return channel.name;
    try {
      await state.client.call('conversations.rename', { channel: channel.id, name: newName }, { ...deps.callOpts, what: `#${newName}` });
    } catch (err) {
      if (isSlackError(err, 'name_taken')) {
        throw new FunctionError(`The Slack channel name #${newName} is already taken: choose another slack_new_name`, 'slack_name_taken');
      }
      throw err;
    }
    return channel.name;
  });
  // The cache knew the channel by its old name.
  state.channels.delete(previousName);
  state.channels.forgetChannel(channel.id);
  state.channels.set(newName, channel.id);
  if (previousName === newName) await ctx.status(`#${newName} already has that name`);
  else await ctx.status(`Renamed #${previousName} to #${newName}`);

  // Every incident or task associated with the channel follows it to its new name.
  for (const row of await state.conversations.findByChannelId(channel.id)) {
    if (row.channel !== newName) await state.conversations.replace({ ...row, channel: newName });
  }
  return { content: { channel: newName, channel_id: channel.id, previous_name: previousName === newName ? null : previousName } };
}
