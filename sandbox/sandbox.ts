/**
 * The sandbox: the real worker against an emulated Slack workspace, for trying the
 * worker with RabbitMQ but no Slack app. It starts the Slack Web API emulator (the one
 * the tests use, test/support/slack-emulator.ts) with a few people and channels, lays
 * out a local platform with an incident, writes an app.config pointing `api_url` at the
 * emulator, runs the worker in this process and serves a view of what landed, where people click.
 * The inbound half is on too: the worker holds a Socket Mode connection to the emulator,
 * so what a person types in an incident's channel becomes a note on the incident, and a
 * click on the view's page (a question's answer, a triage card's button) reaches the
 * worker as Slack's `block_actions` would.
 *
 * Nothing here is special-cased in the worker: it loads the written config like any
 * other, talks to the emulator over HTTP with @slack/web-api, and callers reach it with
 * the ordinary `worker invoke` through RabbitMQ.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { builtinPlugins } from '../src/functions/index.js';
import { deadLetterNames, retryQueueName } from '../src/core/runtime/amqp-topology.js';
import { redact } from '../src/core/redact.js';
import { Worker } from '../src/core/runtime/worker.js';
import { SlackEmulator } from '../test/support/slack-emulator.js';
import { invokeLines, type InvokeLine } from './invocations.js';
import type { SandboxOptions } from './options.js';
import { seedPlatform, seedWorkspace, type SeededWorkspace } from './seed.js';
import { ViewServer } from './view-server.js';

/** Where things are, for the banner and for tests. */
export interface SandboxInfo {
  dir: string;
  configFile: string;
  platformDir: string;
  logFile: string;
  destination: string;
  slackApiUrl: string;
  viewUrl: string;
  workspace: SeededWorkspace;
  lines: InvokeLine[];
}

/**
 * The sandbox's own inbound queue (fn_slack's `inbound_queue`), next to its destination:
 * never the shared `fn_slack.inbound` a real worker of the same broker may use.
 */
export function sandboxInboundQueue(destination: string): string {
  return `${destination}.inbound`;
}

/** An INI value: `$` is the loader's variable sign, so a literal one is doubled. */
function iniValue(v: string | number): string {
  return String(v).replace(/\$/g, '$$$$');
}

function sandboxConfig(opts: SandboxOptions, dir: string, emu: SlackEmulator): string {
  const worker = {
    amqp_url: opts.amqpUrl,
    destinations: opts.destination,
    num_workers: 5,
    store: path.join(dir, 'worker.db'),
    platform: 'local',
    platform_dir: path.join(dir, 'files'),
    logdir: path.join(dir, 'logs'),
    loglevel: 'INFO',
    lock_file: path.join(dir, 'worker.lock'),
    shutdown_timeout: 10,
  };
  const slack = {
    api_token: emu.botToken,
    api_url: emu.apiUrl,
    // Socket Mode to the emulator: messages typed in an incident's channel become notes.
    app_token: emu.appToken,
    inbound_queue: sandboxInboundQueue(opts.destination),
    username: 'SOAR',
    soar_url: 'https://soar.example.com/#incidents/{incident_id}',
    // A question nobody answers gets its default answer within a second of its deadline.
    ask_sweep_interval: 1,
  };
  const body = (o: Record<string, string | number>) =>
    Object.entries(o)
      .map(([k, v]) => `${k} = ${iniValue(v)}`)
      .join('\n');
  return [
    '; Written by the worker sandbox (npm run sandbox) for one run: Slack is the emulator at',
    '; api_url, the platform is a local folder. For a real install, `worker config -c`.',
    '[worker]',
    body(worker),
    '',
    '[fn_slack]',
    "; The emulator's bot and app tokens: they open nothing but the emulator, so they can sit in the file.",
    body(slack),
    '',
  ].join('\n');
}

/** The folder to use: a new temporary one, or the given one when it is new or empty. */
function prepareDir(opts: SandboxOptions): string {
  if (opts.dir === undefined) return fs.mkdtempSync(path.join(os.tmpdir(), 'worker-sandbox-'));
  const dir = path.resolve(opts.dir);
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
    throw new Error(
      `--dir ${dir} is not empty: the emulated workspace starts empty each run, so a previous run's store would point ` +
        'incidents at channels that no longer exist. Give a new or empty folder, or leave --dir out for a temporary one.',
    );
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  return dir;
}

export class Sandbox {
  /** What stop() left behind (a kept folder, a queue that still held messages), filled in by it. */
  readonly leftBehind: string[] = [];
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly info: SandboxInfo,
    private readonly opts: SandboxOptions,
    private readonly emu: SlackEmulator,
    private readonly view: ViewServer,
    private readonly worker: Worker,
  ) {}

  /** Starts everything; on any failure stops what was started and throws a message that says what to do. */
  static async start(opts: SandboxOptions): Promise<Sandbox> {
    const dir = prepareDir(opts);
    const cleanups: (() => Promise<void>)[] = [];
    try {
      const emu = await SlackEmulator.start({ port: opts.slackPort, teamName: 'Sandbox Workspace' });
      cleanups.push(() => emu.close());
      const workspace = await seedWorkspace(emu);
      // The event subscriptions `worker slack-manifest` declares, from now on: the seeded
      // talk is history from before the app, and raises no events.
      emu.subscribe('message.channels', 'message.groups', 'message.im', 'app_mention');
      const platformDir = path.join(dir, 'files');
      seedPlatform(platformDir);
      const configFile = path.join(dir, 'app.config');
      fs.writeFileSync(configFile, sandboxConfig(opts, dir, emu), { mode: 0o600 });

      const worker = await Worker.create({ configFile, builtins: builtinPlugins, ...(opts.log ? { log: opts.log } : {}) });
      try {
        await worker.start();
      } catch (err) {
        throw new Error(
          `The worker could not start: ${(err as Error).message}. The sandbox needs RabbitMQ ` +
            `(${redact(opts.amqpUrl)}): start it, or give its URL with --amqp-url.`,
        );
      }
      // Undone in reverse: the worker stops before its queue is deleted.
      cleanups.push(() => deleteQueuesIfEmpty(opts.amqpUrl, opts.destination, { destinationToo: opts.ownsDestination }).then(() => undefined));
      cleanups.push(() => worker.stop('sandbox stopping'));

      const view = await ViewServer.start({ emulator: emu, platformDir, port: opts.viewPort, people: workspace.people.map((p) => p.id) });
      const lines = invokeLines(worker.env.registry.plugins, { cli: opts.cli, configFile, destination: opts.destination });
      const info: SandboxInfo = {
        dir,
        configFile,
        platformDir,
        logFile: path.join(dir, 'logs', 'app.log'),
        destination: opts.destination,
        slackApiUrl: emu.apiUrl,
        viewUrl: view.url,
        workspace,
        lines,
      };
      return new Sandbox(info, opts, emu, view, worker);
    } catch (err) {
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
      if (opts.dir === undefined) fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Stops the worker (letting running invocations finish), then the view and the
   * emulator; deletes the generated queue when it is empty and the temporary folder
   * unless asked to keep it; what it kept is in {@link leftBehind}.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    try {
      await this.worker.stop('sandbox stopping');
    } finally {
      await this.view.close().catch(() => undefined);
      await this.emu.close().catch(() => undefined);
    }
    // The inbound queue is the sandbox's own even when the destination was given.
    const kept = await deleteQueuesIfEmpty(this.opts.amqpUrl, this.opts.destination, { destinationToo: this.opts.ownsDestination }).catch(
      (err: Error) => [`queues ${this.opts.destination}*: not deleted (${redact(err.message)})`],
    );
    this.leftBehind.push(...kept);
    if (this.opts.keep || this.opts.dir !== undefined) {
      this.leftBehind.push(`folder ${this.info.dir} (config, store, logs, platform files)`);
    } else {
      fs.rmSync(this.info.dir, { recursive: true, force: true });
    }
  }
}

/**
 * Deletes the sandbox's inbound queue and (unless `destinationToo` is false: a queue
 * given with --destination is the user's) its queue, each with its retry and dead-letter
 * queues and its exchange, but never a queue that still holds messages: those are kept
 * (and named) so nothing is lost silently. A retry queue that holds messages keeps the
 * queue they go back to as well.
 */
export async function deleteQueuesIfEmpty(url: string, destination: string, o: { destinationToo?: boolean } = {}): Promise<string[]> {
  const kept: string[] = [];
  const conn = await amqp.connect(url);
  try {
    const queues = o.destinationToo === false ? [sandboxInboundQueue(destination)] : [destination, sandboxInboundQueue(destination)];
    for (const queue of queues) kept.push(...(await deleteQueueFamily(conn, queue)));
  } finally {
    await conn.close().catch(() => undefined);
  }
  return kept;
}

/** Deletes one queue with its retry queue, dead-letter queue and exchange, keeping any that holds messages. */
async function deleteQueueFamily(conn: amqp.ChannelModel, destination: string): Promise<string[]> {
  const kept: string[] = [];
  const dl = deadLetterNames(destination);
  let keptAny = false;
  for (const queue of [retryQueueName(destination), destination, dl.queue]) {
    if (queue === destination && keptAny) continue;
    // checkQueue on a missing queue closes the channel, so each check gets its own.
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    try {
      const { messageCount } = await ch.checkQueue(queue);
      if (messageCount > 0) {
        kept.push(`queue ${queue} with ${messageCount} message(s)`);
        keptAny = true;
      } else {
        await ch.deleteQueue(queue);
      }
      await ch.close();
    } catch {
      // already gone
    }
  }
  if (!keptAny) {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    await ch.deleteExchange(dl.exchange).catch(() => undefined);
    await ch.close().catch(() => undefined);
  }
  return kept;
}
