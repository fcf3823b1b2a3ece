/**
 * The embedded store: SQLite in one file (better-sqlite3), the default.
 *
 * - WAL journal, `synchronous=NORMAL`, a `busy_timeout`, so several processes may open
 *   the same file (a `worker run` and a `worker invoke`, or a restart overlapping).
 * - Versioned migrations recorded in `schema_migrations`, each applied in one
 *   `BEGIN IMMEDIATE` transaction. {@link SqliteStore.open} does not migrate; call
 *   {@link SqliteStore.migrate} (or use `openStore(…, { migrate: true })`).
 * - Times are stored as epoch milliseconds (INTEGER), replies as JSON text.
 * - `withLock` is an in-process keyed mutex (SQLite has no advisory locks); two stores
 *   opened on the same file in one process share it.
 *
 * Methods return promises like the PostgreSQL store although better-sqlite3 is
 * synchronous, so callers are written once for both.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { KeyedMutex } from './keyed-mutex.js';
import { classifySqliteError, FileIdentity, refuseLostStore } from './sqlite-failures.js';
import type { Migration } from './migration.js';
import { checkPluginTables, PLUGIN_TABLE_VERSIONS, tableVersions } from './plugin-tables.js';
import { migratePluginTablesSqlite, recordedVersionsSqlite, SqliteSqlExecutor } from './sqlite-sql.js';
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

/** SQLite schema history. Append new versions; never edit an applied one. */
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'invocation ledger and slack_conversations_db data table',
    steps: [
      `CREATE TABLE invocation_ledger (
         invocation_id TEXT PRIMARY KEY,
         function_name TEXT NOT NULL,
         state         TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
         attempts      INTEGER NOT NULL DEFAULT 1 CHECK (attempts >= 1),
         reply         TEXT,
         created_at    INTEGER NOT NULL,
         updated_at    INTEGER NOT NULL
       )`,
      `CREATE TABLE slack_conversations_db (
         slack_db_res_id       TEXT PRIMARY KEY,
         incident_id           INTEGER NOT NULL,
         task_id               INTEGER,
         slack_db_channel      TEXT NOT NULL,
         slack_db_channel_id   TEXT NOT NULL,
         slack_db_channel_type TEXT NOT NULL CHECK (slack_db_channel_type IN ('Private', 'Public')),
         slack_db_permalink    TEXT,
         slack_db_time         INTEGER NOT NULL,
         slack_db_archived     INTEGER NOT NULL DEFAULT 0 CHECK (slack_db_archived IN (0, 1)),
         slack_db_archived_at  INTEGER
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
    steps: [
      `CREATE TABLE function_definitions (
         name            TEXT PRIMARY KEY,
         package         TEXT NOT NULL,
         display_name    TEXT NOT NULL,
         description     TEXT NOT NULL,
         destination     TEXT NOT NULL,
         input_schema    TEXT NOT NULL,
         definition_hash TEXT NOT NULL,
         imported_at     INTEGER NOT NULL
       )`,
    ],
  },
  {
    version: 4,
    description: 'invocation_ledger: replied_at (final reply confirmed), in_flight (a delivery is running)',
    steps: [
      'ALTER TABLE invocation_ledger ADD COLUMN replied_at INTEGER',
      'ALTER TABLE invocation_ledger ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0 CHECK (in_flight IN (0, 1))',
    ],
  },
  {
    version: 5,
    description: 'invocation_ledger: reply_failures (final-reply attempts that failed), reply_abandoned_at (reply given up)',
    steps: [
      'ALTER TABLE invocation_ledger ADD COLUMN reply_failures INTEGER NOT NULL DEFAULT 0 CHECK (reply_failures >= 0)',
      'ALTER TABLE invocation_ledger ADD COLUMN reply_abandoned_at INTEGER',
    ],
  },
  {
    version: 6,
    description: 'invocation_ledger: steps (JSON object of the steps a handler completed, see ctx.steps)',
    steps: ['ALTER TABLE invocation_ledger ADD COLUMN steps TEXT'],
  },
  {
    version: 7,
    description: 'plugin_table_versions: the schema version of each table a plugin declares',
    steps: [
      `CREATE TABLE ${PLUGIN_TABLE_VERSIONS} (
         table_name TEXT PRIMARY KEY,
         version    INTEGER NOT NULL CHECK (version >= 1),
         applied_at INTEGER NOT NULL
       )`,
    ],
  },
];

export interface SqliteStoreOptions {
  /** How long a statement waits for another process's write lock. Default 10 s. */
  busyTimeoutMs?: number;
  /** The plugin tables `migrate()` creates and upgrades (see {@link PluginTable}). */
  tables?: readonly PluginTable[];
}

/** Thrown inside {@link SqliteStore.checkWritable}'s probe to roll its transaction back. */
const ROLLBACK = Symbol('rollback');

/** Shared by every SqliteStore in this process; keys are prefixed with the database identity. */
const processLocks = new KeyedMutex();
let memoryCounter = 0;

interface LedgerRecord {
  invocation_id: string;
  function_name: string;
  state: LedgerState;
  attempts: number;
  reply: string | null;
  replied_at: number | null;
  in_flight: number;
  reply_failures: number;
  reply_abandoned_at: number | null;
  steps: string | null;
  created_at: number;
  updated_at: number;
}

interface ConversationRecord {
  slack_db_res_id: string;
  incident_id: number;
  task_id: number | null;
  slack_db_channel: string;
  slack_db_channel_id: string;
  slack_db_channel_type: 'Private' | 'Public';
  slack_db_permalink: string | null;
  slack_db_time: number;
  slack_db_archived: number;
  slack_db_archived_at: number | null;
}

interface DefinitionRecord {
  name: string;
  package: string;
  display_name: string;
  description: string;
  destination: string;
  input_schema: string;
  definition_hash: string;
  imported_at: number;
}

function toDefinition(r: DefinitionRecord): FunctionDefinitionRecord {
  return {
    name: r.name,
    packageName: r.package,
    displayName: r.display_name,
    description: r.description,
    destination: r.destination,
    inputSchema: JSON.parse(r.input_schema) as Record<string, unknown>,
    hash: r.definition_hash,
    importedAt: new Date(r.imported_at),
  };
}

function toLedgerEntry(r: LedgerRecord): LedgerEntry {
  return {
    invocationId: r.invocation_id,
    functionName: r.function_name,
    state: r.state,
    attempts: r.attempts,
    reply: r.reply === null ? null : (JSON.parse(r.reply) as Record<string, unknown>),
    repliedAt: r.replied_at === null ? null : new Date(r.replied_at),
    inFlight: r.in_flight === 1,
    replyFailures: r.reply_failures,
    replyAbandonedAt: r.reply_abandoned_at === null ? null : new Date(r.reply_abandoned_at),
    steps: r.steps === null ? {} : (JSON.parse(r.steps) as Record<string, unknown>),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  };
}

function toConversationRow(r: ConversationRecord): ConversationRow {
  return {
    resId: r.slack_db_res_id,
    incidentId: r.incident_id,
    taskId: r.task_id,
    channel: r.slack_db_channel,
    channelId: r.slack_db_channel_id,
    channelType: r.slack_db_channel_type,
    permalink: r.slack_db_permalink,
    time: new Date(r.slack_db_time),
    archived: r.slack_db_archived === 1,
    archivedAt: r.slack_db_archived_at === null ? null : new Date(r.slack_db_archived_at),
  };
}

function conversationParams(row: ConversationRow): Record<string, unknown> {
  return {
    res_id: row.resId,
    incident_id: row.incidentId,
    task_id: row.taskId,
    channel: row.channel,
    channel_id: row.channelId,
    channel_type: row.channelType,
    permalink: row.permalink,
    time: row.time.getTime(),
    archived: row.archived ? 1 : 0,
    archived_at: row.archivedAt === null ? null : row.archivedAt.getTime(),
  };
}

function prepareStatements(db: Database.Database) {
  return {
    ledgerGet: db.prepare<[string], LedgerRecord>('SELECT * FROM invocation_ledger WHERE invocation_id = ?'),
    ledgerInsert: db.prepare<[string, string, number, number]>(
      `INSERT INTO invocation_ledger (invocation_id, function_name, state, attempts, reply, created_at, updated_at, in_flight)
       VALUES (?, ?, 'running', 1, NULL, ?, ?, 1)`,
    ),
    ledgerRetry: db.prepare<[number, string]>(
      `UPDATE invocation_ledger SET attempts = attempts + 1, updated_at = ?, in_flight = 1
       WHERE invocation_id = ? AND state = 'running'`,
    ),
    ledgerFinish: db.prepare<[string, string, string | null, number, number]>(
      `INSERT INTO invocation_ledger (invocation_id, function_name, state, attempts, reply, created_at, updated_at)
       VALUES (?, '', ?, 1, ?, ?, ?)
       ON CONFLICT (invocation_id) DO UPDATE SET state = excluded.state, reply = excluded.reply,
         updated_at = excluded.updated_at, in_flight = 0`,
    ),
    ledgerSteps: db.prepare<[string], { steps: string | null }>(
      `SELECT steps FROM invocation_ledger WHERE invocation_id = ? AND state = 'running'`,
    ),
    ledgerSetSteps: db.prepare<[string, string]>(`UPDATE invocation_ledger SET steps = ? WHERE invocation_id = ?`),
    ledgerRelease: db.prepare<[string]>(
      `UPDATE invocation_ledger SET in_flight = 0 WHERE invocation_id = ? AND state = 'running'`,
    ),
    ledgerReplied: db.prepare<[number, string]>(
      `UPDATE invocation_ledger SET replied_at = COALESCE(replied_at, ?)
       WHERE invocation_id = ? AND state <> 'running'`,
    ),
    ledgerReplyFailed: db.prepare<[number, string], { reply_failures: number }>(
      `UPDATE invocation_ledger SET reply_failures = reply_failures + 1, updated_at = ?
       WHERE invocation_id = ? AND state <> 'running' RETURNING reply_failures`,
    ),
    ledgerAbandon: db.prepare<[number, string]>(
      `UPDATE invocation_ledger SET reply_abandoned_at = COALESCE(reply_abandoned_at, ?)
       WHERE invocation_id = ? AND state <> 'running'`,
    ),
    ledgerPrune: db.prepare<[number]>(`DELETE FROM invocation_ledger WHERE state <> 'running' AND updated_at < ?`),
    convGet: db.prepare<[string], ConversationRecord>('SELECT * FROM slack_conversations_db WHERE slack_db_res_id = ?'),
    convInsertIgnore: db.prepare<[Record<string, unknown>]>(
      `INSERT INTO slack_conversations_db (slack_db_res_id, incident_id, task_id, slack_db_channel,
         slack_db_channel_id, slack_db_channel_type, slack_db_permalink, slack_db_time, slack_db_archived,
         slack_db_archived_at)
       VALUES (@res_id, @incident_id, @task_id, @channel, @channel_id, @channel_type, @permalink, @time,
         @archived, @archived_at)
       ON CONFLICT (slack_db_res_id) DO NOTHING`,
    ),
    convUpsert: db.prepare<[Record<string, unknown>]>(
      `INSERT INTO slack_conversations_db (slack_db_res_id, incident_id, task_id, slack_db_channel,
         slack_db_channel_id, slack_db_channel_type, slack_db_permalink, slack_db_time, slack_db_archived,
         slack_db_archived_at)
       VALUES (@res_id, @incident_id, @task_id, @channel, @channel_id, @channel_type, @permalink, @time,
         @archived, @archived_at)
       ON CONFLICT (slack_db_res_id) DO UPDATE SET incident_id = excluded.incident_id,
         task_id = excluded.task_id, slack_db_channel = excluded.slack_db_channel,
         slack_db_channel_id = excluded.slack_db_channel_id, slack_db_channel_type = excluded.slack_db_channel_type,
         slack_db_permalink = excluded.slack_db_permalink, slack_db_time = excluded.slack_db_time,
         slack_db_archived = excluded.slack_db_archived, slack_db_archived_at = excluded.slack_db_archived_at`,
    ),
    convArchive: db.prepare<[number, string]>(
      `UPDATE slack_conversations_db
       SET slack_db_archived_at = CASE WHEN slack_db_archived = 1 THEN slack_db_archived_at ELSE ? END,
           slack_db_archived = 1
       WHERE slack_db_res_id = ?`,
    ),
    convByChannel: db.prepare<[string], ConversationRecord>(
      'SELECT * FROM slack_conversations_db WHERE slack_db_channel_id = ? ORDER BY slack_db_res_id',
    ),
    convList: db.prepare<[], ConversationRecord>('SELECT * FROM slack_conversations_db ORDER BY slack_db_res_id'),
    defGet: db.prepare<[string], DefinitionRecord>('SELECT * FROM function_definitions WHERE name = ?'),
    defList: db.prepare<[], DefinitionRecord>('SELECT * FROM function_definitions ORDER BY name'),
    defUpsert: db.prepare<[Record<string, unknown>]>(
      `INSERT INTO function_definitions (name, package, display_name, description, destination, input_schema,
         definition_hash, imported_at)
       VALUES (@name, @package, @display_name, @description, @destination, @input_schema, @hash, @imported_at)
       ON CONFLICT (name) DO UPDATE SET package = excluded.package, display_name = excluded.display_name,
         description = excluded.description, destination = excluded.destination,
         input_schema = excluded.input_schema, definition_hash = excluded.definition_hash,
         imported_at = excluded.imported_at
       WHERE function_definitions.definition_hash <> excluded.definition_hash`,
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** A ledger write waiting for the next group commit. */
interface PendingWrite {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly ledger: InvocationLedger;
  readonly conversations: ConversationTable;
  readonly definitions: DefinitionTable;
  readonly sql: SqliteSqlExecutor;
  private statements: Statements | undefined;
  private readonly lockPrefix: string;
  private closed = false;
  /** Ledger writes waiting for the next group commit (see {@link write}). */
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  /** The group commit's transaction function, made once. */
  private batch: Database.Transaction<(batch: PendingWrite[], out: { ok: boolean; value?: unknown; error?: unknown }[]) => void> | undefined;

  /** The file as opened, to notice it being deleted or replaced (undefined for `:memory:`). */
  private readonly identity: FileIdentity | undefined;

  private constructor(
    private readonly db: Database.Database,
    readonly location: string,
    /** True when this open created the file (a first run, or a store that was lost: see `refuseLostStore`). */
    readonly created: boolean,
    private readonly tables: readonly PluginTable[],
  ) {
    this.identity = FileIdentity.of(location);
    this.lockPrefix = location === ':memory:' ? `:memory:#${++memoryCounter}` : location;
    this.sql = new SqliteSqlExecutor(
      (fn) =>
        this.call(() => {
          if (this.closed) throw new Error(`The store ${this.location} is closed`);
          return fn(this.db);
        }),
      () => this.identity?.check(),
    );
    this.ledger = {
      begin: (invocationId, functionName) => this.write(() => this.begin(invocationId, functionName)),
      finish: (invocationId, state, reply) => {
        const json = JSON.stringify(reply);
        return this.write(() => {
          const now = Date.now();
          this.stmts().ledgerFinish.run(invocationId, state, json, now, now);
        });
      },
      recordStep: (invocationId, name, value) => {
        let json: string;
        try {
          json = stepJson(name, value);
        } catch (err) {
          return Promise.reject(err);
        }
        // Read-modify-write is safe here: it runs inside the group commit's IMMEDIATE
        // transaction, which holds the write lock across the read.
        return this.write(() => {
          const s = this.stmts();
          const row = s.ledgerSteps.get(invocationId);
          if (row === undefined) throw new Error(`Invocation ${invocationId} has no running ledger entry to record step "${name}" on`);
          const steps = row.steps === null ? {} : (JSON.parse(row.steps) as Record<string, unknown>);
          steps[name] = JSON.parse(json);
          s.ledgerSetSteps.run(JSON.stringify(steps), invocationId);
        });
      },
      release: (invocationId) =>
        this.write(() => {
          this.stmts().ledgerRelease.run(invocationId);
        }),
      markReplied: (invocationId) => this.write(() => this.stmts().ledgerReplied.run(Date.now(), invocationId).changes === 1),
      replyFailed: (invocationId) =>
        this.write(() => this.stmts().ledgerReplyFailed.get(Date.now(), invocationId)?.reply_failures ?? 0),
      abandonReply: (invocationId) => this.write(() => this.stmts().ledgerAbandon.run(Date.now(), invocationId).changes === 1),
      get: (invocationId) =>
        this.call(() => {
          const r = this.stmts().ledgerGet.get(invocationId);
          return r === undefined ? undefined : toLedgerEntry(r);
        }),
      prune: (before) => this.call(() => this.stmts().ledgerPrune.run(before.getTime()).changes, true),
    };
    this.conversations = {
      get: (resId) =>
        this.call(() => {
          const r = this.stmts().convGet.get(resId);
          return r === undefined ? undefined : toConversationRow(r);
        }),
      insertIfAbsent: (row) =>
        this.call(() => {
          const s = this.stmts();
          return this.db.transaction(() => {
            const inserted = s.convInsertIgnore.run(conversationParams(row)).changes === 1;
            const stored = s.convGet.get(row.resId);
            if (stored === undefined) throw new Error(`slack_conversations_db row ${row.resId} vanished after insert`);
            return { row: toConversationRow(stored), inserted };
          }).immediate();
        }, true),
      replace: (row) =>
        this.call(() => {
          this.stmts().convUpsert.run(conversationParams(row));
        }, true),
      markArchived: (resId, at) => this.call(() => this.stmts().convArchive.run(at.getTime(), resId).changes === 1, true),
      findByChannelId: (channelId) => this.call(() => this.stmts().convByChannel.all(channelId).map(toConversationRow)),
      list: () => this.call(() => this.stmts().convList.all().map(toConversationRow)),
    };
    this.definitions = {
      list: () => this.call(() => this.stmts().defList.all().map(toDefinition)),
      get: (name) =>
        this.call(() => {
          const r = this.stmts().defGet.get(name);
          return r === undefined ? undefined : toDefinition(r);
        }),
      upsert: (d) => this.call(() => {
        const s = this.stmts();
        return this.db.transaction(() => {
          const existed = s.defGet.get(d.name) !== undefined;
          const changes = s.defUpsert.run({
            name: d.name,
            package: d.packageName,
            display_name: d.displayName,
            description: d.description,
            destination: d.destination,
            input_schema: JSON.stringify(d.inputSchema),
            hash: d.hash,
            imported_at: Date.now(),
          }).changes;
          if (changes === 0) return 'unchanged' as const;
          return existed ? ('updated' as const) : ('created' as const);
        }).immediate();
      }, true),
    };
  }

  /**
   * Opens (creating if needed) the database file and its parent directories.
   * `:memory:` gives a private in-memory database. Does not migrate.
   *
   * Refuses (StoreUnusableError) to create a missing file whose "created" marker says a
   * worker used a store there before; see `sqlite-failures.ts`.
   */
  static open(file: string, opts: SqliteStoreOptions = {}): SqliteStore {
    const tables = [...(opts.tables ?? [])];
    checkPluginTables(tables, 'the tables given to the store');
    const location = file === ':memory:' ? file : resolve(file);
    const created = location !== ':memory:' && !existsSync(location);
    if (created) refuseLostStore(location);
    let db: Database.Database | undefined;
    try {
      if (location !== ':memory:') mkdirSync(dirname(location), { recursive: true });
      db = new Database(location);
      if (location !== ':memory:') db.pragma('journal_mode = WAL');
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 10_000))}`);
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
    } catch (err) {
      db?.close();
      throw classifySqliteError(err, location);
    }
    return new SqliteStore(db, location, created, tables);
  }

  /**
   * Runs one store call, its failure classified (see `classifySqliteError`). A `write`
   * first checks that the path still names the file that was opened: SQLite would
   * otherwise write into a deleted file, and the write would be lost at exit.
   */
  private call<T>(fn: () => T, write = false): Promise<T> {
    try {
      if (write) this.identity?.check();
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(classifySqliteError(err, this.location));
    }
  }

  /**
   * Proves the store can take a write: the file is still the one opened, and an UPDATE
   * of the newest schema_migrations row (to its own values) succeeds inside a
   * transaction that is rolled back, so nothing is changed and the WAL does not grow.
   */
  checkWritable(): Promise<void> {
    return this.call(() => {
      if (this.closed) throw new Error(`The store ${this.location} is closed`);
      const probe = this.db.transaction(() => {
        this.db
          .prepare('UPDATE schema_migrations SET applied_at = applied_at WHERE version = (SELECT MAX(version) FROM schema_migrations)')
          .run();
        throw ROLLBACK;
      });
      try {
        probe.immediate();
      } catch (err) {
        if (err !== ROLLBACK) throw err;
      }
    }, true);
  }

  private stmts(): Statements {
    if (this.statements) return this.statements;
    if (this.closed) throw new Error(`The store ${this.location} is closed`);
    const { current, expected } = this.readSchemaStatus();
    if (current < expected) {
      throw new Error(
        `The store ${this.location} is at schema version ${current}, this worker needs ${expected}: ` +
          'run the migrations (worker customize, or open the store with migrate)',
      );
    }
    this.statements = prepareStatements(this.db);
    return this.statements;
  }

  /**
   * Runs a ledger write in the next group commit and resolves once that has committed.
   *
   * Group commit: the ledger writes requested in one event-loop turn (with 25
   * invocations in flight there are usually several: begins, finishes, confirmed
   * replies) share one IMMEDIATE transaction, so a busy worker pays for one commit (WAL
   * append, lock, header) per turn instead of three per invocation. Nothing is weakened:
   * a caller's promise resolves only after the commit that holds its write, exactly as
   * when each write committed alone, so what a crash can lose is unchanged.
   *
   * Each write makes at most one change (one INSERT or UPDATE; `begin` reads around its
   * one change), and SQLite undoes a failed statement by itself, so a write that fails
   * (a constraint) fails only its own caller and leaves nothing behind, without the cost
   * of a savepoint per write. An error that ends the whole transaction (disk full, I/O)
   * fails every write of the batch.
   */
  private write<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run, resolve: resolve as (value: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits the pending ledger writes together (see {@link write}). */
  private flush(): void {
    this.flushScheduled = false;
    const ops = this.pending;
    if (ops.length === 0) return;
    this.pending = [];
    const outcomes: { ok: boolean; value?: unknown; error?: unknown }[] = [];
    try {
      if (this.closed) throw new Error(`The store ${this.location} is closed`);
      this.identity?.check();
      this.batch ??= this.db.transaction((batch: PendingWrite[], out: typeof outcomes) => {
        for (const op of batch) {
          try {
            out.push({ ok: true, value: op.run() });
          } catch (error) {
            // The transaction itself is gone (SQLite rolled it back): fail the batch.
            if (!this.db.inTransaction) throw error;
            out.push({ ok: false, error });
          }
        }
      });
      this.batch.immediate(ops, outcomes);
    } catch (error) {
      const failure = classifySqliteError(error, this.location);
      for (const op of ops) op.reject(failure);
      return;
    }
    ops.forEach((op, i) => {
      const o = outcomes[i]!;
      if (o.ok) op.resolve(o.value);
      else op.reject(classifySqliteError(o.error, this.location));
    });
  }

  /** Runs inside {@link flush}'s IMMEDIATE transaction: the write lock is held before the read. */
  private begin(invocationId: string, functionName: string): LedgerBegin {
    const s = this.stmts();
    // The write lock is taken before the read, so another process on the same file
    // cannot read the same attempt count in between.
    const now = Date.now();
    const existing = s.ledgerGet.get(invocationId);
    if (existing === undefined) {
      s.ledgerInsert.run(invocationId, functionName, now, now);
      return { entry: toLedgerEntry(s.ledgerGet.get(invocationId)!), finished: false, interrupted: false };
    }
    if (existing.state !== 'running') {
      return { entry: toLedgerEntry(existing), finished: true, interrupted: false };
    }
    s.ledgerRetry.run(now, invocationId);
    return { entry: toLedgerEntry(s.ledgerGet.get(invocationId)!), finished: false, interrupted: true };
  }

  private readSchemaStatus(): SchemaStatus {
    const expected = SQLITE_MIGRATIONS[SQLITE_MIGRATIONS.length - 1]!.version;
    const table = this.db
      .prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`)
      .get();
    const tables = tableVersions(this.tables, recordedVersionsSqlite(this.db));
    if (table === undefined) return { current: 0, expected, tables };
    const row = this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
    return { current: row.v ?? 0, expected, tables };
  }

  migrate(): Promise<number[]> {
    return this.call(() => this.applyMigrations(), true);
  }

  private applyMigrations(): number[] {
    const applied = this.db.transaction((): number[] => {
      this.db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY,
        description TEXT NOT NULL,
        applied_at INTEGER NOT NULL
      )`);
      const done = new Set(
        (this.db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version),
      );
      const record = this.db.prepare('INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)');
      const versions: number[] = [];
      for (const m of SQLITE_MIGRATIONS) {
        if (done.has(m.version)) continue;
        for (const step of m.steps) this.db.exec(step);
        record.run(m.version, m.description, Date.now());
        versions.push(m.version);
      }
      migratePluginTablesSqlite(this.db, this.tables);
      return versions;
    }).immediate();
    return applied;
  }

  schemaStatus(): Promise<SchemaStatus> {
    return this.call(() => this.readSchemaStatus());
  }

  withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return processLocks.run(`${this.lockPrefix}\u0000${key}`, fn);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush(); // writes already requested are committed, not dropped
    this.closed = true;
    this.statements = undefined;
    this.sql.clear();
    this.db.close();
  }
}
