/**
 * `npm run bench [-- NAME …]`: builds, then runs every benchmark (or the named ones) in
 * one process, one after the other, printing a table each and writing
 * bench/results/<name>.json. Exit code 1 when a target was missed or a benchmark failed.
 */
import { deleteDestination, uniqueName } from '../test/support/harness.js';
import { BrokerLostError, sleep } from './common.js';
import { runOverhead } from './overhead.js';
import { runPostMessage } from './post-message.js';
import { runExport } from './export.js';
import { runRateLimits } from './rate-limits.js';
import { runIdle } from './idle.js';
import { runInbound } from './inbound.js';

const BENCHMARKS: Record<string, () => Promise<boolean>> = {
  overhead: runOverhead,
  post: runPostMessage,
  limits: runRateLimits,
  export: runExport,
  idle: runIdle,
  inbound: runInbound,
};

/** Waits (up to 3 minutes) until RabbitMQ accepts connections again. */
async function waitForBroker(): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    await sleep(5_000);
    try {
      await deleteDestination(uniqueName('bench_probe'));
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
  }
}

const names = process.argv.slice(2);
const unknown = names.filter((n) => !(n in BENCHMARKS));
if (unknown.length) {
  console.error(`Unknown benchmark(s): ${unknown.join(', ')}. Known: ${Object.keys(BENCHMARKS).join(', ')}`);
  process.exit(2);
}
const selected = names.length ? names : Object.keys(BENCHMARKS);
const summary: { benchmark: string; result: string }[] = [];
for (const name of selected) {
  try {
    let met: boolean;
    try {
      met = await BENCHMARKS[name]!();
    } catch (err) {
      // The broker is shared with other work on this machine; one lost connection is
      // worth one more try rather than a missing result.
      const refused = (err as { code?: string }).code === 'ECONNREFUSED';
      if (!(err instanceof BrokerLostError) && !refused) throw err;
      console.error(`benchmark ${name}: ${(err as Error).message}; running it again once the broker answers`);
      await waitForBroker();
      met = await BENCHMARKS[name]!();
    }
    summary.push({ benchmark: name, result: met ? 'all targets met' : 'target(s) missed' });
  } catch (err) {
    console.error(`benchmark ${name} failed: ${(err as Error).stack ?? err}`);
    summary.push({ benchmark: name, result: `error: ${(err as Error).message.split('\n')[0]}` });
  }
}
console.log('\nSummary');
for (const s of summary) console.log(`  ${s.benchmark.padEnd(12)} ${s.result}`);
process.exitCode = summary.every((s) => s.result === 'all targets met') ? 0 : 1;
