/**
 * Schedules Slack Web API calls so that the worker stays inside Slack's rate limits
 * instead of running into HTTP 429s. It makes no HTTP calls itself: {@link SlackClient}
 * asks it for a {@link Lease} before each call and reports 429s back to it.
 *
 * One limiter serves every invocation of the process (the worker runs up to
 * `num_workers` at once), because Slack counts per app and workspace, not per caller.
 *
 * - Per-method budgets: a token bucket per method (its tier's calls per minute, a small
 *   burst), waiters served first come, first served.
 * - A safety margin against timing jitter: rates 2 % under the configured ones and half
 *   a call of each burst in reserve ({@link RATE_MARGIN}, {@link usableBurst}).
 * - Per-channel posting lanes: calls that post into a channel (chat.postMessage,
 *   files.completeUploadExternal with a channel, …) go through that channel's FIFO lane,
 *   one at a time, paced at `channelPostsPerSecond`. One call holds the lane from its
 *   start until Slack answered (including its own retries), so a channel's messages
 *   appear in the order they were asked for. Each channel has its own lane: a backlog
 *   in channel A never delays channel B (no head-of-line blocking).
 * - A 429's Retry-After pauses the method's bucket (for a post: the channel's lane) for
 *   every caller, not only the one that was told.
 * - Every wait is abortable; waits long enough to matter are reported (`onWait`).
 */
import { SlackUnavailableError } from './slack-errors.js';

/**
 * Slack's documented rate-limit tiers, in calls per minute per method, app and
 * workspace (https://docs.slack.dev/apis/web-api/rate-limits: "Tier 1 1+ per minute,
 * Tier 2 20+ per minute, Tier 3 50+ per minute, Tier 4 100+ per minute"). The "+" means
 * Slack may grant more; these are the floors, so the defaults never exceed them.
 */
export const TIER = { 1: 1, 2: 20, 3: 50, 4: 100 } as const;

/**
 * The tier of each method fn_slack calls, from each method's reference page
 * (docs.slack.dev/reference/methods/<method>, "Rate Limits"). Methods with "special"
 * limits are absent on purpose: auth.test and chat.getPermalink allow "hundreds of
 * requests per minute", and chat.postMessage is limited per channel (about one message
 * per second, short bursts allowed; see {@link POSTING_METHODS}) plus an unpublished
 * workspace-wide limit. `rate_limit_overrides` can give any of them a budget.
 *
 * conversations.history and conversations.replies are Tier 3 for internal and
 * Marketplace apps; Slack gives commercially distributed non-Marketplace apps far less
 * (1 per minute): such installations set an override.
 */
export const METHOD_TIERS: Readonly<Record<string, keyof typeof TIER>> = {
  'conversations.archive': 2,
  'conversations.create': 2,
  'conversations.list': 2,
  'conversations.history': 3,
  'conversations.info': 3,
  'conversations.invite': 3,
  'conversations.join': 3,
  'conversations.replies': 3,
  'users.lookupByEmail': 3,
  'team.info': 3,
  'conversations.members': 4,
  'users.info': 4,
  'files.info': 4,
  'files.getUploadURLExternal': 4,
  'files.completeUploadExternal': 4,
  // The responder verbs.
  'conversations.rename': 2,
  'conversations.setPurpose': 2,
  'conversations.setTopic': 2,
  'pins.add': 2,
  'bookmarks.add': 2,
  'chat.update': 3,
  'conversations.kick': 3,
  'conversations.open': 3,
  'reactions.add': 3,
  'bookmarks.list': 3,
  // Triage: the close modal (its trigger lives 3 s, so Tier 4 leaves it a free lane).
  'views.open': 4,
  'views.update': 4,
};

/** Methods with "special" limits that have no per-method budget unless overridden. */
export const SPECIAL_METHODS: ReadonlySet<string> = new Set(['auth.test', 'chat.getPermalink', 'chat.postMessage', 'chat.postEphemeral']);

/**
 * Tier of a method missing from both lists: Tier 2, because Slack says "most methods
 * allow at least 20 requests per minute", so it is the safe guess.
 */
export const UNKNOWN_METHOD_TIER = 2;

/**
 * Methods that post into one channel, and the parameter naming it. They share the
 * channel's lane, so a message and an attachment posted one after the other keep their
 * order too.
 */
export const POSTING_METHODS: Readonly<Record<string, string>> = {
  'chat.postMessage': 'channel',
  'chat.postEphemeral': 'channel',
  'chat.meMessage': 'channel',
  'files.completeUploadExternal': 'channel_id',
};

/** The calls per minute each method may make: the tier table, then the overrides. */
export function methodBudgets(overrides: Readonly<Record<string, number>> = {}): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [method, tier] of Object.entries(METHOD_TIERS)) out[method] = TIER[tier];
  return { ...out, ...overrides };
}

/**
 * Safety margin on every rate: the scheduler spaces calls 2 % slower than the configured
 * rate. Slack measures arrivals on its own clock, and a request's travel time varies,
 * so two calls sent exactly 1/rate apart can arrive closer together and draw a 429
 * (which costs a whole Retry-After). Spacing a little slower lets Slack's bucket gain
 * 0.02 of a call per interval over ours, so sustained traffic builds up room for late
 * and early arrivals; 2 % costs 2 % of throughput at most.
 */
export const RATE_MARGIN = 0.98;

/**
 * Bucket capacity the scheduler uses for a configured burst: half a call of the burst is
 * kept in reserve (when the burst is at least 2). Our bucket starts full when the first
 * call is asked for, Slack's when the first call arrives; with the same capacity on both
 * sides the first call after the burst would have no room at all for jitter. Keeping
 * half a token back leaves Slack half a spare call at all times: an arrival may be up to
 * half an interval early (500 ms at 1 post per second) without a 429. It costs half an
 * interval per bucket, once; a whole token would cost twice that for tolerance that
 * request jitter (tens of ms) does not need.
 */
export function usableBurst(configured: number): number {
  const b = Math.max(1, Math.floor(configured));
  return b >= 2 ? b - BURST_RESERVE : 1;
}

/** The part of a burst (≥ 2) kept in reserve: see {@link usableBurst}. */
export const BURST_RESERVE = 0.5;

/** Time and timers, replaceable by a fake clock in tests. */
export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface RateLimiterOptions {
  /** Calls per minute per method; a method absent here and not special gets Tier 2. */
  perMinute: Readonly<Record<string, number>>;
  /**
   * The burst Slack allows per method: calls back to back before they must be spaced at
   * its rate. The scheduler keeps one of them in reserve ({@link usableBurst}).
   */
  burst: number;
  /** Posts per second per channel (Slack: about 1). */
  channelPostsPerSecond: number;
  /** Posts to one channel Slack allows back to back; one is kept in reserve ({@link usableBurst}). */
  channelBurst: number;
  /**
   * Space calls with the safety margin ({@link RATE_MARGIN}, {@link usableBurst});
   * default true. Off, the scheduler runs at exactly the configured rates and bursts
   * (tests that check the arithmetic turn it off).
   */
  safetyMargin?: boolean;
  clock?: Clock;
  /** Waits at least this long are reported through `onWait` (default 1000 ms). */
  reportAfterMs?: number;
}

export interface ScheduledWait {
  method: string;
  /** Whole seconds, rounded up. */
  seconds: number;
  /** The channel lane waited for, when the call posts into a channel. */
  channel?: string;
}

export interface AcquireOptions {
  signal?: AbortSignal;
  /** Told once per call when its expected wait reaches the report threshold. */
  onWait?: (info: ScheduledWait) => void | Promise<void>;
}

function abortError(): Error {
  return new SlackUnavailableError('Stopped while waiting for Slack', 'aborted');
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  cleanup: () => void;
}

/**
 * A token bucket with a FIFO of waiters: `ratePerMs` tokens accrue up to `capacity`;
 * each call takes one. A pause (Slack's Retry-After) empties it until the pause ends.
 */
class Bucket {
  private tokens: number;
  private last: number;
  private pausedUntil = 0;
  private readonly waiters: Waiter[] = [];
  private timer: unknown;

  constructor(
    private readonly ratePerMs: number,
    private readonly capacity: number,
    private readonly clock: Clock,
  ) {
    this.tokens = capacity;
    this.last = clock.now();
  }

  private refill(now: number): void {
    const from = Math.max(this.last, this.pausedUntil);
    if (now > from) this.tokens = Math.min(this.capacity, this.tokens + (now - from) * this.ratePerMs);
    this.last = Math.max(now, this.last);
  }

  /** Milliseconds until the caller that would join the queue now gets its token. */
  estimateMs(): number {
    const now = this.clock.now();
    this.refill(now);
    const pause = Math.max(0, this.pausedUntil - now);
    const missing = this.waiters.length + 1 - this.tokens;
    return pause + (missing > 0 ? missing / this.ratePerMs : 0);
  }

  /** True when nothing waits, no pause runs and the bucket is full: it can be forgotten. */
  idle(): boolean {
    const now = this.clock.now();
    this.refill(now);
    return this.waiters.length === 0 && now >= this.pausedUntil && this.tokens >= this.capacity;
  }

  /** Resolves when the caller got a token; `first` jumps the queue (a retry's turn). */
  take(signal?: AbortSignal, first = false): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError());
    if (this.waiters.length === 0 && this.tryTake()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(abortError());
        this.schedule();
      };
      const waiter: Waiter = {
        resolve,
        reject,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (first) this.waiters.unshift(waiter);
      else this.waiters.push(waiter);
      this.schedule();
    });
  }

  /** Stops handing out tokens for `ms`; a longer pause already running is kept. */
  pause(ms: number): void {
    const now = this.clock.now();
    this.refill(now);
    const until = now + ms;
    if (until <= this.pausedUntil) return;
    this.pausedUntil = until;
    // Slack said "too many": when the pause ends, one call may go (Retry-After says
    // so), the rest at the bucket's pace rather than as a full burst.
    this.tokens = Math.min(this.capacity, 1);
    this.last = until;
    this.schedule();
  }

  private tryTake(): boolean {
    const now = this.clock.now();
    if (now < this.pausedUntil) return false;
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Serves waiters in order while tokens last, then sets one timer for the next token. */
  private schedule(): void {
    if (this.timer !== undefined) {
      this.clock.clearTimer(this.timer);
      this.timer = undefined;
    }
    while (this.waiters.length > 0 && this.tryTake()) {
      const w = this.waiters.shift() as Waiter;
      w.cleanup();
      w.resolve();
    }
    if (this.waiters.length === 0) return;
    const now = this.clock.now();
    const wait = now < this.pausedUntil ? this.pausedUntil - now : Math.max(1, Math.ceil((1 - this.tokens) / this.ratePerMs));
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      this.schedule();
    }, wait);
  }
}

/** A channel's lane: one posting call at a time, in arrival order, paced by its bucket. */
class Lane {
  busy = false;
  readonly queue: Waiter[] = [];
  constructor(readonly bucket: Bucket) {}

  enter(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError());
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        reject(abortError());
      };
      const waiter: Waiter = { resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  leave(): void {
    const next = this.queue.shift();
    if (next) {
      next.cleanup();
      next.resolve(); // the lane passes straight to the next caller: still busy
    } else {
      this.busy = false;
    }
  }
}

/** What a caller holds while its call (and its retries) run. */
export interface Lease {
  /** The channel lane held, if the call posts into a channel. */
  readonly channel?: string;
  /**
   * Slack answered 429 with `Retry-After: seconds`: pause the method's budget (for a
   * post, the channel's lane) for every caller. False when there is nothing to pause
   * (a method with no budget): the caller then waits by itself.
   */
  rateLimited(seconds: number): boolean;
  /** Before a retry: waits for the pause to end and takes a fresh token. */
  again(opts?: AcquireOptions): Promise<void>;
  /** After the last attempt: lets the next post to the same channel go. Idempotent. */
  release(): void;
}

/** Channels kept in memory before idle ones are forgotten. */
const LANE_SWEEP_THRESHOLD = 256;

export class RateLimiter {
  private readonly methods = new Map<string, Bucket | null>();
  private readonly lanes = new Map<string, Lane>();
  private readonly clock: Clock;
  private readonly reportAfterMs: number;
  /** RATE_MARGIN, or 1 without the safety margin. */
  private readonly rateFactor: number;
  /** Bucket capacity for a configured burst. */
  private readonly capacity: (configured: number) => number;

  constructor(private readonly opts: RateLimiterOptions) {
    for (const [name, value] of [
      ['burst', opts.burst],
      ['channelPostsPerSecond', opts.channelPostsPerSecond],
      ['channelBurst', opts.channelBurst],
    ] as const) {
      if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`RateLimiter: ${name} must be a positive number (got ${value})`);
    }
    this.clock = opts.clock ?? realClock;
    const margin = opts.safetyMargin ?? true;
    this.rateFactor = margin ? RATE_MARGIN : 1;
    this.capacity = margin ? usableBurst : (configured: number) => Math.max(1, configured);
    this.reportAfterMs = opts.reportAfterMs ?? 1000;
  }

  /** Calls per minute the limiter allows `method`, or undefined for no per-method budget. */
  budgetOf(method: string): number | undefined {
    const set = this.opts.perMinute[method];
    if (set !== undefined) return set;
    if (SPECIAL_METHODS.has(method)) return undefined;
    return TIER[UNKNOWN_METHOD_TIER];
  }

  private bucketFor(method: string): Bucket | null {
    let b = this.methods.get(method);
    if (b === undefined) {
      const perMinute = this.budgetOf(method);
      b = perMinute === undefined ? null : new Bucket((perMinute / 60_000) * this.rateFactor, this.capacity(Math.min(this.opts.burst, perMinute)), this.clock);
      this.methods.set(method, b);
    }
    return b;
  }

  private laneFor(channel: string): Lane {
    let lane = this.lanes.get(channel);
    if (!lane) {
      if (this.lanes.size >= LANE_SWEEP_THRESHOLD) this.sweepLanes();
      lane = new Lane(new Bucket((this.opts.channelPostsPerSecond / 1000) * this.rateFactor, this.capacity(this.opts.channelBurst), this.clock));
      this.lanes.set(channel, lane);
    }
    return lane;
  }

  private sweepLanes(): void {
    for (const [channel, lane] of this.lanes) {
      if (!lane.busy && lane.bucket.idle()) this.lanes.delete(channel);
    }
  }

  /** The channel a call posts into, if it is a posting call. */
  static channelOf(method: string, params: Record<string, unknown>): string | undefined {
    const key = POSTING_METHODS[method];
    const value = key ? params[key] : undefined;
    return typeof value === 'string' && value !== '' ? value : undefined;
  }

  /** Number of channel lanes currently remembered (for tests and diagnostics). */
  get laneCount(): number {
    return this.lanes.size;
  }

  /**
   * Waits until `method` may be called: first the channel's lane (posting calls), then
   * the channel's pace, then the method's budget. Resolves with the lease to release
   * once Slack has answered.
   */
  async acquire(method: string, params: Record<string, unknown> = {}, callOpts: AcquireOptions = {}): Promise<Lease> {
    const channel = RateLimiter.channelOf(method, params);
    const lane = channel === undefined ? undefined : this.laneFor(channel);
    const bucket = this.bucketFor(method);

    const expected = this.expectedWaitMs(lane, bucket);
    // Join the queue (the lane for a post, else the method's bucket) before anything is
    // awaited: posts keep the order in which they were asked for, and the next caller's
    // estimate counts this one, even while a report is being sent.
    const first: Promise<void> = lane ? lane.enter(callOpts.signal) : bucket ? bucket.take(callOpts.signal) : Promise.resolve();
    first.catch(() => undefined); // observed below; avoids an unhandled rejection meanwhile
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      lane?.leave();
    };
    if (expected >= this.reportAfterMs && callOpts.onWait) {
      try {
        await callOpts.onWait({ method, seconds: Math.ceil(expected / 1000), ...(channel ? { channel } : {}) });
      } catch (err) {
        first.then(release, () => undefined);
        throw err;
      }
    }
    await first;
    const takeTokens = async (signal?: AbortSignal, retry = false) => {
      if (lane) await lane.bucket.take(signal, retry);
      if (bucket) await bucket.take(signal, retry);
    };
    if (lane) {
      try {
        await takeTokens(callOpts.signal);
      } catch (err) {
        release();
        throw err;
      }
    }
    return {
      ...(channel ? { channel } : {}),
      rateLimited: (seconds: number) => {
        const ms = Math.max(0, seconds) * 1000;
        const target = lane?.bucket ?? bucket;
        target?.pause(ms);
        return target !== undefined && target !== null;
      },
      // A retry already had its turn: it goes before callers that came later.
      again: (o: AcquireOptions = {}) => takeTokens(o.signal, true),
      release,
    };
  }

  private expectedWaitMs(lane: Lane | undefined, bucket: Bucket | null): number {
    let ms = 0;
    if (lane) {
      // Each post queued ahead holds the lane for at least one pacing interval.
      const ahead = lane.queue.length + (lane.busy ? 1 : 0);
      ms += Math.max(lane.bucket.estimateMs(), (ahead * 1000) / (this.opts.channelPostsPerSecond * this.rateFactor));
    }
    if (bucket) ms = Math.max(ms, bucket.estimateMs());
    return ms;
  }
}
