/**
 * Benchmark 6, inbound ack latency (issue #17 item 4): bursts of 1,000 `message` events
 * (a person writing in an incident's channel) from the Slack emulator over Socket Mode
 * to `worker run`, and for each envelope the time from the emulator's send to the
 * worker's ack as the emulator sees it. The worker acks an envelope only once it is
 * durably recorded (a confirmed publish to its inbound queue), so this is the time Slack
 * waits; Slack resends what is not acked within 3 s. The target: p99 under 100 ms.
 *
 * Two shapes of burst, each measured on every side:
 * - paced: one event every millisecond (1,000 over about 1 s), each its own WebSocket
 *   write, as Slack sends events as they happen (and 120 times Slack's documented cap of
 *   30,000 events an hour per workspace);
 * - backlog: all 1,000 in one synchronous loop and one write (what a reconnect after an
 *   outage could bring); no ack can be read before the loop ends, and the last envelope
 *   waits for the receiver to get through the 999 before it.
 *
 * References, in the same run, against the same emulator process, each before the
 * worker starts: Slack's own `@slack/socket-mode` client acking each envelope at once
 * (bench/bare-socket-mode-client.ts: the WebSocket path's floor), and a bare amqplib
 * client's publisher confirms for envelope-sized persistent messages to a queue shaped
 * like the inbound queue (bench/broker-confirms.ts: the broker's floor under the
 * worker's durable record).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Caller, deleteDestination, uniqueName, writeConfig } from '../test/support/harness.js';
import { brokerConfirmLatencies } from './broker-confirms.js';
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
/** How long the worker may take to handle (mirror) what it acked before the run counts it as lost. */
const HANDLE_TIMEOUT_MS = 120_000;
const INCIDENT_ID = 7001;

interface BurstShape {
  name: 'paced' | 'backlog';
  /** Milliseconds between two events; 0: all in one synchronous loop. */
  spacingMs: number;
}

const SHAPES: BurstShape[] = [
  { name: 'paced', spacingMs: 1 },
  { name: 'backlog', spacingMs: 0 },
];

interface BurstResult {
  latency: LatencySummary;
  /** Envelopes of the burst the emulator had to send more than once (not acked within 3 s). */
  resent: number;
  /** Envelopes of the burst never acked within ACK_TIMEOUT_MS. */
  unacked: number;
  /** From the burst's start until its last ack. */
  seconds: number;
  /** How long the emulator took to send the burst (for a backlog, no ack is read before it ends). */
  emulatorSendMs: number;
  /** CPU time (user + system) of the receiving process per envelope, over the burst until its last ack. */
  cpuMsPerEnvelope: number;
}

/**
 * Posts `count` messages as `userId`, sent in the burst's shape by the emulator's
 * process, and waits until every one is acked, or ACK_TIMEOUT_MS.
 */
async function burst(
  emu: RemoteEmulator,
  receiverPid: number,
  channelId: string,
  userId: string,
  count: number,
  shape: BurstShape,
  label: string,
): Promise<BurstResult> {
  const before = (await emu.socketModeEvents()).length;
  const cpuFrom = procCpuMs(receiverPid);
  const started = performance.now();
  const { loopMs } = await emu.postBurst(channelId, userId, count, label, shape.spacingMs);
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
    emulatorSendMs: round(loopMs, 1),
    cpuMsPerEnvelope: round(cpuMs / count, 3),
  };
}

/** Runs the warm-up and then each shape's burst against one receiver; `settle` runs after each burst. */
async function bursts(
  emu: RemoteEmulator,
  receiverPid: number,
  channel: { channelId: string; userId: string },
  side: string,
  settle: () => Promise<void>,
): Promise<Record<BurstShape['name'], BurstResult>> {
  await burst(emu, receiverPid, channel.channelId, channel.userId, WARMUP, SHAPES[0]!, 'warm-up');
  await settle();
  const results = {} as Record<BurstShape['name'], BurstResult>;
  for (const shape of SHAPES) {
    results[shape.name] = await burst(emu, receiverPid, channel.channelId, channel.userId, BURST, shape, `${side} ${shape.name} burst`);
    await settle();
  }
  return results;
}

/** Notes mirrored into the incident so far (one file per mirrored message; the keys folder is not one). */
function notesMirrored(platformDir: string): number {
  const dir = path.join(platformDir, 'incidents', String(INCIDENT_ID), 'notes');
  if (!fs.existsSync(dir)) return 0;
  return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.json')).length;
}

/** The channel an incident's conversation happens in: the bot and one person, associated with INCIDENT_ID. */
async function incidentChannel(emu: RemoteEmulator, name: string): Promise<{ channelId: string; userId: string }> {
  const person = await emu.addUser({ name: `${name}-analyst`, email: `${name}-analyst@example.com` });
  const channel = await emu.seedChannel({ name, members: [emu.botUserId, person.id], creator: person.id });
  return { channelId: channel.id, userId: person.id };
}

export async function runInbound(): Promise<boolean> {
  console.log(`\n=== 6. Inbound: ack latency of ${BURST}-event bursts over Socket Mode (Slack emulator → worker run) ===`);
  const emu = await RemoteEmulator.start();
  const inboundQueue = uniqueName('bench_inbound');
  const cfg = writeConfig({
    withEchoPlugin: false,
    worker: { loglevel: BENCH_LOGLEVEL, num_workers: IN_FLIGHT },
    sections: {
      fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl, app_token: emu.appToken, inbound_queue: inboundQueue, rate_limits: 'off' },
    },
  });
  const platformDir = path.join(cfg.dir, 'files');
  // The incident exists on the (local) platform, so the handlers mirror each message as a note.
  fs.mkdirSync(path.join(platformDir, 'incidents', String(INCIDENT_ID)), { recursive: true });
  await emu.subscribe(['message.channels', 'message.groups']);
  let worker: DistWorker | undefined;
  let caller: Caller | undefined;
  try {
    // The references first, while no worker runs: each side has the machine to itself.
    const bareChannel = await incidentChannel(emu, 'bench-inbound-bare');
    const bare = await BenchChild.start('bare-socket-mode-client.ts', [JSON.stringify({ apiUrl: emu.apiUrl, appToken: emu.appToken })]);
    let bareResults: Record<BurstShape['name'], BurstResult>;
    try {
      bareResults = await bursts(emu, bare.pid, bareChannel, 'bare client', async () => undefined);
    } finally {
      await bare.stop();
    }
    for (const shape of SHAPES) {
      const r = bareResults[shape.name];
      console.log(`reference (bare @slack/socket-mode client), ${shape.name}: p50 ${r.latency.p50_ms} ms, p99 ${r.latency.p99_ms} ms, ${r.unacked} not acked`);
    }
    while ((await emu.socketModeConnections()) > 0) await sleep(20);

    // What the worker publishes per envelope: the invocation that carries it.
    const payload = await emu.lastEnvelopePayload();
    const recordBody = Buffer.from(JSON.stringify({ function: { name: 'slack_inbound' }, inputs: { kind: 'events_api', payload, retry_attempt: 0 } }));
    await brokerConfirmLatencies(recordBody, WARMUP, 0);
    const broker = {} as Record<BurstShape['name'], LatencySummary>;
    for (const shape of SHAPES) broker[shape.name] = summarize(await brokerConfirmLatencies(recordBody, BURST, shape.spacingMs));
    for (const shape of SHAPES) {
      console.log(`reference (broker confirms, bare amqplib), ${shape.name}: p50 ${broker[shape.name].p50_ms} ms, p99 ${broker[shape.name].p99_ms} ms`);
    }

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
    // the bursts are what mirroring handles: a person's messages in an incident channel.
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

    // Each burst starts once the previous one is handled (every message mirrored), so a
    // burst's figures are its own; handling a burst while receiving it is part of them.
    let posts = 0;
    const waitHandled = async (expected: number) => {
      const deadline = Date.now() + HANDLE_TIMEOUT_MS;
      while (notesMirrored(platformDir) < expected && Date.now() < deadline) await sleep(100);
    };
    const results = await bursts(emu, worker.pid, { channelId, userId }, 'worker', async () => {
      posts = posts === 0 ? WARMUP : posts + BURST;
      await waitHandled(posts);
    });
    const mirrored = notesMirrored(platformDir);
    const mem = worker.memory();

    const rows = SHAPES.flatMap((shape) => {
      const row = (side: string, r: BurstResult) => ({
        burst: shape.name,
        side,
        acked: BURST - r.unacked,
        'p50 ms': r.latency.p50_ms,
        'p99 ms': r.latency.p99_ms,
        'max ms': r.latency.max_ms,
        resent: r.resent,
        'all acked s': r.seconds,
        'emulator send ms': r.emulatorSendMs,
        'CPU ms/envelope': r.cpuMsPerEnvelope,
      });
      const b = broker[shape.name];
      return [
        { burst: shape.name, side: 'broker confirms, bare amqplib (ref)', acked: b.count, 'p50 ms': b.p50_ms, 'p99 ms': b.p99_ms, 'max ms': b.max_ms },
        row('bare @slack/socket-mode client (ref)', bareResults[shape.name]),
        row('worker run (dist)', results[shape.name]),
      ];
    });
    printTable(`Ack latency of ${BURST}-event bursts (emulator send → ack received)`, rows);
    const targets = [
      ...SHAPES.map((shape) => check(`worker ack latency p99, ${shape.name} burst`, results[shape.name].latency.p99_ms, '<=', TARGET_P99_MS, 'ms')),
      check('envelopes not acked', SHAPES.reduce((n, shape) => n + results[shape.name].unacked, 0), '<=', 0),
      check('envelopes Slack had to resend', SHAPES.reduce((n, shape) => n + results[shape.name].resent, 0), '<=', 0),
      check('messages mirrored more or less than once', Math.abs(mirrored - posts), '<=', 0),
    ];
    printTargets(targets);
    const file = writeResult({
      name: 'inbound',
      title: `Inbound: ack latency of ${BURST}-event Socket Mode bursts, paced and backlog`,
      placement: {
        worker: `own process: node dist/src/cli.js run, loglevel ${BENCH_LOGLEVEL}, SQLite store, fn_slack app_token set (Socket Mode)`,
        slack_emulator: 'own process (node + tsx, bench/emulator-host.ts): Web API over HTTP and Socket Mode over WebSocket on 127.0.0.1',
        bare_socket_mode_client: 'own process (node + tsx, bench/bare-socket-mode-client.ts), run before the worker starts',
        broker_confirms: 'the benchmark process (node + tsx, bench/broker-confirms.ts), a connection of its own, run before the worker starts',
        broker: 'RabbitMQ on 127.0.0.1 (the worker records each envelope on its inbound queue before the ack)',
      },
      figures: {
        burst: BURST,
        warmup: WARMUP,
        shapes: SHAPES,
        worker: results,
        bare_socket_mode_client: bareResults,
        broker_confirms: broker,
        messages_posted_to_worker: posts,
        notes_mirrored: mirrored,
        worker_rss_mb_after: mem.rssMb,
        worker_peak_rss_mb: mem.hwmMb,
      },
      targets,
      notes: [
        `paced: ${BURST} messages posted by a person in a channel the bot is in, their message events sent one every ${SHAPES[0]!.spacingMs} ms, each its own WebSocket write (Slack sends events as they happen).`,
        `backlog: the same, sent in one synchronous loop and one write in the emulator's process; no ack is read before the loop ends.`,
        "Latency per envelope: the emulator's send to the ack's arrival, on the emulator's high-resolution clock (DeliveredEnvelope.ackLatencyMs).",
        `Broker confirms: ${BURST} persistent, mandatory publishes of one recorded envelope's body (${recordBody.length} bytes) to a new durable single-active-consumer queue, same spacing; the time to each confirm.`,
        `The worker's channel is associated with incident ${INCIDENT_ID} (one slack_post_message first), so its handlers mirror every message as a note; each burst starts when the previous one is mirrored in full.`,
        `A burst of ${WARMUP} (paced) before the measured bursts is not timed, on every side.`,
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
