/**
 * slack_remove_users: removes people, given by email, from a channel (conversations.kick).
 * The app itself is never removed: it would lose the channel for every later function.
 * Someone not in the channel is a warning when someone else was removed, and on a
 * redelivery (the earlier attempt removed them); when it is all there is to do on a first
 * attempt, it is an error, since the input was probably wrong.
 */
import { FunctionError } from '../../core/runtime/errors.js';
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import type { SlackState } from './state.js';
import { botUserId, channelDeps } from './state.js';
import { onChannel, usersByEmail } from './verbs.js';
import { emailsInput } from './inputs.js';
import { isSlackError } from './slack-errors.js';

export async function removeUsers(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const emails = emailsInput(ctx.inputs, 'slack_participant_emails');
  const bot = await botUserId(state, ctx);
  // Everyone is looked up before anyone is removed, so that a refusal leaves the channel as it was.
  const { found, unknown } = await usersByEmail(channelDeps(ctx, state), emails);
  const self = found.find((u) => u.id === bot);
  if (self) {
    throw new FunctionError(
      `${self.email} is the Slack app itself, which cannot be removed from the channel: leave it out of slack_participant_emails`,
      'slack_cant_remove_bot',
    );
  }
  if (found.length === 0) {
    throw new FunctionError(`No Slack user has the email ${unknown.join(', ')}`, 'slack_user_not_found');
  }

  const { channel, value } = await onChannel(ctx, state, async (channel, deps) => {
    const removed: string[] = [];
    const notIn: string[] = [];
    for (const u of found) {
      try {
        await state.client.call('conversations.kick', { channel: channel.id, user: u.id }, { ...deps.callOpts, what: u.email });
        removed.push(u.id);
      } catch (err) {
        // The app is in the channel (resolution made sure): not_in_channel is about the user.
        if (isSlackError(err, 'not_in_channel')) notIn.push(u.email);
        else throw err;
      }
    }
    deps.cache.forgetMembers(channel.id);
    return { removed, notIn };
  });

  if (value.removed.length === 0 && ctx.attempt === 1 && value.notIn.length) {
    throw new FunctionError(
      `${value.notIn.join(', ')} ${value.notIn.length > 1 ? 'are' : 'is'} not in #${channel.name}: nobody was removed`,
      'slack_user_not_in_channel',
    );
  }
  const warnings = [
    ...unknown.map((e) => `No Slack user has the email ${e}`),
    ...value.notIn.map((e) => `${e} is not in #${channel.name}`),
  ];
  for (const w of warnings) await ctx.status(`Warning: ${w}`);
  await ctx.status(`Removed ${value.removed.length} person(s) from #${channel.name}`);
  return { content: { channel: channel.name, channel_id: channel.id, removed: value.removed, warnings } };
}
