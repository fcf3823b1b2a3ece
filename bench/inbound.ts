/**
 * Benchmark 6, inbound ack latency (issue #17 item 4): a burst of 1,000 `message`
 * events (a person writing in an incident's channel) from the Slack emulator over
 * Socket Mode to `worker run`, and for each envelope the time from the emulator's send
 * to the worker's ack as the emulator sees it. The worker acks an envelope only once
 * it is durably recorded (a confirmed publish to its inbound queue), so this is the
 * time Slack waits; Slack resends what is not acked within 3 s. The target: p99 under
 * 100 ms. The reference, measured in the same run against the same emulator process:
 * Slack's own `@slack/socket-mode` client acking each envelope at once
 * (bench/bare-socket-mode-client.ts), the floor of the WebSocket path on this machine.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Caller, deleteDestination, uniqueName, writeConfig } from '../test/support/harness.js';
import {
  BENCH_LOGLEVEL,
  BenchChild,
  check,
  DistWorker,
  printTable,
  printTargets,
  procCpuMs,
  round,
  sleep,
  summarize,
  workerNodeArgs,
  writeResult,
  type LatencySummary,
} from './common.js';
import { IN_FLIGHT } from './echo.js';
import { RemoteEmulator } from './emulator.js';

const BURST = 1_000;
/** A small burst first, not timed: connections, caches and JIT warm, as on a worker that has run a while. */
const WARMUP = 50;
const TARGET_P99_MS = 100;
/** How long a burst may take to be acked in full before the run counts it as lost. */
const ACK_TIMEOUT_MS = 60_000;
const INCIDENT_ID = 7001;

interface BurstResult {
  latency: LatencySummary;
  /** Envelopes of the burst the emulator had to send more than once (not acked within 3 s). */
  resent: number;
  /** Envelopes of the burst never acked within ACK_TIMEOUT_MS. */
  unacked: number;
  /** From the burst's start until its last ack. */
  seconds: number;
  /** How long the emulator took to raise the burst (its loop; no ack is read before it ends). */
  emulatorLoopMs: number;
  /** CPU time (user + system) of the receiving process per envelope, over the burst until its last ack. */
  cpuMsPerEnvelope: number;
}

/**
 * Posts `count` messages as `userId` in one synchronous loop in the emulator's process
 * (each raises its event at once) and waits until every one is acked, or ACK_TIMEOUT_MS.
 */
async function burst(
  emu: RemoteEmulator,
  receiverPid: number,
  channelId: string,
  userId: string,
  count: number,
  label: string,
): Promise<BurstResult> {
  const before = (await emu.socketModeEvents()).length;
  const cpuFrom = procCpuMs(receiverPid);
  const started = performance.now();
  const { loopMs } = await emu.postBurst(channelId, userId, count, label);
  const deadline = Date.now() + ACK_TIMEOUT_MS;
  let events = (await emu.socketModeEvents()).slice(before);
  while (events.length < count || events.some((e) => e.ackLatencyMs === null)) {
    if (Date.now() > deadline) break;
    await sleep(50);
    events = (await emu.socketModeEvents()).slice(before);
  }
  const seconds = (performance.now() - started) / 1000;
  const cpuMs = procCpuMs(receiverPid) - cpuFrom;
  const acked = events.map((e) => e.ackLatencyMs).filter((ms): ms is number => ms !== null);
  return {
    latency: summarize(acked),
    resent: events.filter((e) => e.sends > 1).length,
    unacked: count - acked.length,
    seconds: round(seconds, 3),
    emulatorLoopMs: round(loopMs, 1),
    cpuMsPerEnvelope: round(cpuMs / count, 3),
  };
}

/** The channel an incident's conversation happens in: the bot and one person, associated with INCIDENT_ID. */
async function incidentChannel(emu: RemoteEmulator, name: string): Promise<{ channelId: string; userId: string }> {
  const person = await emu.addUser({ name: `${name}-analyst`, email: `${name}-analyst@example.com` });
  const channel = await emu.seedChannel({ name, members: [emu.botUserId, person.id], creator: person.id });
  return { channelId: channel.id, userId: person.id };
}

export async function runInbound(): Promise<boolean> {
  console.log(`\n=== 6. Inbound: ack latency of a ${BURST}-event burst over Socket Mode (Slack emulator → worker run) ===`);
  const emu = await RemoteEmulator.start();
  const inboundQueue = uniqueName('bench_inbound');
  const cfg = writeConfig({
    withEchoPlugin: false,
    worker: { loglevel: BENCH_LOGLEVEL, num_workers: IN_FLIGHT },
    sections: {
      fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl, app_token: emu.appToken, inbound_queue: inboundQueue, rate_limits: 'off' },
    },
  });
  fs.mkdirSync(path.join(cfg.dir, 'files', 'incidents'), { recursive: true });
  await emu.subscribe(['message.channels', 'message.groups']);
  let worker: DistWorker | undefined;
  let caller: Caller | undefined;
  try {
    // The reference first, while no worker runs: each side has the machine to itself.
    const bareChannel = await incidentChannel(emu, 'bench-inbound-bare');
    const bare = await BenchChild.start('bare-socket-mode-client.ts', [JSON.stringify({ apiUrl: emu.apiUrl, appToken: emu.appToken })]);
    let bareResult: BurstResult;
    try {
      await burst(emu, bare.pid, bareChannel.channelId, bareChannel.userId, WARMUP, 'warm-up');
      bareResult = await burst(emu, bare.pid, bareChannel.channelId, bareChannel.userId, BURST, 'bare client burst');
    } finally {
      await bare.stop();
    }
    console.log(
      `reference (bare @slack/socket-mode client): p50 ${bareResult.latency.p50_ms} ms, p99 ${bareResult.latency.p99_ms} ms, ` +
        `${bareResult.unacked} not acked, emulator loop ${bareResult.emulatorLoopMs} ms`,
    );
    while ((await emu.socketModeConnections()) > 0) await sleep(20);

    const { channelId, userId } = await incidentChannel(emu, 'bench-inbound-worker');
    worker = DistWorker.start(cfg.file, workerNodeArgs('inbound'));
    await worker.ready();
    const connectDeadline = Date.now() + 30_000;
    while ((await emu.socketModeConnections()) === 0) {
      if (Date.now() > connectDeadline)
        throw new Error(`the worker opened no Socket Mode connection within 30 s:\n${worker.output.slice(-3000)}`);
      await sleep(20);
    }
    // The channel becomes the incident's (its first post records the association), so
    // the burst is what mirroring handles: a person's messages in an incident channel.
    caller = await Caller.open();
    const post = caller.publish(
      cfg.destination,
      caller.invocation('slack_post_message', {
        incident_id: INCIDENT_ID,
        slack_channel_id: channelId,
        slack_text: 'Incident channel for the inbound benchmark',
      }),
    );
    await caller.waitForFinal([post]);
    const posted = caller.finalReplies(post)[0]!;
    if (posted.message_type !== 0) throw new Error(`associating the channel failed: ${JSON.stringify(posted).slice(0, 500)}`);

    await burst(emu, worker.pid, channelId, userId, WARMUP, 'warm-up');
    const result = await burst(emu, worker.pid, channelId, userId, BURST, 'worker burst');
    const mem = worker.memory();

    printTable(`Ack latency of a ${BURST}-event burst (emulator send → ack received)`, [
      {
        side: 'bare @slack/socket-mode client (ref)',
        acked: BURST - bareResult.unacked,
        'p50 ms': bareResult.latency.p50_ms,
        'p99 ms': bareResult.latency.p99_ms,
        'max ms': bareResult.latency.max_ms,
        resent: bareResult.resent,
        'all acked s': bareResult.seconds,
        'emulator loop ms': bareResult.emulatorLoopMs,
        'CPU ms/envelope': bareResult.cpuMsPerEnvelope,
      },
      {
        side: 'worker run (dist)',
        acked: BURST - result.unacked,
        'p50 ms': result.latency.p50_ms,
        'p99 ms': result.latency.p99_ms,
        'max ms': result.latency.max_ms,
        resent: result.resent,
        'all acked s': result.seconds,
        'emulator loop ms': result.emulatorLoopMs,
        'CPU ms/envelope': result.cpuMsPerEnvelope,
      },
    ]);
    const targets = [
      check('worker ack latency p99', result.latency.p99_ms, '<=', TARGET_P99_MS, 'ms'),
      check('envelopes not acked', result.unacked, '<=', 0),
      check('envelopes Slack had to resend', result.resent, '<=', 0),
    ];
    printTargets(targets);
    const file = writeResult({
      name: 'inbound',
      title: `Inbound: ack latency of a ${BURST}-event Socket Mode burst`,
      placement: {
        worker: `own process: node dist/src/cli.js run, loglevel ${BENCH_LOGLEVEL}, SQLite store, fn_slack app_token set (Socket Mode)`,
        slack_emulator: 'own process (node + tsx, bench/emulator-host.ts): Web API over HTTP and Socket Mode over WebSocket on 127.0.0.1',
        bare_socket_mode_client: 'own process (node + tsx, bench/bare-socket-mode-client.ts), run before the worker starts',
        broker: 'RabbitMQ on 127.0.0.1 (the worker records each envelope on its inbound queue before the ack)',
      },
      figures: {
        burst: BURST,
        warmup: WARMUP,
        worker: result,
        bare_socket_mode_client: bareResult,
        worker_rss_mb_after: mem.rssMb,
        worker_peak_rss_mb: mem.hwmMb,
      },
      targets,
      notes: [
        `Each burst: ${BURST} messages posted by a person in a channel the bot is in, in one synchronous loop in the emulator's process; each raises a message event sent at once over Socket Mode (one connection).`,
        "Latency per envelope: the emulator's first send to the ack's arrival, on the emulator's high-resolution clock (DeliveredEnvelope.ackLatencyMs).",
        `The worker's channel is associated with incident ${INCIDENT_ID} (one slack_post_message first), so its handlers mirror the burst as notes while later envelopes arrive.`,
        `A burst of ${WARMUP} before each measured burst is not timed.`,
      ],
    });
    console.log(`wrote ${file}`);
    return targets.every((t) => t.pass);
  } finally {
    await caller?.close();
    await worker?.stop();
    await deleteDestination(cfg.destination);
    await deleteDestination(inboundQueue);
    await emu.close();
  }
}
