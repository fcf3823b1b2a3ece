/**
 * What the fn_slack end-to-end tests share: a spawned `worker run` with a Caller on the
 * real broker (started and torn down the same way), publishing one invocation and reading
 * its replies, and the check that an invocation succeeded.
 */
import { expect } from 'chai';
import { Caller, deleteDestination, WorkerProcess, type TestConfig } from './harness.js';

/** A reply as the caller sees it (JSON, so any field may be read). */
export type Reply = Record<string, any>;

/** A spawned `worker run` that is ready, and a Caller to publish to it. */
export interface WorkerRun {
  cfg: TestConfig;
  worker: WorkerProcess;
  caller: Caller;
}

/**
 * Starts `worker run` on `cfg` (with `env` added to its environment), waits for it to be
 * ready and opens a Caller. A worker that does not become ready is stopped before the
 * error is thrown, so a failed `before` leaves no process behind.
 */
export async function startWorkerRun(cfg: TestConfig, env: NodeJS.ProcessEnv = {}): Promise<WorkerRun> {
  const worker = WorkerProcess.start(cfg.file, env);
  try {
    await worker.waitFor();
    return { cfg, worker, caller: await Caller.open() };
  } catch (err) {
    await worker.stop('SIGTERM');
    throw err;
  }
}

/**
 * Closes the caller, stops the worker (SIGTERM, a graceful stop) and deletes the
 * destination's queues. Tolerates a `before` that failed part way: `run` or `cfg` may be
 * missing.
 */
export async function stopWorkerRun(run: WorkerRun | undefined, cfg: TestConfig | undefined): Promise<void> {
  await run?.caller.close();
  await run?.worker.stop('SIGTERM');
  if (cfg) await deleteDestination(cfg.destination);
}

/**
 * Publishes an invocation of `fn` and returns all its replies once the final one is in.
 * 60 s: a Slack function makes several emulator calls on a shared, slow machine.
 */
export async function invoke(run: WorkerRun, fn: string, inputs: Record<string, unknown>, timeoutMs = 60_000): Promise<Reply[]> {
  const id = run.caller.publish(run.cfg.destination, run.caller.invocation(fn, inputs));
  await run.caller.waitForFinal([id], timeoutMs);
  return run.caller.replies.get(id)!;
}

/**
 * Checks that the last reply is a complete, successful result; returns
 * [the progress messages before it, its results].
 */
export function succeeded(replies: Reply[]): [string[], Reply] {
  const final = replies[replies.length - 1]!;
  expect(final.message_type, JSON.stringify(final)).to.equal(0);
  expect(final.complete).to.equal(true);
  const results = final.results as Reply;
  expect(results.success).to.equal(true);
  return [replies.slice(0, -1).map((p) => p.message as string), results];
}
