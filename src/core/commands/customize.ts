/**
 * `worker customize`: imports each plugin's packaged definitions into the targets —
 * the broker (message destinations: queue + dead-letter topology) and the store (data
 * tables: schema migration; functions: the definitions table `worker functions` reads).
 *
 * Per package, per item, in {@link KIND_ORDER}: every target is asked for a plan
 * (create / update / unchanged / not-applicable); a change is applied after a yes to
 * "OK to import <kind> <name> into <target>? (y/n)" (or with `-y`), never in a dry
 * run. Plans come from what the target holds now (passive broker checks, the store's
 * schema version and definition hashes), so a second run reports everything unchanged
 * and writes nothing. With `[worker] platform = soar` a third target, SOAR
 * (src/platforms/soar/soar-target.ts), takes message destinations, data tables and functions too;
 * workflows and rules stay examples (a target that answers `not-applicable` with a
 * detail says why). A further {@link CustomizeTarget} plugs in without touching the loop.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { ChannelModel } from 'amqplib';
import { silentLogger, type Logger } from '../logging.js';
import type { Plugin } from '../runtime/plugin.js';
import { redact } from '../redact.js';
import { openConnection } from '../runtime/amqp-transport.js';
import { isPostgresLocation, openStore, redactStoreLocation } from '../store/index.js';
import type { PluginTable, SchemaStatus, Store } from '../store/store.js';
import { validateSection, type LoadedConfig } from '../config.js';
import { SoarTarget } from '../../platforms/soar/soar-target.js';
import { loadEnvironment } from '../runtime/worker.js';
import type { WorkerSection } from '../worker-config.js';
import {
  CustomizationError,
  KIND_LABELS,
  loadCustomizations,
  type CustomizationItem,
  type FunctionFile,
  type PackageCustomizations,
} from './customizations.js';
import { CUSTOMIZE_EXIT, TargetError, type CustomizeTarget, type Plan } from './customize-target.js';
import { BrokerTarget, pluginQueueItems } from './broker-target.js';

// The target contract lives in its own module so that a platform's target (SOAR's)
// can implement it without importing this file back; re-exported for callers.
export { CUSTOMIZE_EXIT, TargetError, type CustomizeTarget, type Plan, type PlanAction } from './customize-target.js';
export { BrokerTarget } from './broker-target.js';

/** A digest of what a function definition records; equal digests mean "unchanged". */
export function definitionHash(packageName: string, fn: FunctionFile): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v as object)
          .sort()
          .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  const body = { package: packageName, name: fn.name, display_name: fn.display_name, description: fn.description, destination: fn.destination, input_schema: fn.input_schema };
  return createHash('sha256').update(JSON.stringify(canonical(body))).digest('hex');
}

/** True unless the store is a SQLite file that does not exist yet (opening it would create it). */
export function storeExists(location: string): boolean {
  return isPostgresLocation(location) || location.trim() === ':memory:' || fs.existsSync(location);
}

const errorMessage = (err: unknown) => redact(err instanceof Error ? err.message : String(err));

/**
 * Data tables (the store's schema, brought to the current version) and function
 * definitions (the definitions table). `store` is undefined in a dry run against a
 * SQLite file that does not exist yet: everything would be created.
 */
export class StoreTarget implements CustomizeTarget {
  readonly name = 'store';

  constructor(
    private readonly store: Store | undefined,
    private readonly location: string,
    /** The tables the loaded packages declare (the store was opened with them). */
    private readonly tables: readonly PluginTable[] = [],
  ) {}

  private where(): string {
    return this.store ? `${this.store.kind} ${this.store.location}` : redactStoreLocation(this.location);
  }

  private async wrap<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof TargetError || err instanceof CustomizationError) throw err;
      throw new TargetError(`store ${this.where()}: ${errorMessage(err)}`, CUSTOMIZE_EXIT.store, err);
    }
  }

  /** The store's schema versions; undefined when there is no store yet (dry run). */
  private async schemaStatus(): Promise<SchemaStatus | undefined> {
    return this.store ? this.store.schemaStatus() : undefined;
  }

  /** What migrating did to the core schema and to `table`, for the outcome line ('' if nothing). */
  private async migrated(table?: string): Promise<string> {
    const before = (await this.schemaStatus())?.tables.find((t) => t.name === table)?.current;
    const applied = await this.store!.migrate();
    if (applied.length) return `schema version ${applied[applied.length - 1]}`;
    const after = (await this.schemaStatus())?.tables.find((t) => t.name === table)?.current;
    return after !== before ? `table ${table} version ${after}` : '';
  }

  plan(item: CustomizationItem): Promise<Plan> {
    return this.wrap(async () => {
      if (item.kind === 'data_table') {
        if (!this.tables.some((t) => t.name === item.name)) {
          const declared = this.tables.map((t) => t.name).join(', ') || 'none';
          throw new CustomizationError(
            `${item.file}: no loaded package declares a store table ${item.name} (declared: ${declared}); ` +
              'add it to the package\'s tables, or remove the data table file',
          );
        }
        const status = await this.schemaStatus();
        if (!status) return { action: 'create', detail: `new store ${this.where()}` };
        const table = status.tables.find((t) => t.name === item.name)!;
        if (status.current < status.expected) {
          if (status.current === 0) return { action: 'create', detail: `${this.where()}, schema version ${status.expected}` };
          return { action: 'update', detail: `${this.where()}, schema version ${status.current} → ${status.expected}` };
        }
        if (table.current < table.expected) {
          const detail = `${this.where()}, table ${table.name} version ${table.current} → ${table.expected}`;
          return { action: table.current === 0 ? 'create' : 'update', detail };
        }
        return { action: 'unchanged', detail: `${this.where()}, schema version ${status.current}` };
      }
      if (item.kind === 'function') {
        const status = await this.schemaStatus();
        if (!status || status.current < status.expected) return { action: 'create', detail: 'not recorded yet' };
        const stored = await this.store!.definitions.get(item.name);
        if (!stored) return { action: 'create', detail: 'not recorded yet' };
        if (stored.hash !== definitionHash(item.packageName, item.definition)) {
          return { action: 'update', detail: `recorded ${stored.importedAt.toISOString()} differs` };
        }
        return { action: 'unchanged', detail: `recorded ${stored.importedAt.toISOString()}` };
      }
      return { action: 'not-applicable', detail: '' };
    });
  }

  apply(item: CustomizationItem): Promise<string> {
    return this.wrap(async () => {
      const store = this.store;
      if (!store) throw new Error('no store is open (dry run)');
      // Recording anything needs the store's current schema; the data table item asks
      // for it first, a package without a data table gets it with its first function.
      const migrated = await this.migrated(item.kind === 'data_table' ? item.name : undefined);
      if (item.kind === 'data_table') return `${this.where()}, ${migrated || 'schema already current'}`;
      if (item.kind === 'function') {
        const def = item.definition;
        const outcome = await store.definitions.upsert({
          name: def.name,
          packageName: item.packageName,
          displayName: def.display_name,
          description: def.description,
          destination: def.destination,
          inputSchema: def.input_schema,
          hash: definitionHash(item.packageName, def),
        });
        return [`${outcome === 'unchanged' ? 'already recorded' : 'recorded'} in ${this.where()}`, migrated && `after migrating to ${migrated}`]
          .filter(Boolean)
          .join(' ');
      }
      throw new Error(`the store does not hold ${KIND_LABELS[item.kind]}s`);
    });
  }

  async close(): Promise<void> {
    await this.store?.close().catch(() => undefined);
  }
}

export interface CustomizeOptions {
  configFile: string | undefined;
  builtins: Plugin<any, any>[];
  /** `-l`: only these packages (unknown names are a config error). */
  packages: string[];
  /** `-y`: import without asking. */
  yes: boolean;
  dryRun: boolean;
  /** Asks a yes/no question (not called with `yes` or `dryRun`). */
  ask: (question: string) => Promise<boolean>;
  print: (text: string) => void;
  log?: Logger;
  /** Builds the targets (tests add their own); default: {@link defaultTargets}. */
  targets?: (section: WorkerSection, dryRun: boolean, config: LoadedConfig) => Promise<CustomizeTarget[]>;
}

export interface ItemOutcome {
  packageName: string;
  kind: CustomizationItem['kind'];
  name: string;
  target: string | undefined;
  result: 'created' | 'updated' | 'unchanged' | 'skipped' | 'example' | 'not-imported' | 'would-create' | 'would-update' | 'failed';
  detail: string;
}

export interface CustomizeReport {
  outcomes: ItemOutcome[];
  exitCode: number;
}

function summary(outcomes: ItemOutcome[], dryRun: boolean): string {
  const count = (r: ItemOutcome['result']) => outcomes.filter((o) => o.result === r).length;
  const examples = count('example');
  const tail = examples ? `; ${examples} example(s) not imported (see above)` : '';
  if (dryRun) {
    return `customize --dry-run: would create ${count('would-create')}, would update ${count('would-update')}, ${count('unchanged')} unchanged${tail}; nothing was changed\n`;
  }
  return `customize: ${count('created')} created, ${count('updated')} updated, ${count('unchanged')} unchanged, ${count('skipped')} skipped${tail}\n`;
}

/**
 * Adds the queues a plugin's listeners feed under this config (Plugin.queues) as broker
 * items, first. They depend on the plugin's section, which customize otherwise never
 * validates: when it does not validate here (a secret's variable unset), they are left to
 * `worker run`, which declares them too, and a line says so.
 */
function withPluginQueues(pkg: PackageCustomizations, plugin: Plugin<any, any>, config: LoadedConfig, print: (text: string) => void): PackageCustomizations {
  if (!plugin.queues) return pkg;
  let queues;
  try {
    queues = plugin.queues(validateSection<Record<string, unknown>>(config, plugin.configSection, plugin.configSchema));
  } catch (err) {
    // Secrets' variables are often set only for the service (systemd's EnvironmentFile), and
    // customize never needs them: say that, without a reason that reads like an error.
    const unset = Object.keys(config.unresolved?.[plugin.configSection] ?? {}).length > 0;
    const why = unset ? 'it refers to environment variables not set here' : `it does not validate here: ${errorMessage(err)}`;
    print(`${plugin.packageName}: its own queues are left to \`worker run\` ([${plugin.configSection}] ${why})\n`);
    return pkg;
  }
  const items = pluginQueueItems(plugin.packageName, queues);
  return { ...pkg, items: [...items, ...pkg.items] };
}

/** Runs `worker customize`; prints one line per item and target, then a summary. */
export async function runCustomize(opts: CustomizeOptions): Promise<CustomizeReport> {
  const { print } = opts;
  const outcomes: ItemOutcome[] = [];
  const log = opts.log ?? silentLogger();

  let packages: PackageCustomizations[];
  let section: WorkerSection;
  let config: LoadedConfig;
  let tables: PluginTable[];
  try {
    // customize imports definitions; it never sets a plugin up, so it needs none of their settings.
    const env = await loadEnvironment(opts.configFile, opts.builtins, log, false, { validatePluginConfigs: false });
    section = env.section;
    config = env.config;
    // Every loaded package's tables, not only the -l ones: the store serves them all.
    tables = env.registry.tables();
    packages = env.registry.only(opts.packages).map((p) => withPluginQueues(loadCustomizations(p), p, env.config, print));
  } catch (err) {
    print(`worker customize: ${errorMessage(err)}\n`);
    return { outcomes, exitCode: CUSTOMIZE_EXIT.config };
  }

  let targets: CustomizeTarget[] = [];
  try {
    targets = await (opts.targets ?? ((s, dry, c) => defaultTargets(s, dry, log, c, tables)))(section, opts.dryRun, config);
  } catch (err) {
    print(`worker customize: ${errorMessage(err)}\n`);
    return { outcomes, exitCode: err instanceof TargetError ? err.exitCode : CUSTOMIZE_EXIT.failed };
  }

  let exitCode: number = CUSTOMIZE_EXIT.ok;
  const record = (o: ItemOutcome) => {
    outcomes.push(o);
    const label = `  ${KIND_LABELS[o.kind]} ${o.name}${o.target ? ` → ${o.target}` : ''}`;
    print(`${label}: ${o.result.replace('-', ' ')}${o.detail ? ` (${o.detail})` : ''}\n`);
  };
  try {
    outer: for (const pkg of packages) {
      print(`${pkg.packageName}${pkg.dir ? ` (${pkg.dir})` : ' (from the plugin definition)'}\n`);
      for (const item of pkg.items) {
        let handled = false;
        // Why a target that could hold the kind does not: the first such reason is reported.
        let reason: string | undefined;
        for (const target of targets) {
          const base = { packageName: pkg.packageName, kind: item.kind, name: item.name, target: target.name };
          try {
            const plan = await target.plan(item);
            if (plan.action === 'not-applicable') {
              reason ??= plan.detail ? `${target.name}: ${plan.detail}` : undefined;
              continue;
            }
            handled = true;
            if (plan.action === 'unchanged') {
              record({ ...base, result: 'unchanged', detail: plan.detail });
              continue;
            }
            if (opts.dryRun) {
              record({ ...base, result: plan.action === 'create' ? 'would-create' : 'would-update', detail: plan.detail });
              continue;
            }
            const agreed = opts.yes || (await opts.ask(`OK to import ${KIND_LABELS[item.kind]} ${item.name} into ${target.name}?`));
            if (!agreed) {
              record({ ...base, result: 'skipped', detail: 'not confirmed' });
              continue;
            }
            const detail = await target.apply(item);
            record({ ...base, result: plan.action === 'create' ? 'created' : 'updated', detail });
          } catch (err) {
            record({ ...base, result: 'failed', detail: errorMessage(err) });
            exitCode =
              err instanceof TargetError ? err.exitCode : err instanceof CustomizationError ? CUSTOMIZE_EXIT.config : CUSTOMIZE_EXIT.failed;
            break outer;
          }
        }
        if (!handled) {
          const example = item.kind === 'workflow' || item.kind === 'rule';
          record({
            packageName: pkg.packageName,
            kind: item.kind,
            name: item.name,
            target: undefined,
            result: example ? 'example' : 'not-imported',
            detail: reason ?? (example ? 'imported into SOAR only when a SOAR platform is configured' : 'no configured target holds it'),
          });
        }
      }
    }
  } finally {
    for (const t of targets) await t.close();
  }
  if (exitCode !== CUSTOMIZE_EXIT.ok) {
    const failed = outcomes.find((o) => o.result === 'failed');
    print(`customize: failure (${failed ? `${KIND_LABELS[failed.kind]} ${failed.name}` : 'see above'}); later items were not imported\n`);
  } else {
    print(summary(outcomes, opts.dryRun));
  }
  return { outcomes, exitCode };
}

/**
 * The broker and store targets, connected, and SOAR when `[worker] platform = soar`
 * (its `[soar]` section is read from `config`); a failure names which one (exit 4, 6,
 * 3, or 2 for an invalid `[soar]`). SOAR is checked first: it is read-only until an
 * item is applied, and a bad key should stop the run before anything is imported.
 */
export async function defaultTargets(
  section: WorkerSection,
  dryRun: boolean,
  log: Logger,
  config?: LoadedConfig,
  tables: readonly PluginTable[] = [],
): Promise<CustomizeTarget[]> {
  let soar: SoarTarget | undefined;
  if (section.platform === 'soar') {
    if (!config) throw new TargetError('[worker] platform = soar: the loaded config (with [soar]) was not given', CUSTOMIZE_EXIT.config);
    soar = await SoarTarget.connect(config);
  }
  let store: Store | undefined;
  if (!dryRun || storeExists(section.store)) {
    try {
      store = await openStore(section.store, { tables });
      await store.schemaStatus();
    } catch (err) {
      await store?.close().catch(() => undefined);
      await soar?.close();
      throw new TargetError(`store ${redactStoreLocation(section.store)}: ${errorMessage(err)}`, CUSTOMIZE_EXIT.store, err);
    }
  }
  let connection: ChannelModel;
  try {
    connection = await openConnection(
      section.amqp_url,
      { caFile: section.ca_file, certFile: section.cert_file, keyFile: section.key_file },
      log,
      section.heartbeat,
      'customize',
    );
  } catch (err) {
    await store?.close().catch(() => undefined);
    await soar?.close();
    // openConnection's message already names [worker] amqp_url (password hidden) and the reason.
    throw new TargetError(`broker: ${errorMessage(err)}`, CUSTOMIZE_EXIT.broker, err);
  }
  const topology = { queueType: section.queue_type, maxAttempts: section.max_attempts };
  const targets: CustomizeTarget[] = [new BrokerTarget(connection, topology), new StoreTarget(store, section.store, tables)];
  return soar ? [...targets, soar] : targets;
}
