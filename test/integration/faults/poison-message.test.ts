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
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { expect } from 'chai';
import { Caller, deleteDestination, ECHO_PLUGIN, queueDepth, REPO_ROOT, WorkerProcess, writeConfig, type TestConfig } from '../../support/harness.js';

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
      worker: { max_attempts: MAX_ATTEMPTS, plugins: `${ECHO_PLUGIN}, ${CRASH_PLUGIN}` },
      sections: { fn_test_crash: {} },
    });
    caller = await Caller.open();
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
    const startOne = async (): Promise<void> => {
      const w = WorkerProcess.start(cfg.file);
      current = w;
      void w.exited.then((exit) => {
        if (!supervising) return;
        crashes.push(exit.signal);
        void startOne();
      });
      await w.waitFor();
    };
    await startOne();

    const poison = randomUUID();
    caller.publish(cfg.destination, caller.invocation('test_kill_worker', {}), { messageId: poison, correlationId: poison });
    await caller.waitForFinal([poison], 60_000).catch((err: Error) => {
      throw new Error(`${err.message}; worker exits so far: ${crashes.join(', ')}; last worker said:\n${current?.output.slice(-3000)}`);
    });
    const [reply, ...more] = caller.finalReplies(poison);
    expect(more).to.have.length(0);
    expect(reply!.message_type).to.equal(1);
    expect(reply!.error).to.deep.equal({ code: 'attempts_exhausted', retryable: false });
    expect(String(reply!.message)).to.contain(`delivered ${MAX_ATTEMPTS + 1} times without finishing (limit: max_attempts = ${MAX_ATTEMPTS})`);
    expect(crashes).to.deep.equal(Array(MAX_ATTEMPTS).fill('SIGKILL'));

    const deadline = Date.now() + 5000;
    while ((await queueDepth(`${cfg.destination}.dead`)) < 1 && Date.now() < deadline) await sleep(100);
    expect(await queueDepth(`${cfg.destination}.dead`)).to.equal(1);

    // The worker that dead-lettered it is still up and serves the next invocations.
    const ok = Array.from({ length: 5 }, () => caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'after' })));
    await caller.waitForFinal(ok);
    for (const id of ok) expect(caller.finalReplies(id)[0]!.message).to.equal('Completed');
    await sleep(500);
    expect(crashes).to.have.length(MAX_ATTEMPTS);
    expect(current!.child.exitCode).to.equal(null);
  });
});
