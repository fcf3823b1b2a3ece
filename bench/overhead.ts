/**
 * Benchmark 1, runner overhead: a no-op function (test_echo) through `worker run`
 * (parse, validate, ledger, reply with publisher confirm, ack) against the bare amqplib
 * echo, same payloads, same number in flight.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Caller, deleteDestination, writeConfig } from '../test/support/harness.js';
import {
  BENCH_LOGLEVEL,
  builtEchoPlugin,
  check,
  closedLoop,
  DistWorker,
  printTable,
  printTargets,
  round,
  workerNodeArgs,
  writeResult,
  type LoadResult,
} from './common.js';
import { echoInvocation, IN_FLIGHT, measureBareEcho, setEchoReference } from './echo.js';

/** Enough invocations for a stable p99 (5,000 timed) while each side runs only a few seconds. */
const TOTAL = 5_500;
const WARMUP = 500;
/**
 * Echo and worker are measured alternately this many times and each side's median
 * round is reported: other work on the machine comes and goes within seconds, and
 * alternating spreads it over both sides instead of one.
 */
const ROUNDS = 3;

function medianBy<T>(items: T[], key: (t: T) => number): T {
  return [...items].sort((a, b) => key(a) - key(b))[Math.floor(items.length / 2)]!;
}

export async function workerEcho(total: number, warmup: number): Promise<LoadResult & { rssMb: number; hwmMb: number }> {
  // test_echo writes one effect file per invocation (the test plugin counts effects that
  // way). On tmpfs that file costs next to nothing, so the figure is the runner's.
  const sections: Record<string, Record<string, string>> = fs.existsSync('/dev/shm') ? { fn_test: { effects_dir: fs.mkdtempSync('/dev/shm/bench-effects-') } } : {};
  const cfg = writeConfig({ worker: { loglevel: BENCH_LOGLEVEL, num_workers: IN_FLIGHT, plugins: builtEchoPlugin() }, sections });
  const worker = DistWorker.start(cfg.file, workerNodeArgs('overhead'));
  const caller = await Caller.open();
  try {
    await worker.ready();
    const result = await closedLoop(caller, cfg.destination, (i) => echoInvocation(caller, i), { total, inFlight: IN_FLIGHT, warmup, failOn: worker.died, cpuOfPid: worker.pid });
    const mem = worker.memory();
    return { ...result, rssMb: mem.rssMb, hwmMb: mem.hwmMb };
  } finally {
    await caller.close();
    await worker.stop();
    await deleteDestination(cfg.destination);
  }
}

export async function runOverhead(): Promise<boolean> {
  console.log(`\n=== 1. Runner overhead: test_echo through worker run vs a bare amqplib echo (${IN_FLIGHT} in flight) ===`);
  const echoes: LoadResult[] = [];
  const workers: (LoadResult & { rssMb: number; hwmMb: number })[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    echoes.push(await measureBareEcho(TOTAL, WARMUP));
    workers.push(await workerEcho(TOTAL, WARMUP));
  }
  const echo = medianBy(echoes, (e) => e.perSecond);
  const worker = medianBy(workers, (w) => w.perSecond);
  setEchoReference(echo);
  printTable(
    'Rounds (inv/s)',
    echoes.map((e, i) => ({
      round: i + 1,
      'bare echo': e.perSecond,
      worker: workers[i]!.perSecond,
      ratio: round(workers[i]!.perSecond / e.perSecond, 3),
      'echo CPU ms/inv': e.cpuMsPerInvocation ?? null,
      'worker CPU ms/inv': workers[i]!.cpuMsPerInvocation ?? null,
    })),
  );
  // CPU per invocation moves far less than throughput when the machine is shared: the
  // median round's CPU ratio says what throughput ratio a machine to themselves would give.
  const cpuRatio = medianBy(
    echoes.map((e, i) => (e.cpuMsPerInvocation ?? NaN) / (workers[i]!.cpuMsPerInvocation ?? NaN)),
    (x) => x,
  );
  const ratio = worker.perSecond / echo.perSecond;
  printTable('Throughput and latency (publish → final reply)', [
    { side: 'bare amqplib echo', 'inv/s': echo.perSecond, 'p50 ms': echo.latency.p50_ms, 'p99 ms': echo.latency.p99_ms, timed: echo.count, failures: echo.failures },
    { side: 'worker run (dist)', 'inv/s': worker.perSecond, 'p50 ms': worker.latency.p50_ms, 'p99 ms': worker.latency.p99_ms, timed: worker.count, failures: worker.failures },
    { side: 'ratio worker/echo', 'inv/s': round(ratio, 3) },
  ]);
  console.log(`CPU per invocation, echo ÷ worker (median of the rounds): ${round(cpuRatio, 3)}`);
  const targets = [check('worker throughput / bare echo', ratio, '>=', 0.6), check('failures', worker.failures, '<=', 0)];
  printTargets(targets);
  const file = writeResult({
    name: 'overhead',
    title: 'Runner overhead: no-op function through worker run vs bare amqplib echo',
    placement: {
      caller: 'benchmark process (node + tsx): one amqplib connection, closed loop',
      bare_echo: 'own process (node + tsx, bench/echo-responder.ts)',
      worker: `own process: node ${path.relative(process.cwd(), 'dist/src/cli.js')} run (plain Node), loglevel ${BENCH_LOGLEVEL}, SQLite ledger`,
      broker: 'RabbitMQ on 127.0.0.1 (shared with other work on this machine)',
    },
    figures: {
      in_flight: IN_FLIGHT,
      warmup: WARMUP,
      rounds: echoes.map((e, i) => ({
        bare_echo_per_s: e.perSecond,
        worker_per_s: workers[i]!.perSecond,
        bare_echo_cpu_ms_per_inv: e.cpuMsPerInvocation,
        worker_cpu_ms_per_inv: workers[i]!.cpuMsPerInvocation,
      })),
      cpu_ratio_echo_to_worker_median: round(cpuRatio, 3),
      bare_echo_median_round: strip(echo),
      worker_median_round: strip(worker),
      ratio_worker_to_echo: round(ratio, 3),
    },
    targets,
    notes: [
      'test_echo writes one small effect file per invocation (the echo plugin counts effects that way), here on tmpfs (/dev/shm); otherwise it does nothing.',
      'The bare echo parses the body and replies without publisher confirms, validation, ledger or logging.',
      'CPU ms/inv: user + system CPU time of the process under test (/proc/<pid>/stat) over the timed invocations, divided by their number. It hardly depends on other work on the machine; the CPU ratio echo ÷ worker is what the throughput ratio would be if both sides were CPU-bound on a machine to themselves.',
    ],
  });
  console.log(`wrote ${file}`);
  return targets.every((t) => t.pass);
}

function strip<T extends { firstFailure?: unknown }>(r: T): Omit<T, 'firstFailure'> & { first_failure?: unknown } {
  const { firstFailure, ...rest } = r;
  return firstFailure ? { ...rest, first_failure: firstFailure } : rest;
}
