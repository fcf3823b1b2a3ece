/**
 * fn_slack: the Slack function package.
 *
 * - slack_post_message    → post-message.ts
 * - slack_post_attachment → post-attachment.ts
 * - slack_archive_channel → archive-channel.ts
 * - the responder verbs (slack_update_message, slack_pin_message, …) → one file each,
 *   sharing channel resolution and email lookups through verbs.ts
 * Handlers import shared modules, never each other: channels/ (cache, lookup, resolution,
 * invites, members, association), inputs.ts (reading inputs), reconcile.ts (what an earlier
 * attempt did). Slack calls, retries and paging: slack-client.ts, with a result type per
 * method in slack-types.ts and Slack's errors in slack-errors.ts. Message layout: format/.
 * Export format: export.ts.
 * CLI commands (`worker slack-manifest`): commands.ts.
 * slack_ask (questions with buttons, answered later): ask/.
 * Input schemas: customizations/fn_slack/functions/*.json (the runner validates with them).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FunctionDefinition, FunctionHandler, JsonSchema } from '../../core/runtime/plugin.js';
import { definePlugin } from '../../core/runtime/plugin.js';
import { packageRoot, packageVersion } from '../../core/package-root.js';
import { addBookmark } from './add-bookmark.js';
import { addReaction } from './add-reaction.js';
import { archiveChannel } from './archive-channel.js';
import { getConversation } from './get-conversation.js';
import { inviteUsers } from './invite-users.js';
import { lookupUser } from './lookup-user.js';
import { pinMessage } from './pin-message.js';
import { removeUsers } from './remove-users.js';
import { renameChannel } from './rename-channel.js';
import { sendDirectMessage } from './send-direct-message.js';
import { setChannelTopic } from './set-channel-topic.js';
import { updateMessage } from './update-message.js';
import { SLACK_CONFIG_SCHEMA, type SlackConfig } from './config.js';
import { postAttachment } from './post-attachment.js';
import { postMessage } from './post-message.js';
import { createSlackState, type SlackState } from './state.js';
import { CONVERSATIONS_TABLE, SqlConversationTable } from './store/conversations.js';
import { withSoarDataTable } from './store/soar-data-table.js';
import { missingScopes } from './scopes.js';
import { slackCommands } from './commands.js';
import { slackAsk } from './ask/ask-function.js';
import { startAsks, stopAsks } from './ask/ask-setup.js';
import { ASK_TABLE_DEFINITION } from './ask/ask-table.js';
import { inboundFunction } from './inbound/inbound-function.js';
import { checkInboundConfig, inboundEnabled, inboundListeners, inboundQueues } from './inbound/listeners.js';
import { checkAppToken } from './inbound/selftest.js';

export const SLACK_PACKAGE = 'fn_slack';

/** A packaged function definition file (customizations/fn_slack/functions/NAME.json). */
interface FunctionFile {
  name: string;
  display_name: string;
  description: string;
  destination: string;
  input_schema: JsonSchema;
}

export function customizationsDir(): string {
  return path.join(packageRoot(), 'customizations', SLACK_PACKAGE);
}

function loadDefinition(name: string, handler: FunctionHandler<SlackState>): FunctionDefinition<SlackState> {
  const file = path.join(customizationsDir(), 'functions', `${name}.json`);
  const def = JSON.parse(fs.readFileSync(file, 'utf8')) as FunctionFile;
  return { name: def.name, displayName: def.display_name, description: def.description, inputSchema: def.input_schema, handler };
}

export const slackPlugin = definePlugin<SlackConfig, SlackState>({
  packageName: SLACK_PACKAGE,
  packageVersion: packageVersion(),
  configSection: 'fn_slack',
  configSchema: SLACK_CONFIG_SCHEMA,
  destination: 'fn_slack',
  customizationsDir: customizationsDir(),
  functions: [
    loadDefinition('slack_post_message', postMessage),
    loadDefinition('slack_post_attachment', postAttachment),
    loadDefinition('slack_archive_channel', archiveChannel),
    loadDefinition('slack_update_message', updateMessage),
    loadDefinition('slack_set_channel_topic', setChannelTopic),
    loadDefinition('slack_rename_channel', renameChannel),
    loadDefinition('slack_invite_users', inviteUsers),
    loadDefinition('slack_remove_users', removeUsers),
    loadDefinition('slack_pin_message', pinMessage),
    loadDefinition('slack_add_reaction', addReaction),
    loadDefinition('slack_add_bookmark', addBookmark),
    loadDefinition('slack_send_direct_message', sendDirectMessage),
    loadDefinition('slack_lookup_user', lookupUser),
    loadDefinition('slack_get_conversation', getConversation),
    loadDefinition('slack_ask', slackAsk),
    // Internal: run only from [fn_slack] inbound_queue (inbound/inbound-function.ts).
    inboundFunction,
  ],
  commands: slackCommands,
  tables: [CONVERSATIONS_TABLE, ASK_TABLE_DEFINITION],
  queues: inboundQueues,
  listeners: inboundListeners,
  async setup(ctx) {
    checkInboundConfig(ctx.config);
    // Each Retry-After wait is counted in the worker's metrics (when it has them).
    const metrics = ctx.metrics;
    const conversations = withSoarDataTable(new SqlConversationTable(ctx.store.sql), ctx.platform, ctx.log);
    const state = createSlackState(
      ctx.config,
      ctx.log,
      conversations,
      metrics ? (method, seconds) => metrics.rateLimitWait(method, seconds) : undefined,
    );
    startAsks(state, ctx);
    return state;
  },
  async teardown(state) {
    await stopAsks(state);
  },
  async selftest(state) {
    try {
      const res = await state.client.call('auth.test', {});
      const granted = res.response_metadata?.scopes ?? [];
      const missing = missingScopes(granted, inboundEnabled(state.config));
      if (missing.length) {
        return { state: 'failure', reason: `The token lacks scope(s) ${missing.join(', ')}: add them to the Slack app and reinstall it` };
      }
      const connected = `Connected to Slack workspace ${String(res.team)} as ${String(res.user)}`;
      if (state.config.app_token === '') return { state: 'success', reason: connected };
      const app = await checkAppToken(state.config.app_token, state.config.api_url, state.config.timeout * 1000, state.log);
      return app.ok ? { state: 'success', reason: `${connected}; ${app.reason}` } : { state: 'failure', reason: app.reason };
    } catch (err) {
      return { state: 'failure', reason: (err as Error).message };
    }
  },
});

export default slackPlugin;
