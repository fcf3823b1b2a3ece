/**
 * The channel cache: names, channel info and member lists fn_slack remembers between
 * invocations (`channel_cache_size`, `channel_cache_ttl`).
 */
import type { ChannelInfo } from './channel-info.js';

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
 *   the entry and the channel is looked up afresh (see isStaleChannelError in lookup.ts).
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
