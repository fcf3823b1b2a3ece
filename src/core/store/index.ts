/**
 * Opens the configured store: `postgres://` / `postgresql://` URLs give the shared
 * PostgreSQL store, anything else is a SQLite file path (`~/` expanded) or `:memory:`.
 */
import { ConfigError, PluginLoadError, StoreUnusableError } from '../runtime/errors.js';
import { expandHome } from '../config.js';
import { PostgresStore, redactPostgresUrl } from './postgres-store.js';
import { SqliteStore } from './sqlite-store.js';
import { writeStoreMarker } from './sqlite-failures.js';
import type { PluginTable, Store } from './store.js';

export type { PluginTable, SqlExecutor, Store } from './store.js';
export { PostgresStore, redactPostgresUrl } from './postgres-store.js';
export { SqliteStore } from './sqlite-store.js';
export { KeyedMutex } from './keyed-mutex.js';

export interface OpenStoreOptions {
  /** Apply pending migrations after opening (what `worker run` does). Default false. */
  migrate?: boolean;
  /** The tables the registered plugins declare: `migrate` creates and upgrades them. */
  tables?: readonly PluginTable[];
  /** PostgreSQL schema (default `public`); ignored for SQLite. */
  pgSchema?: string;
  /** PostgreSQL query pool size; ignored for SQLite. */
  pgPoolSize?: number;
  /** PostgreSQL connect timeout (`[worker] store_timeout`); ignored for SQLite. */
  pgConnectTimeoutMs?: number;
  /** PostgreSQL statement timeout (`[worker] store_timeout`); ignored for SQLite. */
  pgQueryTimeoutMs?: number;
}

const POSTGRES_URL = /^postgres(ql)?:\/\//i;

export function isPostgresLocation(location: string): boolean {
  return POSTGRES_URL.test(location.trim());
}

/** The store location fit for logs and messages: a PostgreSQL URL loses its password. */
export function redactStoreLocation(location: string): string {
  return isPostgresLocation(location) ? redactPostgresUrl(location.trim()) : location;
}

export async function openStore(location: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const trimmed = location.trim();
  if (trimmed === '') throw new ConfigError('The store location is empty: set [worker] store to a file path or a postgres:// URL');
  let store: Store;
  if (isPostgresLocation(trimmed)) {
    store = await PostgresStore.open(trimmed, {
      ...(opts.tables === undefined ? {} : { tables: opts.tables }),
      ...(opts.pgSchema === undefined ? {} : { schema: opts.pgSchema }),
      ...(opts.pgPoolSize === undefined ? {} : { poolSize: opts.pgPoolSize }),
      ...(opts.pgConnectTimeoutMs === undefined ? {} : { connectTimeoutMs: opts.pgConnectTimeoutMs }),
      ...(opts.pgQueryTimeoutMs === undefined ? {} : { queryTimeoutMs: opts.pgQueryTimeoutMs }),
    });
  } else {
    const file = trimmed === ':memory:' ? trimmed : expandHome(trimmed);
    try {
      store = SqliteStore.open(file, opts.tables === undefined ? {} : { tables: opts.tables });
    } catch (err) {
      if (err instanceof StoreUnusableError || err instanceof PluginLoadError) throw err;
      throw new ConfigError(
        `Cannot open the SQLite store ${file}: ${err instanceof Error ? err.message : String(err)}`,
        err,
      );
    }
  }
  if (opts.migrate) {
    try {
      await store.migrate();
      // From now on a missing file means a lost store, not a first run (see sqlite-failures.ts).
      if (store instanceof SqliteStore && store.location !== ':memory:') writeStoreMarker(store.location);
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
  }
  return store;
}
