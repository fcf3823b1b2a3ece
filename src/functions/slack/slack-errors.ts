/**
 * Slack's error codes, translated into errors a SOAR analyst can act on.
 *
 * `describeSlackError` is the one table; {@link SlackApiError} carries Slack's own code
 * (`slackError`) so that handlers can branch on it (`name_taken`, `already_in_channel`)
 * while the caller sees the plain-language message.
 */
import { FunctionError, RetryableError, type WorkerError } from '../../core/runtime/errors.js';

/** Slack errors that mean "try again later", not "fix something". */
const TRANSIENT = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'ratelimited', 'team_added_to_org']);

interface Described {
  message: string;
  code: string;
}

/** Plain-language text for a Slack error code, with what to do about it. */
export function describeSlackError(method: string, slackError: string, data: Record<string, unknown> = {}, what = ''): Described {
  const target = what ? ` ${what}` : '';
  // reactions.add says invalid_name for an unknown emoji, not a channel name.
  if (method.startsWith('reactions.') && slackError === 'invalid_name') {
    return {
      code: 'slack_invalid_reaction',
      message: 'Slack has no emoji named as in slack_reaction: give the name of an emoji of the workspace, such as white_check_mark',
    };
  }
  switch (slackError) {
    case 'not_in_channel':
      return {
        code: 'slack_not_in_channel',
        message: `The Slack app is not a member of the channel${target}: invite it there (/invite @<app name>) and run the function again`,
      };
    case 'channel_not_found':
      return {
        code: 'slack_channel_not_found',
        message: `Slack channel${target} was not found, or the app cannot see it (a private channel must have the app as a member)`,
      };
    case 'is_archived':
    case 'already_archived':
      return {
        code: 'slack_channel_archived',
        message: `Slack channel${target} is archived: unarchive it in Slack or use another channel`,
      };
    case 'missing_scope': {
      const needed = typeof data.needed === 'string' ? data.needed : 'a scope';
      return {
        code: 'slack_missing_scope',
        message: `The Slack token lacks the scope "${needed}" needed by ${method}: add it to the Slack app's bot token scopes (see \`worker slack-manifest\`) and reinstall the app`,
      };
    }
    case 'not_authed':
    case 'invalid_auth':
    case 'token_revoked':
    case 'token_expired':
    case 'account_inactive':
    case 'no_permission':
      return {
        code: 'slack_auth_failed',
        message: `Slack rejected the token in [fn_slack] api_token (${slackError}): check the token, and that the app is still installed in the workspace`,
      };
    case 'ekm_access_denied':
    case 'restricted_action':
    case 'restricted_action_read_only_channel':
    case 'restricted_action_thread_only_channel':
    case 'restricted_action_non_threadable_channel':
      return {
        code: 'slack_restricted',
        message: `Slack refused ${method}${target} (${slackError}): a workspace policy forbids it for this app`,
      };
    case 'name_taken':
      return { code: 'slack_name_taken', message: `The Slack channel name${target} is already taken` };
    case 'invalid_name':
    case 'invalid_name_specials':
    case 'invalid_name_punctuation':
    case 'invalid_name_maxlength':
    case 'invalid_name_required':
      return {
        code: 'slack_invalid_channel_name',
        message: `Slack refused the channel name${target} (${slackError}): use lowercase letters, digits, hyphens and underscores, at most 80 characters`,
      };
    case 'user_not_found':
    case 'users_not_found':
      return { code: 'slack_user_not_found', message: `Slack user${target} not found` };
    case 'cant_invite_self':
      return { code: 'slack_cant_invite_self', message: 'The Slack app cannot invite itself' };
    case 'msg_too_long':
      return { code: 'slack_message_too_long', message: `The message is longer than Slack accepts (${method})` };
    case 'invalid_blocks':
    case 'invalid_blocks_format':
      return { code: 'slack_invalid_blocks', message: `Slack refused the message layout (${slackError}) in ${method}` };
    case 'file_not_found':
      return { code: 'slack_file_not_found', message: `Slack file${target} not found` };
    case 'cant_archive_general':
      return { code: 'slack_cant_archive_general', message: "Slack's general channel cannot be archived" };
    case 'message_not_found':
    case 'thread_not_found':
      return { code: 'slack_message_not_found', message: `Slack message${target} was not found: check slack_ts (the ts a post returned) and the channel` };
    case 'cant_update_message':
      return { code: 'slack_not_bot_message', message: `The Slack message${target} was not posted by the app: the app can edit only its own messages` };
    case 'edit_window_closed':
      return { code: 'slack_edit_window_closed', message: `The Slack message${target} can no longer be edited (the workspace's edit window has closed)` };
    case 'not_pinnable':
      return { code: 'slack_not_pinnable', message: `The Slack message${target} cannot be pinned` };
    case 'too_many_pins':
      return { code: 'slack_too_many_pins', message: `The Slack channel${target} has as many pins as Slack allows: unpin one first` };
    case 'too_many_reactions':
      return { code: 'slack_too_many_reactions', message: `The Slack message${target} has as many reactions as Slack allows` };
    case 'too_long':
      return { code: 'slack_too_long', message: `Slack refused ${method}${target}: the text is longer than Slack allows (250 characters)` };
    case 'cant_kick_self':
      return { code: 'slack_cant_remove_bot', message: 'The Slack app cannot remove itself from a channel' };
    case 'cant_kick_from_general':
      return { code: 'slack_cant_remove_from_general', message: "Nobody can be removed from Slack's general channel" };
    case 'cannot_dm_bot':
      return { code: 'slack_cannot_dm_bot', message: `Slack user${target} is a bot: the app cannot send it a direct message` };
    case 'invalid_link':
      return { code: 'slack_invalid_link', message: `Slack refused the bookmark link${target}: give an http(s) URL` };
    case 'method_deprecated':
      return { code: 'slack_method_deprecated', message: `Slack retired ${method}` };
    default:
      return { code: `slack_${slackError.replace(/[^a-z0-9_]/gi, '_')}`, message: `Slack ${method} failed${target}: ${slackError}` };
  }
}

/** A Slack API error with Slack's own code kept in `slackError`. */
export class SlackApiError extends FunctionError {
  constructor(
    readonly method: string,
    readonly slackError: string,
    data: Record<string, unknown> = {},
    what = '',
  ) {
    const described = describeSlackError(method, slackError, data, what);
    super(described.message, described.code, { slack_error: slackError, method });
  }
}

/** Slack is unreachable, failing with 5xx, or rate limiting past the budget. */
export class SlackUnavailableError extends RetryableError {
  constructor(message: string, code = 'slack_unavailable', cause?: unknown) {
    super(message, code, undefined, cause);
  }
}

/** Builds the right error class for a Slack error code returned by `method`. */
export function slackError(method: string, code: string, data: Record<string, unknown> = {}, what = ''): WorkerError {
  if (TRANSIENT.has(code)) return new SlackUnavailableError(`Slack ${method} failed with ${code}, a temporary Slack error`);
  return new SlackApiError(method, code, data, what);
}

/** What a Slack wait (a retry, a rate limit, a poll) rejects with when the invocation is aborted. */
export function stoppedWaitingError(): SlackUnavailableError {
  return new SlackUnavailableError('Stopped while waiting for Slack', 'aborted');
}

/**
 * True when Slack answered with one of `codes` (e.g. already_pinned). The one way fn_slack
 * branches on a Slack error: the client turns every Slack answer into a {@link SlackApiError},
 * so no code here reads @slack/web-api's error shapes.
 */
export function isSlackError(err: unknown, ...codes: string[]): err is SlackApiError {
  return err instanceof SlackApiError && codes.includes(err.slackError);
}
