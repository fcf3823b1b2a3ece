/**
 * What the responder verbs (slack_update_message, slack_pin_message, slack_invite_users, …)
 * share, so that each function file holds only what it does:
 * - the channel, resolved exactly as slack_post_message resolves it (one path:
 *   {@link withResolvedChannel}), except that a channel named in `slack_channel` must exist:
 *   pinning or renaming never creates a channel;
 * - people given by email (`slack_participant_emails`, `slack_user_emails`), parsed and
 *   looked up once here;
 * - Slack's "already done" answers, which a redelivered invocation gets for what its earlier
 *   attempt did, and which therefore count as success.
 */
import { FunctionError } from '../../core/runtime/errors.js';
import type { FunctionContext } from '../../core/runtime/plugin.js';
import type { ConversationRow } from './store/conversations.js';
import { parseEmails, withResolvedChannel, type ChannelDeps, type ChannelInfo, type ChannelInputs } from './channels.js';
import { renderSlackText, type RenderedMessage } from './format/index.js';
import { channelInputs } from './post-message.js';
import { SlackApiError } from './slack-errors.js';
import { boolInput, channelDeps, intInput, type SlackState } from './state.js';

/** The channel inputs of a verb: as slack_post_message's, but the channel is never created. */
export function verbChannelInputs(inputs: Record<string, unknown>): ChannelInputs {
  return { ...channelInputs(inputs), create: false };
}

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

/** True when Slack answered with one of `codes` (e.g. already_pinned). */
export function isSlackError(err: unknown, ...codes: string[]): err is SlackApiError {
  return err instanceof SlackApiError && codes.includes(err.slackError);
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

/**
 * The addresses in an emails input, refusing a value with none or with something that is
 * not an address (acting on part of a list by mistake is worse than asking to fix it).
 */
export function emailsInput(inputs: Record<string, unknown>, name: string): string[] {
  const { emails, invalid } = parseEmails(typeof inputs[name] === 'string' ? (inputs[name] as string) : undefined);
  if (invalid.length) {
    throw new FunctionError(
      `${name} has ${invalid.map((e) => `"${e}"`).join(', ')}, which ${invalid.length > 1 ? 'are not email addresses' : 'is not an email address'}: give comma-separated addresses`,
      'invalid_email',
    );
  }
  if (emails.length === 0) throw new FunctionError(`${name} is empty: give one or more comma-separated email addresses`, 'missing_emails');
  return emails;
}

export interface FoundUser {
  email: string;
  id: string;
  user: Record<string, any>;
}

/** Looks each address up (`users.lookupByEmail`); the ones Slack does not know are returned apart. */
export async function usersByEmail(deps: ChannelDeps, emails: string[]): Promise<{ found: FoundUser[]; unknown: string[] }> {
  const found: FoundUser[] = [];
  const unknown: string[] = [];
  for (const email of emails) {
    try {
      const res = await deps.client.call('users.lookupByEmail', { email }, { ...deps.callOpts, what: email });
      const user = res.user as Record<string, any>;
      if (!found.some((f) => f.id === user.id)) found.push({ email, id: String(user.id), user });
    } catch (err) {
      if (isSlackError(err, 'users_not_found', 'user_not_found')) unknown.push(email);
      else throw err;
    }
  }
  return { found, unknown };
}

/** A user as the verbs return one: the fields a workflow uses, from users.info / lookupByEmail. */
export function userSummary(user: Record<string, any>): Record<string, unknown> {
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

/** `slack_text` laid out as slack_post_message lays it out (one or more parts). */
export function renderTextInput(inputs: Record<string, unknown>, state: SlackState): RenderedMessage[] {
  const incidentId = intInput(inputs, 'incident_id');
  const taskId = intInput(inputs, 'task_id');
  try {
    return renderSlackText(String(inputs.slack_text ?? ''), {
      mrkdwn: boolInput(inputs, 'slack_mrkdwn') ?? true,
      // 0 is no incident: the container's SOAR link is left out.
      incidentId: incidentId ?? 0,
      ...(taskId ? { taskId } : {}),
      ...(state.config.soar_url ? { soarUrlTemplate: state.config.soar_url } : {}),
      timeZone: state.config.time_zone,
    });
  } catch (err) {
    throw new FunctionError((err as Error).message, 'invalid_slack_text');
  }
}
