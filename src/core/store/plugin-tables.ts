/**
 * What both stores share about plugin tables: the checks on a declaration, and the core
 * table that records each plugin table's schema version.
 */
import { PluginLoadError } from '../runtime/errors.js';
import type { PluginTable, TableVersion } from './store.js';

/** The core table holding `table_name → version` for every plugin table (core migration 7). */
export const PLUGIN_TABLE_VERSIONS = 'plugin_table_versions';

/** Tables core owns: a plugin table may not take their names. */
const CORE_TABLES = new Set(['schema_migrations', 'invocation_ledger', 'function_definitions', PLUGIN_TABLE_VERSIONS]);

const TABLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Refuses a declaration the store could not run or version safely, naming what to fix.
 * `owner` names the plugin in messages. Table names must be unique across `tables`.
 */
export function checkPluginTables(tables: readonly PluginTable[], owner = 'a plugin'): void {
  if (!Array.isArray(tables)) throw new PluginLoadError(`The tables of ${owner} must be an array of { name, migrations }`);
  const seen = new Set<string>();
  for (const table of tables) {
    const name = (table as Partial<PluginTable> | null)?.name;
    if (typeof name !== 'string' || !TABLE_NAME.test(name)) {
      throw new PluginLoadError(
        `Table ${JSON.stringify(name)} of ${owner}: a table name is lower-case letters, digits and _ (at most 63, not starting with a digit)`,
      );
    }
    if (CORE_TABLES.has(name))
      throw new PluginLoadError(`Table ${name} of ${owner}: the name belongs to the worker's own store tables; choose another`);
    if (seen.has(name)) throw new PluginLoadError(`Table ${name} is declared twice (${owner}); table names must be unique across plugins`);
    seen.add(name);
    const migrations = table.migrations;
    if (!Array.isArray(migrations) || migrations.length === 0) {
      throw new PluginLoadError(`Table ${name} of ${owner} has no migrations: give at least version 1 (its CREATE TABLE)`);
    }
    let previous = 0;
    for (const m of migrations) {
      if (!Number.isInteger(m?.version) || m.version <= previous) {
        throw new PluginLoadError(
          `Table ${name} of ${owner}: migration version ${JSON.stringify(m?.version)} must be an integer above ${previous} (versions increase, listed in order)`,
        );
      }
      for (const dialect of ['sqlite', 'postgres'] as const) {
        if (typeof m[dialect] !== 'string' || m[dialect].trim() === '') {
          throw new PluginLoadError(`Table ${name} of ${owner}: migration ${m.version} has no ${dialect} SQL`);
        }
      }
      previous = m.version;
    }
  }
}

/** The version each table's declaration ends at. */
export function expectedVersion(table: PluginTable): number {
  return table.migrations[table.migrations.length - 1]!.version;
}

/** Status of each declared table, given the recorded versions (a table not recorded is at 0). */
export function tableVersions(tables: readonly PluginTable[], recorded: ReadonlyMap<string, number>): TableVersion[] {
  return tables.map((t) => ({ name: t.name, current: recorded.get(t.name) ?? 0, expected: expectedVersion(t) }));
}
