/**
 * Resolving the channel a function acts on (DESIGN.md "Channel resolution"): by id, by
 * name (created when missing), or the one associated with the incident or task; and
 * acting on it again when the cached info it was resolved from turns out stale.
 */
import { FunctionError } from '../../../core/runtime/errors.js';
import type { FunctionContext } from '../../../core/runtime/plugin.js';
import type { ConversationRow } from '../store/conversations.js';
import { ArchivedChannelError, archivedAssociationError, learnArchived } from '../association.js';
import { isSlackError } from '../slack-errors.js';
import { toChannelInfo, type ChannelInfo } from './channel-info.js';
import { cachedChannelById, findChannelByName, findChannelByNameCached, isStaleChannelError, type ChannelDeps } from './lookup.js';
import { ensureMember } from './membership.js';
import { normaliseChannelName } from './names.js';
import { describeTarget, resId } from './target.js';

export interface ResolvedChannel {
  channel: ChannelInfo;
  created: boolean;
  /** The association of the incident/task before this invocation, if any. */
  association: ConversationRow | undefined;
  /** The channel's info came from the cache (Slack was not asked this time). */
  cached: boolean;
}

export interface ChannelInputs {
  incidentId: number;
  taskId?: number | undefined;
  slackChannel?: string | undefined;
  slackChannelId?: string | undefined;
  isPrivate?: boolean | undefined;
  /** false: a channel named in slack_channel must exist (functions that act on one, not post to it). */
  create?: boolean | undefined;
}

function checkUsable(channel: ChannelInfo, inputs: ChannelInputs, explicitPrivacy: boolean): void {
  if (channel.isArchived) {
    throw new ArchivedChannelError(
      `Slack channel #${channel.name} (${channel.id}) is archived: unarchive it in Slack, or give another slack_channel`,
      channel.id,
    );
  }
  if (explicitPrivacy && inputs.isPrivate !== undefined && inputs.isPrivate !== channel.isPrivate) {
    throw new FunctionError(
      `Slack channel #${channel.name} is ${channel.isPrivate ? 'private' : 'public'} but slack_is_channel_private is ${inputs.isPrivate}: ` +
        `set slack_is_channel_private to ${channel.isPrivate}, or choose another channel name`,
      'slack_channel_privacy_mismatch',
    );
  }
}

/**
 * Resolves the channel to post to (DESIGN.md "Channel resolution"): by id, by name
 * (created when missing), or the one associated with the incident or task.
 */
export async function resolveChannel(ctx: FunctionContext, deps: ChannelDeps, inputs: ChannelInputs): Promise<ResolvedChannel> {
  const association = await deps.conversations.get(resId(inputs.incidentId, inputs.taskId));
  try {
    return await resolveWith(ctx, deps, inputs, association);
  } catch (err) {
    if (err instanceof ArchivedChannelError) await learnArchived(ctx, deps.conversations, inputs, association, err.channelId);
    throw err;
  }
}

async function resolveWith(
  ctx: FunctionContext,
  deps: ChannelDeps,
  inputs: ChannelInputs,
  association: ConversationRow | undefined,
): Promise<ResolvedChannel> {
  const target = describeTarget(inputs.incidentId, inputs.taskId);
  let channel: ChannelInfo;
  let created = false;
  let cached = false;

  if (inputs.slackChannelId) {
    ({ info: channel, cached } = await cachedChannelById(deps, inputs.slackChannelId));
    checkUsable(channel, inputs, true);
    await ctx.status(`Found channel #${channel.name}`);
  } else if (inputs.slackChannel) {
    const name = normaliseChannelName(inputs.slackChannel);
    // One creator per name at a time: a second invocation waits, then finds the channel.
    const result = await ctx.store.withLock(`slack-channel:${name}`, () => findOrCreate(ctx, deps, name, inputs));
    channel = result.channel;
    created = result.created;
    cached = result.cached;
  } else {
    if (!association) {
      throw new FunctionError(
        `No Slack channel is associated with ${target} yet: give slack_channel (with slack_is_channel_private) or slack_channel_id`,
        'slack_no_channel',
      );
    }
    if (association.archived) throw archivedAssociationError(association.channel, association.channelId, target);
    ({ info: channel, cached } = await cachedChannelById(deps, association.channelId));
    if (channel.isArchived) throw archivedAssociationError(channel.name || association.channel, channel.id, target);
    checkUsable(channel, inputs, false);
    await ctx.status(`Found channel #${channel.name} associated with ${target}`);
  }

  if (association && !association.archived && association.channelId !== channel.id) {
    await ctx.status(`Posting to #${channel.name}, which is not the channel associated with ${target} (#${association.channel})`);
  }
  await ensureMember(deps, channel);
  return { channel, created, association, cached };
}

/**
 * Resolves the channel, then runs `use` (the first calls that act on it). When the
 * channel's info came from the cache and Slack answers `use` with is_archived,
 * channel_not_found or not_in_channel, the cached info was stale: it is dropped and the
 * channel resolved again from Slack, which then says what an uncached lookup would have
 * (archived, gone, or joins again), and `use` runs once more.
 */
export async function withResolvedChannel<T>(
  ctx: FunctionContext,
  deps: ChannelDeps,
  inputs: ChannelInputs,
  use: (resolved: ResolvedChannel) => Promise<T>,
): Promise<{ resolved: ResolvedChannel; value: T }> {
  const resolved = await resolveChannel(ctx, deps, inputs);
  try {
    return { resolved, value: await use(resolved) };
  } catch (err) {
    const archived = isSlackError(err, 'is_archived');
    if (archived) {
      await learnArchived(ctx, deps.conversations, inputs, resolved.association, resolved.channel.id);
      // The info just cached says live: drop it, so the next post by id or name sees the archive.
      if (!resolved.cached) deps.cache.forgetChannel(resolved.channel.id);
    }
    if (!resolved.cached || !isStaleChannelError(err)) {
      // Archived since the lookup: a post by association says what to do about it.
      if (archived && !inputs.slackChannel && !inputs.slackChannelId) {
        throw archivedAssociationError(resolved.channel.name, resolved.channel.id, describeTarget(inputs.incidentId, inputs.taskId));
      }
      throw err;
    }
    deps.cache.forgetChannel(resolved.channel.id);
    ctx.log.debug(`Cached info of channel ${resolved.channel.id} was stale (${err.slackError}); looking it up again`);
    const fresh = await resolveChannel(ctx, deps, inputs);
    return { resolved: fresh, value: await use(fresh) };
  }
}

async function findOrCreate(
  ctx: FunctionContext,
  deps: ChannelDeps,
  name: string,
  inputs: ChannelInputs,
): Promise<{ channel: ChannelInfo; created: boolean; cached: boolean }> {
  const found = await findChannelByNameCached(deps, name);
  if (found) {
    const existing = found.info;
    checkUsable(existing, inputs, true);
    await ctx.status(`Found channel #${existing.name}`);
    return { channel: existing, created: false, cached: found.cached };
  }
  if (inputs.create === false) {
    throw new FunctionError(
      `Slack channel #${name} was not found, or the app cannot see it (a private channel must have the app as a member): check slack_channel`,
      'slack_channel_not_found',
    );
  }
  if (inputs.isPrivate === undefined) {
    throw new FunctionError(
      `Slack channel #${name} does not exist: set slack_is_channel_private (true or false) so that it can be created`,
      'slack_privacy_required',
    );
  }
  try {
    const res = await deps.client.call(
      'conversations.create',
      { name, is_private: inputs.isPrivate },
      { ...deps.callOpts, what: `#${name}` },
    );
    const channel = toChannelInfo(res.channel);
    channel.isMember = true;
    deps.cache.set(channel.name, channel.id);
    deps.cache.setInfo(channel);
    await ctx.status(`Created ${channel.isPrivate ? 'private' : 'public'} channel #${channel.name}`);
    return { channel, created: true, cached: false };
  } catch (err) {
    if (!isSlackError(err, 'name_taken')) throw err;
  }
  // Taken: another worker created it a moment ago, or a channel we cannot use holds it.
  deps.cache.delete(name);
  const holder = await findChannelByName(deps, name);
  if (holder && !holder.isArchived) {
    checkUsable(holder, inputs, true);
    await ctx.status(`Found channel #${holder.name}`);
    return { channel: holder, created: false, cached: false };
  }
  if (holder?.isArchived) {
    throw new FunctionError(
      `The name #${name} belongs to an archived Slack channel: unarchive it in Slack, or choose another slack_channel`,
      'slack_name_taken_archived',
    );
  }
  throw new FunctionError(
    `The name #${name} is taken by a Slack channel the app cannot see (a private channel it is not in): invite the app there, or choose another slack_channel`,
    'slack_name_taken',
  );
}
