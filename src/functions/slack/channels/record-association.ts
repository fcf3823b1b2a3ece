/**
 * Recording the incident's (or task's) channel association after its first post.
 */
import type { FunctionContext } from '../../../core/runtime/plugin.js';
import type { ConversationRow, ConversationTable } from '../store/conversations.js';
import type { ChannelInfo } from './channel-info.js';
import type { ChannelInputs } from './resolve.js';
import { describeTarget, resId } from './target.js';

/**
 * Records the association after the first successful post or upload. When another
 * invocation recorded one first, that one stays (insert-if-absent).
 */
export async function recordAssociation(
  ctx: FunctionContext,
  conversations: ConversationTable,
  inputs: ChannelInputs,
  channel: ChannelInfo,
  permalink: string | null,
  previous: ConversationRow | undefined,
): Promise<void> {
  const row: ConversationRow = {
    resId: resId(inputs.incidentId, inputs.taskId),
    incidentId: inputs.incidentId,
    taskId: inputs.taskId ?? null,
    channel: channel.name,
    channelId: channel.id,
    channelType: channel.isPrivate ? 'Private' : 'Public',
    permalink,
    time: new Date(),
    archived: false,
    archivedAt: null,
  };
  if (previous?.archived) {
    // The old channel was archived: the new one takes over the association.
    await conversations.replace(row);
    return;
  }
  if (previous) return;
  const { inserted } = await conversations.insertIfAbsent(row);
  if (inserted) {
    await ctx.status(`Associated #${channel.name} with ${describeTarget(inputs.incidentId, inputs.taskId)}`);
  }
}
