/**
 * The inbound path end to end: Slack (the emulator) → Socket Mode or the HTTP Events
 * API → a confirmed publish on the inbound queue (real RabbitMQ) → the ledger (SQLite)
 * → the inbound handlers. A recording handler set (test/support/inbound-recorder-plugin.ts)
 * stands in for mirroring, asks and triage and counts every handler run.
 */
import path from 'node:path';
import { expect } from 'chai';
import { SlackEmulator, type EmulatedUser } from '../../support/slack-emulator.js';
import { SlackHttpEventsSender } from '../../support/slack-http-events.js';
import { deleteDestination, queueDepth, REPO_ROOT, tempDir, uniqueName, WorkerProcess, writeConfig, type TestConfig } from '../../support/harness.js';
import { readRecorded, type RecordedRun } from '../../support/inbound-recorder-plugin.js';

export const INBOUND_RECORDER = path.join(REPO_ROOT, 'test', 'support', 'inbound-recorder-plugin.ts');

const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

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

  async function channelWithBot(name: string): Promise<string> {
    const ch = emu.seedChannel({ name, members: [alice.id, emu.botUserId], creator: alice.id });
    return ch.id;
  }

  it('a message and a thread reply each run the handlers once; a retry and a copy under a new envelope add nothing', async () => {
    const cfg = inboundConfig();
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
    await new Promise((r) => setTimeout(r, 500));
    const runs = readRecorded(cfg.recordFile);
    expect(runs.map((r) => r.text)).to.deep.equal(['Isolated FS01', 'Confirmed clean', 'Third']);
    expect([...byKey(runs).values()].every((n) => n === 1)).to.equal(true);
    expect(await queueDepth(cfg.inboundQueue)).to.equal(0);
    expect(await queueDepth(`${cfg.inboundQueue}.dead`)).to.equal(0);
  });
});
