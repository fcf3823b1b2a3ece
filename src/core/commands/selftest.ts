/**
 * `worker selftest`: checks an install in order — config, store, broker, then each
 * plugin's own selftest — and reports each in resilient-circuits' shape.
 */
import type { ChannelModel } from 'amqplib';
import { EXIT } from '../exit-codes.js';
import { silentLogger, type Logger } from '../logging.js';
import type { Plugin, PluginQueue } from '../runtime/plugin.js';
import { redact } from '../redact.js';
import { declareDestination, openConnection } from '../runtime/amqp-transport.js';
import { openStore } from '../store/index.js';
import { schemaBehind, type Store } from '../store/store.js';
import type { Platform } from '../../platforms/platform.js';
import { createPlatform, loadEnvironment, type WorkerEnvironment } from '../runtime/worker.js';
import { destinationList, type WorkerSection } from '../worker-config.js';
import { BrokerTarget, pluginQueueItems } from './broker-target.js';

/** The exit codes `worker selftest` uses, from the one table (README: Troubleshooting). */
export const SELFTEST_EXIT = {
  ok: EXIT.ok,
  config: EXIT.config,
  platform: EXIT.platform,
  broker: EXIT.broker,
  store: EXIT.store,
  plugin: EXIT.plugin,
} as const;

export interface CheckReport {
  name: string;
  state: 'success' | 'failure';
  detail: string;
  seconds: number;
}

export interface SelftestReport {
  checks: CheckReport[];
  exitCode: number;
}

async function timed(name: string, fn: () => Promise<string>): Promise<CheckReport> {
  const started = Date.now();
  try {
    const detail = await fn();
    return { name, state: 'success', detail, seconds: (Date.now() - started) / 1000 };
  } catch (err) {
    return { name, state: 'failure', detail: redact((err as Error).message), seconds: (Date.now() - started) / 1000 };
  }
}

/** Formats one check as resilient-circuits prints a selftest result. */
export function formatCheck(c: CheckReport): string {
  return `${c.name}: ${c.state}\n  ${c.detail.split('\n').join('\n  ')}\n  Elapsed time: ${c.seconds.toFixed(3)} seconds\n`;
}

export async function runSelftest(
  configFile: string | undefined,
  builtins: Plugin<any, any>[],
  packages: string[],
  print: (text: string) => void,
  log: Logger = silentLogger(),
): Promise<SelftestReport> {
  const checks: CheckReport[] = [];
  const report = (c: CheckReport) => {
    checks.push(c);
    print(formatCheck(c));
  };
  const done = (exitCode: number): SelftestReport => {
    const failed = checks.filter((c) => c.state === 'failure').map((c) => c.name);
    print(failed.length ? `selftest: failure (${failed.join(', ')})\n` : `selftest: success (${checks.length} checks)\n`);
    return { checks, exitCode };
  };

  let env: WorkerEnvironment | undefined;
  let selected: Plugin<any, any>[] = [];
  let platform: Platform | undefined;
  const configCheck = await timed('config', async () => {
    env = await loadEnvironment(configFile, builtins, log, false);
    selected = env.registry.only(packages);
    platform = createPlatform(env.section, env.config);
    return `${env.config.file} is valid (${env.registry.plugins.map((p) => p.packageName).join(', ')})`;
  });
  report(configCheck);
  if (configCheck.state === 'failure' || !env || !platform) return done(SELFTEST_EXIT.config);
  const { section } = env;

  let store: Store | undefined;
  try {
    const storeCheck = await timed('store', async () => {
      store = await openStore(section.store, { tables: env!.registry.tables() });
      const status = await store.schemaStatus();
      const behind = schemaBehind(status);
      if (behind.length > 0) {
        throw new Error(`${store.kind} ${store.location}: ${behind.join('; ')}; run \`worker customize\` (or start \`worker run\`, which migrates)`);
      }
      return `${store.kind} ${store.location}: reachable, schema version ${status.current}`;
    });
    report(storeCheck);
    if (storeCheck.state === 'failure') return done(SELFTEST_EXIT.store);

    const brokerCheck = await timed('broker', async () => {
      const connection = await brokerConnection(section, log);
      try {
        const channel = await connection.createChannel();
        channel.on('error', () => undefined);
        const destinations = destinationList(section);
        const topology = { queueType: section.queue_type, maxAttempts: section.max_attempts };
        for (const d of destinations) await declareDestination(channel, d, topology);
        return `${redact(section.amqp_url)}: connected; declared ${destinations.join(', ')} with their dead-letter and retry queues (${section.queue_type} queues)`;
      } finally {
        await connection.close().catch(() => undefined);
      }
    });
    report(brokerCheck);
    if (brokerCheck.state === 'failure') return done(SELFTEST_EXIT.broker);

    // The SOAR platform is a remote service with its own credentials: check it like the
    // broker. (The local platform's folder is checked by the functions that use it.)
    if (platform.kind === 'soar') {
      const platformCheck = await timed('platform', () => platform!.check());
      report(platformCheck);
      if (platformCheck.state === 'failure') return done(SELFTEST_EXIT.platform);
    }

    // The first failed check's code, in the order printed: a package's own check (7), then
    // its queues (4). Each package is checked whatever the one before it answered.
    let exitCode: number = SELFTEST_EXIT.ok;
    const failWith = (check: CheckReport, code: number) => {
      if (check.state === 'failure' && exitCode === SELFTEST_EXIT.ok) exitCode = code;
    };
    for (const plugin of selected) {
      const config = env.pluginConfigs.get(plugin.packageName) ?? {};
      const check = await timed(plugin.packageName, async () => {
        const ctx = { config, log, store: store!, platform: platform! };
        const state = await plugin.setup(ctx);
        try {
          const outcome = await plugin.selftest(state, ctx);
          if (outcome.state === 'failure') throw new Error(outcome.reason ?? 'failed');
          return outcome.reason ?? 'ok';
        } finally {
          await plugin.teardown?.(state).catch(() => undefined);
        }
      });
      report(check);
      failWith(check, SELFTEST_EXIT.plugin);
      const queues = plugin.queues?.(config) ?? [];
      if (queues.length > 0) {
        const queuesCheck = await timed(`${plugin.packageName} queues`, () => checkPluginQueues(plugin.packageName, queues, section, log));
        report(queuesCheck);
        failWith(queuesCheck, SELFTEST_EXIT.broker);
      }
    }
    return done(exitCode);
  } finally {
    await (store as Store | undefined)?.close().catch(() => undefined);
  }
}

/** A connection of its own for a broker check, named as selftest's. */
function brokerConnection(section: WorkerSection, log: Logger): Promise<ChannelModel> {
  const tls = { caFile: section.ca_file, certFile: section.cert_file, keyFile: section.key_file };
  return openConnection(section.amqp_url, tls, log, section.heartbeat, 'selftest');
}

/**
 * Whether the queues a package's listeners feed (Plugin.queues: fn_slack's inbound queue)
 * are on the broker as `worker run` declares them: the queue with its arguments (single
 * active consumer, dead-letter exchange, queue type), its dead-letter exchange and queue and
 * its retry queue. It only looks, as `worker customize --dry-run` does (the same plan):
 * declaring them is customize's job, or `worker run`'s at start.
 */
async function checkPluginQueues(packageName: string, queues: PluginQueue[], section: WorkerSection, log: Logger): Promise<string> {
  const target = new BrokerTarget(await brokerConnection(section, log), { queueType: section.queue_type, maxAttempts: section.max_attempts });
  const fix = `run \`worker customize -l ${packageName}\` (it declares them as \`worker run\` does)`;
  try {
    const found: string[] = [];
    for (const item of pluginQueueItems(packageName, queues)) {
      // A queue that exists with other arguments throws, naming them and how to migrate.
      const plan = await target.plan(item);
      if (plan.action !== 'unchanged') {
        const missing = plan.action === 'create' ? plan.detail : plan.detail.replace(/^add /, '');
        throw new Error(`Not on the broker: ${missing}; ${fix}`);
      }
      const single = item.kind === 'message_destination' && item.definition.worker_queue?.single_active_consumer;
      found.push(`${item.name} (${single ? 'single active consumer, ' : ''}dead-letter exchange ${item.name}.dlx)`);
    }
    return `${found.join(', ')} with dead-letter and retry queues: on the broker as \`worker run\` declares them (${section.queue_type} queues)`;
  } finally {
    await target.close();
  }
}
