/**
 * Channel resolution, participants and the incident ↔ channel association, shared by
 * slack_post_message, slack_post_attachment and the responder verbs (through verbs.ts).
 */
import { FunctionError } from '../../core/runtime/errors.js';
import type { FunctionContext } from '../../core/runtime/plugin.js';
import type { ConversationRow, ConversationTable } from './store/conversations.js';
import type { SlackClient, CallOptions, SlackResult } from './slack-client.js';
import { SlackApiError } from './slack-errors.js';
import { ArchivedChannelError, archivedAssociationError, learnArchived } from './association.js';

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
 * What fn_slack remembers about channels, so that a post does not look the same channel
 * up again on every call:
 * - name → id, so that finding a channel by name does not page through every channel of
 *   a large workspace on every call (never expires: the id is verified on use, below);
 * - id → channel info (name, privacy, archived, membership) and id → member list, each
 *   kept for `ttlMs`. Slack's `conversations.info` (Tier 3, 50/min) and
 *   `conversations.members` (Tier 4, 100/min) are workspace-wide budgets: looked up once
 *   per post they would cap a worker at ~50 posts a minute, far below the 1 post a second
 *   per channel that `chat.postMessage` allows. A change made in Slack (a channel archived,
 *   made private, renamed; people joining or leaving) is therefore seen up to `ttlMs` late,
 *   except that a post Slack refuses because the channel is archived, gone or left drops
 *   the entry and the channel is looked up afresh (see {@link isStaleChannelError}).
 *
 * All three maps are bounded by `capacity` (oldest entries go first).
 */
export class ChannelCache {
  private readonly ids = new Map<string, string>();
  private readonly infos = new Map<string, { info: ChannelInfo; at: number }>();
  private readonly memberLists = new Map<string, { members: string[]; at: number }>();
  /** Bumped when a channel's members change, so that a listing begun before is not cached. */
  private readonly memberEpochs = new Map<string, number>();
  /** Member listings under way, so that posts missing the cache at once share one. */
  private readonly memberLookups = new Map<string, { epoch: number; lookup: Promise<string[]> }>();

  constructor(
    private readonly capacity: number,
    private readonly ttlMs = 0,
    private readonly now: () => number = Date.now,
  ) {}

  get(name: string): string | undefined {
    return this.ids.get(name);
  }

  set(name: string, id: string): void {
    this.put(this.ids, name, id);
  }

  delete(name: string): void {
    this.ids.delete(name);
  }

  get size(): number {
    return this.ids.size;
  }

  /** A copy of the channel's info if it was learnt less than `ttlMs` ago. */
  info(id: string): ChannelInfo | undefined {
    const hit = this.fresh(this.infos, id);
    return hit ? { ...hit.info } : undefined;
  }

  setInfo(info: ChannelInfo): void {
    if (this.ttlMs <= 0) return;
    this.put(this.infos, info.id, { info: { ...info }, at: this.now() });
  }

  /** A copy of the channel's member ids if they were learnt less than `ttlMs` ago. */
  members(id: string): string[] | undefined {
    const hit = this.fresh(this.memberLists, id);
    return hit ? [...hit.members] : undefined;
  }

  /** Pass to {@link setMembers}: a listing that overlapped a change is not cached. */
  membersEpoch(id: string): number {
    return this.memberEpochs.get(id) ?? 0;
  }

  setMembers(id: string, members: string[], epoch: number): void {
    if (this.ttlMs <= 0 || epoch !== this.membersEpoch(id)) return;
    this.put(this.memberLists, id, { members: [...members], at: this.now() });
  }

  /**
   * Runs `list` unless a listing of the channel's members begun since its last change is
   * still under way, in which case that one's answer is shared. Without this, N posts to
   * a channel whose members are not cached yet make N `conversations.members` calls
   * (250 instead of ~30 in benchmark 3 at num_workers = 100). A shared listing that fails
   * (e.g. the first caller's invocation was aborted) is not an answer: `list` runs then.
   */
  async sharedMemberLookup(id: string, list: () => Promise<string[]>): Promise<string[]> {
    const epoch = this.membersEpoch(id);
    const pending = this.ttlMs > 0 ? this.memberLookups.get(id) : undefined;
    if (pending && pending.epoch === epoch) {
      const shared = await pending.lookup.catch(() => undefined);
      if (shared) return [...shared];
    }
    const lookup = list();
    if (this.ttlMs > 0) this.memberLookups.set(id, { epoch, lookup });
    try {
      const members = await lookup;
      this.setMembers(id, members, epoch);
      return members;
    } finally {
      if (this.memberLookups.get(id)?.lookup === lookup) this.memberLookups.delete(id);
    }
  }

  /** The member list changed (an invite or a join by this worker). */
  forgetMembers(id: string): void {
    this.memberLists.delete(id);
    // A listing under way began before the change: later posts must not share it. (The
    // epoch below may not be kept, e.g. with channel_cache_size = 0, so drop it here.)
    this.memberLookups.delete(id);
    this.put(this.memberEpochs, id, this.membersEpoch(id) + 1);
  }

  /** Slack refused a call on the channel: forget its info and members. */
  forgetChannel(id: string): void {
    this.infos.delete(id);
    this.forgetMembers(id);
  }

  private fresh<T extends { at: number }>(map: Map<string, T>, key: string): T | undefined {
    const hit = map.get(key);
    if (!hit) return undefined;
    if (this.now() - hit.at >= this.ttlMs) {
      map.delete(key);
      return undefined;
    }
    return hit;
  }

  private put<V>(map: Map<string, V>, key: string, value: V): void {
    if (this.capacity <= 0) return;
    map.delete(key);
    map.set(key, value);
    while (map.size > this.capacity) map.delete(map.keys().next().value as string);
  }
}

/**
 * Slack errors that say the channel is not what the cached info said (archived, deleted,
 * or the app was removed from it). A post that gets one with cached info drops the entry
 * and resolves the channel again without the cache, so the caller sees exactly what an
 * uncached lookup would have said.
 */
export function isStaleChannelError(err: unknown): boolean {
  return (
    err instanceof SlackApiError &&
    (err.slackError === 'is_archived' || err.slackError === 'channel_not_found' || err.slackError === 'not_in_channel')
  );
}

export interface ChannelDeps {
  client: SlackClient;
  cache: ChannelCache;
  callOpts: CallOptions;
  /** The incident/task ↔ channel associations (the plugin's table in the worker's store). */
  conversations: ConversationTable;
}

/** conversations.info by id (always asks Slack; what it learns is cached). */
export async function channelById(deps: ChannelDeps, id: string): Promise<ChannelInfo> {
  const res = await deps.client.call('conversations.info', { channel: id }, { ...deps.callOpts, what: id });
  const info = toChannelInfo(res.channel as Record<string, unknown>);
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
async function findChannelByNameCached(deps: ChannelDeps, name: string): Promise<{ info: ChannelInfo; cached: boolean } | undefined> {
  const cached = deps.cache.get(name);
  if (cached) {
    const hit = deps.cache.info(cached);
    if (hit && hit.name === name) return { info: hit, cached: true };
    try {
      const info = await channelById(deps, cached);
      if (info.name === name) return { info, cached: false };
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
  if (found) deps.cache.setInfo(found);
  return found ? { info: found, cached: false } : undefined;
}

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
    const archived = err instanceof SlackApiError && err.slackError === 'is_archived';
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
    ctx.log.debug(`Cached info of channel ${resolved.channel.id} was stale (${(err as SlackApiError).slackError}); looking it up again`);
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
    const channel = toChannelInfo(res.channel as Record<string, unknown>);
    channel.isMember = true;
    deps.cache.set(channel.name, channel.id);
    deps.cache.setInfo(channel);
    await ctx.status(`Created ${channel.isPrivate ? 'private' : 'public'} channel #${channel.name}`);
    return { channel, created: true, cached: false };
  } catch (err) {
    if (!(err instanceof SlackApiError && err.slackError === 'name_taken')) throw err;
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
      deps.cache.forgetMembers(channel.id);
      if (err instanceof SlackApiError && err.slackError === 'already_in_channel') {
        warnings.push(`Everyone listed is already in #${channel.name}`);
      } else {
        throw err;
      }
    }
  }
  if (invited.length) deps.cache.forgetMembers(channel.id);
  for (const w of warnings) await ctx.status(`Warning: ${w}`);
  if (invited.length) await ctx.status(`Invited ${invited.length} participant(s) to #${channel.name}`);
  return { invited, warnings };
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
    let cursor: string | undefined;
    do {
      const params: Record<string, unknown> = { channel: channelId, limit: 1000 };
      if (cursor) params.cursor = cursor;
      const res = await deps.client.call('conversations.members', params, deps.callOpts);
      members.push(...((res.members ?? []) as string[]));
      cursor = (res.response_metadata?.next_cursor as string | undefined) || undefined;
    } while (cursor);
    return members;
  });
}

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
