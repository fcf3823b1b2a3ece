/**
 * What the incident's (or task's) channel association learns from Slack: a channel that
 * Slack says is archived (on lookup, or `is_archived` on a post) is marked archived in
 * the association, as `slack_archive_channel` leaves it. Posts by association are then
 * refused with what to do (give `slack_channel`), and a post with `slack_channel`
 * replaces the archived association (`recordAssociation`).
 */
import { FunctionError } from '../../core/runtime/errors.js';
import type { FunctionContext } from '../../core/runtime/plugin.js';
import type { ConversationRow, ConversationTable } from './store/conversations.js';
import { describeTarget } from './channels/target.js';

/** A channel Slack reports archived; carries its id so the association can learn it. */
export class ArchivedChannelError extends FunctionError {
  constructor(
    message: string,
    readonly channelId: string,
  ) {
    super(message, 'slack_channel_archived');
  }
}

/** The refusal of a post by association whose channel is archived, saying what to do. */
export function archivedAssociationError(channelName: string, channelId: string, target: string): ArchivedChannelError {
  return new ArchivedChannelError(
    `The Slack channel #${channelName} associated with ${target} was archived: give slack_channel to open a new channel, ` +
      `which then replaces #${channelName} as the channel of ${target}`,
    channelId,
  );
}

/**
 * Slack says the channel is archived: when it is the incident's (or task's) associated
 * channel, the association learns it (archived, as `slack_archive_channel` leaves it), so
 * that later posts by association get the clear refusal without asking Slack, and a post
 * with `slack_channel` replaces it (see channels/record-association.ts). Best effort: the
 * caller's answer is the refusal either way.
 */
export async function learnArchived(
  ctx: FunctionContext,
  conversations: ConversationTable,
  inputs: { incidentId: number; taskId?: number | undefined },
  association: ConversationRow | undefined,
  channelId: string,
): Promise<void> {
  if (!association || association.archived || association.channelId !== channelId) return;
  try {
    await conversations.markArchived(association.resId, new Date());
    ctx.log.info(`Slack channel #${association.channel} of ${describeTarget(inputs.incidentId, inputs.taskId)} is archived; association marked archived`);
  } catch (err) {
    ctx.log.warn(`Could not mark the association ${association.resId} archived: ${(err as Error).message}`);
  }
}
