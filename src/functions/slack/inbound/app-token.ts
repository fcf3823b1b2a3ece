/**
 * What Slack's answer to `apps.connections.open` says about `[fn_slack] app_token`,
 * shared by the Socket Mode receiver (at start) and `worker selftest`.
 */

/** Slack error codes that mean the token itself is wrong: retrying cannot help. */
const TOKEN_ERRORS = new Set([
  'not_allowed_token_type',
  'missing_scope',
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'user_removed_from_team',
  'team_disabled',
]);

/** The Slack error code of a failed Web API call (`@slack/web-api`'s platform error), if any. */
export function slackErrorCode(err: unknown): string | undefined {
  const data = (err as { data?: { error?: unknown } } | undefined)?.data;
  return typeof data?.error === 'string' ? data.error : undefined;
}

/** True when the app token can never open a connection as it is (fix the config). */
export function isAppTokenError(code: string | undefined): boolean {
  return code !== undefined && TOKEN_ERRORS.has(code);
}

/** A shape check before any call: a bot or user token given as the app token. */
export function appTokenShapeProblem(token: string): string | undefined {
  if (/^xox[bp]-/.test(token)) {
    return (
      `[fn_slack] app_token is a ${token.startsWith('xoxb-') ? 'bot' : 'user'} token (${token.slice(0, 4)}-…), not an app-level token: ` +
      "create one under the Slack app's Basic Information → App-Level Tokens with scope connections:write (it starts with xapp-)"
    );
  }
  if (!token.startsWith('xapp-'))
    return '[fn_slack] app_token is not an app-level token: it starts with xapp- (Basic Information → App-Level Tokens)';
  return undefined;
}

/** What to tell a person about a token error Slack answered. */
export function describeAppTokenError(code: string): string {
  switch (code) {
    case 'not_allowed_token_type':
      return (
        '[fn_slack] app_token is not an app-level token (Slack: not_allowed_token_type; a bot token given as app token?): ' +
        "use the xapp- token from the Slack app's Basic Information → App-Level Tokens"
      );
    case 'missing_scope':
      return (
        '[fn_slack] app_token lacks the scope connections:write (Slack: missing_scope): ' +
        'generate an app-level token with connections:write under Basic Information → App-Level Tokens'
      );
    case 'invalid_auth':
    case 'not_authed':
    case 'token_revoked':
    case 'token_expired':
      return `[fn_slack] app_token is not valid (Slack: ${code}): it was revoked or mistyped; generate a new one under Basic Information → App-Level Tokens`;
    default:
      return `[fn_slack] app_token cannot open a Socket Mode connection (Slack: ${code})`;
  }
}
