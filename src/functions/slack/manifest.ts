/**
 * The Slack app manifest for fn_slack: paste it into api.slack.com/apps → "Create New
 * App" → "From an app manifest", install the app and put its Bot User OAuth Token
 * (xoxb-…) in SLACK_BOT_TOKEN.
 *
 * Field names follow Slack's app manifest reference (`display_information`,
 * `features.bot_user`, `features.slash_commands`, `oauth_config.scopes.bot`,
 * `settings.event_subscriptions`, `settings.interactivity`, `settings`). By default the
 * app receives the inbound half over Socket Mode (`socket_mode_enabled`, no public URL):
 * the event subscriptions mirroring and commands need, interactivity (buttons, modals)
 * and the slash command. `inbound: 'http'` names a Request URL instead; `inbound: 'off'`
 * gives the outbound-only app of earlier versions. No token rotation: a rotating token
 * would expire in the config file.
 *
 * Written by hand rather than with a YAML library: every value is emitted as a quoted
 * YAML scalar (JSON string syntax is valid YAML), so names with `:` or `#` are safe.
 */
import { INBOUND_SCOPES, REQUIRED_SCOPES } from './scopes.js';

/** The bot events the inbound half subscribes to: channel, private channel and DM messages, and @mentions. */
export const BOT_EVENTS = ['app_mention', 'message.channels', 'message.groups', 'message.im'] as const;

export const DEFAULT_APP_NAME = 'SOAR Slack Worker';

/** Slack's limits: app name up to 35 characters, bot display name up to 80. */
const MAX_APP_NAME = 35;
const MAX_DISPLAY_NAME = 80;

export interface SlackManifestOptions {
  /** The app's name in Slack (`display_information.name`); defaults to {@link DEFAULT_APP_NAME}. */
  appName?: string;
  /** Bot scopes to request; defaults to exactly the scopes fn_slack needs ({@link REQUIRED_SCOPES}, plus INBOUND_SCOPES unless inbound is off). */
  scopes?: string[];
  /** How Slack sends events: over Socket Mode (default), to `requestUrl`, or not at all. */
  inbound?: 'socket' | 'http' | 'off';
  /** The https URL Slack posts events, interactions and the command to (inbound = http). */
  requestUrl?: string;
  /** The slash command (default /soar), as `[fn_slack] command`. */
  command?: string;
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
  const inbound = opts.inbound ?? 'socket';
  if (inbound === 'http' && !/^https:\/\/\S+$/.test(opts.requestUrl ?? '')) {
    throw new RangeError('An HTTP Events API app needs its Request URL, an https:// URL (Slack posts only to https)');
  }
  const command = opts.command ?? '/soar';
  if (!/^\/[a-z0-9_-]{1,31}$/.test(command)) throw new RangeError(`"${command}" is not a slash command Slack accepts (e.g. /soar)`);
  const why = { ...REQUIRED_SCOPES, ...(inbound === 'off' ? {} : INBOUND_SCOPES) };
  const scopes = [...new Set(opts.scopes ?? Object.keys(why))].sort();
  for (const scope of scopes) {
    if (!/^[a-z][a-z0-9_.:-]*$/.test(scope)) throw new RangeError(`"${scope}" is not a Slack scope name`);
  }

  const lines = [
    '# Slack app manifest for soar-slack-worker (fn_slack).',
    '# Create the app from it at https://api.slack.com/apps ("From an app manifest"), install',
    '# it to the workspace and set SLACK_BOT_TOKEN to its Bot User OAuth Token (xoxb-...).',
    ...(inbound === 'socket'
      ? [
          '# Socket Mode: also generate an app-level token with scope connections:write (Basic',
          '# Information -> App-Level Tokens) and set SLACK_APP_TOKEN to it ([fn_slack] app_token).',
        ]
      : []),
    ...(inbound === 'http' ? ["# HTTP Events API: put the app's Signing Secret in SLACK_SIGNING_SECRET ([fn_slack] signing_secret)."] : []),
    'display_information:',
    `  name: ${q(appName)}`,
    `  description: ${q('Posts SOAR incidents to Slack, works their channels and archives them')}`,
    'features:',
    '  bot_user:',
    `    display_name: ${q(botDisplayName(appName))}`,
    '    always_online: false',
  ];
  if (inbound !== 'off') {
    lines.push(
      '  slash_commands:',
      `    - command: ${q(command)}`,
      `      description: ${q('Look up a SOAR incident')}`,
      `      usage_hint: ${q('incident 2103 | help')}`,
      '      should_escape: false',
      ...(inbound === 'http' ? [`      url: ${q(opts.requestUrl!)}`] : []),
    );
  }
  lines.push('oauth_config:', '  scopes:');
  if (scopes.length === 0) {
    lines.push('    bot: []');
  } else {
    lines.push('    bot:');
    for (const scope of scopes) {
      const reason = why[scope];
      lines.push(`      - ${q(scope)}${reason ? `  # ${reason.replace(/[\r\n]+/g, ' ')}` : ''}`);
    }
  }
  lines.push('settings:');
  if (inbound !== 'off') {
    const url = inbound === 'http' ? [`    request_url: ${q(opts.requestUrl!)}`] : [];
    lines.push('  event_subscriptions:', ...url, '    bot_events:', ...BOT_EVENTS.map((e) => `      - ${q(e)}`));
    lines.push('  interactivity:', '    is_enabled: true', ...url);
  }
  lines.push('  org_deploy_enabled: false', `  socket_mode_enabled: ${inbound === 'socket'}`, '  token_rotation_enabled: false');
  return `${lines.join('\n')}\n`;
}
