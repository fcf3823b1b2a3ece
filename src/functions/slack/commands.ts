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
    description: 'Print a Slack app manifest (YAML) with exactly the bot scopes the functions need',
    options: (o) => {
      o.option('name', { type: 'string', default: DEFAULT_APP_NAME, describe: 'the Slack app name' });
      o.example('$0 slack-manifest --name "SOAR Night Shift" > manifest.yml', 'paste it at api.slack.com/apps, "From an app manifest"');
    },
    // No config needed: the manifest depends only on what fn_slack calls.
    async handler(ctx) {
      ctx.stdout(slackAppManifest({ appName: String(ctx.args.name) }));
    },
  },
];
