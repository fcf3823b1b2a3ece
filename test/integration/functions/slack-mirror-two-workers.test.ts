/**
 * Mirroring through two `worker run` processes (issue #13, Tests: "Two workers, each with a
 * connection, 500 events: each note once, in order per channel"). Both workers share a
 * PostgreSQL store (the ledger and the channel associations), the inbound queue and the
 * local platform's folder; each holds its own Socket Mode connection, and the emulator
 * deals envelopes to the two connections in turn, as Slack gives each envelope to one of
 * an app's connections.
 *
 * What "in order" can mean on the local platform: a note file's name starts with the
 * message's Slack ts (local-notes.ts), so the folder lists notes in channel order however
 * they were written. The order they were *handled* in is what the reorder window
 * (`inbound_reorder_ms`) protects, and a channel's messages are handled one after
 * another, so the ledger's begin time of each event (`invocation_ledger.created_at`,
 * set by PostgreSQL when the handler starts) orders them as they were written.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import pg from 'pg';
import { tempPostgresDatabase } from '../../support/fault-checks.js';
import { Caller, deleteDestination, uniqueName, WorkerProcess, writeConfig, type TestConfig } from '../../support/harness.js';
import { SlackEmulator, type EmulatedUser } from '../../support/slack-emulator.js';
import { poller } from '../../support/until.js';

const INCIDENTS = [4601, 4602, 4603, 4604, 4605];
const MESSAGES = 500;

const until = poller({ timeoutMs: 60_000, everyMs: 100 });

interface NoteFile {
  text: string;
  key: string;
  slack: { channel_id: string; ts: string };
}

/** The notes of a local incident, in the folder's name order (what a reader lists). */
function localNotes(platformDir: string, incidentId: number): NoteFile[] {
  const dir = path.join(platformDir, 'incidents', String(incidentId), 'notes');
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
  return names.sort().map((n) => JSON.parse(readFileSync(path.join(dir, n), 'utf8')) as NoteFile);
}

describe('mirroring through two worker processes, each with a Socket Mode connection (local platform, PostgreSQL store)', function () {
  this.timeout(240_000);
  let emu: SlackEmulator;
  let alice: EmulatedUser;
  let db: { url: string; drop: () => Promise<void> };
  let caller: Caller;
  let first: TestConfig;
  let inboundQueue: string;
  const workers: WorkerProcess[] = [];

  before(async () => {
    emu = await SlackEmulator.start();
    emu.subscribe('message.channels', 'message.groups');
    alice = emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
    db = await tempPostgresDatabase('mirror2');
    caller = await Caller.open();
  });

  after(async () => {
    for (const w of workers.splice(0)) await w.stop('SIGKILL');
    await caller?.close();
    if (first) await deleteDestination(first.destination).catch(() => undefined);
    if (inboundQueue) await deleteDestination(inboundQueue).catch(() => undefined);
    await emu?.close();
    await db?.drop();
  });

  async function start(cfg: TestConfig): Promise<void> {
    const connections = emu.socketMode.connectionCount;
    const w = WorkerProcess.start(cfg.file);
    workers.push(w);
    await w.waitFor();
    await w.waitFor('Listener socket-mode started');
    await until('its connection', () => emu.socketMode.connectionCount === connections + 1);
  }

  /** The slack_inbound events in the order their handlers began (the ledger's begin time). */
  async function handledEventIds(): Promise<string[]> {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ invocation_id: string }>(
        `SELECT invocation_id FROM invocation_ledger WHERE invocation_id LIKE 'event:%' AND state = 'succeeded' ORDER BY created_at`,
      );
      return rows.map((r) => r.invocation_id.slice('event:'.length));
    } finally {
      await client.end();
    }
  }

  it(`${MESSAGES} messages over ${INCIDENTS.length} incident channels: each becomes one note, written in message order per channel`, async () => {
    inboundQueue = uniqueName('inbound');
    const fnSlack = { api_token: emu.botToken, api_url: emu.apiUrl, app_token: emu.appToken, inbound_queue: inboundQueue };
    first = writeConfig({ worker: { store: db.url }, sections: { fn_slack: fnSlack } });
    const platformDir = path.join(first.dir, 'files');
    // The second worker: its own lock and logs, the same queue, store and platform folder.
    const second = writeConfig({ destination: first.destination, worker: { store: db.url, platform_dir: platformDir }, sections: { fn_slack: fnSlack } });
    for (const id of INCIDENTS) mkdirSync(path.join(platformDir, 'incidents', String(id)), { recursive: true });
    await start(first);
    await start(second);

    // Each incident's channel, created by slack_post_message (which associates it in the shared store).
    const channels: string[] = [];
    for (const id of INCIDENTS) {
      const cid = caller.publish(
        first.destination,
        caller.invocation('slack_post_message', { incident_id: id, slack_channel: `inc-${id}`, slack_is_channel_private: false, slack_text: 'Incident opened' }),
      );
      await caller.waitForFinal([cid], 60_000);
      const [reply] = caller.finalReplies(cid) as Record<string, any>[];
      expect(reply!.message_type, JSON.stringify(reply)).to.equal(0);
      const channelId = String(reply!.results.content.channel_id);
      emu.addMembers(channelId, [alice.id]);
      channels.push(channelId);
    }

    // Runs of five messages per channel, a few milliseconds apart: consecutive messages of
    // one channel go to the two connections in turn, so the two workers record them
    // concurrently and they may reach the inbound queue in either order.
    /** Each message's event id → its channel and number. */
    const textOf = new Map<string, { channel: string; n: number }>();
    for (let i = 0; i < MESSAGES; i++) {
      const channel = channels[Math.floor(i / 5) % channels.length]!;
      emu.postAsUser(alice.id, channel, `message ${i}`);
      await sleep(3);
    }
    for (const env of emu.socketMode.delivered()) {
      const event = env.payload.event as { channel: string; text: string; user?: string };
      if (event.user !== alice.id) continue; // the worker's own opening posts
      textOf.set(String(env.payload.event_id), { channel: event.channel, n: Number(event.text.replace('message ', '')) });
    }
    expect(textOf.size).to.equal(MESSAGES);
    expect(new Set(emu.socketMode.delivered().flatMap((e) => e.sentTo)).size, 'both connections received envelopes').to.equal(2);

    const noteCount = () => INCIDENTS.reduce((sum, id) => sum + localNotes(platformDir, id).length, 0);
    await until(`${MESSAGES} notes`, () => noteCount() >= MESSAGES, 180_000);
    const handledMessages = async () => (await handledEventIds()).filter((id) => textOf.has(id));
    await until('every message handled', async () => (await handledMessages()).length >= MESSAGES);
    await until('every envelope acknowledged', () => emu.socketMode.delivered().every((e) => e.ackedAt !== undefined));

    const perChannel = MESSAGES / INCIDENTS.length;
    for (const [i, id] of INCIDENTS.entries()) {
      const expected = [...textOf.values()].filter((m) => m.channel === channels[i]).map((m) => `message ${m.n}`);
      const notes = localNotes(platformDir, id);
      // Each message once (no note lost, none doubled), listed in channel order.
      expect(notes.map((n) => n.text), `notes of incident ${id}`).to.deep.equal(expected);
      expect(notes).to.have.length(perChannel);
      expect(new Set(notes.map((n) => n.key)).size).to.equal(perChannel);
      expect(notes.every((n) => n.slack.channel_id === channels[i])).to.equal(true);
    }
    // Written in channel order: the handlers of one channel began in message order.
    const handled = await handledMessages();
    expect(handled).to.have.length(MESSAGES);
    for (const channel of channels) {
      const seq = handled.map((id) => textOf.get(id)!).filter((m) => m.channel === channel).map((m) => m.n);
      expect(seq, `handling order in ${channel}`).to.deep.equal([...seq].sort((a, b) => a - b));
    }
    // Nothing went back to Slack but each channel's opening post.
    for (const channel of channels) expect(emu.messages(channel).filter((m) => m.bot_id)).to.have.length(1);
  });
});
