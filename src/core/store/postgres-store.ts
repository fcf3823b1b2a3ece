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
 * - Connection failures become {@link RetryableError}s naming host:port; the password
 *   never appears in `location`, errors or logs.
 */
// Types only here: pg itself is loaded by open(), so that a worker on the default SQLite
// store does not spend start-up time (~80 ms on the benchmark machine) loading it.
import type pg from 'pg';
import { ConfigError, errorCode, RetryableError } from '../errors.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { Migration } from './migration.js';
import type {
  ConversationRow,
  ConversationTable,
  DefinitionTable,
  FunctionDefinitionRecord,
  InvocationLedger,
  LedgerBegin,
  LedgerEntry,
  LedgerState,
  Store,
} from './store.js';
import { stepJson } from './store.js';

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
    version: 6,
    description: 'invocation_ledger: steps (JSON object of the steps a handler completed, see ctx.steps)',
    steps: ['ALTER TABLE invocation_ledger ADD COLUMN steps JSONB'],
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
  /** Told about errors of idle pooled connections (they are dropped; the next query reconnects). */
  onIdleError?: (err: Error) => void;
}

/** Returns the URL with any password (and password-like query parameters) replaced by `***`. */
export function redactPostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) {
      if (/pass|secret|token|sslkey/i.test(key)) u.searchParams.set(key, '***');
    }
    return u.toString();
  } catch {
    return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@').replace(/(password=)[^&\s]*/gi, '$1***');
  }
}

interface Endpoint {
  hostPort: string;
  database: string;
  password: string;
}

function describeEndpoint(url: string): Endpoint {
  try {
    const u = new URL(url);
    const host = u.searchParams.get('host') || u.hostname || process.env.PGHOST || 'localhost';
    const port = u.searchParams.get('port') || u.port || process.env.PGPORT || '5432';
    const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || u.username || 'postgres';
    const password = u.searchParams.get('password') || decodeURIComponent(u.password);
    return { hostPort: `${host}:${port}`, database, password };
  } catch {
    return { hostPort: 'unknown host', database: 'unknown', password: '' };
  }
}

const CONNECTION_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EPIPE',
]);
/** SQLSTATEs meaning "the server cannot serve us now" (retry later). */
const CONNECTION_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '53400']);
/** SQLSTATEs meaning "the configured URL is wrong" (retrying will not help). */
const CONFIG_SQLSTATES = new Set(['28000', '28P01', '3D000', '42501']);

function isConnectionError(err: unknown): boolean {
  const code = errorCode(err);
  if (code !== undefined && (CONNECTION_NODE_CODES.has(code) || CONNECTION_SQLSTATES.has(code) || code.startsWith('08'))) {
    return true;
  }
  const message = err instanceof Error ? err.message : String(err);
  return /Connection terminated|timeout exceeded when trying to connect|connection timeout|Client has encountered a connection error/i.test(
    message,
  );
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

interface LedgerRecord {
  invocation_id: string;
  function_name: string;
  state: LedgerState;
  attempts: number;
  reply: Record<string, unknown> | null;
  replied_at: Date | null;
  in_flight: boolean;
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
const MIGRATE_LOCK = 'soar-slack-worker:migrate';

export class PostgresStore implements Store {
  readonly kind = 'postgres';
  readonly location: string;
  readonly schema: string;
  readonly ledger: InvocationLedger;
  readonly conversations: ConversationTable;
  readonly definitions: DefinitionTable;
  private readonly localLocks = new KeyedMutex();
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly lockPool: pg.Pool,
    private readonly endpoint: Endpoint,
    url: string,
    schema: string,
  ) {
    this.location = redactPostgresUrl(url);
    this.schema = schema;

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
    const endpoint = describeEndpoint(url);
    const base = PostgresStore.poolConfig(url, schema, opts.connectTimeoutMs ?? 10_000);
    const { default: pgRuntime } = await import('pg');
    const pool = new pgRuntime.Pool({ ...base, max: poolSize });
    const lockPool = new pgRuntime.Pool({ ...base, max: lockPoolSize });
    const onIdleError = opts.onIdleError ?? (() => undefined);
    pool.on('error', onIdleError);
    lockPool.on('error', onIdleError);
    const store = new PostgresStore(pool, lockPool, endpoint, url, schema);
    try {
      await store.query('SELECT 1');
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  private static poolConfig(url: string, schema: string, connectTimeoutMs: number): pg.PoolConfig {
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
      connectionTimeoutMillis: connectTimeoutMs,
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
    if (isConnectionError(err)) {
      return new RetryableError(`Cannot reach the PostgreSQL store at ${where}: ${raw}`, 'store_unavailable', details);
    }
    const code = errorCode(err);
    if (code !== undefined && CONFIG_SQLSTATES.has(code)) {
      return new ConfigError(`The PostgreSQL store at ${where} refused the connection: ${raw}`);
    }
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
    let destroy: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [MIGRATE_LOCK, this.schema]);
        const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.schema]);
        if (exists.rowCount === 0) await client.query(`CREATE SCHEMA "${this.schema}"`);
        await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
          version     INTEGER PRIMARY KEY,
          description TEXT NOT NULL,
          applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
        )`);
        const done = new Set(
          (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
        );
        const applied: number[] = [];
        for (const m of POSTGRES_MIGRATIONS) {
          if (done.has(m.version)) continue;
          for (const step of m.steps) await client.query(step);
          await client.query('INSERT INTO schema_migrations (version, description) VALUES ($1, $2)', [
            m.version,
            m.description,
          ]);
          applied.push(m.version);
        }
        await client.query('COMMIT');
        return applied;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
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

  async schemaStatus(): Promise<{ current: number; expected: number }> {
    const expected = POSTGRES_MIGRATIONS[POSTGRES_MIGRATIONS.length - 1]!.version;
    const { rows } = await this.query<{ present: boolean }>(
      `SELECT to_regclass('schema_migrations') IS NOT NULL AS present`,
    );
    if (!rows[0]?.present) return { current: 0, expected };
    const r = await this.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
    return { current: r.rows[0]?.v ?? 0, expected };
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
      try {
        await client.query('SELECT pg_advisory_lock(hashtext($1), hashtext($2))', lockArgs);
      } catch (err) {
        client.off('error', onError);
        client.release(err as Error);
        throw this.mapError(err);
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

  async close(): Promise<void> {
    if (this.closed === undefined) {
      this.closed = Promise.all([this.pool.end(), this.lockPool.end()]).then(() => undefined);
    }
    return this.closed;
  }
}
