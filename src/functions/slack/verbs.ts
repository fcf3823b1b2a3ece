/**
 * What the responder verbs (slack_update_message, slack_pin_message, slack_invite_users, …)
 * share, so that each function file holds only what it does:
 * - the channel, resolved exactly as slack_post_message resolves it (one path:
 *   {@link withResolvedChannel}), except that a channel named in `slack_channel` must exist:
 *   pinning or renaming never creates a channel;
 * - people given by email (`slack_participant_emails`, `slack_user_emails`, parsed in
 *   inputs.ts), looked up once here;
 * - Slack's "already done" answers, which a redelivered invocation gets for what its earlier
 *   attempt did, and which therefore count as success.
 */
import type { FunctionContext } from '../../core/runtime/plugin.js';
import type { ConversationRow } from './store/conversations.js';
import { withResolvedChannel, type ChannelDeps, type ChannelInfo, type ChannelInputs } from './channels/index.js';
import { verbChannelInputs } from './inputs.js';
import { isSlackError } from './slack-errors.js';
import type { SlackUser } from './slack-types.js';
import { channelDeps, type SlackState } from './state.js';

export interface OnChannel<T> {
  channel: ChannelInfo;
  /** The incident's (or task's) association before this invocation, if any. */
  association: ConversationRow | undefined;
  target: ChannelInputs;
  deps: ChannelDeps;
  value: T;
}

/**
 * Resolves the verb's channel and runs `act` on it. `act` is run again on a freshly
 * looked-up channel when the cached info turns out stale (see withResolvedChannel), so it
 * must be safe to repeat: every verb's call is (an edit, a topic, or an "already" answer).
 */
export async function onChannel<T>(
  ctx: FunctionContext,
  state: SlackState,
  act: (channel: ChannelInfo, deps: ChannelDeps) => Promise<T>,
): Promise<OnChannel<T>> {
  const deps = channelDeps(ctx, state);
  const target = verbChannelInputs(ctx.inputs);
  const { resolved, value } = await withResolvedChannel(ctx, deps, target, (r) => act(r.channel, deps));
  return { channel: resolved.channel, association: resolved.association, target, deps, value };
}

/**
 * Runs a Slack call whose "already" error means the effect is there (an earlier attempt of
 * this invocation, or someone in Slack, did it): resolves true when it was already done.
 */
export async function unlessAlready(call: () => Promise<unknown>, ...alreadyCodes: string[]): Promise<boolean> {
  try {
    await call();
    return false;
  } catch (err) {
    if (isSlackError(err, ...alreadyCodes)) return true;
    throw err;
  }
}

export interface FoundUser {
  email: string;
  id: string;
  user: SlackUser;
}

/** Looks each address up (`users.lookupByEmail`); the ones Slack does not know are returned apart. */
export async function usersByEmail(deps: ChannelDeps, emails: string[]): Promise<{ found: FoundUser[]; unknown: string[] }> {
  const found: FoundUser[] = [];
  const unknown: string[] = [];
  for (const email of emails) {
    try {
      const res = await deps.client.call('users.lookupByEmail', { email }, { ...deps.callOpts, what: email });
      const user = res.user;
      if (!found.some((f) => f.id === user.id)) found.push({ email, id: String(user.id), user });
    } catch (err) {
      if (isSlackError(err, 'users_not_found', 'user_not_found')) unknown.push(email);
      else throw err;
    }
  }
  return { found, unknown };
}

/** A user as the verbs return one: the fields a workflow uses, from users.info / lookupByEmail. */
export function userSummary(user: SlackUser): Record<string, unknown> {
  return {
    id: String(user.id),
    name: String(user.name ?? ''),
    real_name: String(user.real_name ?? user.profile?.real_name ?? ''),
    email: typeof user.profile?.email === 'string' ? user.profile.email : null,
    tz: typeof user.tz === 'string' ? user.tz : null,
    is_bot: Boolean(user.is_bot),
    deleted: Boolean(user.deleted),
  };
}
