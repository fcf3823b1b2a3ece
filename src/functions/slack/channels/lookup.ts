/**
 * Finding a channel in Slack, by id or by name, through the channel cache.
 */
import type { CallOptions, SlackClient } from '../slack-client.js';
import { isSlackError, type SlackApiError } from '../slack-errors.js';
import type { ChannelCache } from './cache.js';
import { toChannelInfo, type ChannelInfo } from './channel-info.js';
import type { ConversationTable } from '../store/conversations.js';

/**
 * What the channel functions need: the client, the cache, the invocation's call options,
 * and the incident/task ↔ channel associations (the plugin's table in the worker's store).
 */
export interface ChannelDeps {
  client: SlackClient;
  cache: ChannelCache;
  callOpts: CallOptions;
  conversations: ConversationTable;
}

/**
 * Slack errors that say the channel is not what the cached info said (archived, deleted,
 * or the app was removed from it). A post that gets one with cached info drops the entry
 * and resolves the channel again without the cache, so the caller sees exactly what an
 * uncached lookup would have said.
 */
export function isStaleChannelError(err: unknown): err is SlackApiError {
  return isSlackError(err, 'is_archived', 'channel_not_found', 'not_in_channel');
}

/** conversations.info by id (always asks Slack; what it learns is cached). */
export async function channelById(deps: ChannelDeps, id: string): Promise<ChannelInfo> {
  const res = await deps.client.call('conversations.info', { channel: id }, { ...deps.callOpts, what: id });
  const info = toChannelInfo(res.channel);
  if (info.name) deps.cache.set(info.name, info.id);
  deps.cache.setInfo(info);
  return info;
}

/**
 * The channel's info from the cache while it is fresh (`channel_cache_ttl`), else
 * conversations.info. `cached` tells the caller whether Slack was asked.
 */
export async function cachedChannelById(deps: ChannelDeps, id: string): Promise<{ info: ChannelInfo; cached: boolean }> {
  const hit = deps.cache.info(id);
  if (hit) return { info: hit, cached: true };
  return { info: await channelById(deps, id), cached: false };
}

/**
 * Finds a channel by name: the cache first (verified), else one pass over
 * `conversations.list` that also fills the cache with every name it sees.
 */
export async function findChannelByName(deps: ChannelDeps, name: string): Promise<ChannelInfo | undefined> {
  return (await findChannelByNameCached(deps, name))?.info;
}

/** {@link findChannelByName}, also saying whether the info came from the cache. */
export async function findChannelByNameCached(
  deps: ChannelDeps,
  name: string,
): Promise<{ info: ChannelInfo; cached: boolean } | undefined> {
  const cached = deps.cache.get(name);
  if (cached) {
    const hit = deps.cache.info(cached);
    if (hit && hit.name === name) return { info: hit, cached: true };
    try {
      const info = await channelById(deps, cached);
      if (info.name === name) return { info, cached: false };
    } catch (err) {
      if (!isSlackError(err, 'channel_not_found')) throw err;
    }
    deps.cache.delete(name);
  }
  let found: ChannelInfo | undefined;
  const pages = deps.client.paginate(
    'conversations.list',
    { types: 'public_channel,private_channel', exclude_archived: false, limit: 1000 },
    deps.callOpts,
  );
  for await (const page of pages) {
    for (const c of page.channels ?? []) {
      const info = toChannelInfo(c);
      deps.cache.set(info.name, info.id);
      if (info.name === name) found = info;
    }
    // The rest of the page has filled the cache; the following pages are not needed.
    if (found) break;
  }
  if (found) deps.cache.setInfo(found);
  return found ? { info: found, cached: false } : undefined;
}
