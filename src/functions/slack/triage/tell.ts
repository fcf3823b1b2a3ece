/**
 * Telling one person something only they see: `chat.postEphemeral` in the channel where
 * they acted. Best effort: a note that cannot be shown (the person left, the channel was
 * archived) is logged, and never undoes or repeats what was done.
 */
import type { Logger } from '../../../core/logging.js';
import type { CallOptions } from '../slack-client.js';
import type { SlackState } from '../state.js';
import { escapeSlackText } from '../format/index.js';

/** Sends `text` (plain: it is escaped here) to `userId` alone in `channelId`. */
export async function tellUser(
  state: SlackState,
  log: Logger,
  where: { channelId: string | undefined; userId: string | undefined },
  text: string,
  callOpts: CallOptions,
): Promise<void> {
  if (!where.channelId || !where.userId) {
    log.warn(`Could not tell a Slack user (no channel or user in the payload): ${text}`);
    return;
  }
  try {
    await state.client.call('chat.postEphemeral', { channel: where.channelId, user: where.userId, text: escapeSlackText(text) }, callOpts);
  } catch (err) {
    log.warn(`Could not tell ${where.userId} in ${where.channelId} "${text}": ${(err as Error).message}`);
  }
}
