/**
 * The inbound path end to end: Slack (the emulator) → Socket Mode or the HTTP Events
 * API → a confirmed publish on the inbound queue (real RabbitMQ) → the ledger (SQLite)
 * → the inbound handlers. A recording handler set (test/support/inbound-recorder-plugin.ts)
 * stands in for mirroring, asks and triage and counts every handler run.
 */
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { tempPostgresDatabase } from '../../support/fault-checks.js';
import { sampleValue } from '../../support/prometheus.js';
import { SlackEmulator, type EmulatedUser } from '../../support/slack-emulator.js';
import { SlackHttpEventsSender } from '../../support/slack-http-events.js';
import {
  Caller,
  deleteDestination,
  queueDepth,
  REPO_ROOT,
  tempDir,
  uniqueName,
  WorkerProcess,
  writeConfig,
  type TestConfig,
} from '../../support/harness.js';
import { readRecorded, type RecordedRun } from '../../support/inbound-recorder-plugin.js';
import { poller } from '../../support/until.js';

export const INBOUND_RECORDER = path.join(REPO_ROOT, 'test', 'support', 'inbound-recorder-plugin.ts');

const until = poller({ timeoutMs: 20_000, everyMs: 50 });

const byKey = (runs: RecordedRun[]) => {
  const m = new Map<string, number>();
  for (const r of runs) m.set(r.key, (m.get(r.key) ?? 0) + 1);
  return m;
};

describe('Slack inbound: Socket Mode and HTTP receivers, durable and deduplicated', function () {
  this.timeout(120_000);
  let emu: SlackEmulator;
  let alice: EmulatedUser;
  const queues: string[] = [];
  const workers: WorkerProcess[] = [];

  beforeEach(async () => {
    emu = await SlackEmulator.start({ socketMode: { ackTimeoutMs: 500 } });
    alice = emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
    emu.subscribe('message.channels', 'message.groups', 'app_mention');
  });

  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop('SIGKILL');
    for (const q of queues.splice(0)) await deleteDestination(q);
    await emu.close();
  });

  /** A config whose worker records what its inbound handlers run (in `recordFile`; shared by workers when given). */
  function inboundConfig(
    fnSlack: Record<string, string | number> = {},
    worker: Record<string, string | number> = {},
    shared?: { recordFile: string; inboundQueue: string; destination: string },
  ): TestConfig & { recordFile: string; inboundQueue: string } {
    const inboundQueue = shared?.inboundQueue ?? uniqueName('inbound');
    const recordFile = shared?.recordFile ?? path.join(tempDir('inbound-record-'), 'recorded.jsonl');
    const cfg = writeConfig({
      ...(shared ? { destination: shared.destination } : {}),
      worker: { plugins: INBOUND_RECORDER, ...worker },
      sections: {
        fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl, app_token: emu.appToken, inbound_queue: inboundQueue, ...fnSlack },
        inbound_test: { record_file: recordFile },
      },
    });
    if (!shared) queues.push(cfg.destination, inboundQueue);
    return { ...cfg, recordFile, inboundQueue };
  }

  async function start(cfg: TestConfig): Promise<WorkerProcess> {
    const w = WorkerProcess.start(cfg.file);
    workers.push(w);
    await w.waitFor();
    await w.waitFor('Listener socket-mode started').catch(() => undefined);
    return w;
  }

  async function freePort(): Promise<number> {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((r) => server.close(r));
    return port;
  }

  async function channelWithBot(name: string): Promise<string> {
    const ch = emu.seedChannel({ name, members: [alice.id, emu.botUserId], creator: alice.id });
    return ch.id;
  }

  it('a message and a thread reply each run the handlers once; a retry and a copy under a new envelope add nothing', async () => {
    const metricsPort = await freePort();
    const cfg = inboundConfig({}, { metrics_port: metricsPort });
    await start(cfg);
    const channel = await channelWithBot('inc-4001');
    const top = emu.postAsUser(alice.id, channel, 'Isolated FS01');
    emu.postAsUser(alice.id, channel, 'Confirmed clean', { threadTs: top.ts });
    await until('two runs', () => readRecorded(cfg.recordFile).length === 2);
    const [first] = emu.socketMode.delivered();
    const eventId = first!.payload.event_id as string;
    // A copy of the first event under a new envelope (what a second connection gets).
    const copy = emu.emitEvent(first!.payload.event as Record<string, unknown>, { eventId });
    expect(copy).to.equal(eventId);
    await until('the copy acked', () => emu.socketMode.delivered().every((e) => e.ackedAt !== undefined));
    // A lost ack: Slack resends the next event with retry_attempt 1.
    emu.socketMode.loseAcks(1);
    emu.postAsUser(alice.id, channel, 'Third');
    await until('the resend acked', () => emu.socketMode.delivered().every((e) => e.ackedAt !== undefined));
    const third = emu.socketMode.delivered().at(-1)!;
    expect(third.sends).to.be.greaterThanOrEqual(2);
    await until('three runs', () => readRecorded(cfg.recordFile).length >= 3);
    // Every send reached the worker. With the 500 ms ack timeout a loaded machine can make
    // Slack resend more than the one lost ack: the counts follow from what the emulator sent
    // (no envelope is sent again once acked, and all are acked by now).
    const envelopes = emu.socketMode.delivered();
    const sends = envelopes.reduce((n, e) => n + e.sends, 0);
    expect(envelopes).to.have.length(4); // three messages and the copy
    const metricsText = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const acked = (text: string) => sampleValue(text, 'worker_plugin_slack_inbound_ack_seconds_count', { package: 'fn_slack', transport: 'socket_mode' });
    const handled = (text: string) =>
      ['replayed', 'succeeded'].reduce((n, outcome) => n + sampleValue(text, 'worker_invocations_total', { function: 'slack_inbound', outcome }), 0);
    await until('every send acked and handled', async () => {
      const text = await metricsText();
      return acked(text) >= sends && handled(text) >= sends;
    });
    const runs = readRecorded(cfg.recordFile);
    expect(runs.map((r) => r.text)).to.deep.equal(['Isolated FS01', 'Confirmed clean', 'Third']);
    expect([...byKey(runs).values()].every((n) => n === 1)).to.equal(true);
    expect(await queueDepth(cfg.inboundQueue)).to.equal(0);
    expect(await queueDepth(`${cfg.inboundQueue}.dead`)).to.equal(0);

    // A caller cannot inject an envelope through the functions' queue: slack_inbound runs
    // only from the inbound queue.
    const caller = await Caller.open();
    try {
      const id = caller.publish(
        cfg.destination,
        caller.invocation('slack_inbound', {
          kind: 'events_api',
          payload: { event_id: 'EvFORGED', event: { type: 'message', channel, text: 'forged' } },
        }),
      );
      await caller.waitForFinal([id]);
      const [reply] = caller.finalReplies(id);
      expect(reply).to.deep.include({ message_type: 1 });
      expect((reply!.error as { code: string }).code).to.equal('unknown_function');
      expect(String(reply!.message)).not.to.contain('slack_inbound,');
    } finally {
      await caller.close();
    }
    expect(readRecorded(cfg.recordFile).map((r) => r.text)).not.to.include('forged');

    // What an operator sees: the connection on /readyz, envelopes, acks and duplicates in /metrics.
    const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
    expect(ready.status).to.equal(200);
    expect(((await ready.json()) as { checks: string[] }).checks).to.include('listeners');
    const text = await metricsText();
    const recorded = (outcome: string) =>
      sampleValue(text, 'worker_plugin_slack_inbound_envelopes_total', {
        package: 'fn_slack',
        transport: 'socket_mode',
        type: 'events_api',
        outcome,
      });
    expect(recorded('recorded')).to.equal(4); // three messages and the copy
    expect(recorded('retry_recorded')).to.equal(sends - 4); // the resend of the lost ack (and any the load caused)
    expect(acked(text)).to.equal(sends);
    expect(sampleValue(text, 'worker_plugin_slack_socket_mode_connected', { package: 'fn_slack' })).to.equal(1);
    // The duplicates the ledger absorbed: the copy and every resend.
    expect(sampleValue(text, 'worker_invocations_total', { function: 'slack_inbound', outcome: 'replayed' })).to.equal(sends - 3);
    expect(sampleValue(text, 'worker_invocations_total', { function: 'slack_inbound', outcome: 'succeeded' })).to.equal(3);
  });

  it('an app token Slack refuses, or a bot token given as one, stops worker run at start with exit 2 saying what to fix', async () => {
    emu.addAppToken('xapp-1-A0-no-connections', []);
    for (const [token, says] of [
      ['xapp-1-A0-no-connections', 'lacks the scope connections:write'],
      [emu.botToken, 'app_token is a bot token'],
    ] as const) {
      const cfg = inboundConfig({ app_token: token });
      const w = WorkerProcess.start(cfg.file);
      workers.push(w);
      const { code } = await w.exited;
      expect(code, w.output).to.equal(2);
      expect(w.output).to.contain(says);
      expect(w.output).not.to.contain(token);
    }
  });

  it('reconnects after a refresh_requested disconnect and after a dropped socket; later events land', async () => {
    const cfg = inboundConfig();
    const w = await start(cfg);
    const channel = await channelWithBot('inc-4002');
    emu.socketMode.disconnect('refresh_requested');
    await until('a second connection', () => emu.socketMode.connectionsOpened >= 2 && emu.socketMode.connectionCount === 1);
    emu.postAsUser(alice.id, channel, 'after the refresh');
    await until('the first event', () => readRecorded(cfg.recordFile).length === 1);
    emu.socketMode.drop();
    emu.postAsUser(alice.id, channel, 'after the drop');
    await until('the second event', () => readRecorded(cfg.recordFile).length === 2);
    expect(readRecorded(cfg.recordFile).map((r) => r.text)).to.deep.equal(['after the refresh', 'after the drop']);
    expect(w.output).to.include('refresh_requested');
    expect(w.output).to.match(/connection ended \(dropped\)/);
  });

  it("kill -9 after recording and before acknowledging: Slack's retry adds nothing", async () => {
    // Slack's own ack timeout: the resend comes after the worker is dead, and is held
    // until the restarted worker connects. The handler is slow, so the kill falls
    // between the record and the handler's run as well.
    emu.socketMode.configure({ ackTimeoutMs: 3000 });
    const cfg = inboundConfig({}, {});
    const fs = await import('node:fs');
    fs.writeFileSync(
      cfg.file,
      fs.readFileSync(cfg.file, 'utf8').replace(`record_file = ${cfg.recordFile}`, `record_file = ${cfg.recordFile}\ndelay_ms = 1500`),
    );
    const a = await start(cfg);
    const channel = await channelWithBot('inc-4003');
    emu.socketMode.loseAcks(1);
    emu.postAsUser(alice.id, channel, 'said just before the crash');
    const [env] = emu.socketMode.delivered();
    await until('the worker acked (and the ack was lost)', () => env!.acksLost === 1);
    await a.stop('SIGKILL');
    expect(readRecorded(cfg.recordFile)).to.have.length(0);
    await start(cfg);
    await until('the resend acked', () => env!.ackedAt !== undefined);
    await until('one run', () => readRecorded(cfg.recordFile).length === 1);
    await new Promise((r) => setTimeout(r, 2500));
    expect(env!.sends).to.be.greaterThanOrEqual(2);
    expect(readRecorded(cfg.recordFile).map((r) => r.text)).to.deep.equal(['said just before the crash']);
    expect(await queueDepth(cfg.inboundQueue)).to.equal(0);
  });

  it('HTTP Events API: a bad signature and a stale timestamp get 401 and record nothing; url_verification is answered; a signed event and its retry run once', async () => {
    const port = await freePort();
    const secret = 'test-signing-secret-0123456789';
    const cfg = inboundConfig({ app_token: '', events_port: port, signing_secret: secret });
    const w = WorkerProcess.start(cfg.file);
    workers.push(w);
    await w.waitFor('Listener http-events started');
    const slack = new SlackHttpEventsSender(`http://127.0.0.1:${port}/slack/events`, secret);
    const channel = await channelWithBot('inc-4004');
    const payload = emu.eventCallback({ type: 'message', channel, user: alice.id, text: 'over HTTP', ts: '1700000000.000100' });

    expect((await slack.event(payload, { secret: 'not-the-secret' })).status).to.equal(401);
    expect((await slack.event(payload, { timestamp: Math.floor(Date.now() / 1000) - 301 })).status).to.equal(401);
    // Ahead by more than the 300 s allowed also when the worker checks: 301 s ahead of the
    // second rounded down is less than 301 s ahead of the exact time, and the worker's clock
    // moves on while the request travels (a loaded machine took it to 300 s or less).
    expect((await slack.event(payload, { timestamp: Math.floor(Date.now() / 1000) + 330 })).status).to.equal(401);
    const unsigned = await fetch(slack.requestUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(payload),
    });
    expect(unsigned.status).to.equal(401);
    await new Promise((r) => setTimeout(r, 500));
    expect(await queueDepth(cfg.inboundQueue)).to.equal(0);
    expect(readRecorded(cfg.recordFile)).to.have.length(0);

    const challenge = await slack.urlVerification('3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P');
    expect(challenge.status).to.equal(200);
    expect(JSON.parse(challenge.body)).to.deep.equal({ challenge: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P' });

    expect((await slack.event(payload)).status).to.equal(200);
    expect((await slack.event(payload, { retryNum: 1 })).status).to.equal(200);
    expect(
      (await slack.slashCommand({ command: '/soar', text: 'incident 2103', channel_id: channel, user_id: alice.id, trigger_id: '1337.42.abcdef' }))
        .status,
    ).to.equal(200);
    await until('two runs', () => readRecorded(cfg.recordFile).length === 2);
    await new Promise((r) => setTimeout(r, 500));
    const runs = readRecorded(cfg.recordFile);
    // A channel message waits out the reorder window (inbound_reorder_ms) and a command does
    // not, so the two may run in either order: each must run once.
    expect(runs.map((r) => [r.kind, r.text])).to.have.deep.members([
      ['event', 'over HTTP'],
      ['command', 'incident 2103'],
    ]);
    expect(w.output).to.include('Refused a request to the Slack Events API receiver');
    expect(w.output).not.to.include(secret);
  });

  it('two workers on one PostgreSQL store, each with a connection: 500 events each handled once, in order per channel', async () => {
    const db = await tempPostgresDatabase('inbound');
    try {
      // A reorder window wider than the default 1 s: on a loaded machine the two receivers can
      // record a channel's consecutive messages more than 1 s apart (seen: 211 handled after 212).
      const first = inboundConfig({ inbound_reorder_ms: 5000 }, { store: db.url, num_workers: 10 });
      const second = inboundConfig({ inbound_reorder_ms: 5000 }, { store: db.url, num_workers: 10 }, first);
      await Promise.all([start(first), start(second)]);
      await until('two connections', () => emu.socketMode.connectionCount === 2);
      const channels = await Promise.all([...Array(10).keys()].map((i) => channelWithBot(`inc-45${String(i).padStart(2, '0')}`)));
      // Runs of five messages per channel: consecutive messages of one channel go to
      // alternating connections (the emulator deals envelopes round robin), so the two
      // workers' receivers record them concurrently, a few milliseconds apart, in either
      // order. About 300 a second, as fast as a busy workspace's incident channels all
      // together (Slack posts about one message a second per channel).
      for (let i = 0; i < 500; i++) {
        emu.postAsUser(alice.id, channels[Math.floor(i / 5) % channels.length]!, String(i));
        await new Promise((r) => setTimeout(r, 3));
      }
      await until('500 runs', () => readRecorded(first.recordFile).length >= 500, 90_000);
      await new Promise((r) => setTimeout(r, 1000));
      const runs = readRecorded(first.recordFile);
      expect(runs).to.have.length(500);
      expect(new Set(runs.map((r) => r.key)).size).to.equal(500);
      const sentTo = new Set(emu.socketMode.delivered().flatMap((e) => e.sentTo));
      expect(sentTo.size, 'both connections received envelopes').to.equal(2);
      for (const ch of channels) {
        const seq = runs.filter((r) => r.channel === ch).map((r) => Number(r.text));
        expect(seq, `order in ${ch}`).to.deep.equal([...seq].sort((a, b) => a - b));
        expect(seq).to.have.length(50);
      }
    } finally {
      for (const w of workers.splice(0)) await w.stop('SIGKILL');
      await db.drop();
    }
  });
});
