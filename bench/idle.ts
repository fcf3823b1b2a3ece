/**
 * Benchmark 5, idle footprint: `worker run` (built CLI, built-in fn_slack, SQLite store)
 * started several times: time from spawn to the "Worker ready" log line, and RSS after
 * it has sat idle for a few seconds.
 */
import { deleteDestination, writeConfig } from '../test/support/harness.js';
import { BENCH_LOGLEVEL, check, DistWorker, percentile, printTable, printTargets, round, sleep, writeResult } from './common.js';

const STARTS = 5;
/** Idle time before RSS is read: start-up garbage has had time to settle, as on a quiet host. */
const IDLE_MS = 5_000;

export async function runIdle(): Promise<boolean> {
  console.log(`\n=== 5. Idle footprint: worker run started ${STARTS} times ===`);
  const rows: { start: number; ready_ms: number; idle_rss_mb: number; peak_rss_mb: number }[] = [];
  for (let i = 0; i < STARTS; i++) {
    const cfg = writeConfig({ withEchoPlugin: false, worker: { loglevel: BENCH_LOGLEVEL } });
    const worker = DistWorker.start(cfg.file);
    try {
      const readyMs = await worker.ready();
      await sleep(IDLE_MS);
      const mem = worker.memory();
      rows.push({ start: i + 1, ready_ms: round(readyMs, 0), idle_rss_mb: mem.rssMb, peak_rss_mb: mem.hwmMb });
    } finally {
      await worker.stop();
      await deleteDestination(cfg.destination);
    }
  }
  printTable('Starts', rows);
  const ready = rows.map((r) => r.ready_ms).sort((a, b) => a - b);
  const rss = rows.map((r) => r.idle_rss_mb).sort((a, b) => a - b);
  const figures = {
    starts: STARTS,
    idle_ms: IDLE_MS,
    time_to_ready_ms: { median: percentile(ready, 50), max: ready[ready.length - 1] },
    idle_rss_mb: { median: percentile(rss, 50), max: rss[rss.length - 1] },
    runs: rows,
  };
  const targets = [check('time to ready (median)', figures.time_to_ready_ms.median, '<=', 1000, 'ms'), check('idle RSS (median)', figures.idle_rss_mb.median, '<=', 100, 'MB')];
  printTargets(targets);
  const file = writeResult({
    name: 'idle',
    title: 'Idle footprint of worker run: RSS and time to ready',
    placement: {
      worker: `own process: node dist/src/cli.js run, built-in fn_slack only, SQLite store, loglevel ${BENCH_LOGLEVEL}`,
      broker: 'RabbitMQ on 127.0.0.1 (time to ready includes connecting and declaring the queue)',
    },
    figures,
    targets,
    notes: ['Time to ready: from spawn() of node to the "Worker ready" log line on its stderr.', `RSS: VmRSS after ${IDLE_MS / 1000} s idle.`],
  });
  console.log(`wrote ${file}`);
  return targets.every((t) => t.pass);
}
