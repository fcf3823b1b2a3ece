/**
 * Channels for the fn_slack functions, one job per module:
 * - channel-info.ts: what a function knows of a channel;
 * - names.ts: Slack's channel-name rules;
 * - target.ts: the incident's or task's key and name;
 * - cache.ts: names, infos and member lists remembered between invocations;
 * - lookup.ts: finding a channel by id or name;
 * - membership.ts: joining, and the channel's members;
 * - invites.ts: inviting people by email;
 * - resolve.ts: which channel a function acts on (and again when the cache was stale);
 * - record-association.ts: the incident's channel, recorded after the first post.
 */
export { toChannelInfo, type ChannelInfo } from './channel-info.js';
export { CHANNEL_NAME, normaliseChannelName } from './names.js';
export { describeTarget, resId } from './target.js';
export { ChannelCache } from './cache.js';
export { cachedChannelById, channelById, findChannelByName, isStaleChannelError, type ChannelDeps } from './lookup.js';
export { channelMembers, ensureMember } from './membership.js';
export { inviteParticipants } from './invites.js';
export { resolveChannel, withResolvedChannel, type ChannelInputs, type ResolvedChannel } from './resolve.js';
export { recordAssociation } from './record-association.js';
