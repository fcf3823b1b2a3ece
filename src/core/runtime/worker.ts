/**
 * The Worker: the one orchestrator. It wires config, logging, the lock, plugins, the
 * store, the platform, the runner and the transport together, and owns their lifecycle
 * including graceful shutdown.
 *
 * Lifecycle ({@link WorkerState}): created → starting → running → draining → stopped,
 * or → failed when `start` fails. Only a running worker is ready (`/readyz`); `stop`
 * drains a running worker and, in any other state, only releases what is open.
 */
import path from 'node:path';
import fs from 'node:fs';
import { loadConfigFile, validateSection, type LoadedConfig } from '../config.js';
import { ConfigError, ShutdownError, ShutdownTimeoutError, WorkerError, type StoreUnusableError } from './errors.js';
import { createLogger, type Logger } from '../logging.js';
import { acquireLock, type LockHandle } from '../lock.js';
import type { ListenerContext, Plugin, PluginListener, PluginQueue, PluginSetupContext } from './plugin.js';
import { PluginRegistry } from './registry.js';
import { Runner, type InvocationOutcome } from './runner.js';
import { AmqpTransport } from './amqp-transport.js';
import { LateBoundPublish, LedgerDeferredReplies } from './deferred.js';
import type { Transport } from './transport.js';
import { HealthServer, type ReadinessCheck } from '../health-server.js';
import { NO_PLUGIN_METRICS, WorkerMetrics } from '../metrics.js';
import { isPostgresLocation, openStore } from '../store/index.js';
import { reportUnusable } from '../store/unusable.js';
import type { Store } from '../store/store.js';
import type { Platform } from '../../platforms/platform.js';
import { LocalPlatform } from '../../platforms/local/local-platform.js';
import { readSoarSection, SOAR_CONFIG_SECTION } from '../../platforms/soar/soar-config.js';
import { clientOptionsFromSection, SoarClient } from '../../platforms/soar/soar-client.js';
import { SoarPlatform } from '../../platforms/soar/soar-platform.js';
import { destinationList, metricsHostWarning, pluginDestinations, readWorkerSection, type WorkerSection } from '../worker-config.js';

export interface WorkerCreateOptions {
  /** `--config-file`; else APP_CONFIG_FILE; else the default path. */
  configFile?: string | undefined;
  builtins: Plugin<any, any>[];
  /** Replaces the configured logger (tests). */
  log?: Logger;
  /** Called for every finished invocation (metrics). */
  onOutcome?: (outcome: InvocationOutcome) => void;
}

/** Everything built from the config that the commands share (run, selftest, customize). */
export interface WorkerEnvironment {
  config: LoadedConfig;
  section: WorkerSection;
  log: Logger;
  registry: PluginRegistry;
  /** Each plugin's validated config section, by package name (empty when not validated). */
  pluginConfigs: Map<string, Record<string, unknown>>;
}

export interface LoadEnvironmentOptions {
  /**
   * Validate each plugin's config section (default true). Commands that never set a
   * plugin up (`invoke`, `functions`, `customize`) pass false, so that they neither need
   * the plugin's secrets in the environment nor stop on a section they do not use;
   * `run` and `selftest` validate every section.
   */
  validatePluginConfigs?: boolean;
}

/** Loads and validates the config and the plugins; opens nothing. */
export async function loadEnvironment(
  configFile: string | undefined,
  builtins: Plugin<any, any>[],
  log?: Logger,
  console = true,
  opts: LoadEnvironmentOptions = {},
): Promise<WorkerEnvironment> {
  const config = loadConfigFile(configFile);
  const section = readWorkerSection(config);
  const logger =
    log ??
    createLogger({
      level: section.loglevel,
      logdir: section.logdir,
      maxBytes: section.log_max_bytes,
      backupCount: section.log_backup_count,
      console,
    });
  const registry = await PluginRegistry.load(builtins, section.plugins, path.dirname(config.file));
  if (section.destinations === '') section.destinations = pluginDestinations(registry.plugins);
  checkKnownSections(config, registry);
  const pluginConfigs = new Map<string, Record<string, unknown>>();
  for (const plugin of opts.validatePluginConfigs === false ? [] : registry.plugins) {
    pluginConfigs.set(plugin.packageName, validateSection(config, plugin.configSection, plugin.configSchema));
  }
  return { config, section, log: logger, registry, pluginConfigs };
}

/**
 * A misspelt section (`[fn_slak]`) would otherwise be ignored silently and its settings
 * never applied: it is reported the way an unknown key is, whatever the command.
 */
function checkKnownSections(config: LoadedConfig, registry: PluginRegistry): void {
  const known = ['worker', ...new Set(registry.plugins.map((p) => p.configSection)), SOAR_CONFIG_SECTION.name];
  const unknown = Object.keys(config.sections).filter((name) => !known.includes(name));
  if (unknown.length) {
    throw new ConfigError(
      unknown.map((name) => `${config.file}: [${name}] is not a known section; check its spelling (known: ${known.join(', ')})`).join('\n'),
    );
  }
}

/**
 * Builds the configured platform. `soar` reads the `[soar]` section of `config`, so it
 * needs the loaded config; `local` needs only `[worker] platform_dir`.
 */
export function createPlatform(section: WorkerSection, config?: LoadedConfig): Platform {
  if (section.platform === 'local') return new LocalPlatform(section.platform_dir);
  if (section.platform === 'soar') {
    if (!config) throw new ConfigError('[worker] platform = soar: the [soar] section was not given to createPlatform');
    const soar = readSoarSection(config);
    return new SoarPlatform(new SoarClient(clientOptionsFromSection(soar)), soar.data_table);
  }
  throw new ConfigError(`[worker] platform = ${String(section.platform)} is not known; use local or soar`);
}

/** Warns when the config file, which may hold secrets, is readable by other users. */
export function checkConfigPermissions(file: string, log: Logger): void {
  try {
    const mode = fs.statSync(file).mode;
    // Group members are other users too: a shared group (e.g. "users") would let them read the token.
    const who = mode & 0o004 ? 'every user' : mode & 0o040 ? 'its group' : undefined;
    if (who) log.warn(`${file} is readable by ${who} and may hold secrets; run: chmod 600 ${file}`);
  } catch {
    // it was read a moment ago; a stat failure is not worth stopping for
  }
}

/** How often a running worker checks that its store still takes writes. */
const STORE_CHECK_INTERVAL_MS = 15_000;

/** Why a worker with a SQLite store refuses a queue that has another consumer. */
const SQLITE_ALONE =
  '[worker] store is a SQLite file, which serves one worker (two workers on two files would each miss the ' +
  "other's ledger: posts by association fail and a redelivery posts twice). Stop the other worker, or to scale out " +
  'give every worker of this queue the same PostgreSQL store: store = postgres://user:password@host:5432/database';

/** Where a worker is in its life; see the module comment. */
export type WorkerState = 'created' | 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

export class Worker {
  private store: Store | undefined;
  private transport: Transport | undefined;
  private runner: Runner | undefined;
  private metricsRegistry: WorkerMetrics | undefined;
  private health: HealthServer | undefined;
  private lock: LockHandle | undefined;
  private pluginStates = new Map<string, unknown>();
  /** The plugins' listeners, started once the worker consumes (see startListeners). */
  private listeners: { packageName: string; listener: PluginListener }[] = [];
  private pruneTimer: NodeJS.Timeout | undefined;
  /** Where deferred final replies are published once the transport exists (see start). */
  private deferredPublish: LateBoundPublish | undefined;
  private storeCheckTimer: NodeJS.Timeout | undefined;
  private unusable: StoreUnusableError | undefined;
  private lifecycle: WorkerState = 'created';
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private stoppedResolve: (() => void) | undefined;
  private readonly stopped = new Promise<void>((resolve) => {
    this.stoppedResolve = resolve;
  });

  private constructor(
    readonly env: WorkerEnvironment,
    private readonly onOutcome?: (o: InvocationOutcome) => void,
  ) {}

  static async create(opts: WorkerCreateOptions): Promise<Worker> {
    const env = await loadEnvironment(opts.configFile, opts.builtins, opts.log);
    return new Worker(env, opts.onOutcome);
  }

  get log(): Logger {
    return this.env.log;
  }

  /**
   * Why the worker stopped by itself: its store became unusable (read-only, not
   * permitted, deleted…). `worker run` then exits with the config exit code.
   */
  get fatalError(): StoreUnusableError | undefined {
    return this.unusable;
  }

  get state(): WorkerState {
    return this.lifecycle;
  }

  /** Takes the lock, opens the store, sets up the plugins and starts consuming. Once only. */
  start(): Promise<void> {
    if (this.lifecycle !== 'created') {
      return Promise.reject(new WorkerError(`Worker.start: the worker is ${this.lifecycle}; a worker starts once`, { code: 'worker_state' }));
    }
    this.lifecycle = 'starting';
    this.starting = this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const { section, log, registry, config } = this.env;
    checkConfigPermissions(config.file, log);
    this.lock = await acquireLock(section.lock_file);
    try {
      const opened = await openStore(section.store, {
        migrate: true,
        tables: registry.tables(),
        pgConnectTimeoutMs: section.store_timeout * 1000,
        pgQueryTimeoutMs: section.store_timeout * 1000,
      });
      if (opened.created) {
        log.warn(
          `Created a new, empty store at ${opened.location}. Fine on a first run; if a store existed before, its ` +
            'invocation ledger and channel associations are not in this one (restore it from a backup and restart)',
        );
      }
      this.store = opened;
      // A store that cannot take writes would hand every invocation back forever: stop now.
      await opened.checkWritable();
      const platform = createPlatform(section, config);
      this.store = reportUnusable(opened, (err) => this.onStoreUnusable(err));
      const metrics = section.metrics_port === undefined ? undefined : new WorkerMetrics();
      this.metricsRegistry = metrics;
      // Plugins may send deferred final replies from setup on (an answer that came while
      // every worker was down); those wait here until the transport below exists.
      const deferredPublish = new LateBoundPublish();
      this.deferredPublish = deferredPublish;
      const deferred = new LedgerDeferredReplies({ ledger: this.store.ledger, publish: deferredPublish.publish, log });
      for (const plugin of registry.plugins) {
        const ctx: PluginSetupContext<Record<string, unknown>> = {
          config: this.env.pluginConfigs.get(plugin.packageName) ?? {},
          log: log.child({ package: plugin.packageName }),
          store: this.store,
          platform,
          metrics: metrics?.forPlugin(plugin.packageName) ?? NO_PLUGIN_METRICS,
          deferred,
          retentionDays: section.ledger_retention_days,
        };
        this.pluginStates.set(plugin.packageName, await plugin.setup(ctx));
      }
      const pluginQueues = this.pluginQueues();
      const onOutcome = this.onOutcome;
      const report =
        metrics || onOutcome
          ? (o: InvocationOutcome) => {
              metrics?.observeOutcome(o);
              onOutcome?.(o);
            }
          : undefined;
      this.runner = new Runner({
        registry,
        pluginStates: this.pluginStates,
        store: this.store,
        platform,
        log,
        maxAttempts: section.max_attempts,
        maxMessageBytes: section.max_message_bytes,
        pluginQueues: new Set([...pluginQueues.values()].flat().map((q) => q.name)),
        ...(report ? { onOutcome: report } : {}),
      });
      const transport = new AmqpTransport({
        url: section.amqp_url,
        destinations: destinationList(section),
        prefetch: section.num_workers,
        log,
        tls: { caFile: section.ca_file, certFile: section.cert_file, keyFile: section.key_file },
        reconnectMaxDelayMs: section.reconnect_max_delay * 1000,
        heartbeatSeconds: section.heartbeat,
        topology: { queueType: section.queue_type, maxAttempts: section.max_attempts },
        pluginQueues: [...pluginQueues.values()].flat(),
        ...(isPostgresLocation(section.store) ? {} : { exclusive: { why: SQLITE_ALONE } }),
      });
      this.transport = transport;
      const runner = this.runner;
      deferredPublish.attach((replyTo, correlationId, body) => transport.publishDeferredReply(replyTo, correlationId, body));
      if (metrics) {
        transport.on('connected', () => metrics.setBrokerConnected(true));
        transport.on('disconnected', () => metrics.setBrokerConnected(false));
        transport.on('reconnected', () => metrics.brokerReconnected());
        const exposed = metricsHostWarning(section);
        if (exposed) log.warn(exposed);
        this.health = await HealthServer.start({
          host: section.metrics_host,
          port: section.metrics_port!,
          metrics,
          log,
          checks: this.readinessChecks(),
        });
      }
      await transport.start(async (delivery) => {
        const done = metrics?.invocationStarted();
        try {
          return await runner.handle(delivery);
        } finally {
          done?.();
        }
      });
      await this.startListeners(pluginQueues, metrics);
      this.schedulePrune();
      this.scheduleStoreCheck();
      log.info(
        `Worker ready: ${registry.functionNames().length} function(s) from ${registry.plugins.map((p) => p.packageName).join(', ') || 'no plugins'}; ` +
          `store ${this.store.kind} ${this.store.location}; ${section.num_workers} in flight at most`,
      );
      this.lifecycle = 'running';
      // A plugin's setup that met an unusable store and carried on: stop now (see onStoreUnusable).
      if (this.unusable) this.stop('the store is unusable').catch(() => undefined);
    } catch (err) {
      this.lifecycle = 'failed';
      await this.release().catch((releaseErr: Error) => log.warn(releaseErr.message));
      throw err;
    }
  }

  /**
   * Each plugin's own queues under its config, checked to be unique and apart from the
   * destinations (two owners of one queue would take each other's messages).
   */
  private pluginQueues(): Map<string, PluginQueue[]> {
    const byPlugin = new Map<string, PluginQueue[]>();
    const owners = new Map<string, string>(destinationList(this.env.section).map((d) => [d, '[worker] destinations']));
    for (const plugin of this.env.registry.plugins) {
      const queues = plugin.queues?.(this.env.pluginConfigs.get(plugin.packageName) ?? {}) ?? [];
      for (const q of queues) {
        const owner = owners.get(q.name);
        if (owner) throw new ConfigError(`Queue ${q.name} of ${plugin.packageName} is also one of ${owner}; give it another name`);
        owners.set(q.name, plugin.packageName);
      }
      byPlugin.set(plugin.packageName, queues);
    }
    return byPlugin;
  }

  /**
   * Starts the plugins' listeners, after the worker consumes their queues: what they
   * submit is taken at once. A listener that can never start (bad credentials) stops
   * the worker's start with its error.
   */
  private async startListeners(pluginQueues: Map<string, PluginQueue[]>, metrics: WorkerMetrics | undefined): Promise<void> {
    const transport = this.transport!;
    for (const plugin of this.env.registry.plugins) {
      if (!plugin.listeners) continue;
      const own = new Set((pluginQueues.get(plugin.packageName) ?? []).map((q) => q.name));
      const log = this.env.log.child({ package: plugin.packageName });
      const ctx: ListenerContext = {
        log,
        metrics: metrics?.forPlugin(plugin.packageName) ?? NO_PLUGIN_METRICS,
        submit: async (queue, invocation, opts) => {
          if (!own.has(queue)) throw new Error(`${plugin.packageName} submitted to ${queue}, which is not one of its queues`);
          await transport.submit(queue, Buffer.from(JSON.stringify(invocation)), opts);
        },
      };
      for (const listener of plugin.listeners(this.pluginStates.get(plugin.packageName), ctx)) {
        this.listeners.push({ packageName: plugin.packageName, listener });
        await listener.start();
        log.info(`Listener ${listener.name} started`);
      }
    }
  }

  /** Stops every listener (first thing on shutdown: nothing new comes in while the rest drains). */
  private async stopListeners(): Promise<void> {
    const listeners = this.listeners;
    this.listeners = [];
    for (const { packageName, listener } of listeners.reverse()) {
      await listener.stop().catch((err: Error) => this.env.log.warn(`Stopping listener ${listener.name} of ${packageName} failed: ${err.message}`));
    }
  }

  /** Stops the worker once: the store will not take work until someone fixes it. */
  private onStoreUnusable(err: StoreUnusableError): void {
    if (this.unusable) return;
    this.unusable = err;
    this.env.log.error(`Stopping: ${err.message}`, { code: err.code });
    // Unfinished invocations are handed back (not acked) and wait in the queue. While
    // start() runs, the failing call's error ends it instead (or the end of start() stops).
    if (this.lifecycle === 'running') this.stop('the store is unusable').catch(() => undefined);
  }

  /**
   * Checks now and then that the store still takes writes, so a store file deleted or
   * made read-only under an idle worker is noticed before the next invocation needs it.
   */
  private scheduleStoreCheck(): void {
    this.storeCheckTimer = setInterval(() => {
      this.store?.checkWritable().catch((err: Error) => {
        // Unusable: reportUnusable stops the worker. Anything else may pass: say so.
        if (!this.unusable) this.env.log.warn(`Store check failed: ${err.message}`);
      });
    }, STORE_CHECK_INTERVAL_MS);
    this.storeCheckTimer.unref();
  }

  /** Resolves when the worker has stopped. */
  waitUntilStopped(): Promise<void> {
    return this.stopped;
  }

  /**
   * Graceful stop: cancel the consumers, let running invocations finish up to
   * `shutdown_timeout`, then close. Unfinished invocations are not acked, so the broker
   * redelivers them. Rejects with {@link ShutdownTimeoutError} when some did not finish,
   * and with a {@link ShutdownError} when something could not be closed; the worker is
   * stopped either way.
   */
  stop(reason = 'stop requested'): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    const { log, section } = this.env;
    // A stop asked for while starting (a signal) waits for the start to end, then drains.
    if (this.lifecycle === 'starting') await this.starting?.catch(() => undefined);
    if (this.lifecycle !== 'running') {
      // Never started, or start() failed (and released what it had opened): nothing to drain.
      if (this.lifecycle === 'created') this.lifecycle = 'stopped';
      this.stoppedResolve?.();
      return;
    }
    this.lifecycle = 'draining';
    log.info(`Stopping (${reason}): no new invocations; waiting up to ${section.shutdown_timeout}s for ${this.runner?.activeCount ?? 0} running`);
    let timedOut: ShutdownTimeoutError | undefined;
    let unreleased: ShutdownError | undefined;
    try {
      await this.stopListeners();
      await this.transport?.stopConsuming();
      this.runner?.stopAccepting();
      if (this.runner) {
        const runner = this.runner;
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), section.shutdown_timeout * 1000);
        });
        const outcome = await Promise.race([runner.whenIdle().then(() => 'idle' as const), timeout]);
        clearTimeout(timer);
        if (outcome === 'timeout') {
          timedOut = new ShutdownTimeoutError(runner.activeCount, section.shutdown_timeout);
          runner.abortRunning();
          log.warn(timedOut.message);
        }
      }
    } finally {
      unreleased = await this.release().then(
        () => undefined,
        (err: ShutdownError) => err,
      );
      if (unreleased) log.warn(unreleased.message, { code: unreleased.code });
      this.lifecycle = 'stopped';
      log.info('Stopped');
      this.stoppedResolve?.();
    }
    if (timedOut) throw timedOut;
    if (unreleased) throw unreleased;
  }

  /** What `/readyz` asks: a running worker, consuming from the broker, its listeners, and a store that answers. */
  private readinessChecks(): ReadinessCheck[] {
    return [
      {
        name: 'worker',
        check: () => {
          if (this.lifecycle !== 'running') throw new Error(`the worker is ${this.lifecycle}`);
        },
      },
      {
        name: 'broker',
        check: () => {
          const problem = this.transport ? this.transport.readinessProblem() : 'not connected to the broker';
          if (problem) throw new Error(problem);
        },
      },
      {
        // Each listener's own state (a Slack connection…), named in the failure; passes
        // when no plugin listens.
        name: 'listeners',
        check: () => {
          const down = this.listeners
            .map(({ listener }) => ({ name: listener.name, status: listener.status() }))
            .filter((l) => !l.status.ready)
            .map((l) => `${l.name}: ${l.status.detail}`);
          if (down.length) throw new Error(down.join('; '));
        },
      },
      {
        name: 'store',
        check: async () => {
          // A real write, rolled back (see Store.checkWritable): a store that answers
          // reads but refuses writes (read-only, no rights, its file deleted) is not ready.
          if (!this.store) throw new Error('the store is closed');
          await this.store.checkWritable();
        },
      },
    ];
  }

  private schedulePrune(): void {
    const { section, log } = this.env;
    const prune = () => {
      const before = new Date(Date.now() - section.ledger_retention_days * 86_400_000);
      this.store?.ledger.prune(before).then(
        (n) => n > 0 && log.info(`Pruned ${n} ledger entries older than ${section.ledger_retention_days} days`),
        (err: Error) => log.warn(`Ledger prune failed: ${err.message}`),
      );
    };
    prune();
    this.pruneTimer = setInterval(prune, 3_600_000);
    this.pruneTimer.unref();
  }

  /**
   * Closes everything that is open, each part even when an earlier one failed, and then
   * rejects with a {@link ShutdownError} naming every part that could not be closed.
   */
  private async release(): Promise<void> {
    this.deferredPublish?.detach('the worker is stopping');
    const failures: string[] = [];
    const attempt = async (what: string, close: () => Promise<void> | void): Promise<void> => {
      try {
        await close();
      } catch (err) {
        failures.push(`${what}: ${(err as Error).message}`);
      }
    };
    await this.stopListeners();
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    if (this.storeCheckTimer) clearInterval(this.storeCheckTimer);
    await attempt('the broker connection', async () => this.transport?.close());
    this.transport = undefined;
    this.metricsRegistry?.setBrokerConnected(false);
    await attempt('the health listener', async () => this.health?.close());
    this.health = undefined;
    for (const plugin of this.env.registry.plugins) {
      if (!plugin.teardown || !this.pluginStates.has(plugin.packageName)) continue;
      await attempt(`teardown of ${plugin.packageName}`, () => plugin.teardown!(this.pluginStates.get(plugin.packageName)));
    }
    this.pluginStates.clear();
    await attempt('the store', async () => this.store?.close());
    this.store = undefined;
    await attempt('the lock file', () => this.lock?.release());
    this.lock = undefined;
    if (failures.length) throw ShutdownError.unreleased(failures);
  }
}
