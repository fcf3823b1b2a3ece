/**
 * Benchmark 2, slack_post_message end to end: invocations through RabbitMQ and the
 * built `worker run` to the Slack emulator (its own process, no rate limits), against
 * two references measured in the same run: the bare amqplib echo of benchmark 1 (the
 * broker's floor) and a bare `@slack/web-api` client posting to the same emulator
 * process with the same calls in flight (bench/bare-slack-client.ts: the Slack path's
 * floor). The target is worker ≥ 0.9 × the bare client.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Caller, deleteDestination, REPO_ROOT, writeConfig } from '../test/support/harness.js';
import { BENCH_LOGLEVEL, check, closedLoop, DistWorker, printTable, printTargets, round, workerNodeArgs, writeResult, type LoadResult } from './common.js';
import { echoReference, IN_FLIGHT } from './echo.js';
import { RemoteEmulator } from './emulator.js';

const TOTAL = 3_300;
const WARMUP = 300;
/** Posts are spread over this many existing channels (one incident each), as many incidents would be. */
const CHANNELS = 10;
/** The target for this 2-core machine. */
const TARGET_PER_SECOND = 1_500;
/** The worker's throughput as a share of the bare client's (issue #17, item 5). */
const TARGET_RATIO_TO_BARE_CLIENT = 0.9;

/** Runs bench/bare-slack-client.ts in its own process and resolves with its figures. */
function bareSlackClient(args: { apiUrl: string; token: string; channels: string[]; total: number; warmup: number; inFlight: number }): Promise<LoadResult> {
  const child = fork(path.join(REPO_ROOT, 'bench', 'bare-slack-client.ts'), [JSON.stringify(args)], {
    cwd: REPO_ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as LoadResult));
    child.once('exit', (code) => reject(new Error(`bench/bare-slack-client.ts exited (${code}) without a result`)));
  });
}

export async function runPostMessage(): Promise<boolean> {
  console.log(`\n=== 2. slack_post_message end to end (worker run → Slack emulator, no limits, ${IN_FLIGHT} in flight) ===`);
  const echo = await echoReference(5_500, 500);
  const emu = await RemoteEmulator.start();
  const cfg = writeConfig({
    withEchoPlugin: false,
    worker: { loglevel: BENCH_LOGLEVEL, num_workers: IN_FLIGHT },
    // No limits on either side: the emulator enforces none, and the worker's scheduler
    // (on by default) would otherwise pace posts at Slack's real rates.
    sections: { fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl, rate_limits: 'off' } },
  });
  fs.mkdirSync(path.join(cfg.dir, 'files', 'incidents'), { recursive: true });
  const channels: string[] = [];
  for (let c = 0; c < CHANNELS; c++) channels.push((await emu.seedChannel({ name: `bench-post-${c}` })).id);
  // The bare client first, while no worker runs: each side has the machine to itself.
  const bare = await bareSlackClient({ apiUrl: emu.apiUrl, token: emu.botToken, channels, total: TOTAL, warmup: WARMUP, inFlight: IN_FLIGHT });
  await emu.resetCalls();
  const worker = DistWorker.start(cfg.file, workerNodeArgs('post-message'));
  const caller = await Caller.open();
  try {
    await worker.ready();
    const result = await closedLoop(
      caller,
      cfg.destination,
      (i) =>
        caller.invocation('slack_post_message', {
          incident_id: 5000 + (i % CHANNELS),
          slack_channel_id: channels[i % CHANNELS],
          slack_text: `Benchmark update ${i}: containment in progress`,
        }),
      { total: TOTAL, inFlight: IN_FLIGHT, warmup: WARMUP, failOn: worker.died, cpuOfPid: worker.pid },
    );
    const mem = worker.memory();
    const stats = await emu.stats();
    const perInvocation = round(stats.totalCalls / TOTAL, 2);
    const ratio = result.perSecond / echo.perSecond;
    const bareRatio = result.perSecond / bare.perSecond;
    // What the throughput ratio would be with the machine to themselves, both CPU-bound
    // (CPU per call hardly depends on other work on the machine; throughput does).
    const cpuRatio = (bare.cpuMsPerInvocation ?? NaN) / (result.cpuMsPerInvocation ?? NaN);
    printTable('slack_post_message (publish → final reply; bare client: call → answer)', [
      { side: 'bare amqplib echo (ref)', 'inv/s': echo.perSecond, 'p50 ms': echo.latency.p50_ms, 'p99 ms': echo.latency.p99_ms },
      { side: 'bare @slack/web-api chat.postMessage (ref)', 'inv/s': bare.perSecond, 'p50 ms': bare.latency.p50_ms, 'p99 ms': bare.latency.p99_ms, failures: bare.failures, 'CPU ms/inv': bare.cpuMsPerInvocation ?? null },
      { side: 'post_message via worker', 'inv/s': result.perSecond, 'p50 ms': result.latency.p50_ms, 'p99 ms': result.latency.p99_ms, failures: result.failures, 'CPU ms/inv': result.cpuMsPerInvocation ?? null },
      { side: 'ratio worker/echo', 'inv/s': round(ratio, 3) },
      { side: 'ratio worker/bare client', 'inv/s': round(bareRatio, 3), 'CPU ms/inv': `bare ÷ worker: ${round(cpuRatio, 3)}` },
    ]);
    printTable('Slack calls per invocation', Object.entries(stats.byMethod).map(([method, counts]) => ({ method, per_invocation: round(Object.values(counts).reduce((a, b) => a + b, 0) / TOTAL, 2) })));
    const targets = [
      check('post_message invocations/s', result.perSecond, '>=', TARGET_PER_SECOND, 'inv/s'),
      check('post_message ÷ bare @slack/web-api client', round(bareRatio, 3), '>=', TARGET_RATIO_TO_BARE_CLIENT, '×'),
      check('failures', result.failures, '<=', 0),
      check('bare client failures', bare.failures, '<=', 0),
    ];
    printTargets(targets);
    const file = writeResult({
      name: 'post-message',
      title: 'slack_post_message end to end against the Slack emulator, no rate limits',
      placement: {
        caller: 'benchmark process (node + tsx)',
        worker: `own process: node dist/src/cli.js run, loglevel ${BENCH_LOGLEVEL}, SQLite store`,
        slack_emulator: 'own process (node + tsx, bench/emulator-host.ts), over HTTP on 127.0.0.1',
        broker: 'RabbitMQ on 127.0.0.1',
      },
      figures: {
        in_flight: IN_FLIGHT,
        channels: CHANNELS,
        warmup: WARMUP,
        post_message: { ...result, firstFailure: undefined, first_failure: result.firstFailure },
        worker_rss_mb_after: mem.rssMb,
        worker_peak_rss_mb: mem.hwmMb,
        slack_calls_per_invocation: perInvocation,
        slack_calls_by_method: stats.byMethod,
        bare_echo_reference: { perSecond: echo.perSecond, latency: echo.latency },
        ratio_to_bare_echo: round(ratio, 3),
        bare_slack_client: { ...bare, firstFailure: undefined, first_failure: bare.firstFailure },
        ratio_to_bare_slack_client: round(bareRatio, 3),
        cpu_ratio_bare_client_to_worker: round(cpuRatio, 3),
      },
      targets,
      notes: [
        'Inputs: incident_id + slack_channel_id of an existing channel + a short plain-text slack_text (one chat.postMessage per invocation).',
        'The bare echo reference is the measurement of benchmark 1 in the same run (or taken here when run alone).',
        "The worker's WebClient sends its calls through its node:http transport (src/functions/slack/http-transport.ts); the bare client's through the SDK default, Node's global fetch.",
        'The bare client reference: bench/bare-slack-client.ts, a WebClient with the SDK defaults in its own process (node + tsx), the same emulator process, channels, text, total, warm-up and in-flight count, run just before the worker starts. Its latency is call → answer, the worker\'s publish → final reply.',
      ],
    });
    console.log(`wrote ${file}`);
    return targets.every((t) => t.pass);
  } finally {
    await caller.close();
    await worker.stop();
    await deleteDestination(cfg.destination);
    await emu.close();
  }
}
