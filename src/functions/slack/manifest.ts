/**
 * The Slack app manifest for fn_slack: paste it into api.slack.com/apps → "Create New
 * App" → "From an app manifest", install the app and put its Bot User OAuth Token
 * (xoxb-…) in SLACK_BOT_TOKEN.
 *
 * Field names follow Slack's app manifest reference (`display_information`,
 * `features.bot_user`, `oauth_config.scopes.bot`, `settings`). The worker only calls
 * the Web API, so the manifest asks for no events, no interactivity, no Socket Mode
 * and no token rotation (a rotating token would expire in the config file).
 *
 * Written by hand rather than with a YAML library: every value is emitted as a quoted
 * YAML scalar (JSON string syntax is valid YAML), so names with `:` or `#` are safe.
 */
import { REQUIRED_SCOPES } from './scopes.js';

export const DEFAULT_APP_NAME = 'SOAR Slack Worker';

/** Slack's limits: app name up to 35 characters, bot display name up to 80. */
const MAX_APP_NAME = 35;
const MAX_DISPLAY_NAME = 80;

export interface SlackManifestOptions {
  /** The app's name in Slack (`display_information.name`); defaults to {@link DEFAULT_APP_NAME}. */
  appName?: string;
  /** Bot scopes to request; defaults to exactly the scopes fn_slack needs ({@link REQUIRED_SCOPES}). */
  scopes?: string[];
}

/** A YAML double-quoted scalar (JSON string syntax is a subset of YAML's). */
function q(value: string): string {
  return JSON.stringify(value);
}

/**
 * The bot user's display name from the app name: Slack allows `a-z`, `0-9`, `-`, `_`
 * and `.` there, so `SOAR Slack Worker` becomes `soar-slack-worker`.
 */
export function botDisplayName(appName: string): string {
  const slug = appName
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_DISPLAY_NAME);
  return slug || 'soar-worker';
}

/** The manifest as YAML text (ends with a newline). */
export function slackAppManifest(opts: SlackManifestOptions = {}): string {
  const appName = (opts.appName ?? DEFAULT_APP_NAME).trim();
  if (!appName) throw new RangeError('The Slack app name must not be empty');
  if (appName.length > MAX_APP_NAME) {
    throw new RangeError(`The Slack app name "${appName}" is ${appName.length} characters; Slack allows at most ${MAX_APP_NAME}`);
  }
  const scopes = [...new Set(opts.scopes ?? Object.keys(REQUIRED_SCOPES))].sort();
  for (const scope of scopes) {
    if (!/^[a-z][a-z0-9_.:-]*$/.test(scope)) throw new RangeError(`"${scope}" is not a Slack scope name`);
  }

  const lines = [
    '# Slack app manifest for soar-slack-worker (fn_slack).',
    '# Create the app from it at https://api.slack.com/apps ("From an app manifest"), install',
    '# it to the workspace and set SLACK_BOT_TOKEN to its Bot User OAuth Token (xoxb-...).',
    'display_information:',
    `  name: ${q(appName)}`,
    `  description: ${q('Posts SOAR incidents to Slack, works their channels and archives them')}`,
    'features:',
    '  bot_user:',
    `    display_name: ${q(botDisplayName(appName))}`,
    '    always_online: false',
    'oauth_config:',
    '  scopes:',
  ];
  if (scopes.length === 0) {
    lines.push('    bot: []');
  } else {
    lines.push('    bot:');
    for (const scope of scopes) {
      const why = REQUIRED_SCOPES[scope];
      lines.push(`      - ${q(scope)}${why ? `  # ${why.replace(/[\r\n]+/g, ' ')}` : ''}`);
    }
  }
  lines.push(
    'settings:',
    '  org_deploy_enabled: false',
    '  socket_mode_enabled: false',
    '  token_rotation_enabled: false',
  );
  return `${lines.join('\n')}\n`;
}
