/**
 * The PostgreSQL store's function definitions (`function_definitions`), recorded by
 * `worker customize`.
 */
import type { PgQuery } from './postgres-sql.js';
import type { DefinitionTable, FunctionDefinitionRecord, UpsertOutcome } from './store.js';

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

export class PostgresDefinitions implements DefinitionTable {
  /** `run`: a query on the store's pool, bounded by its timeouts, its failure classified. */
  constructor(private readonly run: PgQuery) {}

  async list(): Promise<FunctionDefinitionRecord[]> {
    const { rows } = await this.run<DefinitionRecord>('SELECT * FROM function_definitions ORDER BY name');
    return rows.map(toDefinition);
  }

  async get(name: string): Promise<FunctionDefinitionRecord | undefined> {
    const { rows } = await this.run<DefinitionRecord>('SELECT * FROM function_definitions WHERE name = $1', [name]);
    return rows[0] === undefined ? undefined : toDefinition(rows[0]);
  }

  async upsert(d: Omit<FunctionDefinitionRecord, 'importedAt'>): Promise<UpsertOutcome> {
    // The WHERE makes an equal hash a no-op (no row returned); `xmax = 0` holds only
    // for a freshly inserted row version.
    const { rows } = await this.run<{ inserted: boolean }>(
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
  }
}
