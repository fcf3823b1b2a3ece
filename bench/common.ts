/**
 * Shared pieces of the benchmarks: percentiles, table printing, result files, the
 * spawned `worker run` under test (the built CLI in dist/, as users run it), RSS
 * readings from /proc, and a closed-loop load generator on the harness's Caller.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { REPO_ROOT, type Caller } from '../test/support/harness.js';

export const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results');
export const DIST_CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli.js');

/** Every benchmark runs the worker at this level (INFO: what production runs). */
export const BENCH_LOGLEVEL = 'INFO';

// ---------------------------------------------------------------------------------------------------------------------
// Statistics and output
// ---------------------------------------------------------------------------------------------------------------------

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface LatencySummary {
  count: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

export function summarize(latenciesMs: number[]): LatencySummary {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 100) / 100;
  return { count: sorted.length, p50_ms: r(percentile(sorted, 50)), p99_ms: r(percentile(sorted, 99)), max_ms: r(sorted[sorted.length - 1] ?? NaN) };
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Prints rows as an aligned text table. */
export function printTable(title: string, rows: Record<string, string | number | boolean | null>[]): void {
  console.log(`\n${title}`);
  if (rows.length === 0) return;
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) => (v === undefined || v === null ? '' : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join(' | ');
  console.log(line(cols));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const r of rows) console.log(line(cols.map((c) => cell(r[c]))));
}

export interface TargetCheck {
  name: string;
  value: number;
  op: '>=' | '<=';
  limit: number;
  unit: string;
  pass: boolean;
}

export function check(name: string, value: number, op: '>=' | '<=', limit: number, unit = ''): TargetCheck {
  const pass = Number.isFinite(value) && (op === '>=' ? value >= limit : value <= limit);
  return { name, value: round(value, 3), op, limit, unit, pass };
}

export function printTargets(targets: TargetCheck[]): void {
  printTable(
    'Targets',
    targets.map((t) => ({ target: t.name, measured: `${t.value}${t.unit ? ` ${t.unit}` : ''}`, wanted: `${t.op} ${t.limit}${t.unit ? ` ${t.unit}` : ''}`, result: t.pass ? 'PASS' : 'MISS' })),
  );
}

function gitCommit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    // Earlier results being rewritten by this very run do not count as changes to the code measured.
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ':!bench/results'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    }).trim();
    return dirty ? `${sha} (with uncommitted changes)` : sha;
  } catch {
    return 'unknown';
  }
}

export function machineInfo(): Record<string, unknown> {
  return {
    host: os.hostname(),
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    memory_mb: Math.round(os.totalmem() / 1048576),
    load_average_at_end: os.loadavg().map((x) => round(x)),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

export interface BenchResult {
  name: string;
  title: string;
  /** Where each part ran (which process), so a reader can judge CPU sharing. */
  placement: Record<string, string>;
  figures: Record<string, unknown>;
  targets: TargetCheck[];
  notes: string[];
}

/** Writes bench/results/<name>.json with the run's context. */
export function writeResult(result: BenchResult): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${result.name}.json`);
  const doc = {
    benchmark: result.name,
    title: result.title,
    date: new Date().toISOString(),
    node: process.version,
    git_commit: gitCommit(),
    machine: machineInfo(),
    worker_loglevel: BENCH_LOGLEVEL,
    placement: result.placement,
    figures: result.figures,
    targets: result.targets,
    all_targets_met: result.targets.every((t) => t.pass),
    notes: result.notes,
  };
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(doc, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
  return file;
}

// ---------------------------------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------------------------------

export interface ProcMemory {
  rssMb: number;
  hwmMb: number;
}

/** VmRSS (now) and VmHWM (peak since start) of a process, in MB, from /proc/<pid>/status. */
export function procMemory(pid: number): ProcMemory {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: round(kb('VmRSS') / 1024, 1), hwmMb: round(kb('VmHWM') / 1024, 1) };
}

/** Linux reports /proc CPU times in USER_HZ ticks, 100 a second on every architecture Node runs on. */
const USER_HZ = 100;

/**
 * CPU time (user + system) a process has used so far, in ms, from /proc/<pid>/stat.
 * Unlike throughput, CPU time per invocation hardly moves when other work shares the
 * machine, so it says what a change costs or saves even on a loaded host.
 */
export function procCpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: count from the ')' that ends it, where
  // field 3 (state) starts; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
}

/**
 * `node dist/src/cli.js run --config-file FILE`: the built CLI under plain Node. Output
 * is drained (only the tail is kept, for error messages) so a long run does not grow
 * the benchmark's own memory.
 */
export class DistWorker {
  private tail = '';
  private partial = '';
  private readonly lineWatchers = new Set<(line: string) => void>();
  private readyAt: number | undefined;
  readonly startedAt: number;
  readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess, startedAt: number) {
    this.startedAt = startedAt;
    const take = (d: Buffer) => {
      const text = d.toString();
      const lines = (this.partial + text).split('\n');
      this.partial = lines.pop()!;
      for (const line of lines) for (const w of this.lineWatchers) w(line);
      if (this.readyAt === undefined && (this.tail + text).includes('Worker ready')) this.readyAt = performance.now();
      this.tail = (this.tail + text).slice(-20_000);
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  static start(configFile: string, nodeArgs: string[] = []): DistWorker {
    if (!fs.existsSync(DIST_CLI)) throw new Error(`${DIST_CLI} is missing: run \`npm run build\` (npm run bench does)`);
    const startedAt = performance.now();
    const child = spawn(process.execPath, [...nodeArgs, DIST_CLI, 'run', '--config-file', configFile], {
      cwd: REPO_ROOT,
      // A clean environment for the worker: no tsx loader inherited through NODE_OPTIONS.
      env: { ...process.env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new DistWorker(child, startedAt);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get output(): string {
    return this.tail;
  }

  /** Resolves with the ms from spawn to the "Worker ready" log line. */
  async ready(timeoutMs = 30_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.readyAt === undefined) {
      if (this.child.exitCode !== null) throw new Error(`worker exited (${this.child.exitCode}) before it was ready:\n${this.tail}`);
      if (Date.now() > deadline) throw new Error(`worker not ready within ${timeoutMs} ms:\n${this.tail}`);
      await sleep(5);
    }
    return this.readyAt - this.startedAt;
  }

  memory(): ProcMemory {
    return procMemory(this.pid);
  }

  /**
   * Resolves with the first log line (from now on) that matches. Used where a result
   * must survive the caller's broker connection being closed by other work.
   */
  nextLine(re: RegExp): { promise: Promise<RegExpExecArray>; cancel: () => void } {
    let watcher!: (line: string) => void;
    const promise = new Promise<RegExpExecArray>((resolve) => {
      watcher = (line) => {
        const m = re.exec(line);
        if (m) {
          this.lineWatchers.delete(watcher);
          resolve(m);
        }
      };
      this.lineWatchers.add(watcher);
    });
    return { promise, cancel: () => this.lineWatchers.delete(watcher) };
  }

  /** Rejects if the worker exits before stop() (a crash must not leave the benchmark waiting for replies). */
  get died(): Promise<never> {
    const p = this.exited.then((code) => {
      if (this.stopping) return new Promise<never>(() => undefined);
      throw new Error(`the worker exited (code ${code}) during the run:\n${this.tail.slice(-3000)}`);
    });
    p.catch(() => undefined);
    return p;
  }

  private stopping = false;

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * A helper script of the benchmarks (`bench/NAME.ts`, e.g. the bare echo responder or
 * the plain-consumer baseline) in a process of its own under tsx, so that it does not
 * share a CPU queue with the caller. Ready once it sends its first IPC message.
 */
export class BenchChild {
  private constructor(
    private readonly child: ChildProcess,
    private readonly exited: Promise<unknown>,
  ) {}

  static async start(script: string, args: string[]): Promise<BenchChild> {
    const child = fork(path.join(REPO_ROOT, 'bench', script), args, {
      cwd: REPO_ROOT,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise((r) => child.once('exit', r));
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`bench/${script} exited (${code}) before it was ready`)));
    });
    return new BenchChild(child, exited);
  }

  get pid(): number {
    return this.child.pid!;
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    await this.exited;
  }
}

/** Samples a process's VmRSS every `everyMs` and keeps the maximum (VmHWM is read too). */
export class RssSampler {
  maxRssMb = 0;
  private timer: NodeJS.Timeout;
  constructor(pid: number, everyMs = 50) {
    this.timer = setInterval(() => {
      try {
        this.maxRssMb = Math.max(this.maxRssMb, procMemory(pid).rssMb);
      } catch {
        // the process has exited
      }
    }, everyMs);
  }
  stop(): number {
    clearInterval(this.timer);
    return this.maxRssMb;
  }
}

/** Thrown when the caller's broker connection drops mid-benchmark (another process restarted RabbitMQ). */
export class BrokerLostError extends Error {}

/**
 * Rejects when the caller's connection to the broker closes: the replies of that
 * connection's reply queue are gone, so waiting longer would hang the benchmark.
 */
export function brokerLost(caller: Caller): { promise: Promise<never>; cancel: () => void } {
  let onClose!: () => void;
  const promise = new Promise<never>((_, reject) => {
    onClose = () => reject(new BrokerLostError('the broker connection closed during the run (RabbitMQ restarted or the connection was closed by another process)'));
    caller.connection.once('close', onClose);
  });
  promise.catch(() => undefined);
  return { promise, cancel: () => caller.connection.off('close', onClose) };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * test/support/echo-plugin.ts as JavaScript next to the built sources
 * (dist/test/support/echo-plugin.js), so that the worker under plain Node can load it
 * and its `../../src/core/*.js` imports resolve to the same dist modules the CLI uses.
 */
export function builtEchoPlugin(): string {
  const source = path.join(REPO_ROOT, 'test', 'support', 'echo-plugin.ts');
  const out = path.join(REPO_ROOT, 'dist', 'test', 'support', 'echo-plugin.js');
  const js = ts.transpileModule(fs.readFileSync(source, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: source,
  }).outputText;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, js);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// Load generation
// ---------------------------------------------------------------------------------------------------------------------

export interface LoadResult {
  /** Invocations timed (after the warm-up). */
  count: number;
  seconds: number;
  perSecond: number;
  latency: LatencySummary;
  /** Final replies that were errors (message_type 1) or results with success false. */
  failures: number;
  firstFailure?: Record<string, unknown>;
  /** CPU time (user + system) of the process under test per timed invocation, when its pid was given. */
  cpuMsPerInvocation?: number;
}

/**
 * Closed loop: keeps `inFlight` invocations outstanding on `destination` until `total`
 * have a final reply. The first `warmup` are not timed. Latency is publish → final reply.
 */
export async function closedLoop(
  caller: Caller,
  destination: string,
  body: (i: number) => unknown,
  opts: { total: number; inFlight: number; warmup: number; timeoutMs?: number; failOn?: Promise<never>; cpuOfPid?: number },
): Promise<LoadResult> {
  const cpu = () => (opts.cpuOfPid === undefined ? NaN : procCpuMs(opts.cpuOfPid));
  let cpuFrom = NaN;
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let published = 0;
  let done = 0;
  let failures = 0;
  let firstFailure: Record<string, unknown> | undefined;
  let timedFrom = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));

  const publishOne = () => {
    const i = published++;
    const id = caller.publish(destination, body(i));
    sentAt.set(id, performance.now());
  };
  caller.onReply = (id, reply) => {
    if (reply.complete !== true) return;
    const t0 = sentAt.get(id);
    if (t0 === undefined) return;
    sentAt.delete(id);
    caller.replies.delete(id);
    const now = performance.now();
    done++;
    const ok = reply.message_type === 0 && (reply.results as { success?: boolean } | undefined)?.success !== false;
    if (!ok) {
      failures++;
      firstFailure ??= reply;
    }
    if (done === opts.warmup) {
      timedFrom = now;
      cpuFrom = cpu();
    }
    if (done > opts.warmup) latencies.push(now - t0);
    if (published < opts.total) publishOne();
    if (done === opts.total) finish();
  };
  const started = performance.now();
  if (opts.warmup === 0) cpuFrom = cpu();
  for (let i = 0; i < Math.min(opts.inFlight, opts.total); i++) publishOne();
  const timeout = opts.timeoutMs ?? 600_000;
  let timer: NodeJS.Timeout | undefined;
  const lost = brokerLost(caller);
  await Promise.race([
    finished,
    lost.promise,
    ...(opts.failOn ? [opts.failOn] : []),
    new Promise<void>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`only ${done} of ${opts.total} invocations finished within ${timeout} ms`)), timeout);
    }),
  ]).finally(() => {
    clearTimeout(timer);
    lost.cancel();
    caller.onReply = undefined;
  });
  const end = performance.now();
  const cpuTo = cpu();
  const from = opts.warmup > 0 ? timedFrom : started;
  const count = opts.total - opts.warmup;
  const seconds = (end - from) / 1000;
  return {
    count,
    seconds: round(seconds, 3),
    perSecond: round(count / seconds, 1),
    latency: summarize(latencies),
    failures,
    ...(firstFailure ? { firstFailure } : {}),
    ...(opts.cpuOfPid === undefined ? {} : { cpuMsPerInvocation: round((cpuTo - cpuFrom) / count, 3) }),
  };
}

/**
 * Extra node flags for the worker, for diagnosis only: BENCH_WORKER_NODE_ARGS is added
 * as is (e.g. "--max-old-space-size=64"); with BENCH_CPU_PROF=1 each worker writes a V8
 * CPU profile (open in Chrome DevTools) to bench/results/profiles/<name>/ when it exits.
 */
export function workerNodeArgs(name: string): string[] {
  const extra = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  if (!process.env.BENCH_CPU_PROF) return extra;
  return [...extra, '--cpu-prof', `--cpu-prof-dir=${path.join(RESULTS_DIR, 'profiles', name)}`];
}
