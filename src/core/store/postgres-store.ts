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
import { migratePluginTablesPostgres, PostgresSqlExecutor, recordedVersionsPostgres } from './postgres-sql.js';
import type {
  ConversationRow,
  ConversationTable,
  DefinitionTable,
  FunctionDefinitionRecord,
  InvocationLedger,
  LedgerBegin,
  LedgerEntry,
  LedgerState,
  PluginTable,
  SchemaStatus,
  Store,
} from './store.js';
import { stepJson } from './store.js';

export { redactPostgresUrl } from './postgres-failures.js';

/** PostgreSQL schema history. Append new versions; never edit an applied one. */
export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'invocation ledger and slack_conversations_db data table',
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
      `CREATE TABLE slack_conversations_db (
         slack_db_res_id       TEXT PRIMARY KEY,
         incident_id           BIGINT NOT NULL,
         task_id               BIGINT,
         slack_db_channel      TEXT NOT NULL,
         slack_db_channel_id   TEXT NOT NULL,
         slack_db_channel_type TEXT NOT NULL CHECK (slack_db_channel_type IN ('Private', 'Public')),
         slack_db_permalink    TEXT,
         slack_db_time         TIMESTAMPTZ NOT NULL,
         slack_db_archived     BOOLEAN NOT NULL DEFAULT false,
         slack_db_archived_at  TIMESTAMPTZ
       )`,
    ],
  },
  {
    version: 2,
    description: 'indexes for prune and channel lookups',
    steps: [
      'CREATE INDEX invocation_ledger_state_updated ON invocation_ledger (state, updated_at)',
      'CREATE INDEX slack_conversations_db_channel_id ON slack_conversations_db (slack_db_channel_id)',
    ],
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

interface LedgerRecord {
  invocation_id: string;
  function_name: string;
  state: LedgerState;
  attempts: number;
  reply: Record<string, unknown> | null;
  replied_at: Date | null;
  in_flight: boolean;
  reply_failures: number;
  reply_abandoned_at: Date | null;
  steps: Record<string, unknown> | null;
  created_at: Date;
  updated_at: Date;
}

interface ConversationRecord {
  slack_db_res_id: string;
  incident_id: string | number;
  task_id: string | number | null;
  slack_db_channel: string;
  slack_db_channel_id: string;
  slack_db_channel_type: 'Private' | 'Public';
  slack_db_permalink: string | null;
  slack_db_time: Date;
  slack_db_archived: boolean;
  slack_db_archived_at: Date | null;
}

interface DefinitionRecord {
  name: string;
  package: string;
  display_name: string;
  description: string;
  destination: string;
  input_schema: Record<string, unknown>;
  definition_hash: string;
  imported_at: Date;
}

function toDefinition(r: DefinitionRecord): FunctionDefinitionRecord {
  return {
    name: r.name,
    packageName: r.package,
    displayName: r.display_name,
    description: r.description,
    destination: r.destination,
    inputSchema: r.input_schema,
    hash: r.definition_hash,
    importedAt: r.imported_at,
  };
}

function toLedgerEntry(r: LedgerRecord): LedgerEntry {
  return {
    invocationId: r.invocation_id,
    functionName: r.function_name,
    state: r.state,
    attempts: r.attempts,
    reply: r.reply,
    repliedAt: r.replied_at,
    inFlight: r.in_flight,
    replyFailures: r.reply_failures,
    replyAbandonedAt: r.reply_abandoned_at,
    steps: r.steps ?? {},
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toConversationRow(r: ConversationRecord): ConversationRow {
  return {
    resId: r.slack_db_res_id,
    incidentId: Number(r.incident_id),
    taskId: r.task_id === null ? null : Number(r.task_id),
    channel: r.slack_db_channel,
    channelId: r.slack_db_channel_id,
    channelType: r.slack_db_channel_type,
    permalink: r.slack_db_permalink,
    time: r.slack_db_time,
    archived: r.slack_db_archived,
    archivedAt: r.slack_db_archived_at,
  };
}

function conversationValues(row: ConversationRow): unknown[] {
  return [
    row.resId,
    row.incidentId,
    row.taskId,
    row.channel,
    row.channelId,
    row.channelType,
    row.permalink,
    row.time,
    row.archived,
    row.archivedAt,
  ];
}

const CONVERSATION_COLUMNS = `slack_db_res_id, incident_id, task_id, slack_db_channel, slack_db_channel_id,
  slack_db_channel_type, slack_db_permalink, slack_db_time, slack_db_archived, slack_db_archived_at`;

const LOCK_NAMESPACE_PREFIX = 'soar-slack-worker:lock:';
/** How long withLock waits for another holder of the same key (a channel being created). */
const LOCK_WAIT_MS = 300_000;
const MIGRATE_LOCK = 'soar-slack-worker:migrate';

export class PostgresStore implements Store {
  readonly kind = 'postgres';
  readonly location: string;
  readonly schema: string;
  readonly ledger: InvocationLedger;
  readonly conversations: ConversationTable;
  readonly definitions: DefinitionTable;
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
    this.sql = new PostgresSqlExecutor((text, values) => this.query(text, values));

    this.ledger = {
      begin: async (invocationId, functionName): Promise<LedgerBegin> => {
        // The conflict path locks the existing row and re-reads its latest version, so
        // concurrent deliveries increment one after another. `state` is never changed
        // here, so the returned state is the state before this delivery; `xmax = 0`
        // holds only for a freshly inserted row version.
        const { rows } = await this.query<LedgerRecord & { inserted: boolean }>(
          `INSERT INTO invocation_ledger AS l (invocation_id, function_name, state, attempts, reply, created_at, updated_at, in_flight)
           VALUES ($1, $2, 'running', 1, NULL, now(), now(), true)
           ON CONFLICT (invocation_id) DO UPDATE SET
             attempts   = CASE WHEN l.state = 'running' THEN l.attempts + 1 ELSE l.attempts END,
             updated_at = CASE WHEN l.state = 'running' THEN now() ELSE l.updated_at END,
             in_flight  = (l.state = 'running') OR l.in_flight
           RETURNING l.*, (l.xmax = 0) AS inserted`,
          [invocationId, functionName],
        );
        const r = rows[0]!;
        const entry = toLedgerEntry(r);
        if (r.inserted) return { entry, finished: false, interrupted: false };
        if (r.state === 'running') return { entry, finished: false, interrupted: true };
        return { entry, finished: true, interrupted: false };
      },
      finish: async (invocationId, state, reply) => {
        await this.query(
          `INSERT INTO invocation_ledger AS l (invocation_id, function_name, state, attempts, reply, created_at, updated_at)
           VALUES ($1, '', $2, 1, $3::jsonb, now(), now())
           ON CONFLICT (invocation_id) DO UPDATE SET state = EXCLUDED.state, reply = EXCLUDED.reply,
             updated_at = EXCLUDED.updated_at, in_flight = false`,
          [invocationId, state, JSON.stringify(reply)],
        );
      },
      recordStep: async (invocationId, name, value) => {
        const json = stepJson(name, value);
        // One statement: `||` merges the step into the object under the row lock, so
        // concurrent steps of one invocation do not overwrite each other.
        const result = await this.query(
          `UPDATE invocation_ledger SET steps = COALESCE(steps, '{}'::jsonb) || jsonb_build_object($2::text, $3::jsonb)
           WHERE invocation_id = $1 AND state = 'running'`,
          [invocationId, name, json],
        );
        if (result.rowCount !== 1) {
          throw new Error(`Invocation ${invocationId} has no running ledger entry to record step "${name}" on`);
        }
      },
      release: async (invocationId) => {
        await this.query(`UPDATE invocation_ledger SET in_flight = false WHERE invocation_id = $1 AND state = 'running'`, [
          invocationId,
        ]);
      },
      markReplied: async (invocationId) => {
        const result = await this.query(
          `UPDATE invocation_ledger SET replied_at = COALESCE(replied_at, now())
           WHERE invocation_id = $1 AND state <> 'running'`,
          [invocationId],
        );
        return result.rowCount === 1;
      },
      replyFailed: async (invocationId) => {
        const { rows } = await this.query<{ reply_failures: number }>(
          `UPDATE invocation_ledger SET reply_failures = reply_failures + 1, updated_at = now()
           WHERE invocation_id = $1 AND state <> 'running' RETURNING reply_failures`,
          [invocationId],
        );
        return rows[0]?.reply_failures ?? 0;
      },
      abandonReply: async (invocationId) => {
        const result = await this.query(
          `UPDATE invocation_ledger SET reply_abandoned_at = COALESCE(reply_abandoned_at, now())
           WHERE invocation_id = $1 AND state <> 'running'`,
          [invocationId],
        );
        return result.rowCount === 1;
      },
      get: async (invocationId) => {
        const { rows } = await this.query<LedgerRecord>('SELECT * FROM invocation_ledger WHERE invocation_id = $1', [
          invocationId,
        ]);
        return rows[0] === undefined ? undefined : toLedgerEntry(rows[0]);
      },
      prune: async (before) => {
        const result = await this.query(`DELETE FROM invocation_ledger WHERE state <> 'running' AND updated_at < $1`, [
          before,
        ]);
        return result.rowCount ?? 0;
      },
    };

    this.conversations = {
      get: async (resId) => this.getConversation(resId),
      insertIfAbsent: async (row) => {
        // DO NOTHING waits for a concurrent uncommitted insert of the same key, so the
        // follow-up SELECT (a new snapshot) sees the winner's row.
        for (let attempt = 0; attempt < 5; attempt++) {
          const { rows } = await this.query<ConversationRecord>(
            `INSERT INTO slack_conversations_db (${CONVERSATION_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (slack_db_res_id) DO NOTHING
             RETURNING *`,
            conversationValues(row),
          );
          if (rows[0] !== undefined) return { row: toConversationRow(rows[0]), inserted: true };
          const stored = await this.getConversation(row.resId);
          if (stored !== undefined) return { row: stored, inserted: false };
          // The conflicting row was deleted in between: try again.
        }
        throw new RetryableError(`slack_conversations_db row ${row.resId} keeps changing; try again`, 'store_conflict');
      },
      replace: async (row) => {
        await this.query(
          `INSERT INTO slack_conversations_db (${CONVERSATION_COLUMNS})
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (slack_db_res_id) DO UPDATE SET incident_id = EXCLUDED.incident_id,
             task_id = EXCLUDED.task_id, slack_db_channel = EXCLUDED.slack_db_channel,
             slack_db_channel_id = EXCLUDED.slack_db_channel_id,
             slack_db_channel_type = EXCLUDED.slack_db_channel_type,
             slack_db_permalink = EXCLUDED.slack_db_permalink, slack_db_time = EXCLUDED.slack_db_time,
             slack_db_archived = EXCLUDED.slack_db_archived, slack_db_archived_at = EXCLUDED.slack_db_archived_at`,
          conversationValues(row),
        );
      },
      markArchived: async (resId, at) => {
        const result = await this.query(
          `UPDATE slack_conversations_db
           SET slack_db_archived_at = CASE WHEN slack_db_archived THEN slack_db_archived_at ELSE $2 END,
               slack_db_archived = true
           WHERE slack_db_res_id = $1`,
          [resId, at],
        );
        return result.rowCount === 1;
      },
      findByChannelId: async (channelId) => {
        const { rows } = await this.query<ConversationRecord>(
          'SELECT * FROM slack_conversations_db WHERE slack_db_channel_id = $1 ORDER BY slack_db_res_id',
          [channelId],
        );
        return rows.map(toConversationRow);
      },
      list: async () => {
        const { rows } = await this.query<ConversationRecord>(
          'SELECT * FROM slack_conversations_db ORDER BY slack_db_res_id',
        );
        return rows.map(toConversationRow);
      },
    };

    this.definitions = {
      list: async () => {
        const { rows } = await this.query<DefinitionRecord>('SELECT * FROM function_definitions ORDER BY name');
        return rows.map(toDefinition);
      },
      get: async (name) => {
        const { rows } = await this.query<DefinitionRecord>('SELECT * FROM function_definitions WHERE name = $1', [name]);
        return rows[0] === undefined ? undefined : toDefinition(rows[0]);
      },
      upsert: async (d) => {
        // The WHERE makes an equal hash a no-op (no row returned); `xmax = 0` holds only
        // for a freshly inserted row version.
        const { rows } = await this.query<{ inserted: boolean }>(
          `INSERT INTO function_definitions AS f (name, package, display_name, description, destination,
             input_schema, definition_hash, imported_at)
           VALUES ($1, $2, $3, $4, $5, $6::json, $7, now())
           ON CONFLICT (name) DO UPDATE SET package = EXCLUDED.package, display_name = EXCLUDED.display_name,
             description = EXCLUDED.description, destination = EXCLUDED.destination,
             input_schema = EXCLUDED.input_schema, definition_hash = EXCLUDED.definition_hash,
             imported_at = EXCLUDED.imported_at
           WHERE f.definition_hash <> EXCLUDED.definition_hash
           RETURNING (f.xmax = 0) AS inserted`,
          [d.name, d.packageName, d.displayName, d.description, d.destination, JSON.stringify(d.inputSchema), d.hash],
        );
        if (rows[0] === undefined) return 'unchanged';
        return rows[0].inserted ? 'created' : 'updated';
      },
    };
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

  private async getConversation(resId: string): Promise<ConversationRow | undefined> {
    const { rows } = await this.query<ConversationRecord>(
      'SELECT * FROM slack_conversations_db WHERE slack_db_res_id = $1',
      [resId],
    );
    return rows[0] === undefined ? undefined : toConversationRow(rows[0]);
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
