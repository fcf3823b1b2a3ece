/**
 * What the functions need to know of a channel, read from Slack's channel object.
 */
import type { SlackChannel } from '../slack-types.js';

export interface ChannelInfo {
  id: string;
  name: string;
  isPrivate: boolean;
  isArchived: boolean;
  isMember: boolean;
}

export function toChannelInfo(c: SlackChannel): ChannelInfo {
  return {
    id: String(c.id),
    name: String(c.name ?? ''),
    isPrivate: Boolean(c.is_private ?? c.is_group),
    isArchived: Boolean(c.is_archived),
    isMember: Boolean(c.is_member),
  };
}
