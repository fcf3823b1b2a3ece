/**
 * Several workers (issue #6): three `worker run` processes consume one queue and share
 * one PostgreSQL store. A few hundred slack_post_message invocations across incidents,
 * the first posts of each incident arriving at several workers at once; one worker is
 * stopped (SIGTERM, as systemd does) in the middle.
 *
 * What it proves: each invocation is answered exactly once and posted exactly once, no
 * channel is created twice and each incident has one data table row (the advisory lock
 * of `withLock` holds across processes), every worker took part, and the stopped worker
 * lost nothing (what it had not started went back to the queue for the others).
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { openStore } from '../../../src/core/store/index.js';
import { countAnswered, expectAnsweredSuccessfully, expectOnePostEach, openWatchedCaller, publishPosts, tempPostgresDatabase, waitForAnswered, waitForFinal } from '../../support/fault-checks.js';
import { type Caller, deleteDestination, queueDepth, uniqueName, WorkerProcess, writeConfig } from '../../support/harness.js';
import { SlackEmulator } from '../../support/slack-emulator.js';
import { SqlConversationTable } from '../../../src/functions/slack/store/conversations.js';

const WORKERS = 3;
const INVOCATIONS = 300;
const INCIDENTS = 30;

describe('three workers on one queue and one PostgreSQL store', function () {
  this.timeout(180_000);
  let emu: SlackEmulator;
  let caller: Caller;
  const destination = uniqueName('multi_worker');
  const workers: WorkerProcess[] = [];
  let db: { url: string; drop: () => Promise<void> };

  before(async () => {
    emu = await SlackEmulator.start();
    caller = await openWatchedCaller();
    db = await tempPostgresDatabase('multi_worker');
  });

  after(async () => {
    for (const w of workers) await w.stop('SIGKILL');
    await caller?.close();
    await deleteDestination(destination);
    await emu?.close();
    await db?.drop();
  });

  it(`${INVOCATIONS} invocations over ${INCIDENTS} incidents, one worker stopped midway: each answered and posted once`, async () => {
    for (let i = 0; i < WORKERS; i++) {
      const cfg = writeConfig({
        destination,
        worker: { num_workers: 10, store: db.url, shutdown_timeout: 30 },
        // Pacing to Slack's real rates (20 channel creations a minute) is tested in
        // slack-rate-limits.test.ts; here it would only stretch the run.
        sections: { fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl, rate_limits: 'off' } },
      });
      workers.push(WorkerProcess.start(cfg.file));
    }
    await Promise.all(workers.map((w) => w.waitFor()));

    const tag = randomUUID().slice(0, 6);
    const ids = publishPosts(
      caller,
      destination,
      Array.from({ length: INVOCATIONS }, (_, i) => {
        const incident = 8000 + (i % INCIDENTS);
        return {
          incident_id: incident,
          slack_channel: `mw-${tag}-${incident}`,
          slack_is_channel_private: false,
          slack_text: `update ${i} for incident ${incident}`,
        };
      }),
    );

    const workerOutput = () => workers.map((w) => w.output.slice(-1000)).join('\n---\n');
    await waitForAnswered(caller, ids, INVOCATIONS / 3, 90_000, workerOutput);
    const stopped = workers[1]!;
    const exit = await stopped.stop('SIGTERM');
    expect(exit.code, stopped.output.slice(-2000)).to.equal(0);
    const answeredAtStop = countAnswered(caller, ids);
    expect(answeredAtStop, 'the worker must stop in the middle of the batch').to.be.lessThan(INVOCATIONS);

    await waitForFinal(caller, ids, 120_000, workerOutput);
    // A worker records the reply as confirmed in the ledger and then logs "Completed" only
    // after the broker confirmed it, so the last replies can arrive before either: wait for
    // every line (then nothing is left to record), and a moment more for any duplicate reply.
    const completed = () => workers.map((w) => (w.output.match(/Completed slack_post_message/g) ?? []).length);
    for (const deadline = Date.now() + 30_000; completed().reduce((a, b) => a + b, 0) < INVOCATIONS && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 500));

    expect(expectAnsweredSuccessfully(caller, ids), 'invocations answered twice').to.deep.equal([]);
    expectOnePostEach(emu, ids);
    const channels = emu.channels().filter((c) => c.name.startsWith(`mw-${tag}-`));
    expect(channels).to.have.length(INCIDENTS);
    expect(emu.calls('conversations.create'), 'channels created').to.equal(INCIDENTS);

    const store = await openStore(db.url);
    try {
      const rows = await new SqlConversationTable(store.sql).list();
      expect(rows).to.have.length(INCIDENTS);
      for (const row of rows) expect(row.channelId).to.equal(emu.channelByName(`mw-${tag}-${row.incidentId}`)!.id);
      for (const id of ids) {
        const entry = await store.ledger.get(id);
        expect(entry?.state, id).to.equal('succeeded');
        expect(entry?.repliedAt, id).to.be.instanceOf(Date);
      }
    } finally {
      await store.close();
    }

    const done = completed();
    for (const n of done) expect(n, `invocations per worker: ${done.join(', ')}`).to.be.greaterThan(0);
    expect(done.reduce((a, b) => a + b, 0)).to.equal(INVOCATIONS);
    expect(await queueDepth(destination)).to.equal(0);
    expect(await queueDepth(`${destination}.dead`)).to.equal(0);
    console.log(`      per worker: ${done.join(', ')} (worker 2 stopped after ${answeredAtStop}/${INVOCATIONS} answered)`);
  });
});
