/**
 * Benchmark 4, archive export: slack_archive_channel on a channel of 100,000 messages
 * with 10,000 threads (3 replies each), and the same export at 10,000 messages / 1,000
 * threads, each in a fresh `worker run`: time and the worker's peak RSS. The export is
 * streamed to a file, so the peak should not depend on the channel's size.
 *
 * Each size runs twice: with the node flags systemd/worker.service gives the worker (its
 * `Environment=NODE_OPTIONS=`, read from the unit: what is installed) and with bare
 * `node` (no flags: the CLI then sizes the heap itself, src/heap-flags.ts). The targets
 * are checked on both.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Caller, deleteDestination, REPO_ROOT, writeConfig } from '../test/support/harness.js';
import { BENCH_LOGLEVEL, check, DistWorker, printTable, printTargets, round, RssSampler, workerNodeArgs, writeResult } from './common.js';
import { RemoteEmulator } from './emulator.js';

const UNIT_FILE = path.join(REPO_ROOT, 'systemd', 'worker.service');

/** The node flags in the systemd unit's `Environment=NODE_OPTIONS=…` (none if it sets none). */
function unitNodeOptions(): string[] {
  const m = /^Environment="?NODE_OPTIONS=([^"\n]*)"?\s*$/m.exec(fs.readFileSync(UNIT_FILE, 'utf8'));
  return m ? m[1]!.split(/\s+/).filter(Boolean) : [];
}

/** Peak RSS the export may reach (the target). */
const MAX_PEAK_MB = 150;
/**
 * How much more the large export may peak than the small one and still count as "size
 * does not change the RSS": 10 % of the target, which is above run-to-run GC noise and
 * far below what holding 10× the messages in memory would add.
 */
const SIZE_TOLERANCE_MB = 15;

const SIZES = [
  { messages: 10_000, threads: 1_000 },
  { messages: 100_000, threads: 10_000 },
];

interface ExportRun {
  /** 'systemd unit' (the unit's NODE_OPTIONS) or 'bare node'. */
  mode: string;
  node_args: string[];
  messages: number;
  threads: number;
  replies: number;
  seconds: number;
  rss_at_ready_mb: number;
  peak_rss_sampled_mb: number;
  peak_rss_vmhwm_mb: number;
  export_bytes: number;
  slack_calls: number;
  failures: number;
}

async function exportOnce(
  emu: RemoteEmulator,
  size: { messages: number; threads: number },
  index: number,
  mode: { name: string; nodeArgs: string[] },
): Promise<ExportRun> {
  const channel = await emu.seedChannel({ name: `bench-export-${index}-${size.messages}` });
  await emu.seedMessages(channel.id, size.messages, { threads: size.threads, repliesPerThread: 3, text: 'Analyst note on the incident' });
  await emu.resetCalls();
  const cfg = writeConfig({
    withEchoPlugin: false,
    worker: { loglevel: BENCH_LOGLEVEL },
    // rate_limits = off: this benchmark measures the export's own time and memory. With
    // the default pacing, conversations.history and conversations.replies go at Slack's
    // Tier 3 (50 per minute), so the 10,500 calls of the large export would take about
    // 3.5 hours of waiting and say nothing about memory.
    sections: { fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl, rate_limits: 'off' } },
  });
  const incidentId = 7000 + index;
  fs.mkdirSync(path.join(cfg.dir, 'files', 'incidents', String(incidentId)), { recursive: true });
  const nodeArgs = [...mode.nodeArgs, ...workerNodeArgs(`export-${size.messages}-${index}`)];
  const worker = DistWorker.start(cfg.file, nodeArgs);
  const caller = await Caller.open();
  try {
    await worker.ready();
    const atReady = worker.memory();
    const sampler = new RssSampler(worker.pid, 20);
    // The worker logs each outcome with its duration; waiting for that line (not only
    // for the reply) keeps the figure when other work on this machine closes the
    // caller's broker connection mid-export (the worker reconnects, the reply is lost).
    const logged = worker.nextLine(/Completed slack_archive_channel in \d+ ms|slack_archive_channel failed:/);
    const t0 = performance.now();
    caller.publish(cfg.destination, caller.invocation('slack_archive_channel', {
        incident_id: incidentId,
        slack_channel_id: channel.id,
        // The seeded channel was never associated with the incident (no
        // slack_post_message created it), which the function refuses unless told.
        slack_archive_unassociated: true,
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    const line = await Promise.race([
      logged.promise,
      worker.died,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('export not finished within 15 min')), 900_000))),
    ]).finally(() => {
      clearTimeout(timer);
      logged.cancel();
    });
    const seconds = (performance.now() - t0) / 1000;
    const sampled = sampler.stop();
    const mem = worker.memory();
    const failed = !/^.*Completed slack_archive_channel/.test(line[0]);
    if (failed) console.error(`export failed: ${line.input}`);
    const exported = findExport(path.join(cfg.dir, 'files'));
    const stats = await emu.stats();
    return {
      mode: mode.name,
      node_args: nodeArgs,
      messages: size.messages,
      threads: size.threads,
      replies: size.threads * 3,
      seconds: round(seconds, 2),
      rss_at_ready_mb: atReady.rssMb,
      peak_rss_sampled_mb: Math.max(sampled, mem.rssMb),
      peak_rss_vmhwm_mb: mem.hwmMb,
      export_bytes: exported ? fs.statSync(exported).size : 0,
      slack_calls: stats.totalCalls,
      failures: failed ? 1 : 0,
    };
  } finally {
    await caller.close();
    await worker.stop();
    await deleteDestination(cfg.destination);
  }
}

function findExport(dir: string): string | undefined {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.startsWith('slack_msg_export_channel_')) return path.join(entry.parentPath, entry.name);
  }
  return undefined;
}

export async function runExport(): Promise<boolean> {
  console.log('\n=== 4. Archive export: slack_archive_channel, 10,000 and 100,000 messages (fresh worker each) ===');
  const unitArgs = unitNodeOptions();
  const modes = [
    { name: 'systemd unit', nodeArgs: unitArgs },
    { name: 'bare node', nodeArgs: [] },
  ];
  const emu = await RemoteEmulator.start();
  const runs: ExportRun[] = [];
  try {
    let index = 0;
    for (const size of SIZES) for (const mode of modes) runs.push(await exportOnce(emu, size, index++, mode));
  } finally {
    await emu.close();
  }
  printTable(
    'Export time and worker memory',
    runs.map((r) => ({
      worker: r.mode === 'bare node' ? 'bare node' : `unit (${unitArgs.join(' ') || 'no flags'})`,
      messages: r.messages,
      threads: r.threads,
      'time s': r.seconds,
      'msgs/s': round((r.messages + r.replies) / r.seconds, 0),
      'RSS at ready MB': r.rss_at_ready_mb,
      'peak RSS MB (VmHWM)': r.peak_rss_vmhwm_mb,
      'export MB': round(r.export_bytes / 1048576, 1),
      'slack calls': r.slack_calls,
      failures: r.failures,
    })),
  );
  const find = (mode: string, messages: number): ExportRun => runs.find((r) => r.mode === mode && r.messages === messages)!;
  const small = find('systemd unit', SIZES[0]!.messages);
  const large = find('systemd unit', SIZES[1]!.messages);
  const bareSmall = find('bare node', SIZES[0]!.messages);
  const bareLarge = find('bare node', SIZES[1]!.messages);
  // Both ways of starting the worker must stay bounded: the unit's NODE_OPTIONS, and
  // plain `node dist/src/cli.js run`, where the CLI sizes the heap itself (src/heap-flags.ts).
  const targets = [
    check('peak RSS, 100,000 messages (unit flags)', large.peak_rss_vmhwm_mb, '<=', MAX_PEAK_MB, 'MB'),
    check('peak RSS growth 10,000 → 100,000 (unit flags)', large.peak_rss_vmhwm_mb - small.peak_rss_vmhwm_mb, '<=', SIZE_TOLERANCE_MB, 'MB'),
    check('peak RSS, 100,000 messages (bare node)', bareLarge.peak_rss_vmhwm_mb, '<=', MAX_PEAK_MB, 'MB'),
    check('peak RSS growth 10,000 → 100,000 (bare node)', bareLarge.peak_rss_vmhwm_mb - bareSmall.peak_rss_vmhwm_mb, '<=', SIZE_TOLERANCE_MB, 'MB'),
    check('failures', runs.reduce((n, r) => n + r.failures, 0), '<=', 0),
  ];
  printTargets(targets);
  const file = writeResult({
    name: 'export',
    title: 'Archive export (slack_archive_channel): time and peak RSS at 10,000 and 100,000 messages',
    placement: {
      caller: 'benchmark process (node + tsx)',
      worker: `own process per size and mode: node [flags] dist/src/cli.js run, loglevel ${BENCH_LOGLEVEL}, rate_limits = off; peak RSS = VmHWM from /proc/<pid>/status (VmRSS sampled every 20 ms as a check)`,
      slack_emulator: 'own process (node + tsx, bench/emulator-host.ts) holding the seeded channels',
      broker: 'RabbitMQ on 127.0.0.1',
    },
    figures: { runs, unit_node_options: unitArgs, size_tolerance_mb: SIZE_TOLERANCE_MB },
    targets,
    notes: [
      '3 replies per thread; the export is written to the local platform (files/incidents/<id>/…).',
      'VmHWM covers the whole life of the worker process (start-up included).',
      "Targets are checked on both modes: systemd/worker.service's NODE_OPTIONS, and bare node (no flags; the CLI sets --optimize-for-size itself, src/heap-flags.ts).",
    ],
  });
  console.log(`wrote ${file}`);
  return targets.every((t) => t.pass);
}
