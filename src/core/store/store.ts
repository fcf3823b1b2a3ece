/**
 * The Store interface: the invocation ledger, the function definitions, and the tables
 * plugins declare ({@link PluginTable}).
 *
 * Implementations (SQLite embedded, PostgreSQL shared) keep core's SQL and migrations
 * behind this interface. A plugin writes the SQL of its own tables, in both dialects,
 * and runs it through {@link Store.sql}; core runs and versions those tables' migrations.
 */

export type LedgerState = 'running' | 'succeeded' | 'failed';

export interface LedgerEntry {
  invocationId: string;
  functionName: string;
  state: LedgerState;
  /** How many deliveries began processing, including this one. */
  attempts: number;
  /** The final reply body, kept so a redelivery gets the same answer. */
  reply: Record<string, unknown> | null;
  /**
   * When the broker confirmed the final reply (null until then). A broker redelivery of
   * an invocation whose reply was confirmed is acked without answering again.
   */
  repliedAt: Date | null;
  /**
   * True from `begin` until the delivery finished or was handed back (`release`). Still
   * true at the next `begin`, the earlier delivery ended with the worker process or its
   * broker connection: a crash, maybe caused by this very invocation.
   */
  inFlight: boolean;
  /**
   * Final-reply publishes the broker refused or that failed (a reply queue that rejects
   * publishes, a broken reply connection). Bounds the retries of an undeliverable reply.
   */
  replyFailures: number;
  /**
   * When the worker gave up delivering the final reply (attempts exhausted, or a
   * `reply_to` that can never work) and dead-lettered the request; null otherwise.
   */
  replyAbandonedAt: Date | null;
  /**
   * What the handler recorded of its progress (`ctx.steps`), by step name: the effects
   * it completed in earlier deliveries, so that a redelivery resumes after them instead
   * of repeating them. `{}` until a step is recorded.
   */
  steps: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

export interface LedgerBegin {
  /** The entry after this call: attempts incremented unless already finished. */
  entry: LedgerEntry;
  /** True when the invocation had finished before this delivery (answer from `entry.reply`). */
  finished: boolean;
  /** True when an earlier delivery began but never finished (the worker died or lost the broker). */
  interrupted: boolean;
}

export interface InvocationLedger {
  /**
   * Records that a delivery of `invocationId` starts. Atomic: concurrent callers see
   * increasing attempt counts. A finished entry is returned unchanged.
   */
  begin(invocationId: string, functionName: string): Promise<LedgerBegin>;
  /** Records the final outcome and the reply sent. */
  finish(invocationId: string, state: Exclude<LedgerState, 'running'>, reply: Record<string, unknown>): Promise<void>;
  /**
   * Records (durably, before resolving) that the running invocation completed the step
   * `name` with `value` (any JSON value; replaces an earlier value of the same step).
   * Rejects when no running entry exists: a step of an invocation the ledger does not
   * hold, or holds as finished, would never be read.
   */
  recordStep(invocationId: string, name: string, value: unknown): Promise<void>;
  /** Records that a delivery was handed back to the broker without finishing (a retry). */
  release(invocationId: string): Promise<void>;
  /**
   * Records that the broker confirmed the final reply. Only a finished entry is marked;
   * the first time is kept. Returns whether a finished entry exists.
   */
  markReplied(invocationId: string): Promise<boolean>;
  /**
   * Counts one failed final-reply attempt of a finished entry; returns the count after
   * it (0 when there is no finished entry, which is then left alone).
   */
  replyFailed(invocationId: string): Promise<number>;
  /**
   * Records that the final reply was given up (undeliverable). Only a finished entry is
   * marked; the first time is kept. Returns whether a finished entry exists.
   */
  abandonReply(invocationId: string): Promise<boolean>;
  get(invocationId: string): Promise<LedgerEntry | undefined>;
  /** Deletes finished entries older than `before`; returns how many. */
  prune(before: Date): Promise<number>;
}

/**
 * A function definition as `worker customize` recorded it, so callers can list the
 * functions and their inputs (`worker functions`) from the store.
 */
export interface FunctionDefinitionRecord {
  /** The function's programmatic name (primary key). */
  name: string;
  /** The plugin package that ships it, e.g. `fn_slack`. */
  packageName: string;
  displayName: string;
  description: string;
  /** The message destination (queue) it is called on. */
  destination: string;
  /** The JSON Schema its inputs are validated with, key order kept. */
  inputSchema: Record<string, unknown>;
  /** A digest of everything above; equal digests mean "nothing to update". */
  hash: string;
  /** When this version was recorded (unchanged by an `unchanged` upsert). */
  importedAt: Date;
}

/** What an upsert did: `unchanged` means the stored hash was equal and nothing was written. */
export type UpsertOutcome = 'created' | 'updated' | 'unchanged';

export interface DefinitionTable {
  /** All recorded definitions, sorted by name. */
  list(): Promise<FunctionDefinitionRecord[]>;
  get(name: string): Promise<FunctionDefinitionRecord | undefined>;
  /** Records the definition unless one with the same name and hash is stored. */
  upsert(definition: Omit<FunctionDefinitionRecord, 'importedAt'>): Promise<UpsertOutcome>;
}

/**
 * Checks a step record's name and turns its value into JSON text, so that both stores
 * refuse the same input with the same message (a step is written by plugin code).
 */
export function stepJson(name: string, value: unknown): string {
  if (typeof name !== 'string' || name.trim() === '') throw new Error('A step name must be a non-empty string');
  const json = JSON.stringify(value === undefined ? null : value);
  if (json === undefined) throw new Error(`The value of step "${name}" cannot be stored as JSON`);
  return json;
}

/** The SQL dialects a store speaks; a plugin table gives its migrations in both. */
export type SqlDialect = 'sqlite' | 'postgres';

/** One schema version of a plugin table: the same change written for each store. */
export interface PluginTableMigration {
  /** Positive integer, increasing within the table; never edit a released one, append a new one. */
  version: number;
  /** Statements for SQLite (several may be separated by `;`). */
  sqlite: string;
  /** Statements for PostgreSQL (several may be separated by `;`). */
  postgres: string;
}

/**
 * A table a plugin owns (the Slack plugin's conversation associations): core creates and
 * upgrades it with the store's own migrations and records its version, the plugin reads
 * and writes it through {@link Store.sql}.
 */
export interface PluginTable {
  /** The table's name, unique across plugins: lower-case letters, digits and `_`. */
  name: string;
  /** Applied in order of `version`, each once, in the transaction of the store's migration. */
  migrations: PluginTableMigration[];
}

/** A plugin table's schema version in the store and the version its plugin declares. */
export interface TableVersion {
  name: string;
  current: number;
  expected: number;
}

export interface SchemaStatus {
  /** The core schema (ledger, definitions, the plugin-table versions table). */
  current: number;
  expected: number;
  /** Each plugin table the store was opened with, in the order given. */
  tables: TableVersion[];
}

/** What a schema status still lacks, one phrase per part behind (empty when current). */
export function schemaBehind(status: SchemaStatus): string[] {
  const behind: string[] = [];
  if (status.current < status.expected) behind.push(`schema version ${status.current}, this worker needs ${status.expected}`);
  for (const t of status.tables) {
    if (t.current < t.expected) behind.push(`table ${t.name} at version ${t.current}, this worker needs ${t.expected}`);
  }
  return behind;
}

/**
 * SQL on the store's connection, for plugin tables. Placeholders are `$1, $2…` in both
 * dialects. Each call is one statement, bounded by the store's timeouts; failures are
 * classified like the store's own (RetryableError, StoreUnusableError…).
 *
 * SQLite has no boolean or date type: there a boolean parameter is bound as 1/0 and a
 * Date as epoch milliseconds (the store's convention), and rows come back as stored.
 */
export interface SqlExecutor {
  readonly dialect: SqlDialect;
  /** Runs a statement that returns rows (SELECT, or a write with RETURNING). */
  query<T extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs a statement; returns how many rows it changed. */
  execute(sql: string, params?: readonly unknown[]): Promise<number>;
}

export interface Store {
  /** `sqlite` or `postgres`, for logs and selftest. */
  readonly kind: string;
  /** Where it lives, with any password removed. */
  readonly location: string;
  readonly ledger: InvocationLedger;
  /** Function definitions recorded by `worker customize`. */
  readonly definitions: DefinitionTable;
  /** SQL for the plugin tables (see {@link PluginTable}). */
  readonly sql: SqlExecutor;
  /**
   * True when opening created the store (a new SQLite file): `worker run` warns, since
   * a store that should have existed means a lost ledger. Undefined for PostgreSQL.
   */
  readonly created?: boolean;
  /**
   * Proves the store takes writes now (a real write, rolled back): `/readyz` and the
   * worker's periodic check. Rejects with a StoreUnusableError when it never will
   * (read-only, not permitted, its file deleted), a RetryableError when not now.
   */
  checkWritable(): Promise<void>;
  /**
   * Creates or upgrades the core schema, then each plugin table the store was opened
   * with, in one transaction. Idempotent. Returns the core versions applied.
   */
  migrate(): Promise<number[]>;
  /** Current schema versions (core and each plugin table) and the versions this code expects. */
  schemaStatus(): Promise<SchemaStatus>;
  /**
   * Runs `fn` while holding a named lock, so two invocations for the same incident
   * do not both create its channel. One across processes: a lock file beside the database
   * for SQLite (workers on one host share the file), advisory locks for PostgreSQL.
   */
  withLock<T>(key: string, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
