/**
 * Mirroring end to end: a spawned `worker run` with `[fn_slack] app_token` holds a Socket
 * Mode connection to the Slack emulator; what people write in an incident's channel
 * (created by slack_post_message through the real broker) lands as notes on the local
 * platform and, in a second worker, as comments in the SOAR emulator.
 */
import { mkdirSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { SqliteStore } from '../../../src/core/store/sqlite-store.js';
import { SlackEmulator, type EmulatedUser } from '../../support/slack-emulator.js';
import { SoarEmulator } from '../../support/soar-emulator.js';
import { deleteDestination, uniqueName, writeConfig, type TestConfig } from '../../support/harness.js';
import { invoke, startWorkerRun, stopWorkerRun, succeeded, type Reply, type WorkerRun } from '../../support/invocations.js';

/** Polls `read` until `done` holds for what it returns (or fails the test after `ms`). */
async function until<T>(read: () => Promise<T> | T, done: (value: T) => boolean, what: string, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) expect.fail(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await sleep(100);
  }
}

interface NoteFile {
  text: string;
  author: { name: string; email: string | null };
  slack: { ts: string; thread_ts: string | null; permalink: string };
  key: string;
}

/** The worker's ledger state of an invocation (an inbound envelope's key), read from its SQLite store. */
async function ledgerState(cfg: TestConfig, id: string): Promise<string | undefined> {
  const store = SqliteStore.open(path.join(cfg.dir, 'worker.db'));
  try {
    return (await store.ledger.get(id))?.state;
  } finally {
    await store.close();
  }
}

async function localNotes(cfg: TestConfig, incidentId: number): Promise<NoteFile[]> {
  const dir = path.join(cfg.dir, 'files', 'incidents', String(incidentId), 'notes');
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  } catch {
    return [];
  }
  return Promise.all(names.map(async (n) => JSON.parse(await readFile(path.join(dir, n), 'utf8')) as NoteFile));
}

for (const platform of ['local', 'soar'] as const) {
  describe(`mirroring end to end, platform = ${platform} (RabbitMQ + worker run + Socket Mode)`, function () {
    this.timeout(120_000);
    let slack: SlackEmulator;
    let soar: SoarEmulator | undefined;
    let cfg: TestConfig;
    let run: WorkerRun;
    let alice: EmulatedUser;
    let bob: EmulatedUser;
    const incidentId = platform === 'local' ? 2301 : 2302;
    // Its own inbound queue: the default fn_slack.inbound is shared by every run on this
    // broker, and with a single active consumer another run's worker could take our events.
    const inboundQueue = uniqueName('inbound');

    /** The notes on the incident, as texts, whichever platform holds them. */
    async function noteTexts(): Promise<string[]> {
      if (soar) return soar.comments.filter((c) => c.incidentId === incidentId).map((c) => c.text);
      return (await localNotes(cfg, incidentId)).map((n) => n.text);
    }

    before(async () => {
      slack = await SlackEmulator.start();
      slack.subscribe('message.channels', 'message.groups');
      alice = slack.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
      bob = slack.addUser({ name: 'bob', real_name: 'Bob Builder', email: 'bob@example.com' });
      const fnSlack = { api_token: slack.botToken, api_url: slack.apiUrl, app_token: slack.appToken, inbound_queue: inboundQueue };
      if (platform === 'soar') {
        soar = await SoarEmulator.start();
        soar.addIncident(incidentId);
        cfg = writeConfig({
          worker: { platform: 'soar' },
          sections: {
            fn_slack: fnSlack,
            soar: { base_url: soar.baseUrl, org_id: soar.orgId, api_key_id: soar.apiKeyId, api_key_secret: '$SOAR_TEST_SECRET' },
          },
        });
        run = await startWorkerRun(cfg, { SOAR_TEST_SECRET: soar.apiKeySecret });
      } else {
        cfg = writeConfig({ sections: { fn_slack: fnSlack } });
        mkdirSync(path.join(cfg.dir, 'files', 'incidents', String(incidentId)), { recursive: true });
        run = await startWorkerRun(cfg);
      }
    });

    after(async () => {
      await stopWorkerRun(run, cfg);
      await deleteDestination(inboundQueue);
      await slack?.close();
      await soar?.close();
    });

    it("mirrors a message and a thread reply once each; not the worker's own post, not a retry or a copy, not another channel", async () => {
      // The incident's channel: created by the worker, whose post is not mirrored.
      const [, results] = succeeded(
        await invoke(run, 'slack_post_message', {
          incident_id: incidentId,
          slack_channel: `inc-${incidentId}`,
          slack_is_channel_private: false,
          slack_text: 'Incident opened',
        }),
      );
      const channelId = String((results.content as Reply).channel_id);
      slack.addMembers(channelId, [alice.id, bob.id]);
      const elsewhere = slack.seedChannel({ name: `chatter-${platform}`, members: [slack.botUserId, alice.id] });

      const top = slack.postAsUser(alice.id, channelId, `Seeing 502s, <@${bob.id}> can you look?`);
      slack.postAsUser(bob.id, channelId, 'On it', { threadTs: top.ts });
      slack.postAsUser(alice.id, elsewhere.id, 'lunch?');
      await until(noteTexts, (t) => t.length >= 2, 'two notes');

      // Slack's retry of the first event, and a copy of it under a new event id.
      const first = slack.socketMode.delivered().find((e) => (e.payload.event as Record<string, unknown>)?.ts === top.ts)!;
      const event = first.payload.event as Record<string, unknown>;
      slack.emitEvent(event, { eventId: String(first.payload.event_id) });
      const copy = slack.emitEvent(event);
      // A later message in the channel: once it is a note, everything before it was handled.
      slack.postAsUser(alice.id, channelId, 'sentinel');
      await until(noteTexts, (t) => t.length >= 3, 'the sentinel note');
      // The copy (a new event id, so not absorbed by the ledger) ran the mirror, which found the note.
      await until(
        () => ledgerState(cfg, `event:${copy}`),
        (state) => state === 'succeeded',
        'the copy handled',
      );
      await until(
        () => slack.socketMode.delivered().filter((e) => e.ackedAt === undefined).length,
        (n) => n === 0,
        'every envelope acknowledged',
      );

      const texts = await noteTexts();
      expect(texts).to.have.length(3);
      if (soar) {
        expect(texts[0]).to.include('<b>Alice Analyst</b> (alice@example.com) in Slack:</p><p>Seeing 502s, @Bob Builder can you look?</p>');
        expect(texts[1]).to.include('<b>Bob Builder</b> (bob@example.com) in a Slack thread:</p><p>On it</p>');
        expect(texts[1]).to.include(`?thread_ts=${top.ts}&#38;cid=${channelId}`);
      } else {
        const notes = await localNotes(cfg, incidentId);
        expect(notes.map((n) => [n.text, n.author.name, n.key])).to.deep.equal([
          ['Seeing 502s, @Bob Builder can you look?', 'Alice Analyst', `${channelId}:${top.ts}`],
          ['On it', 'Bob Builder', notes[1]!.key],
          ['sentinel', 'Alice Analyst', notes[2]!.key],
        ]);
        expect(notes[1]!.slack.thread_ts).to.equal(top.ts);
        expect(notes[0]!.slack.permalink).to.equal(`https://emulated.slack.com/archives/${channelId}/p${top.ts.replace('.', '')}`);
      }
      // Nothing was posted to Slack but the worker's own message; no permalink was asked.
      expect(slack.messages(channelId).filter((m) => m.bot_id)).to.have.length(1);
      expect(slack.calls('chat.getPermalink')).to.equal(0);
    });
  });
}
