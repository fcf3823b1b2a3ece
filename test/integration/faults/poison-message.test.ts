/**
 * Fault: a message that crashes its handler every time (issue #5).
 *
 * A handler that throws every time is covered by test/integration/core/worker-run.test.ts
 * ("dead-letters a handler that crashes every time after max_attempts"): the runner
 * retries it, answers with an error and dead-letters it, and the worker goes on.
 *
 * Here the handler takes the whole worker process down (SIGKILL, like an out-of-memory
 * kill) every time, and the test restarts the worker each time as systemd's
 * `Restart=always` would. The ledger counts the deliveries the crashes interrupted, so
 * after `max_attempts` crashes the next delivery is dead-lettered with an error reply
 * instead of being run: the crash loop is bounded, and the worker then serves others.
 * Invocations that were in flight with it at each crash are not charged for those
 * crashes (the runner runs crash suspects one at a time): they complete, with one effect.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { SqliteStore } from '../../../src/core/store/sqlite-store.js';
import { expectAnsweredSuccessfully, openWatchedCaller, waitForFinal } from '../../support/fault-checks.js';
import { type Caller, deleteDestination, ECHO_PLUGIN, queueDepth, REPO_ROOT, WorkerProcess, writeConfig, type TestConfig } from '../../support/harness.js';

const CRASH_PLUGIN = path.join(REPO_ROOT, 'test', 'support', 'crash-plugin.ts');
const MAX_ATTEMPTS = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fault: a message that kills the worker process every time', function () {
  this.timeout(120_000);
  let cfg: TestConfig;
  let caller: Caller;
  let current: WorkerProcess | undefined;
  let supervising = true;

  before(async () => {
    cfg = writeConfig({
      // All of the batch in flight at once, so that every crash hits the innocent ones too.
      worker: { num_workers: 25, max_attempts: MAX_ATTEMPTS, plugins: `${ECHO_PLUGIN}, ${CRASH_PLUGIN}` },
      sections: { fn_test_crash: {} },
    });
    caller = await openWatchedCaller();
  });

  after(async () => {
    supervising = false;
    await current?.stop('SIGKILL');
    await caller?.close();
    if (cfg) await deleteDestination(cfg.destination);
  });

  it(`is dead-lettered with an error reply after ${MAX_ATTEMPTS} crashes; the restarted worker goes on`, async () => {
    // The supervisor: start the worker, and start it again each time it dies.
    const crashes: (NodeJS.Signals | null)[] = [];
    const unconfirmed = new Set<string>();
    let innocents: string[] = [];
    const startOne = async (): Promise<void> => {
      const w = WorkerProcess.start(cfg.file);
      current = w;
      void w.exited.then(async (exit) => {
        if (!supervising) return;
        crashes.push(exit.signal);
        // Which invocations had finished without their reply recorded as confirmed: the
        // only ones that may be answered twice (README, delivery guarantees).
        const store = SqliteStore.open(path.join(cfg.dir, 'worker.db'));
        try {
          for (const id of innocents) {
            const entry = await store.ledger.get(id);
            if (entry && entry.state !== 'running' && entry.repliedAt === null) unconfirmed.add(id);
          }
        } finally {
          await store.close();
        }
        void startOne();
      });
      await w.waitFor();
    };
    await startOne();

    // Innocent invocations in flight with the poison message, on every crash.
    innocents = Array.from({ length: 12 }, () => {
      const id = randomUUID();
      return caller.publish(cfg.destination, caller.invocation('test_sleep', { ms: 500 }), { messageId: id, correlationId: id });
    });
    const poison = randomUUID();
    caller.publish(cfg.destination, caller.invocation('test_kill_worker', {}), { messageId: poison, correlationId: poison });
    await waitForFinal(caller, [poison], 60_000, () => `(exits so far: ${crashes.join(', ')})\n${current?.output ?? ''}`);
    const [reply, ...more] = caller.finalReplies(poison);
    expect(more).to.have.length(0);
    expect(reply!.message_type).to.equal(1);
    expect(reply!.error).to.deep.equal({ code: 'attempts_exhausted', retryable: false });
    expect(String(reply!.message)).to.contain(`delivered ${MAX_ATTEMPTS + 1} times without finishing (limit: max_attempts = ${MAX_ATTEMPTS})`);
    expect(crashes).to.deep.equal(Array(MAX_ATTEMPTS).fill('SIGKILL'));

    // The crashes are not charged to the innocent ones: each completes, once.
    await waitForFinal(caller, innocents, 60_000, () => current?.output ?? '');
    for (const id of expectAnsweredSuccessfully(caller, innocents)) {
      expect(unconfirmed.has(id), `${id} answered twice although its reply was recorded as confirmed`).to.equal(true);
    }
    for (const id of innocents) {
      expect(fs.readFileSync(path.join(cfg.effectsDir, `${id}.effect`), 'utf8'), `effects of ${id}`).to.equal('x\n');
    }

    const deadline = Date.now() + 5000;
    while ((await queueDepth(`${cfg.destination}.dead`)) < 1 && Date.now() < deadline) await sleep(100);
    expect(await queueDepth(`${cfg.destination}.dead`)).to.equal(1);

    // The worker that dead-lettered it is still up and serves the next invocations.
    const ok = Array.from({ length: 5 }, () => caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'after' })));
    await waitForFinal(caller, ok, 30_000, () => current?.output ?? '');
    for (const id of ok) expect(caller.finalReplies(id)[0]!.message).to.equal('Completed');
    await sleep(500);
    expect(crashes).to.have.length(MAX_ATTEMPTS);
    expect(current!.child.exitCode).to.equal(null);
    expect(current!.output).to.contain('running it alone');
  });
});
