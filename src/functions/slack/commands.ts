/**
 * The commands fn_slack adds to `worker` (registered by cli.ts through the plugin's
 * `commands`): `slack-manifest` prints the Slack app manifest for the scopes fn_slack needs.
 */
import type { PluginCommand } from '../../core/runtime/plugin.js';
import { DEFAULT_APP_NAME, slackAppManifest } from './manifest.js';
import type { SlackConfig } from './config.js';

export const slackCommands: PluginCommand<SlackConfig>[] = [
  {
    name: 'slack-manifest',
    description: 'Print a Slack app manifest (YAML): the bot scopes fn_slack needs, and Socket Mode, events, interactivity and the slash command',
    options: (o) => {
      o.option('name', { type: 'string', default: DEFAULT_APP_NAME, describe: 'the Slack app name' });
      o.option('inbound', {
        type: 'string',
        choices: ['socket', 'http', 'off'],
        default: 'socket',
        describe: 'how Slack sends events, clicks and the command: Socket Mode (app_token), the HTTP Events API (--request-url), or not at all',
      });
      o.option('request-url', { type: 'string', describe: 'with --inbound http: the https URL Slack posts to (the proxy in front of events_port)' });
      o.option('command', { type: 'string', default: '/soar', describe: 'the slash command, as [fn_slack] command' });
      o.example('$0 slack-manifest --name "SOAR Night Shift" > manifest.yml', 'paste it at api.slack.com/apps, "From an app manifest"');
    },
    // No config needed: the manifest depends only on what fn_slack calls.
    async handler(ctx) {
      const requestUrl = ctx.args.requestUrl ?? ctx.args['request-url'];
      ctx.stdout(
        slackAppManifest({
          appName: String(ctx.args.name),
          inbound: String(ctx.args.inbound ?? 'socket') as 'socket' | 'http' | 'off',
          command: String(ctx.args.command ?? '/soar'),
          ...(typeof requestUrl === 'string' ? { requestUrl } : {}),
        }),
      );
    },
  },
];
