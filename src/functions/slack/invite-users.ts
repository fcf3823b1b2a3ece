/**
 * slack_invite_users: invites people, given by email, to a channel. People already in it
 * (an earlier attempt invited them) are not an error, so a redelivery invites nobody twice.
 */
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import { inviteParticipants } from './channels/index.js';
import type { SlackState } from './state.js';
import { botUserId } from './state.js';
import { onChannel } from './verbs.js';
import { emailsInput } from './inputs.js';

export async function inviteUsers(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const emails = emailsInput(ctx.inputs, 'slack_participant_emails');
  const bot = await botUserId(state, ctx);
  const { channel, value } = await onChannel(ctx, state, (channel, deps) => inviteParticipants(ctx, deps, channel, emails.join(','), bot));
  return { content: { channel: channel.name, channel_id: channel.id, invited: value.invited, warnings: value.warnings } };
}
