/**
 * The SQLite store's side of plugin tables: the {@link SqlExecutor} plugins write their
 * tables through, and the migrations that create and upgrade those tables.
 */
import type Database from 'better-sqlite3';
import { expectedVersion, PLUGIN_TABLE_VERSIONS } from './plugin-tables.js';
import type { PluginTable, SqlExecutor } from './store.js';

/** How many prepared statements the executor keeps (plugins use a handful of fixed texts). */
const STATEMENT_CACHE = 200;

/** Runs `fn` against the open database (refused once closed), its failure classified. */
export type SqliteCall = <T>(fn: (db: Database.Database) => T) => Promise<T>;

/**
 * SQLite binds `$1` as the named parameter "1": the parameters go in as an object keyed
 * by position, so one SQL text serves both stores. SQLite has no boolean or date type:
 * those are bound as 1/0 and epoch milliseconds (how the store keeps its own times).
 */
export function sqliteParams(params: readonly unknown[]): Record<string, unknown> {
  const bound: Record<string, unknown> = {};
  params.forEach((value, i) => {
    if (value === undefined) throw new Error(`SQL parameter $${i + 1} is undefined: pass null for SQL NULL`);
    if (typeof value === 'boolean') bound[i + 1] = value ? 1 : 0;
    else if (value instanceof Date) {
      if (Number.isNaN(value.getTime())) throw new Error(`SQL parameter $${i + 1} is an invalid Date`);
      bound[i + 1] = value.getTime();
    } else bound[i + 1] = value;
  });
  return bound;
}

export class SqliteSqlExecutor implements SqlExecutor {
  readonly dialect = 'sqlite';
  private readonly statements = new Map<string, Database.Statement>();

  constructor(
    private readonly call: SqliteCall,
    /** Throws when the path no longer names the file opened (a write would be lost). */
    private readonly checkWrite: () => void,
  ) {}

  private prepare(db: Database.Database, sql: string): Database.Statement {
    let stmt = this.statements.get(sql);
    if (stmt === undefined) {
      try {
        stmt = db.prepare(sql);
      } catch (err) {
        // The plugin's table is missing: say what creates it (as the PostgreSQL store does).
        if (err instanceof Error && /^no such table/.test(err.message)) {
          err.message += ': run the migrations (worker customize, or start worker run, which migrates)';
        }
        throw err;
      }
      // Oldest first out: a plugin that builds SQL texts dynamically cannot grow this forever.
      if (this.statements.size >= STATEMENT_CACHE) this.statements.delete(this.statements.keys().next().value!);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  query<T extends Record<string, unknown> = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return this.call((db) => {
      const stmt = this.prepare(db, sql);
      if (!stmt.reader) throw new Error('query() needs a statement that returns rows (SELECT or RETURNING); use execute()');
      if (!stmt.readonly) this.checkWrite(); // a write with RETURNING
      return stmt.all(sqliteParams(params)) as T[];
    });
  }

  execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    return this.call((db) => {
      const stmt = this.prepare(db, sql);
      if (!stmt.readonly) this.checkWrite();
      return stmt.run(sqliteParams(params)).changes;
    });
  }

  /** Statements belong to one connection: dropped when it closes. */
  clear(): void {
    this.statements.clear();
  }
}

/**
 * Brings each plugin table to its declared version. Runs inside the store's migration
 * transaction (after the core migrations, which create {@link PLUGIN_TABLE_VERSIONS}).
 */
export function migratePluginTablesSqlite(db: Database.Database, tables: readonly PluginTable[]): void {
  const recorded = db.prepare<[string], { version: number }>(`SELECT version FROM ${PLUGIN_TABLE_VERSIONS} WHERE table_name = ?`);
  const record = db.prepare<[string, number, number]>(
    `INSERT INTO ${PLUGIN_TABLE_VERSIONS} (table_name, version, applied_at) VALUES (?, ?, ?)
     ON CONFLICT (table_name) DO UPDATE SET version = excluded.version, applied_at = excluded.applied_at`,
  );
  for (const table of tables) {
    const current = recorded.get(table.name)?.version ?? 0;
    if (current >= expectedVersion(table)) continue;
    for (const m of table.migrations) {
      if (m.version <= current) continue;
      try {
        db.exec(m.sqlite);
      } catch (err) {
        if (err instanceof Error) err.message = `table ${table.name} migration ${m.version}: ${err.message}`;
        throw err;
      }
      record.run(table.name, m.version, Date.now());
    }
  }
}

/** The recorded version of every plugin table (empty before core migration 7). */
export function recordedVersionsSqlite(db: Database.Database): Map<string, number> {
  const present = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(PLUGIN_TABLE_VERSIONS);
  if (present === undefined) return new Map();
  const rows = db.prepare(`SELECT table_name, version FROM ${PLUGIN_TABLE_VERSIONS}`).all() as { table_name: string; version: number }[];
  return new Map(rows.map((r) => [r.table_name, r.version]));
}
