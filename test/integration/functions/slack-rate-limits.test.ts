/**
 * fn_slack's rate-limit scheduling against the Slack emulator's enforced limits
 * (`setRateLimits`: token buckets on a clock running `timeScale` times faster, 429 with
 * Retry-After beyond them). The worker's limits are set to 90% of the emulator's in real
 * time, so that network jitter cannot push two paced calls closer than the emulator
 * allows. With scheduling off, the same runs get 429s: the tests can fail.
 */
import { expect } from 'chai';
import { SlackEmulator } from '../../support/slack-emulator.js';
import { expectOk, runFunction, slackFixture, type SlackFixture } from '../../support/function-context.js';
import type { SlackClient, WaitInfo } from '../../../src/functions/slack/slack-client.js';

/** Emulated Slack seconds per real second: Slack's 1 post/s per channel becomes 20/s. */
const TIME_SCALE = 20;
/** The worker's pace relative to the emulator's limit. */
const MARGIN = 0.9;

describe('fn_slack rate-limit scheduling (Slack emulator with enforced limits)', function () {
  this.timeout(20_000);
  let emu: SlackEmulator;
  const fixtures: SlackFixture[] = [];

  beforeEach(async () => {
    emu = await SlackEmulator.start();
  });

  afterEach(async () => {
    for (const f of fixtures.splice(0)) await f.close();
    await emu.close();
  });

  async function fixture(overrides: Record<string, string>): Promise<SlackFixture> {
    const fx = await slackFixture(emu.apiUrl, emu.botToken, overrides);
    fixtures.push(fx);
    return fx;
  }

  /** Paced like the emulator's channel limit (burst 1), 90% of its rate in real time. */
  const pacedPosts = {
    rate_limits: 'on',
    channel_posts_per_second: String(1 * TIME_SCALE * MARGIN),
    channel_post_burst: '1',
    retry_budget: '10',
  };

  function seedChannels(n: number): string[] {
    return Array.from({ length: n }, (_, i) => emu.seedChannel({ name: `rl-${i}` }).id);
  }

  /** Posts `perChannel` messages to each channel, all started at once; returns the outcomes. */
  async function postAll(client: SlackClient, channels: string[], perChannel: number) {
    const jobs: Promise<{ ok: boolean; code?: string }>[] = [];
    for (let i = 0; i < perChannel; i++) {
      for (const channel of channels) {
        jobs.push(
          client.call('chat.postMessage', { channel, text: `m-${i}` }).then(
            () => ({ ok: true }),
            (err: { code?: string }) => ({ ok: false, code: err.code }),
          ),
        );
      }
    }
    return Promise.all(jobs);
  }

  it('posts 120 messages across 6 channels at once with no 429, each channel in order, at the pace the limits allow', async () => {
    emu.setRateLimits({ perChannelPostsPerSecond: 1, burst: 2, timeScale: TIME_SCALE });
    const fx = await fixture(pacedPosts);
    const channels = seedChannels(6);
    const started = Date.now();
    const outcomes = await postAll(fx.state.client, channels, 20);
    const elapsedMs = Date.now() - started;

    expect(outcomes.filter((o) => !o.ok)).to.deep.equal([]);
    expect(emu.rateLimitedCount, '429s answered by the emulator').to.equal(0);
    for (const channel of channels) {
      expect(emu.messages(channel).map((m) => m.text)).to.deep.equal(Array.from({ length: 20 }, (_, i) => `m-${i}`));
    }
    // Each channel's 20 posts are paced: the first goes at once, 19 intervals follow.
    const floorMs = (19 / (TIME_SCALE * MARGIN)) * 1000;
    expect(elapsedMs).to.be.at.least(floorMs * 0.95);
    console.log(`      120 posts / 6 channels: ${elapsedMs} ms (pacing floor ${Math.round(floorMs)} ms), 429s: ${emu.rateLimitedCount}`);
  });

  it("does not hold a post to channel B behind channel A's backlog", async () => {
    const fx = await fixture({ rate_limits: 'on', channel_posts_per_second: '5', channel_post_burst: '1' });
    const [a, b] = seedChannels(2);
    const jobs = Array.from({ length: 10 }, (_, i) => fx.state.client.call('chat.postMessage', { channel: a, text: `a-${i}` }));
    jobs.push(fx.state.client.call('chat.postMessage', { channel: b, text: 'b-0' }));
    await Promise.all(jobs);
    const order = emu.callLog.filter((c) => c.method === 'chat.postMessage').map((c) => c.params.text);
    // A's posts are 200 ms apart; B's, asked for last, went out with A's first.
    expect(order.indexOf('b-0')).to.be.below(order.indexOf('a-2'));
    expect(emu.messages(a).map((m) => m.text)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `a-${i}`));
  });

  it('gets 429s for the same run with rate_limits = off (the test above can fail)', async () => {
    emu.setRateLimits({ perChannelPostsPerSecond: 1, burst: 2, timeScale: TIME_SCALE });
    // No retry budget: a 429 fails the call at once instead of waiting it out.
    const fx = await fixture({ rate_limits: 'off', retry_budget: '0' });
    const channels = seedChannels(6);
    const outcomes = await postAll(fx.state.client, channels, 20);
    expect(emu.rateLimitedCount).to.be.above(0);
    expect(outcomes.filter((o) => !o.ok).map((o) => o.code)).to.include('slack_rate_limited');
  });

  it("keeps within a method's budget (conversations.create, Tier 2 scaled) with no 429; off, it gets 429s", async () => {
    const perMinute = 20; // Slack's Tier 2
    emu.setRateLimits({ perMethod: { 'conversations.create': perMinute }, burst: 2, timeScale: TIME_SCALE });
    const realPerMinute = perMinute * TIME_SCALE * MARGIN;
    const fx = await fixture({ ...pacedPosts, rate_limit_burst: '1', rate_limit_overrides: `conversations.create:${realPerMinute}` });
    const started = Date.now();
    const created = await Promise.all(Array.from({ length: 12 }, (_, i) => fx.state.client.call('conversations.create', { name: `rl-create-${i}` })));
    const elapsedMs = Date.now() - started;
    expect(created.every((r) => r.ok)).to.equal(true);
    expect(emu.rateLimitedCount).to.equal(0);
    expect(elapsedMs).to.be.at.least(((11 * 60) / realPerMinute) * 1000 * 0.95);
    console.log(`      12 conversations.create: ${elapsedMs} ms (pacing floor ${Math.round(((11 * 60) / realPerMinute) * 1000)} ms), 429s: 0`);

    emu.setRateLimits({ perMethod: { 'conversations.create': perMinute }, burst: 2, timeScale: TIME_SCALE });
    const off = await fixture({ rate_limits: 'off', retry_budget: '0' });
    await Promise.allSettled(Array.from({ length: 12 }, (_, i) => off.state.client.call('conversations.create', { name: `rl-off-${i}` })));
    expect(emu.rateLimitedCount).to.be.above(0);
  });

  it("honours a Retry-After for every post to that channel, keeps the channel's order, and lets other channels go on", async () => {
    const fx = await fixture(pacedPosts);
    const [a, b] = seedChannels(2);
    // The first post (to A) is told to wait 1 s.
    emu.failNext('chat.postMessage', { retryAfter: 1 });
    const waits: WaitInfo[] = [];
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 5; i++) {
      for (const channel of [a, b]) {
        jobs.push(fx.state.client.call('chat.postMessage', { channel, text: `m-${i}` }, { onWait: (w) => void waits.push(w) }));
      }
    }
    await Promise.all(jobs);
    expect(emu.rateLimitedCount).to.equal(1);
    expect(emu.calls('chat.postMessage')).to.equal(11);
    expect(waits).to.deep.include({ method: 'chat.postMessage', seconds: 1, reason: 'rate_limited' });
    const inA = emu.messages(a);
    const inB = emu.messages(b);
    expect(inA.map((m) => m.text)).to.deep.equal(['m-0', 'm-1', 'm-2', 'm-3', 'm-4']);
    expect(inB.map((m) => m.text)).to.deep.equal(['m-0', 'm-1', 'm-2', 'm-3', 'm-4']);
    // B did not wait for A's pause: all of B was posted before A's first message.
    expect(Number(inB[4]!.ts)).to.be.below(Number(inA[0]!.ts));
  });

  it("does not count the scheduler's own waits against retry_budget, only Slack's", async () => {
    // conversations.create at 40/min, no burst: the second call waits 1.5 s in the scheduler.
    const fx = await fixture({ rate_limits: 'on', rate_limit_burst: '1', rate_limit_overrides: 'conversations.create:40', retry_budget: '1' });
    await fx.state.client.call('conversations.create', { name: 'rl-budget-0' });
    emu.failNext('conversations.create', { retryAfter: 1 });
    const waits: WaitInfo[] = [];
    const started = Date.now();
    const res = await fx.state.client.call('conversations.create', { name: 'rl-budget-1' }, { onWait: (w) => void waits.push(w) });
    expect(res.ok).to.equal(true);
    // 1.5 s of pacing + Slack's 1 s: past the 1 s budget in wall time, within it in Slack's waits.
    expect(Date.now() - started).to.be.at.least(2400);
    expect(waits.map((w) => w.reason)).to.deep.equal(['scheduled', 'rate_limited']);
  });

  it('stops a call waiting in the scheduler when the invocation is aborted', async () => {
    const fx = await fixture({ rate_limits: 'on', rate_limit_burst: '1', rate_limit_overrides: 'conversations.create:1' });
    await fx.state.client.call('conversations.create', { name: 'rl-abort-0' });
    const ac = new AbortController();
    const pending = fx.state.client.call('conversations.create', { name: 'rl-abort-1' }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    const started = Date.now();
    const err = await pending.then(
      () => undefined,
      (e: { code?: string }) => e,
    );
    expect(err?.code).to.equal('aborted');
    expect(Date.now() - started).to.be.below(5_000); // not the 60 s the budget would make it wait
    expect(emu.calls('conversations.create')).to.equal(1);
  });

  it('slack_post_message invocations sharing a channel stay under the limit and say why they wait', async () => {
    // Real time: Slack's one post per second per channel, enforced strictly (burst 1).
    emu.setRateLimits({ perChannelPostsPerSecond: 1, burst: 1, timeScale: 1 });
    const fx = await fixture({ rate_limits: 'on', channel_posts_per_second: '0.9', channel_post_burst: '1' });
    emu.seedChannel({ name: 'inc-7' });
    const runs = await Promise.all(
      [1, 2, 3].map((n) => runFunction(fx, 'slack_post_message', { incident_id: 7, slack_channel: 'inc-7', slack_is_channel_private: false, slack_text: `update ${n}` })),
    );
    runs.forEach((r) => expectOk(r));
    expect(emu.rateLimitedCount).to.equal(0);
    const progress = runs.flatMap((r) => r.progress);
    expect(progress.some((p) => /^Pacing Slack calls to stay within Slack's rate limits: chat\.postMessage waits about \d+s$/.test(p)), progress.join('\n')).to.equal(true);
  });
});
