/**
 * `worker selftest`'s check of `[fn_slack] app_token`: `apps.connections.open`, the call
 * Socket Mode starts with (the URL it returns is not used; it expires unused). A bot
 * token given as the app token and a token without `connections:write` fail with
 * distinct reasons that say what to fix.
 */
import type { Logger } from '../../../core/logging.js';
import { SlackClient } from '../slack-client.js';
import { SlackApiError } from '../slack-errors.js';
import { appTokenShapeProblem, describeAppTokenError } from './app-token.js';

export async function checkAppToken(appToken: string, apiUrl: string, timeoutMs: number, log: Logger): Promise<{ ok: boolean; reason: string }> {
  const shape = appTokenShapeProblem(appToken);
  if (shape) return { ok: false, reason: shape };
  // Its own client: the bot's carries the bot token. No pacing is needed for one call.
  const client = new SlackClient({ token: appToken, apiUrl, log, timeoutMs, retryBudgetMs: timeoutMs });
  try {
    await client.call('apps.connections.open', {});
    return { ok: true, reason: 'the app token opens Socket Mode connections (apps.connections.open)' };
  } catch (err) {
    if (err instanceof SlackApiError) return { ok: false, reason: describeAppTokenError(err.slackError) };
    return { ok: false, reason: `apps.connections.open at ${apiUrl} failed: ${(err as Error).message}` };
  }
}
