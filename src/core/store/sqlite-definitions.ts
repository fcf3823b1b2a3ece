/**
 * The SQLite store's function definitions (`function_definitions`), recorded by
 * `worker customize`.
 */
import type Database from 'better-sqlite3';
import type { SqliteAccess } from './sqlite-ledger.js';
import type { DefinitionTable, FunctionDefinitionRecord, UpsertOutcome } from './store.js';

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

function prepareStatements(db: Database.Database) {
  return {
    get: db.prepare<[string], DefinitionRecord>('SELECT * FROM function_definitions WHERE name = ?'),
    list: db.prepare<[], DefinitionRecord>('SELECT * FROM function_definitions ORDER BY name'),
    upsert: db.prepare<[Record<string, unknown>]>(
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

export class SqliteDefinitions implements DefinitionTable {
  private statements: ReturnType<typeof prepareStatements> | undefined;

  constructor(private readonly store: SqliteAccess) {}

  private stmts(): ReturnType<typeof prepareStatements> {
    const db = this.store.db();
    this.statements ??= prepareStatements(db);
    return this.statements;
  }

  list(): Promise<FunctionDefinitionRecord[]> {
    return this.store.call(() => this.stmts().list.all().map(toDefinition));
  }

  get(name: string): Promise<FunctionDefinitionRecord | undefined> {
    return this.store.call(() => {
      const r = this.stmts().get.get(name);
      return r === undefined ? undefined : toDefinition(r);
    });
  }

  upsert(d: Omit<FunctionDefinitionRecord, 'importedAt'>): Promise<UpsertOutcome> {
    return this.store.call(() => {
      const s = this.stmts();
      return this.store
        .db()
        .transaction((): UpsertOutcome => {
          const existed = s.get.get(d.name) !== undefined;
          const changes = s.upsert.run({
            name: d.name,
            package: d.packageName,
            display_name: d.displayName,
            description: d.description,
            destination: d.destination,
            input_schema: JSON.stringify(d.inputSchema),
            hash: d.hash,
            imported_at: Date.now(),
          }).changes;
          if (changes === 0) return 'unchanged';
          return existed ? 'updated' : 'created';
        })
        .immediate();
    }, true);
  }
}
