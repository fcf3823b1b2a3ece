/**
 * Inviting the people of `slack_participant_emails` to a channel.
 */
import type { FunctionContext } from '../../../core/runtime/plugin.js';
import { parseEmails } from '../inputs.js';
import { isSlackError } from '../slack-errors.js';
import type { ChannelInfo } from './channel-info.js';
import type { ChannelDeps } from './lookup.js';

/**
 * Looks each email up and invites everyone found in one `conversations.invite`.
 * Unknown emails and people already in the channel are warnings, not failures.
 */
export async function inviteParticipants(
  ctx: FunctionContext,
  deps: ChannelDeps,
  channel: ChannelInfo,
  rawEmails: string | undefined,
  botUserId: string | undefined,
): Promise<{ invited: string[]; warnings: string[] }> {
  const { emails, invalid } = parseEmails(rawEmails);
  const warnings: string[] = invalid.map((e) => `"${e}" is not an email address`);
  const userIds: string[] = [];
  const emailOf = new Map<string, string>();
  for (const email of emails) {
    try {
      const res = await deps.client.call('users.lookupByEmail', { email }, deps.callOpts);
      const id = String(res.user.id);
      if (id !== botUserId && !userIds.includes(id)) userIds.push(id);
      emailOf.set(id, email);
    } catch (err) {
      if (isSlackError(err, 'users_not_found', 'user_not_found')) {
        warnings.push(`No Slack user has the email ${email}`);
      } else {
        throw err;
      }
    }
  }
  let invited: string[] = [];
  if (userIds.length) {
    try {
      const res = await deps.client.call(
        'conversations.invite',
        { channel: channel.id, users: userIds.join(','), force: true },
        { ...deps.callOpts, what: `#${channel.name}` },
      );
      const failed = new Set<string>();
      for (const e of res.errors ?? []) {
        if (e.user) failed.add(e.user);
        const who = (e.user && emailOf.get(e.user)) ?? e.user;
        warnings.push(e.error === 'already_in_channel' ? `${who} is already in #${channel.name}` : `Could not invite ${who}: ${e.error}`);
      }
      invited = userIds.filter((u) => !failed.has(u));
    } catch (err) {
      deps.cache.forgetMembers(channel.id);
      if (isSlackError(err, 'already_in_channel')) {
        warnings.push(`Everyone listed is already in #${channel.name}`);
      } else {
        throw err;
      }
    }
  }
  if (invited.length) deps.cache.forgetMembers(channel.id);
  for (const w of warnings) await ctx.status(`Warning: ${w}`);
  if (invited.length) await ctx.status(`Invited ${invited.length} participant(s) to #${channel.name}`);
  return { invited, warnings };
}
