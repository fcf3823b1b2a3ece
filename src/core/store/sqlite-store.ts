/**
 * The embedded store: SQLite in one file (better-sqlite3), the default.
 *
 * - WAL journal, `synchronous=NORMAL`, a `busy_timeout`, so several processes may open
 *   the same file (a `worker run` and a `worker invoke`, or a restart overlapping).
 * - Versioned migrations recorded in `schema_migrations`, each applied in one
 *   `BEGIN IMMEDIATE` transaction. {@link SqliteStore.open} does not migrate; call
 *   {@link SqliteStore.migrate} (or use `openStore(…, { migrate: true })`).
 * - Times are stored as epoch milliseconds (INTEGER), replies as JSON text.
 * - `withLock` holds a keyed mutex of this process (two stores opened on the same file in
 *   one process share it), then a lock file in `<file>-locks/` (core/file-lock.ts): SQLite
 *   has no advisory locks, and several workers may share the file, so a critical section
 *   (a channel created, an escalation posted) is one across processes too.
 *
 * Methods return promises like the PostgreSQL store although better-sqlite3 is
 * synchronous, so callers are written once for both.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { withFileLock } from '../file-lock.js';
import { KeyedMutex } from './keyed-mutex.js';
import { classifySqliteError, FileIdentity, refuseLostStore } from './sqlite-failures.js';
import type { Migration } from './migration.js';
import { checkPluginTables, PLUGIN_TABLE_VERSIONS, tableVersions } from './plugin-tables.js';
import { SqliteDefinitions } from './sqlite-definitions.js';
import { SqliteLedger } from './sqlite-ledger.js';
import { migratePluginTablesSqlite, recordedVersionsSqlite, SqliteSqlExecutor } from './sqlite-sql.js';
import type { PluginTable, SchemaStatus, Store } from './store.js';

/** SQLite schema history. Append new versions; never edit an applied one. */
export const SQLITE_MIGRATIONS: readonly Migration[] = [
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
         reply         TEXT,
         created_at    INTEGER NOT NULL,
         updated_at    INTEGER NOT NULL
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

/** A ledger write waiting for the next group commit. */
interface PendingWrite {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly ledger: SqliteLedger;
  readonly definitions: SqliteDefinitions;
  readonly sql: SqliteSqlExecutor;
  /** True once the schema was seen at the version this code expects (checked once, see {@link current}). */
  private schemaChecked = false;
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
    const access = {
      db: () => this.current(),
      call: <T>(fn: () => T, write = false) => this.call(fn, write),
      write: <T>(run: () => T) => this.write(run),
    };
    this.ledger = new SqliteLedger(access);
    this.definitions = new SqliteDefinitions(access);
    this.sql = new SqliteSqlExecutor(
      (fn) => this.call(() => fn(this.open())),
      () => this.identity?.check(),
    );
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
      // Private whatever the umask (the CLI sets 077, a library caller may not): the ledger
      // holds replies and inputs. SQLite gives its -wal and -shm files the database's mode.
      if (location !== ':memory:') mkdirSync(dirname(location), { recursive: true, mode: 0o700 });
      db = new Database(location);
      if (created) chmodSync(location, 0o600);
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

  /** The database, or a clear error once closed. */
  private open(): Database.Database {
    if (this.closed) throw new Error(`The store ${this.location} is closed`);
    return this.db;
  }

  /**
   * The database for the core tables: refused (with what to run) while the schema is
   * older than this code. Checked until it was once current; migrations only go forward.
   */
  private current(): Database.Database {
    const db = this.open();
    if (this.schemaChecked) return db;
    const { current, expected } = this.readSchemaStatus();
    if (current < expected) {
      throw new Error(
        `The store ${this.location} is at schema version ${current}, this worker needs ${expected}: ` +
          'run the migrations (worker customize, or open the store with migrate)',
      );
    }
    this.schemaChecked = true;
    return db;
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
    return processLocks.run(`${this.lockPrefix}\u0000${key}`, async () => {
      if (this.location === ':memory:') return fn(); // nobody else can open it
      const file = join(`${this.location}-locks`, `${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 32)}.lock`);
      return withFileLock(file, fn, { what: `store lock ${JSON.stringify(key)}`, makeDir: true });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush(); // writes already requested are committed, not dropped
    this.closed = true;
    this.sql.clear();
    this.db.close();
  }
}
