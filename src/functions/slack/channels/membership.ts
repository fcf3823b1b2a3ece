/**
 * The app's membership of a channel, and the channel's members.
 */
import { FunctionError } from '../../../core/runtime/errors.js';
import type { ChannelInfo } from './channel-info.js';
import type { ChannelDeps } from './lookup.js';

/** Makes sure the app can post: joins a public channel it is not in; a private one must invite it. */
export async function ensureMember(deps: ChannelDeps, channel: ChannelInfo): Promise<void> {
  if (channel.isMember) return;
  if (channel.isPrivate) {
    throw new FunctionError(
      `The Slack app is not a member of the private channel #${channel.name}: invite it there (/invite @<app name>) and run the function again`,
      'slack_not_in_channel',
    );
  }
  await deps.client.call('conversations.join', { channel: channel.id }, { ...deps.callOpts, what: `#${channel.name}` });
  channel.isMember = true;
  deps.cache.setInfo(channel);
  deps.cache.forgetMembers(channel.id);
}

/**
 * Every member id of a channel (paged), from the cache while fresh (`channel_cache_ttl`;
 * dropped when this worker invites or joins).
 */
export async function channelMembers(deps: ChannelDeps, channelId: string): Promise<string[]> {
  const hit = deps.cache.members(channelId);
  if (hit) return hit;
  return deps.cache.sharedMemberLookup(channelId, async () => {
    const members: string[] = [];
    for await (const page of deps.client.paginate('conversations.members', { channel: channelId, limit: 1000 }, deps.callOpts)) {
      members.push(...(page.members ?? []));
    }
    return members;
  });
}
