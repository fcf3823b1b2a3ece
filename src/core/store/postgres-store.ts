/**
 * The shared store: PostgreSQL (pg Pool), so several workers on several hosts can take
 * from the same queue.
 *
 * - All tables live in one schema (default `public`), selected with `search_path` on
 *   every pooled connection; tests use a throwaway schema per run.
 * - Migrations run in one transaction under `pg_advisory_xact_lock`, so workers that
 *   start together do not race; {@link PostgresStore.open} does not migrate.
 * - `begin` is one `INSERT … ON CONFLICT DO UPDATE … RETURNING` statement: the row lock
 *   taken by the conflict path serialises concurrent deliveries.
 * - `withLock` takes a session advisory lock on a client of a separate small pool, held
 *   for the duration of `fn` (so lock holders cannot starve the query pool), behind an
 *   in-process keyed mutex (so one process holds at most one connection per busy key).
 * - Every call is bounded: a connect timeout, `statement_timeout` on the server, a
 *   client-side read timeout a little longer (a server that stopped answering: dropped
 *   packets), and TCP keepalive on idle connections. A query that times out costs its
 *   connection (pg-pool discards a client whose query failed), so the pool opens new
 *   connections once the network is back instead of waiting on dead ones forever.
 * - {@link classifyPgError} (postgres-failures.ts) is the one place that sorts failures: connection lost or
 *   timed out → {@link RetryableError}; the role lost its rights, the server is
 *   read-only, data corrupt → {@link StoreUnusableError} (the worker stops); wrong URL,
 *   user or database at open → {@link ConfigError}. The password never appears in
 *   `location`, errors or logs.
 */
// Types only here: pg itself is loaded by open(), so that a worker on the default SQLite
// store does not spend start-up time (~80 ms on the benchmark machine) loading it.
import type pg from 'pg';
import { ConfigError, errorCode, RetryableError } from '../runtime/errors.js';
import {
  classifyPgError,
  describeEndpoint,
  isConnectionError,
  redactPostgresUrl,
  STATEMENT_TIMEOUT,
  type Endpoint,
} from './postgres-failures.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { Migration } from './migration.js';
import { checkPluginTables, PLUGIN_TABLE_VERSIONS, tableVersions } from './plugin-tables.js';
import { migratePluginTablesPostgres, PostgresSqlExecutor, recordedVersionsPostgres, type PgQuery } from './postgres-sql.js';
import { PostgresDefinitions } from './postgres-definitions.js';
import { PostgresLedger } from './postgres-ledger.js';
import type { PluginTable, SchemaStatus, Store } from './store.js';

export { redactPostgresUrl } from './postgres-failures.js';

/** PostgreSQL schema history. Append new versions; never edit an applied one. */
export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    // Until plugin tables (version 7), versions 1 and 2 also created the Slack plugin's
    // conversation table and its index. That is the plugin's own table now; its first
    // migration finds them in a store made before and keeps their rows.
    description: 'invocation ledger',
    steps: [
      `CREATE TABLE invocation_ledger (
         invocation_id TEXT PRIMARY KEY,
         function_name TEXT NOT NULL,
         state         TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
         attempts      INTEGER NOT NULL DEFAULT 1 CHECK (attempts >= 1),
         reply         JSONB,
         created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
         updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
       )`,
    ],
  },
  {
    version: 2,
    description: 'index for prune',
    steps: ['CREATE INDEX invocation_ledger_state_updated ON invocation_ledger (state, updated_at)'],
  },
  {
    version: 3,
    description: 'function definitions recorded by worker customize',
    // input_schema is JSON, not JSONB: JSONB reorders keys, and the order of a schema's
    // properties is the order `worker functions` lists the inputs in.
    steps: [
      `CREATE TABLE function_definitions (
         name            TEXT PRIMARY KEY,
         package         TEXT NOT NULL,
         display_name    TEXT NOT NULL,
         description     TEXT NOT NULL,
         destination     TEXT NOT NULL,
         input_schema    JSON NOT NULL,
         definition_hash TEXT NOT NULL,
         imported_at     TIMESTAMPTZ NOT NULL DEFAULT now()
       )`,
    ],
  },
  {
    version: 4,
    description: 'invocation_ledger: replied_at (final reply confirmed), in_flight (a delivery is running)',
    steps: [
      'ALTER TABLE invocation_ledger ADD COLUMN replied_at TIMESTAMPTZ',
      'ALTER TABLE invocation_ledger ADD COLUMN in_flight BOOLEAN NOT NULL DEFAULT false',
    ],
  },
  {
    version: 5,
    description: 'invocation_ledger: reply_failures (final-reply attempts that failed), reply_abandoned_at (reply given up)',
    steps: [
      'ALTER TABLE invocation_ledger ADD COLUMN reply_failures INTEGER NOT NULL DEFAULT 0 CHECK (reply_failures >= 0)',
      'ALTER TABLE invocation_ledger ADD COLUMN reply_abandoned_at TIMESTAMPTZ',
    ],
  },
  {
    version: 6,
    description: 'invocation_ledger: steps (JSON object of the steps a handler completed, see ctx.steps)',
    steps: ['ALTER TABLE invocation_ledger ADD COLUMN steps JSONB'],
  },
  {
    version: 7,
    description: 'plugin_table_versions: the schema version of each table a plugin declares',
    steps: [
      `CREATE TABLE ${PLUGIN_TABLE_VERSIONS} (
         table_name TEXT PRIMARY KEY,
         version    INTEGER NOT NULL CHECK (version >= 1),
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
       )`,
    ],
  },
];

export interface PostgresStoreOptions {
  /** Schema holding the tables; created by `migrate()` when missing. Default `public`. */
  schema?: string;
  /** Connections for queries. Default 10. */
  poolSize?: number;
  /** Connections for `withLock` (one per key held or awaited in this process). Default = poolSize. */
  lockPoolSize?: number;
  /** How long to wait for a connection before failing with a RetryableError. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * The server's `statement_timeout` for every statement (a lock wait included); the
   * client gives up reading an answer {@link READ_TIMEOUT_MARGIN_MS} later and drops the
   * connection. Default 10 s.
   */
  queryTimeoutMs?: number;
  /** TCP keepalive: idle time before the first probe on a pooled connection. Default 10 s. */
  keepAliveDelayMs?: number;
  /** Told about errors of idle pooled connections (they are dropped; the next query reconnects). */
  onIdleError?: (err: Error) => void;
  /** The plugin tables `migrate()` creates and upgrades (see {@link PluginTable}). */
  tables?: readonly PluginTable[];
}

/**
 * How much longer than `statement_timeout` the client waits for an answer: the server's
 * cancel normally comes first (the connection stays usable); the client's read timeout
 * only fires when the server is not answering at all.
 */
export const READ_TIMEOUT_MARGIN_MS = 1000;
/** Migrations may rewrite tables and wait for another worker's migration: a longer bound. */
const MIGRATE_TIMEOUT_MS = 300_000;

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

const LOCK_NAMESPACE_PREFIX = 'soar-slack-worker:lock:';
/** How long withLock waits for another holder of the same key (a channel being created). */
const LOCK_WAIT_MS = 300_000;
const MIGRATE_LOCK = 'soar-slack-worker:migrate';

export class PostgresStore implements Store {
  readonly kind = 'postgres';
  readonly location: string;
  readonly schema: string;
  readonly ledger: PostgresLedger;
  readonly definitions: PostgresDefinitions;
  readonly sql: PostgresSqlExecutor;
  private readonly localLocks = new KeyedMutex();
  private closed: Promise<void> | undefined;
  /** False until open() got its first answer (see classifyPgError's `opening`). */
  private opened = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly lockPool: pg.Pool,
    private readonly endpoint: Endpoint,
    url: string,
    schema: string,
    private readonly timeouts: { queryMs: number; closeMs: number },
    private readonly tables: readonly PluginTable[],
  ) {
    this.location = redactPostgresUrl(url);
    this.schema = schema;
    const run: PgQuery = (text, values) => this.query(text, values);
    this.ledger = new PostgresLedger(run);
    this.definitions = new PostgresDefinitions(run);
    this.sql = new PostgresSqlExecutor(run);
  }

  /**
   * Connects (one round trip to check the server answers) without migrating.
   * Throws a RetryableError when the server cannot be reached, a ConfigError when the
   * URL, user, password or database is wrong.
   */
  static async open(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const schema = opts.schema ?? 'public';
    const tables = [...(opts.tables ?? [])];
    checkPluginTables(tables, 'the tables given to the store');
    if (!IDENTIFIER.test(schema)) {
      throw new ConfigError(
        `Invalid PostgreSQL schema name ${JSON.stringify(schema)}: use lower-case letters, digits and _ (at most 63)`,
      );
    }
    const poolSize = opts.poolSize ?? 10;
    const lockPoolSize = opts.lockPoolSize ?? poolSize;
    if (!Number.isInteger(poolSize) || poolSize < 1 || !Number.isInteger(lockPoolSize) || lockPoolSize < 1) {
      throw new ConfigError(`Invalid PostgreSQL pool size ${poolSize}/${lockPoolSize}: must be a positive integer`);
    }
    const connectMs = opts.connectTimeoutMs ?? 10_000;
    const queryMs = opts.queryTimeoutMs ?? 10_000;
    const keepAliveMs = opts.keepAliveDelayMs ?? 10_000;
    for (const [name, value] of [['connectTimeoutMs', connectMs], ['queryTimeoutMs', queryMs], ['keepAliveDelayMs', keepAliveMs]] as const) {
      if (!Number.isFinite(value) || value <= 0) {
        throw new ConfigError(`Invalid PostgreSQL ${name} ${value}: must be a positive number of milliseconds`);
      }
    }
    const endpoint = describeEndpoint(url);
    const base = PostgresStore.poolConfig(url, schema, { connectMs, queryMs, keepAliveMs });
    const { default: pgRuntime } = await import('pg');
    const pool = new pgRuntime.Pool({ ...base, max: poolSize });
    const lockPool = new pgRuntime.Pool({ ...base, max: lockPoolSize });
    const onIdleError = opts.onIdleError ?? (() => undefined);
    pool.on('error', onIdleError);
    lockPool.on('error', onIdleError);
    const store = new PostgresStore(pool, lockPool, endpoint, url, schema, {
      queryMs,
      closeMs: connectMs + queryMs + READ_TIMEOUT_MARGIN_MS,
    }, tables);
    try {
      await store.query('SELECT 1');
      store.opened = true;
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  private static poolConfig(
    url: string,
    schema: string,
    t: { connectMs: number; queryMs: number; keepAliveMs: number },
  ): pg.PoolConfig {
    const searchPath = `-c search_path=${schema}`;
    let connectionString = url;
    let options: string | undefined = searchPath;
    // pg lets `options` in the URL override the config's; merge ours into it instead.
    if (/[?&]options=/.test(url)) {
      try {
        const u = new URL(url);
        u.searchParams.set('options', `${u.searchParams.get('options') ?? ''} ${searchPath}`.trim());
        connectionString = u.toString();
        options = undefined;
      } catch {
        throw new ConfigError(`Cannot add search_path to the options of the store URL ${redactPostgresUrl(url)}`);
      }
    }
    return {
      connectionString,
      ...(options === undefined ? {} : { options }),
      application_name: 'soar-slack-worker',
      connectionTimeoutMillis: t.connectMs,
      statement_timeout: t.queryMs,
      query_timeout: t.queryMs + READ_TIMEOUT_MARGIN_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: t.keepAliveMs,
      idleTimeoutMillis: 30_000,
    };
  }

  /** Turns a pg failure into the worker's taxonomy; never lets the password through. */
  private mapError(err: unknown): Error {
    if (err instanceof RetryableError || err instanceof ConfigError) return err;
    const scrub = (s: string) =>
      this.endpoint.password.length > 0 ? s.split(this.endpoint.password).join('***') : s;
    const raw = scrub(err instanceof Error ? err.message : String(err)) || errorCode(err) || 'unknown error';
    const where = `${this.endpoint.hostPort} (database ${this.endpoint.database}, schema ${this.schema})`;
    const details = { host: this.endpoint.hostPort, database: this.endpoint.database, ...(errorCode(err) ? { pgCode: errorCode(err) } : {}) };
    if (this.closed !== undefined) return new Error(`The PostgreSQL store at ${where} is closed`);
    const classified = classifyPgError(err, raw, { where, details, opening: !this.opened });
    if (classified) return classified;
    const code = errorCode(err);
    if (code === '42P01') {
      return new Error(
        `The PostgreSQL store at ${where} has no worker tables: run the migrations (worker customize, ` +
          `or open the store with migrate): ${raw}`,
      );
    }
    if (err instanceof Error) {
      if (err.message !== raw) err.message = raw;
      return err;
    }
    return new Error(raw);
  }

  private async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    if (this.closed !== undefined) throw this.mapError(new Error('closed'));
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw this.mapError(err);
    }
  }

  private async connect(pool: pg.Pool): Promise<pg.PoolClient> {
    if (this.closed !== undefined) throw this.mapError(new Error('closed'));
    try {
      return await pool.connect();
    } catch (err) {
      throw this.mapError(err);
    }
  }

  async migrate(): Promise<number[]> {
    const client = await this.connect(this.pool);
    // Per-query bounds longer than the pool's: a migration may rewrite a table or wait
    // for another worker's migration, and should not fail for being slow.
    const q = <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) =>
      client.query<R>({ text, values, query_timeout: MIGRATE_TIMEOUT_MS + READ_TIMEOUT_MARGIN_MS } as pg.QueryConfig);
    let destroy: Error | undefined;
    try {
      await q('BEGIN');
      try {
        await q(`SET LOCAL statement_timeout = ${MIGRATE_TIMEOUT_MS}`);
        await q('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [MIGRATE_LOCK, this.schema]);
        const exists = await q('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.schema]);
        if (exists.rowCount === 0) await q(`CREATE SCHEMA "${this.schema}"`);
        await q(`CREATE TABLE IF NOT EXISTS schema_migrations (
          version     INTEGER PRIMARY KEY,
          description TEXT NOT NULL,
          applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
        )`);
        const done = new Set(
          (await q<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
        );
        const applied: number[] = [];
        for (const m of POSTGRES_MIGRATIONS) {
          if (done.has(m.version)) continue;
          for (const step of m.steps) await q(step);
          await q('INSERT INTO schema_migrations (version, description) VALUES ($1, $2)', [
            m.version,
            m.description,
          ]);
          applied.push(m.version);
        }
        await migratePluginTablesPostgres(q, this.tables);
        await q('COMMIT');
        return applied;
      } catch (err) {
        await q('ROLLBACK').catch((rollbackErr: Error) => {
          destroy = rollbackErr;
        });
        throw err;
      }
    } catch (err) {
      if (isConnectionError(err)) destroy = err as Error;
      throw this.mapError(err);
    } finally {
      client.release(destroy ?? false);
    }
  }

  /**
   * A real write that changes nothing: the newest schema_migrations row updated to its
   * own values in a transaction that is rolled back. It fails on a read-only server or
   * a role without rights, as the ledger's writes would.
   */
  async checkWritable(): Promise<void> {
    const client = await this.connect(this.pool);
    let destroy: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        await client.query(
          'UPDATE schema_migrations SET applied_at = applied_at WHERE version = (SELECT MAX(version) FROM schema_migrations)',
        );
      } finally {
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
          destroy = rollbackErr;
        });
      }
    } catch (err) {
      if (isConnectionError(err)) destroy = err as Error;
      throw this.mapError(err);
    } finally {
      client.release(destroy ?? false);
    }
  }

  async schemaStatus(): Promise<SchemaStatus> {
    const expected = POSTGRES_MIGRATIONS[POSTGRES_MIGRATIONS.length - 1]!.version;
    const { rows } = await this.query<{ present: boolean }>(
      `SELECT to_regclass('schema_migrations') IS NOT NULL AS present`,
    );
    const tables = tableVersions(this.tables, await recordedVersionsPostgres((text, values) => this.query(text, values)));
    if (!rows[0]?.present) return { current: 0, expected, tables };
    const r = await this.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
    return { current: r.rows[0]?.v ?? 0, expected, tables };
  }

  withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.localLocks.run(key, async () => {
      const client = await this.connect(this.lockPool);
      // A checked-out client has no pool error listener; without one a dropped
      // connection would crash the process. The error surfaces at unlock instead.
      let broken: Error | undefined;
      const onError = (err: Error) => {
        broken = err;
      };
      client.on('error', onError);
      const lockArgs = [LOCK_NAMESPACE_PREFIX + this.schema, key];
      const waitUntil = Date.now() + LOCK_WAIT_MS;
      for (;;) {
        try {
          await client.query('SELECT pg_advisory_lock(hashtext($1), hashtext($2))', lockArgs);
          break;
        } catch (err) {
          // statement_timeout ended the wait: the server answered, so the connection is
          // alive and the holder is merely busy (creating a channel). Wait again, up to
          // LOCK_WAIT_MS; a dead connection fails with a read timeout instead.
          const again = errorCode(err) === STATEMENT_TIMEOUT && !broken && Date.now() < waitUntil;
          if (again) continue;
          client.off('error', onError);
          client.release(err as Error);
          if (errorCode(err) === STATEMENT_TIMEOUT && !broken) {
            throw new RetryableError(
              `The PostgreSQL store lock ${JSON.stringify(key)} was still held after ${LOCK_WAIT_MS / 1000} s; try again`,
              'store_lock_timeout',
            );
          }
          throw this.mapError(err);
        }
      }
      try {
        return await fn();
      } finally {
        try {
          if (broken) throw broken;
          await client.query('SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', lockArgs);
          client.off('error', onError);
          client.release();
        } catch (err) {
          // Destroying the connection ends the session, which releases its advisory locks.
          client.off('error', onError);
          client.release(err as Error);
        }
      }
    });
  }

  /**
   * Ends both pools. Bounded: a connection to a server that stopped answering never
   * acknowledges its end, and a worker must still be able to stop.
   */
  async close(): Promise<void> {
    if (this.closed === undefined) {
      let timer: NodeJS.Timeout | undefined;
      const ended = Promise.all([this.pool.end(), this.lockPool.end()]).then(() => undefined);
      const bounded = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.timeouts.closeMs);
        timer.unref();
      });
      this.closed = Promise.race([ended, bounded]).finally(() => clearTimeout(timer));
    }
    return this.closed;
  }
}
