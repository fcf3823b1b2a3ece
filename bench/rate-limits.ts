/**
 * Benchmark 3, under Slack's limits: the emulator enforces Slack's per-method tiers and
 * the per-channel posting limit on a clock running TIME_SCALE times faster than real
 * time. 600 slack_post_message invocations across 30 new channels, mixed with 60
 * slack_post_attachment uploads, all published at once to `worker run`; then the same
 * work through a plain consumer (bench/baseline-consumer.ts). Reports makespan, the
 * ideal makespan the limits allow for each, the 429s and the failures.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RateLimitOptions } from '../test/support/slack-emulator.js';
import { AMQP_URL, Caller, deleteDestination, uniqueName, writeConfig } from '../test/support/harness.js';
import { BenchChild, BENCH_LOGLEVEL, brokerLost, check, DistWorker, printTable, printTargets, round, workerNodeArgs, writeResult } from './common.js';
import { RemoteEmulator, type EmulatorStats } from './emulator.js';
import { methodBudgets } from '../src/functions/slack/rate-limiter.js';
import { IN_FLIGHT } from './echo.js';

const CHANNELS = 30;
const POSTS_PER_CHANNEL = 20;
const UPLOADS_PER_CHANNEL = 2;
/** Rounds over the 30 channels: each round sends one job to every channel; these rounds are uploads. */
const UPLOAD_ROUNDS = new Set([7, 15]);
const ROUNDS = POSTS_PER_CHANNEL + UPLOADS_PER_CHANNEL;
const UPLOAD_BYTES = 4096;

/**
 * Emulated Slack seconds per real second. 10 keeps the run short (the ~95 Slack seconds
 * this work needs take ~10 real seconds) while a channel's posts stay 100 ms apart in
 * real time, so the few ms of jitter between the processes (worker, emulator) are small
 * against the spacing. (At 60 they were 16 ms apart and jitter alone caused 429s.)
 * The emulator reports Retry-After in whole real seconds (≥ 1 = 10 Slack seconds).
 */
const TIME_SCALE = 10;

/**
 * The bursts both sides use: the worker's defaults (rate_limit_burst = 5 per method,
 * channel_post_burst = 3 per channel), configured on the emulator too, as an operator
 * would set the worker to match their workspace. Slack documents chat.postMessage as
 * about one message per second per channel "with short bursts allowed" and publishes no
 * number for either burst, so the worker's defaults stand for Slack's.
 */
const METHOD_BURST = 5;
const CHANNEL_BURST = 3;

/**
 * Slack's published tiers (calls per minute, per method, per app and workspace):
 * Tier 2 = 20, Tier 3 = 50, Tier 4 = 100. chat.postMessage is "special": 1 per second
 * per channel (set below), plus a workspace limit that Slack does not publish (not
 * enforced here). chat.getPermalink and auth.test are "special" without a published
 * number and are not limited here either.
 */
const TIERS: Record<string, number> = {
  'conversations.create': 20,
  'conversations.list': 20,
  'conversations.info': 50,
  'conversations.join': 50,
  'conversations.invite': 50,
  'users.lookupByEmail': 50,
  'conversations.members': 100,
  'files.getUploadURLExternal': 100,
  'files.completeUploadExternal': 100,
  'files.info': 100,
  'users.info': 100,
};
const LIMITS: RateLimitOptions = { perMethod: TIERS, burst: METHOD_BURST, perChannelPostsPerSecond: 1, perChannelBurst: CHANNEL_BURST, timeScale: TIME_SCALE };

const TARGET_EFFICIENCY = 0.9;

/**
 * The shortest makespan the limits allow, in Slack seconds (a lower bound):
 *
 *   ideal = max( max over limited methods m of  max(0, N_m − B_m) / r_m ,
 *                max over channels k (in creation order) of  t_k + max(0, P − b) / p )
 *
 * - N_m = calls of method m that Slack answered (not 429), B_m = its bucket size
 *   (`limits.burst`, else one minute's allowance), r_m = per-minute limit / 60.
 *   A token bucket that starts full lets B_m calls through at once, then one per 1/r_m.
 * - Channel k cannot be posted to before it exists: with C = conversations.create's
 *   bucket and rate, the k-th create (k = 1…30) happens at the earliest at
 *   t_k = max(0, k − B_C) / r_C. Its P posts then need (P − b)/p more, where p is the
 *   per-channel rate (1/s) and b its burst (`perChannelBurst`, else `burst`, else 1).
 * Everything else (round trips, the worker's own work) is taken as free, so no real
 * run reaches 1.0; 0.9 leaves 10 % for them.
 */
export function idealSlackSeconds(okCalls: Record<string, number>, limits: RateLimitOptions, postsPerChannel: number[]): { seconds: number; bound: string } {
  let best = { seconds: 0, bound: 'none' };
  const take = (seconds: number, bound: string) => {
    if (seconds > best.seconds) best = { seconds, bound };
  };
  for (const [method, perMin] of Object.entries(limits.perMethod ?? {})) {
    const n = okCalls[method] ?? 0;
    const burst = Math.max(1, limits.burst ?? perMin);
    take(Math.max(0, n - burst) / (perMin / 60), `${method}: ${n} calls at ${perMin}/min`);
  }
  const perSec = limits.perChannelPostsPerSecond ?? 0;
  if (perSec > 0) {
    const b = Math.max(1, limits.perChannelBurst ?? limits.burst ?? Math.max(1, perSec));
    const createPerMin = limits.perMethod?.['conversations.create'];
    const createBurst = createPerMin ? Math.max(1, limits.burst ?? createPerMin) : Infinity;
    // Busiest channels first: the schedule that finishes soonest.
    const sorted = [...postsPerChannel].sort((x, y) => y - x);
    sorted.forEach((posts, i) => {
      const createdAt = createPerMin ? Math.max(0, i + 1 - createBurst) / (createPerMin / 60) : 0;
      take(createdAt + Math.max(0, posts - b) / perSec, `channel created ${i + 1}th, then ${posts} posts at ${perSec}/s`);
    });
  }
  return best;
}

interface SideResult {
  makespan_s: number;
  invocations: number;
  failures: number;
  first_failure?: unknown;
  rate_limited_429: number;
  slack_calls: number;
  ok_calls_by_method: Record<string, number>;
  ideal_s: number;
  ideal_bound: string;
  efficiency: number;
  channels_created: number;
  posts_in_slack: number;
}

function jobs(prefix: string): { fn: string; inputs: Record<string, unknown> }[] {
  const list: { fn: string; inputs: Record<string, unknown> }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < CHANNELS; k++) {
      const base = { incident_id: 8000 + k, slack_channel: `${prefix}-${k}`, slack_is_channel_private: false };
      list.push(
        UPLOAD_ROUNDS.has(r)
          ? { fn: 'slack_post_attachment', inputs: { ...base, attachment_id: r, slack_text: `evidence ${r}` } }
          : { fn: 'slack_post_message', inputs: { ...base, slack_text: `Update ${r} on incident ${8000 + k}` } },
      );
    }
  }
  return list;
}

/** Writes the upload files where the local platform (and the baseline) look for them. */
function writeAttachments(platformDir: string): void {
  for (let k = 0; k < CHANNELS; k++) {
    for (const r of UPLOAD_ROUNDS) {
      const dir = path.join(platformDir, 'incidents', String(8000 + k), 'attachments', String(r));
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `evidence-${r}.txt`), 'x'.repeat(UPLOAD_BYTES));
    }
  }
}

/** Publishes every job at once and waits for all final replies. */
async function publishAll(caller: Caller, destination: string, prefix: string, failOn?: Promise<never>): Promise<{ seconds: number; failures: number; first?: unknown }> {
  const list = jobs(prefix);
  const pending = new Set<string>();
  let failures = 0;
  let first: unknown;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  caller.onReply = (id, body) => {
    if (body.complete !== true || !pending.delete(id)) return;
    caller.replies.delete(id);
    if (body.message_type !== 0) {
      failures++;
      first ??= body;
    }
    if (pending.size === 0) done();
  };
  const t0 = performance.now();
  for (const j of list) pending.add(caller.publish(destination, caller.invocation(j.fn, j.inputs)));
  let timer: NodeJS.Timeout | undefined;
  const lost = brokerLost(caller);
  await Promise.race([
    finished,
    lost.promise,
    ...(failOn ? [failOn] : []),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${pending.size} of ${list.length} invocations unfinished after 15 min`)), 900_000))),
  ]).finally(() => {
    clearTimeout(timer);
    lost.cancel();
    caller.onReply = undefined;
  });
  return { seconds: (performance.now() - t0) / 1000, failures, first };
}

async function summarizeSide(emu: RemoteEmulator, prefix: string, run: { seconds: number; failures: number; first?: unknown }): Promise<SideResult> {
  const stats: EmulatorStats = await emu.stats();
  const ok: Record<string, number> = {};
  for (const [method, counts] of Object.entries(stats.byMethod)) ok[method] = Object.entries(counts).filter(([s]) => s !== '429').reduce((a, [, n]) => a + n, 0);
  const ideal = idealSlackSeconds(ok, LIMITS, new Array<number>(CHANNELS).fill(POSTS_PER_CHANNEL));
  const idealReal = ideal.seconds / TIME_SCALE;
  let created = 0;
  let posts = 0;
  for (let k = 0; k < CHANNELS; k++) {
    const c = await emu.channelByName(`${prefix}-${k}`);
    if (c) {
      created++;
      posts += await emu.messageCount(c.id);
    }
  }
  return {
    makespan_s: round(run.seconds, 2),
    invocations: CHANNELS * ROUNDS,
    failures: run.failures,
    ...(run.first ? { first_failure: run.first } : {}),
    rate_limited_429: stats.rateLimited,
    slack_calls: stats.totalCalls,
    ok_calls_by_method: ok,
    ideal_s: round(idealReal, 2),
    ideal_bound: ideal.bound,
    efficiency: round(idealReal / run.seconds, 3),
    channels_created: created,
    posts_in_slack: posts,
  };
}

/**
 * The worker's rate-limit scheduler (on by default) paces in real time at Slack's rates;
 * the emulator's clock runs TIME_SCALE times faster. Every budget of the scheduler is
 * scaled by TIME_SCALE too, so the worker paces itself exactly as it would against
 * Slack, on the emulator's clock; its bursts are counts, set to the same numbers as the
 * emulator's (its own safety margin then keeps one of each in reserve).
 */
function scaledScheduler(): Record<string, string> {
  const overrides = Object.entries(methodBudgets())
    .map(([method, perMinute]) => `${method}:${perMinute * TIME_SCALE}`)
    .join(', ');
  return {
    rate_limits: 'on',
    rate_limit_overrides: overrides,
    rate_limit_burst: String(METHOD_BURST),
    channel_posts_per_second: String(TIME_SCALE),
    channel_post_burst: String(CHANNEL_BURST),
  };
}

async function workerSide(emu: RemoteEmulator): Promise<SideResult> {
  const prefix = `rl-worker-${Date.now() % 100000}`;
  const cfg = writeConfig({
    withEchoPlugin: false,
    worker: { loglevel: BENCH_LOGLEVEL, num_workers: IN_FLIGHT },
    sections: { fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl, ...scaledScheduler() } },
  });
  writeAttachments(path.join(cfg.dir, 'files'));
  const worker = DistWorker.start(cfg.file, workerNodeArgs('rate-limits'));
  const caller = await Caller.open();
  try {
    await worker.ready();
    await emu.resetCalls();
    await emu.setRateLimits(LIMITS);
    const run = await publishAll(caller, cfg.destination, prefix, worker.died);
    return await summarizeSide(emu, prefix, run);
  } finally {
    await emu.setRateLimits(undefined);
    await caller.close();
    await worker.stop();
    await deleteDestination(cfg.destination);
  }
}

async function baselineSide(emu: RemoteEmulator): Promise<SideResult> {
  const prefix = `rl-plain-${Date.now() % 100000}`;
  const queue = uniqueName('bench_plain');
  const cfg = writeConfig({ withEchoPlugin: false });
  const platformDir = path.join(cfg.dir, 'files');
  writeAttachments(platformDir);
  const consumer = await BenchChild.start('baseline-consumer.ts', [queue, AMQP_URL, emu.apiUrl, emu.botToken, platformDir]);
  let caller: Caller | undefined;
  try {
    caller = await Caller.open();
    await emu.resetCalls();
    await emu.setRateLimits(LIMITS);
    const run = await publishAll(caller, queue, prefix);
    return await summarizeSide(emu, prefix, run);
  } finally {
    await emu.setRateLimits(undefined);
    await caller?.close();
    await consumer.stop();
    await deleteDestination(queue);
  }
}

export async function runRateLimits(): Promise<boolean> {
  console.log(
    `\n=== 3. Under Slack's limits (time ×${TIME_SCALE}): ${CHANNELS * POSTS_PER_CHANNEL} posts + ${CHANNELS * UPLOADS_PER_CHANNEL} uploads across ${CHANNELS} new channels ===`,
  );
  const emu = await RemoteEmulator.start();
  let worker: SideResult;
  let plain: SideResult;
  try {
    worker = await workerSide(emu);
    plain = await baselineSide(emu);
  } finally {
    await emu.close();
  }
  const row = (side: string, r: SideResult) => ({
    side,
    'makespan s': r.makespan_s,
    'ideal s': r.ideal_s,
    'ideal/makespan': r.efficiency,
    '429s': r.rate_limited_429,
    'slack calls': r.slack_calls,
    failures: r.failures,
    channels: r.channels_created,
    posts: r.posts_in_slack,
  });
  printTable('Makespan against the ideal the limits allow (real seconds)', [row('worker run', worker), row('plain consumer (SDK retry, 1 at a time)', plain)]);
  printTable('Binding limit of each ideal', [
    { side: 'worker run', bound: worker.ideal_bound },
    { side: 'plain consumer', bound: plain.ideal_bound },
  ]);
  const speedup = plain.makespan_s / worker.makespan_s;
  console.log(`\nplain consumer makespan / worker makespan = ${round(speedup, 2)}`);
  const expectedItems = CHANNELS * (POSTS_PER_CHANNEL + UPLOADS_PER_CHANNEL);
  const targets = [
    check('worker: ideal / makespan', worker.efficiency, '>=', TARGET_EFFICIENCY),
    check('worker: failures', worker.failures, '<=', 0),
    check('worker: messages + upload shares in Slack', worker.posts_in_slack, '>=', expectedItems),
  ];
  printTargets(targets);
  const file = writeResult({
    name: 'rate-limits',
    title: "600 posts + 60 uploads across 30 new channels under Slack's limits: worker run vs a plain consumer",
    placement: {
      caller: 'benchmark process (node + tsx): publishes all 660 invocations at once',
      worker: `own process: node dist/src/cli.js run, num_workers ${IN_FLIGHT}, loglevel ${BENCH_LOGLEVEL}`,
      plain_consumer: 'own process (node + tsx, bench/baseline-consumer.ts), prefetch 1, WebClient default retries',
      slack_emulator: 'own process (node + tsx, bench/emulator-host.ts), rate limits on',
      broker: 'RabbitMQ on 127.0.0.1',
    },
    figures: {
      limits: LIMITS,
      time_scale: TIME_SCALE,
      worker,
      plain_consumer: plain,
      plain_makespan_over_worker_makespan: round(speedup, 3),
    },
    targets,
    notes: [
      `ideal = max over limited methods of (calls answered − burst ${METHOD_BURST}) / rate, and over channels of (earliest create + (posts − channel burst ${CHANNEL_BURST}) / (1 per s)); see idealSlackSeconds in bench/rate-limits.ts. Each side is judged against the calls it made. Emulator and worker use the same rates and bursts.`,
      'Real seconds = Slack seconds / time_scale. The emulator gives Retry-After in whole real seconds (at least 1).',
      'posts counts top-level messages in the 30 channels: 600 posts plus the 60 upload shares (each shared file shows as a message).',
    ],
  });
  console.log(`wrote ${file}`);
  return targets.every((t) => t.pass);
}
