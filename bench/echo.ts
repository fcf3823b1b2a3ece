/**
 * Measures the bare amqplib echo (bench/echo-responder.ts in its own process) with the
 * closed-loop caller. Used by the overhead benchmark and as the reference of the
 * post_message benchmark; one measurement per `npm run bench` run is shared.
 */
import { AMQP_URL, Caller, deleteDestination, uniqueName } from '../test/support/harness.js';
import { BenchChild, closedLoop, type LoadResult } from './common.js';

/** Invocations kept in flight by the caller, and the prefetch of both consumers: the design's num_workers default. */
export const IN_FLIGHT = 25;

/** The test_echo invocation every overhead run publishes (same payload for both sides). */
export function echoInvocation(caller: Caller, i: number): Record<string, unknown> {
  return caller.invocation('test_echo', { text: `benchmark payload ${i}` });
}

let reference: LoadResult | undefined;

/** Records the run's bare-echo figure (benchmark 1 sets it) for the benchmarks that compare with it. */
export function setEchoReference(r: LoadResult): void {
  reference = r;
}

/** The run's bare-echo figure; measured here when benchmark 1 did not run. */
export async function echoReference(total: number, warmup: number): Promise<LoadResult> {
  reference ??= await measureBareEcho(total, warmup);
  return reference;
}

export async function measureBareEcho(total: number, warmup: number): Promise<LoadResult & { pid: number }> {
  const queue = uniqueName('bench_echo');
  const responder = await BenchChild.start('echo-responder.ts', [queue, String(IN_FLIGHT), AMQP_URL]);
  let caller: Caller | undefined;
  try {
    caller = await Caller.open();
    const c = caller;
    const result = await closedLoop(c, queue, (i) => echoInvocation(c, i), { total, inFlight: IN_FLIGHT, warmup, cpuOfPid: responder.pid });
    return { ...result, pid: responder.pid };
  } finally {
    await caller?.close();
    await responder.stop();
    await deleteDestination(queue);
  }
}
