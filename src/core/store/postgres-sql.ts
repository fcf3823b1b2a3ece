/**
 * The PostgreSQL store's side of plugin tables: the {@link SqlExecutor} plugins write
 * their tables through, and the migrations that create and upgrade those tables.
 */
import type pg from 'pg';
import { expectedVersion, PLUGIN_TABLE_VERSIONS } from './plugin-tables.js';
import type { PluginTable, SqlExecutor } from './store.js';

/** A query on the store's pool, bounded by its timeouts, its failure classified. */
export type PgQuery = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<R>>;

export class PostgresSqlExecutor implements SqlExecutor {
  readonly dialect = 'postgres';

  constructor(private readonly run: PgQuery) {}

  async query<T extends Record<string, unknown> = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const { rows } = await this.run<T>(sql, checkedParams(params));
    return rows;
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    return (await this.run(sql, checkedParams(params))).rowCount ?? 0;
  }
}

/** pg sends `undefined` as NULL; SQLite refuses it: refused here too, so both stores agree. */
function checkedParams(params: readonly unknown[]): unknown[] {
  params.forEach((value, i) => {
    if (value === undefined) throw new Error(`SQL parameter $${i + 1} is undefined: pass null for SQL NULL`);
  });
  return [...params];
}

/**
 * Brings each plugin table to its declared version. `q` runs on the client holding the
 * migration transaction and its advisory lock (after the core migrations, which create
 * {@link PLUGIN_TABLE_VERSIONS}).
 */
export async function migratePluginTablesPostgres(
  q: <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<R>>,
  tables: readonly PluginTable[],
): Promise<void> {
  for (const table of tables) {
    const { rows } = await q<{ version: number }>(`SELECT version FROM ${PLUGIN_TABLE_VERSIONS} WHERE table_name = $1`, [table.name]);
    const current = rows[0]?.version ?? 0;
    if (current >= expectedVersion(table)) continue;
    for (const m of table.migrations) {
      if (m.version <= current) continue;
      try {
        await q(m.postgres);
      } catch (err) {
        if (err instanceof Error) err.message = `table ${table.name} migration ${m.version}: ${err.message}`;
        throw err;
      }
      await q(
        `INSERT INTO ${PLUGIN_TABLE_VERSIONS} (table_name, version) VALUES ($1, $2)
         ON CONFLICT (table_name) DO UPDATE SET version = EXCLUDED.version, applied_at = now()`,
        [table.name, m.version],
      );
    }
  }
}

/** The recorded version of every plugin table (empty before core migration 7). */
export async function recordedVersionsPostgres(run: PgQuery): Promise<Map<string, number>> {
  const { rows } = await run<{ present: boolean }>(`SELECT to_regclass('${PLUGIN_TABLE_VERSIONS}') IS NOT NULL AS present`);
  if (!rows[0]?.present) return new Map();
  const recorded = await run<{ table_name: string; version: number }>(`SELECT table_name, version FROM ${PLUGIN_TABLE_VERSIONS}`);
  return new Map(recorded.rows.map((r) => [r.table_name, r.version]));
}
