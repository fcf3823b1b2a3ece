/**
 * The rate limiter on a fake clock: per-method budgets, per-channel FIFO lanes without
 * head-of-line blocking, Retry-After pauses shared by every caller, aborts, reporting;
 * and the `[fn_slack]` keys that configure it.
 */
import { expect } from 'chai';
import { ConfigError } from '../../../../src/core/runtime/errors.js';
import { parseRateLimitOverrides, SLACK_CONFIG_SCHEMA, type SlackConfig } from '../../../../src/functions/slack/config.js';
import { validateSection } from '../../../../src/core/config.js';
import { readFileSync } from 'node:fs';
import {
  METHOD_TIERS,
  RateLimiter,
  SPECIAL_METHODS,
  TIER,
  UNKNOWN_METHOD_TIER,
  methodBudgets,
  usableBurst,
  type Clock,
  type Lease,
  type RateLimiterOptions,
} from '../../../../src/functions/slack/rate-limiter.js';
import { createRateLimiter } from '../../../../src/functions/slack/state.js';

/** A clock whose time moves only when the test says so; timers fire in time order. */
class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Moves time forward by `ms`, firing due timers in order and letting promises settle. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    await settle();
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= target && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
      await settle();
    }
    this.t = target;
    await settle();
  }
}

/** Lets every pending promise chain run (the limiter awaits in a few steps). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

function limiter(clock: FakeClock, o: Partial<RateLimiterOptions> = {}): RateLimiter {
  return new RateLimiter({ perMinute: {}, burst: 1, channelPostsPerSecond: 1, channelBurst: 1, safetyMargin: false, clock, ...o });
}

interface Tracked {
  id: string;
  lease?: Lease;
  grantedAt?: number;
  error?: Error & { code?: string };
}

/** Starts an acquire and records when it is granted (or why it failed). */
function track(l: RateLimiter, clock: FakeClock, id: string, method: string, params: Record<string, unknown> = {}, opts = {}): Tracked {
  const t: Tracked = { id };
  l.acquire(method, params, opts).then(
    (lease) => {
      t.lease = lease;
      t.grantedAt = clock.now();
    },
    (err) => {
      t.error = err;
    },
  );
  return t;
}

/**
 * Asks for `n` posts into one channel, answers each 10 ms after its grant, and returns
 * when each reached Slack: grant time + `delay(i)`.
 */
async function servePosts(l: RateLimiter, clock: FakeClock, n: number, delay: (i: number) => number): Promise<number[]> {
  const posts = Array.from({ length: n }, (_, i) => track(l, clock, `p${i}`, 'chat.postMessage', { channel: 'CA' }));
  const arrivals: number[] = [];
  for (let guard = 0; arrivals.length < n && guard < 100_000; guard++) {
    const p = posts[arrivals.length];
    if (p.lease) {
      arrivals.push((p.grantedAt as number) + delay(arrivals.length));
      p.lease.release();
    }
    await clock.advance(10);
  }
  expect(arrivals).to.have.length(n);
  return arrivals;
}

/** How many of these arrivals a strict token bucket (rate per second, capacity) refuses. */
function refusedBy(arrivals: number[], perSecond: number, capacity: number): number {
  let tokens = capacity;
  let last = arrivals[0];
  let refused = 0;
  for (const t of arrivals) {
    tokens = Math.min(capacity, tokens + (Math.max(0, t - last) / 1000) * perSecond);
    last = Math.max(last, t);
    if (tokens >= 1) tokens -= 1;
    else refused++;
  }
  return refused;
}

describe('RateLimiter (fake clock)', () => {
  describe('per-method budgets', () => {
    it('lets a burst through, then spaces calls at the per-minute rate', async () => {
      const clock = new FakeClock();
      const l = limiter(clock, { perMinute: { 'conversations.create': 60 }, burst: 2 });
      const calls = Array.from({ length: 6 }, (_, i) => track(l, clock, `c${i}`, 'conversations.create'));
      await clock.advance(10_000);
      calls.forEach((c) => c.lease?.release());
      expect(calls.map((c) => c.grantedAt)).to.deep.equal([0, 0, 1000, 2000, 3000, 4000]);
    });

    it('never exceeds the budget over a one-minute window under sustained demand', async () => {
      const clock = new FakeClock();
      const l = limiter(clock, { perMinute: { 'users.lookupByEmail': 50 }, burst: 5 });
      const calls = Array.from({ length: 200 }, (_, i) => track(l, clock, `u${i}`, 'users.lookupByEmail'));
      await clock.advance(5 * 60_000);
      const times = calls.map((c) => c.grantedAt as number);
      expect(times.every((t) => typeof t === 'number')).to.equal(true);
      // Any 60 s window holds at most the burst plus one minute's allowance.
      for (let i = 0; i < times.length; i++) {
        const inWindow = times.filter((t) => t >= times[i] && t < times[i] + 60_000).length;
        expect(inWindow, `window from ${times[i]} ms`).to.be.at.most(5 + 50);
      }
      // …and the steady state runs at the rate: 50 per minute after the burst.
      expect(times[5 + 50 - 1]).to.equal(60_000);
    });

    it('gives methods separate budgets, an unknown method Tier 2 and special methods none', async () => {
      const clock = new FakeClock();
      const l = limiter(clock, { perMinute: { 'conversations.create': 1 } });
      const create = [track(l, clock, 'a', 'conversations.create'), track(l, clock, 'b', 'conversations.create')];
      const info = track(l, clock, 'i', 'conversations.info');
      const auth = Array.from({ length: 20 }, (_, i) => track(l, clock, `t${i}`, 'auth.test'));
      await clock.advance(0);
      expect(create[0].grantedAt).to.equal(0);
      expect(create[1].grantedAt).to.equal(undefined);
      expect(info.grantedAt).to.equal(0);
      expect(auth.every((a) => a.grantedAt === 0)).to.equal(true);
      expect(l.budgetOf('some.futureMethod')).to.equal(20);
      expect(l.budgetOf('auth.test')).to.equal(undefined);
      await clock.advance(60_000);
      expect(create[1].grantedAt).to.equal(60_000);
    });
  });

  describe('per-channel lanes', () => {
    it('keeps each channel in order, one post in flight, paced at channel_posts_per_second', async () => {
      const clock = new FakeClock();
      const l = limiter(clock, { channelPostsPerSecond: 2, channelBurst: 3 });
      const posts = Array.from({ length: 6 }, (_, i) => track(l, clock, `p${i}`, 'chat.postMessage', { channel: 'CA' }));
      await clock.advance(0);
      // The lane holds one call until Slack answered, even with burst tokens left.
      expect(posts.map((p) => p.grantedAt)).to.deep.equal([0, undefined, undefined, undefined, undefined, undefined]);
      const order: string[] = [];
      for (let i = 0; i < 6; i++) {
        // Wait until some post holds the lane; Slack answers it 100 ms later.
        let holder: Tracked | undefined;
        for (let step = 0; step < 100 && !holder; step++) {
          holder = posts.find((p) => p.lease && !order.includes(p.id));
          if (!holder) await clock.advance(50);
        }
        expect(holder, `post ${i} got the lane`).to.not.equal(undefined);
        expect(posts.filter((p) => p.lease && !order.includes(p.id)), 'one post in flight').to.have.length(1);
        await clock.advance(100);
        order.push((holder as Tracked).id);
        holder?.lease?.release();
        await clock.advance(0);
      }
      await clock.advance(10_000);
      expect(order).to.deep.equal(['p0', 'p1', 'p2', 'p3', 'p4', 'p5']);
      // Three back to back (each after the previous answer), then every 500 ms.
      expect(posts.map((p) => p.grantedAt)).to.deep.equal([0, 100, 200, 500, 1000, 1500]);
    });

    it("does not make channel B wait behind channel A's backlog", async () => {
      const clock = new FakeClock();
      const l = limiter(clock);
      const a = Array.from({ length: 10 }, (_, i) => track(l, clock, `a${i}`, 'chat.postMessage', { channel: 'CA' }));
      const b = track(l, clock, 'b0', 'chat.postMessage', { channel: 'CB' });
      const c = track(l, clock, 'c0', 'files.completeUploadExternal', { channel_id: 'CC', files: '[]' });
      await clock.advance(0);
      expect(a[0].grantedAt).to.equal(0);
      expect(a[1].grantedAt).to.equal(undefined);
      expect(b.grantedAt).to.equal(0);
      expect(c.grantedAt).to.equal(0);
      // Releases in A's lane hand over in order, at one per second.
      for (let i = 0; i < 10; i++) {
        a[i].lease?.release();
        await clock.advance(1000);
      }
      expect(a.map((x) => x.grantedAt)).to.deep.equal([0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000]);
    });

    it('shares a channel lane between a message and a file share into the same channel', async () => {
      const clock = new FakeClock();
      const l = limiter(clock);
      const msg = track(l, clock, 'm', 'chat.postMessage', { channel: 'CA' });
      const file = track(l, clock, 'f', 'files.completeUploadExternal', { channel_id: 'CA', files: '[]' });
      await clock.advance(0);
      expect(msg.grantedAt).to.equal(0);
      expect(file.grantedAt).to.equal(undefined);
      msg.lease?.release();
      await clock.advance(1000);
      expect(file.grantedAt).to.equal(1000);
    });
  });

  describe("Slack's Retry-After", () => {
    it("pauses the method's budget for every caller, not only the one told", async () => {
      const clock = new FakeClock();
      const l = limiter(clock, { perMinute: { 'conversations.history': 600 }, burst: 5 });
      const first = track(l, clock, 'h0', 'conversations.history');
      await clock.advance(0);
      expect(first.lease?.rateLimited(3)).to.equal(true);
      const others = [track(l, clock, 'h1', 'conversations.history'), track(l, clock, 'h2', 'conversations.history')];
      const retry = first.lease?.again();
      let retried: number | undefined;
      retry?.then(() => (retried = clock.now()));
      await clock.advance(2999);
      expect(others.map((o) => o.grantedAt)).to.deep.equal([undefined, undefined]);
      expect(retried).to.equal(undefined);
      await clock.advance(1);
      // One call may go when the pause ends (the retry, first in line), the rest at the rate.
      expect(retried).to.equal(3000);
      await clock.advance(1000);
      expect(others.map((o) => o.grantedAt)).to.deep.equal([3100, 3200]);
      // Another method is not paused.
      const other = track(l, clock, 'x', 'users.info');
      await clock.advance(0);
      expect(other.grantedAt).to.equal(clock.now());
    });

    it("pauses only the channel's lane for a post, and the post keeps its place", async () => {
      const clock = new FakeClock();
      const l = limiter(clock, { channelBurst: 5 });
      const a0 = track(l, clock, 'a0', 'chat.postMessage', { channel: 'CA' });
      const a1 = track(l, clock, 'a1', 'chat.postMessage', { channel: 'CA' });
      await clock.advance(0);
      a0.lease?.rateLimited(2);
      const b = track(l, clock, 'b', 'chat.postMessage', { channel: 'CB' });
      let retried: number | undefined;
      a0.lease?.again().then(() => (retried = clock.now()));
      await clock.advance(0);
      expect(b.grantedAt).to.equal(0);
      await clock.advance(2000);
      expect(retried).to.equal(2000);
      expect(a1.grantedAt).to.equal(undefined); // still behind a0, which holds the lane
      a0.lease?.release();
      await clock.advance(1000);
      expect(a1.grantedAt).to.equal(3000);
    });

    it('keeps a longer pause when a shorter Retry-After arrives', async () => {
      const clock = new FakeClock();
      const l = limiter(clock, { perMinute: { 'conversations.list': 600 }, burst: 5 });
      const one = track(l, clock, 'l0', 'conversations.list');
      await clock.advance(0);
      one.lease?.rateLimited(10);
      one.lease?.rateLimited(2);
      const next = track(l, clock, 'l1', 'conversations.list');
      await clock.advance(9_999);
      expect(next.grantedAt).to.equal(undefined);
      await clock.advance(1);
      expect(next.grantedAt).to.equal(10_000);
    });
  });

  describe('aborts', () => {
    it('rejects a call waiting for its method budget, and the next caller takes its turn', async () => {
      const clock = new FakeClock();
      const l = limiter(clock, { perMinute: { 'conversations.create': 60 } });
      track(l, clock, 'first', 'conversations.create');
      const ac = new AbortController();
      const waiting = track(l, clock, 'aborted', 'conversations.create', {}, { signal: ac.signal });
      const after = track(l, clock, 'after', 'conversations.create');
      await clock.advance(500);
      ac.abort();
      await clock.advance(0);
      expect(waiting.error?.code).to.equal('aborted');
      await clock.advance(500);
      expect(after.grantedAt).to.equal(1000);
      expect(waiting.grantedAt).to.equal(undefined);
    });

    it('rejects a post waiting in its lane without blocking the lane', async () => {
      const clock = new FakeClock();
      const l = limiter(clock);
      const holder = track(l, clock, 'h', 'chat.postMessage', { channel: 'CA' });
      const ac = new AbortController();
      const aborted = track(l, clock, 'x', 'chat.postMessage', { channel: 'CA' }, { signal: ac.signal });
      const next = track(l, clock, 'n', 'chat.postMessage', { channel: 'CA' });
      await clock.advance(0);
      ac.abort();
      await clock.advance(0);
      expect(aborted.error?.code).to.equal('aborted');
      holder.lease?.release();
      await clock.advance(1000);
      expect(next.grantedAt).to.equal(1000);
    });

    it('rejects at once when the signal is already aborted, and lets the lane go when aborted waiting for its pace', async () => {
      const clock = new FakeClock();
      const l = limiter(clock);
      const ac = new AbortController();
      ac.abort();
      const dead = track(l, clock, 'd', 'chat.postMessage', { channel: 'CA' }, { signal: ac.signal });
      await clock.advance(0);
      expect(dead.error?.code).to.equal('aborted');
      // Holds the lane while waiting for the channel's pace, then is aborted.
      const first = track(l, clock, 'f', 'chat.postMessage', { channel: 'CB' });
      await clock.advance(0);
      first.lease?.release();
      const ac2 = new AbortController();
      const pacing = track(l, clock, 'p', 'chat.postMessage', { channel: 'CB' }, { signal: ac2.signal });
      const next = track(l, clock, 'n', 'chat.postMessage', { channel: 'CB' });
      await clock.advance(300);
      ac2.abort();
      await clock.advance(0);
      expect(pacing.error?.code).to.equal('aborted');
      await clock.advance(700);
      expect(next.grantedAt).to.equal(1000);
    });
  });

  describe('reporting waits', () => {
    it('reports once when the expected wait reaches 1 s, never for short waits', async () => {
      const clock = new FakeClock();
      const l = limiter(clock, { perMinute: { 'users.lookupByEmail': 120 }, burst: 1 });
      const reports: { method: string; seconds: number }[] = [];
      const onWait = (w: { method: string; seconds: number }) => {
        reports.push(w);
      };
      track(l, clock, 'a', 'users.lookupByEmail', {}, { onWait }); // no wait
      track(l, clock, 'b', 'users.lookupByEmail', {}, { onWait }); // 0.5 s
      track(l, clock, 'c', 'users.lookupByEmail', {}, { onWait }); // 1 s
      track(l, clock, 'd', 'users.lookupByEmail', {}, { onWait }); // 1.5 s
      await clock.advance(0);
      expect(reports).to.deep.equal([
        { method: 'users.lookupByEmail', seconds: 1 },
        { method: 'users.lookupByEmail', seconds: 2 },
      ]);
    });

    it('names the channel when a post waits behind others', async () => {
      const clock = new FakeClock();
      const l = limiter(clock);
      const reports: unknown[] = [];
      for (let i = 0; i < 3; i++) track(l, clock, `p${i}`, 'chat.postMessage', { channel: 'CA' }, { onWait: (w: unknown) => void reports.push(w) });
      await clock.advance(0);
      expect(reports).to.deep.equal([
        { method: 'chat.postMessage', seconds: 1, channel: 'CA' },
        { method: 'chat.postMessage', seconds: 2, channel: 'CA' },
      ]);
    });
  });

  describe('safety margin against timing jitter (on by default)', () => {
    it('keeps half a call of the burst in reserve and spaces 2 % slower than the rate', async () => {
      const clock = new FakeClock();
      const l = new RateLimiter({ perMinute: { 'conversations.create': 60 }, burst: 3, channelPostsPerSecond: 1, channelBurst: 1, clock });
      const calls = Array.from({ length: 5 }, (_, i) => track(l, clock, `c${i}`, 'conversations.create'));
      await clock.advance(10_000);
      // Burst 3 → 2.5: 2 back to back, the third after half an interval, then one per
      // 1000 / 0.98 ≈ 1020.4 ms (timers round up to the ms).
      expect(calls.map((c) => c.grantedAt)).to.deep.equal([0, 0, 511, 1531, 2552]);
    });

    it('leaves a burst of 1 alone and paces a channel 2 % under channel_posts_per_second', async () => {
      const clock = new FakeClock();
      const l = new RateLimiter({ perMinute: {}, burst: 1, channelPostsPerSecond: 1, channelBurst: 1, clock });
      const granted = await servePosts(l, clock, 4, () => 0);
      const gaps = granted.slice(1).map((t, i) => t - granted[i]);
      expect(granted[0]).to.equal(0);
      for (const g of gaps) expect(g).to.be.within(1020, 1030);
      expect(usableBurst(1)).to.equal(1);
      expect(usableBurst(3)).to.equal(2.5);
    });

    it('a server enforcing the configured limits answers no 429 despite jitter of a third of an interval', async () => {
      // The worker's clock and Slack's differ by each request's travel time: arrivals are
      // the grant time plus a delay swinging between 300 ms and 0, against a strict token
      // bucket with the configured rate (1/s) and burst (3).
      const jitter = (i: number) => (i % 2 === 0 ? 300 : 0);
      const opts = { perMinute: {}, burst: 1, channelPostsPerSecond: 1, channelBurst: 3 };
      const c1 = new FakeClock();
      const withMargin = await servePosts(new RateLimiter({ ...opts, clock: c1 }), c1, 20, jitter);
      expect(refusedBy(withMargin, 1, 3)).to.equal(0);
      // Without the margin the same jitter draws 429s.
      const c2 = new FakeClock();
      const exact = await servePosts(new RateLimiter({ ...opts, safetyMargin: false, clock: c2 }), c2, 20, jitter);
      expect(refusedBy(exact, 1, 3)).to.be.above(0);
    });
  });

  it('forgets idle channel lanes once many channels were seen', async () => {
    const clock = new FakeClock();
    const l = limiter(clock);
    for (let i = 0; i < 300; i++) {
      const p = track(l, clock, `p${i}`, 'chat.postMessage', { channel: `C${i}` });
      await clock.advance(0);
      p.lease?.release();
    }
    await clock.advance(5_000);
    track(l, clock, 'last', 'chat.postMessage', { channel: 'CLAST' });
    await clock.advance(0);
    expect(l.laneCount).to.be.below(300);
  });
});

describe('[fn_slack] rate-limit keys', () => {
  const base = { api_token: 'xoxb-1', api_url: 'http://127.0.0.1:9/api/' };
  const load = (extra: Record<string, string>) =>
    validateSection<SlackConfig>({ file: 'app.config', sections: { fn_slack: { ...base, ...extra } } }, 'fn_slack', SLACK_CONFIG_SCHEMA);

  it("defaults to Slack's documented tiers, on, 1 post per second per channel", () => {
    const cfg = load({});
    expect(cfg.rate_limits).to.equal('on');
    expect(cfg.channel_posts_per_second).to.equal(1);
    const l = createRateLimiter(cfg) as RateLimiter;
    expect(l).to.be.instanceOf(RateLimiter);
    expect(l.budgetOf('conversations.create')).to.equal(20);
    expect(l.budgetOf('conversations.archive')).to.equal(20);
    expect(l.budgetOf('conversations.history')).to.equal(50);
    expect(l.budgetOf('conversations.invite')).to.equal(50);
    expect(l.budgetOf('users.lookupByEmail')).to.equal(50);
    expect(l.budgetOf('users.info')).to.equal(100);
    expect(l.budgetOf('files.getUploadURLExternal')).to.equal(100);
    expect(l.budgetOf('files.completeUploadExternal')).to.equal(100);
    expect(l.budgetOf('chat.postMessage')).to.equal(undefined);
  });

  it('applies overrides and turns scheduling off with rate_limits = off', () => {
    const l = createRateLimiter(load({ rate_limit_overrides: 'conversations.create:50, users.lookupByEmail : 100,chat.postMessage:300' })) as RateLimiter;
    expect(l.budgetOf('conversations.create')).to.equal(50);
    expect(l.budgetOf('users.lookupByEmail')).to.equal(100);
    expect(l.budgetOf('chat.postMessage')).to.equal(300);
    expect(l.budgetOf('conversations.archive')).to.equal(20);
    expect(createRateLimiter(load({ rate_limits: 'off' }))).to.equal(undefined);
    expect(methodBudgets({ 'x.y': 7 })['x.y']).to.equal(7);
  });

  it('refuses a bad override naming the entry', () => {
    const bad: [string, RegExp][] = [
      ['conversations.create=50', /"conversations\.create=50" is not method:perMinute/],
      ['conversations.create:fast', /"conversations\.create:fast": the calls per minute must be a positive number \(got "fast"\)/],
      ['conversations.create:0', /must be a positive number \(got "0"\)/],
      ['create:10', /"create" is not a Slack method name/],
      ['users.info:10, users.info:20', /users\.info is listed twice/],
    ];
    for (const [text, message] of bad) {
      expect(() => parseRateLimitOverrides(text), text).to.throw(ConfigError, message);
      expect(() => parseRateLimitOverrides(text), text).to.throw(/\[fn_slack\] rate_limit_overrides/);
    }
    expect(parseRateLimitOverrides(' ')).to.deep.equal({});
  });

  it('refuses rate_limits other than on/off and a non-positive channel rate', () => {
    expect(() => load({ rate_limits: 'yes' })).to.throw(/\[fn_slack\] rate_limits: must be one of on, off/);
    expect(() => load({ channel_posts_per_second: '0' })).to.throw(/\[fn_slack\] channel_posts_per_second/);
    expect(() => load({ rate_limit_burst: '0' })).to.throw(/\[fn_slack\] rate_limit_burst/);
  });
});

describe("README's rate-limit budgets", () => {
  // The "Per-method budgets" bullet lists the methods in groups, each ended by its rate
  // ("… 20/min; … 50/min; … 100/min."); `.rename` stands for the conversations method
  // named before it. Every method with a budget must be in the group of its tier.
  const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');
  const bullet = /- \*\*Per-method budgets\.\*\*([\s\S]*?)\n- \*\*/.exec(readme)?.[1] ?? '';
  const groups: Array<{ rate: number; text: string }> = [];
  for (const m of bullet.matchAll(/([\s\S]*?)(\d+)\/min/g)) groups.push({ rate: Number(m[2]), text: m[1]! });
  const named = (text: string, method: string): boolean =>
    text.includes(`\`${method}\``) || (method.startsWith('conversations.') && text.includes(`\`.${method.slice('conversations.'.length)}\``));

  it('names every budgeted method at its tier', () => {
    expect(groups.map((g) => g.rate)).to.deep.equal([TIER[2], TIER[3], TIER[4], TIER[UNKNOWN_METHOD_TIER]]);
    for (const [method, tier] of Object.entries(METHOD_TIERS)) {
      const found = groups.filter((g) => named(g.text, method)).map((g) => g.rate);
      expect(found, method).to.deep.equal([TIER[tier]]);
    }
  });

  it('names every method with a "special" limit as having no budget', () => {
    // The last group is the sentence on special limits, ended by "any other method gets 20/min".
    const special = groups.at(-1)?.text ?? '';
    expect(special).to.contain('"special" limits');
    for (const method of SPECIAL_METHODS) expect(named(special, method), method).to.equal(true);
  });
});
