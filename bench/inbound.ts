/**
 * Benchmark 6, inbound burst: 1,000 Slack message events sent at once over Socket Mode
 * to one `worker run` (built CLI). Each envelope is acknowledged only after the worker
 * recorded it on the inbound queue (a confirmed publish); Slack resends what is not
 * acknowledged within 3 s. Measured on Slack's side (the emulator): time from sending an
 * envelope to receiving its ack, and how many were resent.
 */
import { deleteDestination, queueDepth, uniqueName, writeConfig } from '../test/support/harness.js';
import { SlackEmulator } from '../test/support/slack-emulator.js';
import { BENCH_LOGLEVEL, check, DistWorker, percentile, printTable, printTargets, sleep, writeResult } from './common.js';

const EVENTS = 1000;
const CHANNELS = 10;
/** Slack's ack timeout: an envelope not acknowledged within it is sent again. */
const SLACK_ACK_TIMEOUT_MS = 3000;

export async function runInbound(): Promise<boolean> {
  console.log(`\n=== 6. Inbound burst: ${EVENTS} Slack events at once over Socket Mode ===`);
  const emu = await SlackEmulator.start({ socketMode: { ackTimeoutMs: SLACK_ACK_TIMEOUT_MS }, logCalls: false });
  const inboundQueue = uniqueName('bench_inbound');
  const cfg = writeConfig({
    withEchoPlugin: false,
    worker: { loglevel: BENCH_LOGLEVEL },
    sections: {
      fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl, app_token: emu.appToken, inbound_queue: inboundQueue, rate_limits: 'off' },
    },
  });
  const worker = DistWorker.start(cfg.file);
  try {
    await worker.ready();
    const deadline = Date.now() + 30_000;
    while (emu.socketMode.connectionCount === 0 && Date.now() < deadline) await sleep(20);
    emu.subscribe('message.channels');
    const alice = emu.addUser({ name: 'alice', email: 'alice@example.com' });
    const channels = [...Array(CHANNELS).keys()].map(
      (i) => emu.seedChannel({ name: `inc-bench-${i}`, members: [alice.id, emu.botUserId], creator: alice.id }).id,
    );
    // Built first, so that the send loop is only Slack's sending (postAsUser would also
    // store each message, and the emulator's event loop, busy with that, would stamp the
    // acks late).
    const base = Math.floor(Date.now() / 1000);
    const payloads = [...Array(EVENTS).keys()].map((i) => {
      const ts = `${base}.${String(i).padStart(6, '0')}`;
      const channel = channels[i % CHANNELS]!;
      return emu.eventCallback({ type: 'message', channel, channel_type: 'channel', user: alice.id, text: `burst ${i}`, ts, event_ts: ts });
    });
    const started = Date.now();
    // In batches of 20 with a turn of the event loop between them: acks that arrive
    // while the burst is still going out are stamped when they arrive, not after it.
    for (let i = 0; i < payloads.length; i++) {
      emu.socketMode.deliver('events_api', payloads[i]!);
      if (i % 20 === 19) await new Promise((r) => setImmediate(r));
    }
    const sent = Date.now() - started;
    const envelopes = emu.socketMode.delivered();
    const until = Date.now() + 60_000;
    while (envelopes.some((e) => e.ackedAt === undefined) && Date.now() < until) await sleep(20);
    const acked = envelopes.filter((e) => e.ackedAt !== undefined);
    const latencies = acked.map((e) => e.ackedAt! - e.sentAt[e.sentAt.length - 1]!).sort((a, b) => a - b);
    const firstAck = acked.map((e) => e.ackedAt! - e.sentAt[0]!).sort((a, b) => a - b);
    const resent = envelopes.filter((e) => e.sends > 1).length;
    // Handled (the handler list is empty here: routed and acked on the broker) before the end.
    const drained = Date.now() + 60_000;
    while ((await queueDepth(inboundQueue)) > 0 && Date.now() < drained) await sleep(200);
    const allDone = Date.now() - started;
    const rows = [
      {
        events: EVENTS,
        acked: acked.length,
        resent,
        send_loop_ms: sent,
        ack_p50_ms: percentile(latencies, 50),
        ack_p99_ms: percentile(latencies, 99),
        ack_max_ms: latencies[latencies.length - 1] ?? -1,
        first_send_to_ack_max_ms: firstAck[firstAck.length - 1] ?? -1,
        queue_drained_ms: allDone,
      },
    ];
    printTable('Burst', rows);
    const figures = {
      events: EVENTS,
      channels: CHANNELS,
      acked: acked.length,
      resent,
      ack_latency_ms: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: rows[0]!.ack_max_ms },
      first_send_to_ack_max_ms: rows[0]!.first_send_to_ack_max_ms,
      send_loop_ms: sent,
      queue_drained_ms: allDone,
    };
    const targets = [
      check('envelopes acknowledged', acked.length, '>=', EVENTS),
      check('ack latency p99', figures.ack_latency_ms.p99, '<=', SLACK_ACK_TIMEOUT_MS, 'ms'),
      check('envelopes Slack had to resend', resent, '<=', 0),
    ];
    printTargets(targets);
    const file = writeResult({
      name: 'inbound',
      title: `Inbound burst: ${EVENTS} Slack events at once, time to acknowledge each`,
      placement: {
        worker: `own process: node dist/src/cli.js run, built-in fn_slack (empty handler list), SQLite store, loglevel ${BENCH_LOGLEVEL}`,
        emulator: 'the benchmark process (Slack Web API and Socket Mode server); it only sends envelopes and records acks',
        broker: 'RabbitMQ on 127.0.0.1: each ack waits for a confirmed persistent publish to the inbound queue',
      },
      figures,
      targets,
      notes: [
        'Ack latency: from the emulator sending an envelope to it receiving the ack, for the send that was acked.',
        `Slack resends an envelope not acknowledged within ${SLACK_ACK_TIMEOUT_MS / 1000} s; the target is that none needed it.`,
        'All envelopes go out as fast as the emulator sends them (send_loop_ms for all), in batches of 20 with a turn of its event loop between batches so acks are stamped on arrival.',
        'The emulator runs in the benchmark process, which does nothing else while the acks come in.',
      ],
    });
    console.log(`wrote ${file}`);
    return targets.every((t) => t.pass);
  } finally {
    await worker.stop();
    await emu.close();
    await deleteDestination(cfg.destination);
    await deleteDestination(inboundQueue);
  }
}
