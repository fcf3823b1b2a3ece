/**
 * Fault: two invocations for the same new incident at the same moment (issue #5). Both
 * resolve the same new channel name; the store's `withLock` on the channel name and
 * `insertIfAbsent` on the incident must leave one Slack channel and one data table row.
 *
 * Against one worker on SQLite (the in-process lock), and against two worker processes
 * on one PostgreSQL store (the advisory lock, across processes).
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { expect } from 'chai';
import { openStore, type Store } from '../../../src/core/store/index.js';
import { expectAnsweredSuccessfully, expectOnePostEach, openWatchedCaller, publishPosts, tempPostgresDatabase, waitForFinal } from '../../support/fault-checks.js';
import { type Caller, deleteDestination, tempDir, uniqueName, WorkerProcess, writeConfig } from '../../support/harness.js';
import { SlackEmulator } from '../../support/slack-emulator.js';
import { SqlConversationTable } from '../../../src/functions/slack/store/conversations.js';

/** Pairs per run: each pair is one new incident; more pairs, more chances for a race to show. */
const INCIDENTS = 15;

describe('fault: two invocations for the same new incident at once', function () {
  this.timeout(120_000);
  let emu: SlackEmulator;
  let caller: Caller;
  let destination: string;
  let workers: WorkerProcess[] = [];
  let cleanup: (() => Promise<void>) | undefined;

  beforeEach(async () => {
    emu = await SlackEmulator.start();
    caller = await openWatchedCaller();
    destination = uniqueName('same_inc');
  });

  afterEach(async () => {
    for (const w of workers) await w.stop('SIGKILL');
    workers = [];
    await caller.close();
    await deleteDestination(destination);
    await emu.close();
    await cleanup?.();
    cleanup = undefined;
  });

  async function run(storeLocation: (dir: string) => string, processes: number): Promise<Store> {
    const location = storeLocation(tempDir());
    for (let i = 0; i < processes; i++) {
      // Each process has its own config, logs and lock file; all share the queue and the store.
      const cfg = writeConfig({
        destination,
        worker: { num_workers: 2 * INCIDENTS, store: location },
        // Pacing to Slack's real rates (20 channel creations a minute) is tested in
        // slack-rate-limits.test.ts; here it would only stretch the run.
        sections: { fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl, rate_limits: 'off' } },
      });
      workers.push(WorkerProcess.start(cfg.file));
    }
    for (const w of workers) await w.waitFor();

    const tag = randomUUID().slice(0, 6);
    const ids = publishPosts(
      caller,
      destination,
      Array.from({ length: INCIDENTS }, (_, i) =>
        [0, 1].map((j) => ({
          incident_id: 5000 + i,
          slack_channel: `same-${tag}-${i}`,
          slack_is_channel_private: true,
          slack_text: `first news ${j} of incident ${5000 + i}`,
        })),
      ).flat(),
    );
    await waitForFinal(caller, ids, 90_000, () => workers.map((w) => w.output.slice(-1000)).join('\n---\n'));
    expect(expectAnsweredSuccessfully(caller, ids)).to.deep.equal([]);
    expectOnePostEach(emu, ids);

    const channels = emu.channels().filter((c) => c.name.startsWith(`same-${tag}-`));
    expect(channels).to.have.length(INCIDENTS);
    expect(emu.calls('conversations.create')).to.equal(INCIDENTS);
    for (const c of channels) expect(emu.messages(c.id)).to.have.length(2);

    const store = await openStore(location);
    const rows = await new SqlConversationTable(store.sql).list();
    expect(rows).to.have.length(INCIDENTS);
    for (const row of rows) expect(row.channelId).to.equal(emu.channelByName(`same-${tag}-${row.incidentId - 5000}`)!.id);
    return store;
  }

  it('one worker on SQLite: one channel and one row per incident', async () => {
    const store = await run((dir) => path.join(dir, 'worker.db'), 1);
    await store.close();
  });

  it('two worker processes on one PostgreSQL store: one channel and one row per incident', async () => {
    const db = await tempPostgresDatabase('same_inc');
    cleanup = db.drop;
    const store = await run(() => db.url, 2);
    try {
      // Both processes did part of the work, so the lock really was contended across them.
      for (const w of workers) expect(w.output).to.match(/Completed slack_post_message/);
    } finally {
      await store.close();
    }
  });
});
