/**
 * Channel resolution, participants and the incident ↔ channel association, shared by
 * slack_post_message and slack_post_attachment.
 */
import { FunctionError } from '../../core/errors.js';
import type { FunctionContext } from '../../core/plugin.js';
import type { ConversationRow } from '../../core/store/store.js';
import type { SlackClient, CallOptions, SlackResult } from './slack-client.js';
import { SlackApiError } from './slack-errors.js';

/** What the functions need to know of a channel. */
export interface ChannelInfo {
  id: string;
  name: string;
  isPrivate: boolean;
  isArchived: boolean;
  isMember: boolean;
}

/** Slack's channel-name rules: lowercase letters, digits, hyphens, underscores; ≤ 80. */
export const CHANNEL_NAME = /^[a-z0-9_-]{1,80}$/;

/** The data table key: `RES-<incident>` or `RES-<incident>-<task>`. */
export function resId(incidentId: number, taskId?: number): string {
  return taskId ? `RES-${incidentId}-${taskId}` : `RES-${incidentId}`;
}

/** "incident 2103" or "task 7 of incident 2103", for messages. */
export function describeTarget(incidentId: number, taskId?: number): string {
  return taskId ? `task ${taskId} of incident ${incidentId}` : `incident ${incidentId}`;
}

/**
 * Validates a channel name input before any Slack call. A leading `#` is dropped;
 * nothing else is changed, so the analyst sees exactly which name was refused.
 */
export function normaliseChannelName(input: string): string {
  const name = input.trim().replace(/^#/, '');
  if (!CHANNEL_NAME.test(name)) {
    const why =
      name.length > 80
        ? `is ${name.length} characters long (at most 80)`
        : /[A-Z]/.test(name)
          ? 'has uppercase letters'
          : name.length === 0
            ? 'is empty'
            : 'has characters Slack does not allow';
    throw new FunctionError(
      `slack_channel "${input}" ${why}: Slack channel names use lowercase letters, digits, hyphens (-) and underscores (_), at most 80 characters`,
      'invalid_channel_name',
    );
  }
  return name;
}

export function toChannelInfo(c: Record<string, any>): ChannelInfo {
  return {
    id: String(c.id),
    name: String(c.name ?? ''),
    isPrivate: Boolean(c.is_private ?? c.is_group),
    isArchived: Boolean(c.is_archived),
    isMember: Boolean(c.is_member),
  };
}

/**
 * name → id, so that finding a channel by name does not page through every channel of
 * a large workspace on every call. Bounded (oldest entries go first); a cached id is
 * verified with `conversations.info` on use, so a renamed or deleted channel is noticed.
 */
export class ChannelCache {
  private readonly map = new Map<string, string>();
  constructor(private readonly capacity: number) {}

  get(name: string): string | undefined {
    return this.map.get(name);
  }

  set(name: string, id: string): void {
    if (this.capacity <= 0) return;
    this.map.delete(name);
    this.map.set(name, id);
    while (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
    }
  }

  delete(name: string): void {
    this.map.delete(name);
  }

  get size(): number {
    return this.map.size;
  }
}

export interface ChannelDeps {
  client: SlackClient;
  cache: ChannelCache;
  callOpts: CallOptions;
}

/** conversations.info by id. */
export async function channelById(deps: ChannelDeps, id: string): Promise<ChannelInfo> {
  const res = await deps.client.call('conversations.info', { channel: id }, { ...deps.callOpts, what: id });
  const info = toChannelInfo(res.channel as Record<string, unknown>);
  if (info.name) deps.cache.set(info.name, info.id);
  return info;
}

/**
 * Finds a channel by name: the cache first (verified), else one pass over
 * `conversations.list` that also fills the cache with every name it sees.
 */
export async function findChannelByName(deps: ChannelDeps, name: string): Promise<ChannelInfo | undefined> {
  const cached = deps.cache.get(name);
  if (cached) {
    try {
      const info = await channelById(deps, cached);
      if (info.name === name) return info;
    } catch (err) {
      if (!(err instanceof SlackApiError && err.slackError === 'channel_not_found')) throw err;
    }
    deps.cache.delete(name);
  }
  let cursor: string | undefined;
  let found: ChannelInfo | undefined;
  do {
    const params: Record<string, unknown> = { types: 'public_channel,private_channel', exclude_archived: false, limit: 1000 };
    if (cursor) params.cursor = cursor;
    const res: SlackResult = await deps.client.call('conversations.list', params, deps.callOpts);
    for (const c of (res.channels ?? []) as Record<string, unknown>[]) {
      const info = toChannelInfo(c);
      deps.cache.set(info.name, info.id);
      if (info.name === name) found = info;
    }
    cursor = (res.response_metadata?.next_cursor as string | undefined) || undefined;
  } while (cursor && !found);
  return found;
}

export interface ResolvedChannel {
  channel: ChannelInfo;
  created: boolean;
  /** The association of the incident/task before this invocation, if any. */
  association: ConversationRow | undefined;
}

export interface ChannelInputs {
  incidentId: number;
  taskId?: number | undefined;
  slackChannel?: string | undefined;
  slackChannelId?: string | undefined;
  isPrivate?: boolean | undefined;
}

function checkUsable(channel: ChannelInfo, inputs: ChannelInputs, explicitPrivacy: boolean): void {
  if (channel.isArchived) {
    throw new FunctionError(
      `Slack channel #${channel.name} (${channel.id}) is archived: unarchive it in Slack, or give another slack_channel`,
      'slack_channel_archived',
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
}

/**
 * Resolves the channel to post to (DESIGN.md "Channel resolution"): by id, by name
 * (created when missing), or the one associated with the incident or task.
 */
export async function resolveChannel(ctx: FunctionContext, deps: ChannelDeps, inputs: ChannelInputs): Promise<ResolvedChannel> {
  const key = resId(inputs.incidentId, inputs.taskId);
  const target = describeTarget(inputs.incidentId, inputs.taskId);
  const association = await ctx.store.conversations.get(key);
  let channel: ChannelInfo;
  let created = false;

  if (inputs.slackChannelId) {
    channel = await channelById(deps, inputs.slackChannelId);
    checkUsable(channel, inputs, true);
    await ctx.status(`Found channel #${channel.name}`);
  } else if (inputs.slackChannel) {
    const name = normaliseChannelName(inputs.slackChannel);
    // One creator per name at a time: a second invocation waits, then finds the channel.
    const result = await ctx.store.withLock(`slack-channel:${name}`, () => findOrCreate(ctx, deps, name, inputs));
    channel = result.channel;
    created = result.created;
  } else {
    if (!association) {
      throw new FunctionError(
        `No Slack channel is associated with ${target} yet: give slack_channel (with slack_is_channel_private) or slack_channel_id`,
        'slack_no_channel',
      );
    }
    if (association.archived) {
      throw new FunctionError(
        `The Slack channel #${association.channel} associated with ${target} was archived: give slack_channel to post to another channel`,
        'slack_channel_archived',
      );
    }
    channel = await channelById(deps, association.channelId);
    checkUsable(channel, inputs, false);
    await ctx.status(`Found channel #${channel.name} associated with ${target}`);
  }

  if (association && !association.archived && association.channelId !== channel.id) {
    await ctx.status(`Posting to #${channel.name}, which is not the channel associated with ${target} (#${association.channel})`);
  }
  await ensureMember(deps, channel);
  return { channel, created, association };
}

async function findOrCreate(
  ctx: FunctionContext,
  deps: ChannelDeps,
  name: string,
  inputs: ChannelInputs,
): Promise<{ channel: ChannelInfo; created: boolean }> {
  const existing = await findChannelByName(deps, name);
  if (existing) {
    checkUsable(existing, inputs, true);
    await ctx.status(`Found channel #${existing.name}`);
    return { channel: existing, created: false };
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
    const channel = toChannelInfo(res.channel as Record<string, unknown>);
    channel.isMember = true;
    deps.cache.set(channel.name, channel.id);
    await ctx.status(`Created ${channel.isPrivate ? 'private' : 'public'} channel #${channel.name}`);
    return { channel, created: true };
  } catch (err) {
    if (!(err instanceof SlackApiError && err.slackError === 'name_taken')) throw err;
  }
  // Taken: another worker created it a moment ago, or a channel we cannot use holds it.
  deps.cache.delete(name);
  const holder = await findChannelByName(deps, name);
  if (holder && !holder.isArchived) {
    checkUsable(holder, inputs, true);
    await ctx.status(`Found channel #${holder.name}`);
    return { channel: holder, created: false };
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

/** Splits `a@x.com, b@y.com; c@z.com` into distinct addresses. */
export function parseEmails(raw: string | undefined): { emails: string[]; invalid: string[] } {
  const emails: string[] = [];
  const invalid: string[] = [];
  for (const part of (raw ?? '').split(/[,;\s]+/)) {
    const email = part.trim();
    if (!email) continue;
    if (!/^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$/.test(email)) invalid.push(email);
    else if (!emails.some((e) => e.toLowerCase() === email.toLowerCase())) emails.push(email);
  }
  return { emails, invalid };
}

/**
 * Looks each email up and invites everyone found in one `conversations.invite`.
 * Unknown emails and people already in the channel are warnings, not failures.
 */
export async function inviteParticipants(
  ctx: FunctionContext,
  deps: ChannelDeps,
  channel: ChannelInfo,
  rawEmails: string | undefined,
  botUserId: string | undefined,
): Promise<{ invited: string[]; warnings: string[] }> {
  const { emails, invalid } = parseEmails(rawEmails);
  const warnings: string[] = invalid.map((e) => `"${e}" is not an email address`);
  const userIds: string[] = [];
  const emailOf = new Map<string, string>();
  for (const email of emails) {
    try {
      const res = await deps.client.call('users.lookupByEmail', { email }, deps.callOpts);
      const id = String((res.user as Record<string, unknown>).id);
      if (id !== botUserId && !userIds.includes(id)) userIds.push(id);
      emailOf.set(id, email);
    } catch (err) {
      if (err instanceof SlackApiError && (err.slackError === 'users_not_found' || err.slackError === 'user_not_found')) {
        warnings.push(`No Slack user has the email ${email}`);
      } else {
        throw err;
      }
    }
  }
  let invited: string[] = [];
  if (userIds.length) {
    try {
      const res = await deps.client.call(
        'conversations.invite',
        { channel: channel.id, users: userIds.join(','), force: true },
        { ...deps.callOpts, what: `#${channel.name}` },
      );
      const failed = new Set<string>();
      for (const e of (res.errors ?? []) as { user?: string; error?: string }[]) {
        if (e.user) failed.add(e.user);
        const who = (e.user && emailOf.get(e.user)) ?? e.user;
        warnings.push(e.error === 'already_in_channel' ? `${who} is already in #${channel.name}` : `Could not invite ${who}: ${e.error}`);
      }
      invited = userIds.filter((u) => !failed.has(u));
    } catch (err) {
      if (err instanceof SlackApiError && err.slackError === 'already_in_channel') {
        warnings.push(`Everyone listed is already in #${channel.name}`);
      } else {
        throw err;
      }
    }
  }
  for (const w of warnings) await ctx.status(`Warning: ${w}`);
  if (invited.length) await ctx.status(`Invited ${invited.length} participant(s) to #${channel.name}`);
  return { invited, warnings };
}

/** Every member id of a channel (paged). */
export async function channelMembers(deps: ChannelDeps, channelId: string): Promise<string[]> {
  const members: string[] = [];
  let cursor: string | undefined;
  do {
    const params: Record<string, unknown> = { channel: channelId, limit: 1000 };
    if (cursor) params.cursor = cursor;
    const res = await deps.client.call('conversations.members', params, deps.callOpts);
    members.push(...((res.members ?? []) as string[]));
    cursor = (res.response_metadata?.next_cursor as string | undefined) || undefined;
  } while (cursor);
  return members;
}

/**
 * Records the association after the first successful post or upload. When another
 * invocation recorded one first, that one stays (insert-if-absent).
 */
export async function recordAssociation(
  ctx: FunctionContext,
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
    await ctx.store.conversations.replace(row);
    return;
  }
  if (previous) return;
  const { inserted } = await ctx.store.conversations.insertIfAbsent(row);
  if (inserted) {
    await ctx.status(`Associated #${channel.name} with ${describeTarget(inputs.incidentId, inputs.taskId)}`);
  }
}
