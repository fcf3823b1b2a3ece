/**
 * Test harness for running the real `worker` CLI against the real broker: temp dirs,
 * an app.config, a spawned process, and a raw amqplib caller that collects replies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp, { type Channel, type ChannelModel } from 'amqplib';

export const AMQP_URL = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI_TS = path.join(REPO_ROOT, 'src', 'cli.ts');
export const ECHO_PLUGIN = path.join(REPO_ROOT, 'test', 'support', 'echo-plugin.ts');

export function tempDir(prefix = 'worker-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomUUID().slice(0, 8)}`;
}

export interface TestConfig {
  dir: string;
  file: string;
  destination: string;
  effectsDir: string;
}

/** Writes an app.config for a test: its own queue, store, logs and lock in a temp dir. */
export function writeConfig(opts: {
  destination?: string;
  worker?: Record<string, string | number>;
  sections?: Record<string, Record<string, string | number>>;
  withEchoPlugin?: boolean;
} = {}): TestConfig {
  const dir = tempDir();
  const destination = opts.destination ?? uniqueName('test_q');
  const effectsDir = path.join(dir, 'effects');
  const worker: Record<string, string | number> = {
    amqp_url: AMQP_URL,
    destinations: destination,
    num_workers: 10,
    store: path.join(dir, 'worker.db'),
    platform_dir: path.join(dir, 'files'),
    logdir: path.join(dir, 'logs'),
    loglevel: 'DEBUG',
    lock_file: path.join(dir, 'worker.lock'),
    shutdown_timeout: 10,
    reconnect_max_delay: 2,
    plugins: opts.withEchoPlugin === false ? '' : ECHO_PLUGIN,
    ...opts.worker,
  };
  // [fn_test] only when the echo plugin is loaded: an unknown section is a config error.
  const echoLoaded = String(worker.plugins).includes(ECHO_PLUGIN);
  const sections: Record<string, Record<string, string | number>> = {
    worker,
    ...(echoLoaded ? { fn_test: { effects_dir: effectsDir } } : {}),
    // fn_slack is built in, so its section must be valid; tests that use Slack override it.
    fn_slack: { api_token: 'xoxb-unused-in-this-test', api_url: 'http://127.0.0.1:9/api/' },
    ...opts.sections,
  };
  const text = Object.entries(sections)
    .map(([name, body]) => `[${name}]\n${Object.entries(body).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`)
    .join('\n');
  const file = path.join(dir, 'app.config');
  fs.writeFileSync(file, text, { mode: 0o600 });
  return { dir, file, destination, effectsDir };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI (from the TypeScript sources, through tsx) to completion. `input`, when
 * given, is piped to its stdin (then closed); otherwise stdin is empty.
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000, input?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI_TS, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    if (input !== undefined) child.stdin!.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`worker ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A spawned `worker run`, with its output collected. */
export class WorkerProcess {
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  static start(configFile: string, env: NodeJS.ProcessEnv = {}): WorkerProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI_TS, 'run', '--config-file', configFile], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new WorkerProcess(child);
  }

  /** Resolves when the output contains `text` (default: the ready line). */
  async waitFor(text: string | RegExp = 'Worker ready', timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const matches = () => (typeof text === 'string' ? this.output.includes(text) : text.test(this.output));
    while (!matches()) {
      if (this.child.exitCode !== null) throw new Error(`worker exited (${this.child.exitCode}) before "${text}":\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for "${text}":\n${this.output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }
}

export interface CollectedReply {
  correlationId: string;
  body: Record<string, unknown>;
}

/** A raw amqplib caller: publishes invocations and collects every reply by correlation id. */
export class Caller {
  readonly replies = new Map<string, Record<string, unknown>[]>();
  /**
   * Called with every reply as it arrives (after it is stored in `replies`). The
   * benchmarks use it to time each invocation without polling.
   */
  onReply: ((correlationId: string, body: Record<string, unknown>) => void) | undefined;
  private waiters: (() => void)[] = [];

  private constructor(
    readonly connection: ChannelModel,
    readonly channel: Channel,
    readonly replyQueue: string,
  ) {}

  static async open(): Promise<Caller> {
    const connection = await amqp.connect(AMQP_URL, { noDelay: true });
    connection.on('error', () => undefined);
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    const caller = new Caller(connection, channel, queue);
    await channel.consume(
      queue,
      (msg) => {
        if (!msg) return;
        const id = String(msg.properties.correlationId);
        const list = caller.replies.get(id) ?? [];
        const body = JSON.parse(msg.content.toString('utf8')) as Record<string, unknown>;
        list.push(body);
        caller.replies.set(id, list);
        caller.onReply?.(id, body);
        const waiters = caller.waiters;
        caller.waiters = [];
        for (const w of waiters) w();
      },
      { noAck: true },
    );
    return caller;
  }

  /** Publishes a body (object → JSON, Buffer/string as is). Returns the correlation id. */
  publish(
    destination: string,
    body: unknown,
    props: { messageId?: string; correlationId?: string; replyTo?: string | null; headers?: Record<string, unknown> } = {},
  ): string {
    const correlationId = props.correlationId ?? randomUUID();
    const content = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const options: Record<string, unknown> = {
      correlationId,
      messageId: props.messageId ?? randomUUID(),
      contentType: 'application/json',
      persistent: true,
    };
    if (props.replyTo !== null) options.replyTo = props.replyTo ?? this.replyQueue;
    if (props.headers) options.headers = props.headers;
    this.channel.sendToQueue(destination, content, options);
    return correlationId;
  }

  invocation(fn: string, inputs: Record<string, unknown>): Record<string, unknown> {
    return {
      function: { name: fn },
      inputs,
      workflow: { programmatic_name: 'test_workflow' },
      workflow_instance: { workflow_instance_id: 1 },
      principal: { name: 'tester@example.com' },
    };
  }

  finalReplies(correlationId: string): Record<string, unknown>[] {
    return (this.replies.get(correlationId) ?? []).filter((r) => r.complete === true);
  }

  /** Waits until each id has a final reply. */
  async waitForFinal(ids: string[], timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const missing = ids.filter((id) => this.finalReplies(id).length === 0);
      if (missing.length === 0) return;
      if (Date.now() > deadline) throw new Error(`${missing.length} of ${ids.length} invocations got no final reply`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }
}

/** Deletes a destination's queues and dead-letter exchange (test cleanup). */
export async function deleteDestination(destination: string, url = AMQP_URL): Promise<void> {
  const connection = await amqp.connect(url);
  connection.on('error', () => undefined);
  try {
    const ch = await connection.createChannel();
    ch.on('error', () => undefined);
    await ch.deleteQueue(destination).catch(() => undefined);
    await ch.deleteQueue(`${destination}.dead`).catch(() => undefined);
    await ch.deleteQueue(`${destination}.retry`).catch(() => undefined);
    await ch.deleteExchange(`${destination}.dlx`).catch(() => undefined);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Counts the messages waiting in a queue. */
export async function queueDepth(queue: string, url = AMQP_URL): Promise<number> {
  const connection = await amqp.connect(url);
  connection.on('error', () => undefined);
  try {
    const ch = await connection.createChannel();
    const { messageCount } = await ch.checkQueue(queue);
    return messageCount;
  } finally {
    await connection.close().catch(() => undefined);
  }
}
