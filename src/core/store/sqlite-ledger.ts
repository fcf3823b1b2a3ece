/**
 * The SQLite store's invocation ledger (`invocation_ledger`). Writes go through the
 * store's group commit (see SqliteStore's `write`); reads run directly.
 */
import type Database from 'better-sqlite3';
import type { InvocationLedger, LedgerBegin, LedgerEntry, LedgerState } from './store.js';
import { stepJson } from './store.js';

/** What a SQLite table needs of its store. */
export interface SqliteAccess {
  /** The open database at the schema this code expects; throws otherwise (closed, not migrated). */
  db(): Database.Database;
  /** Runs `fn` with its failure classified; `write` first checks the file is still the one opened. */
  call<T>(fn: () => T, write?: boolean): Promise<T>;
  /** Runs a ledger write in the next group commit; resolves once that has committed. */
  write<T>(run: () => T): Promise<T>;
}

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

/** The row `insert` writes, as SQLite stores it (the columns' defaults included). */
function newLedgerRecord(invocationId: string, functionName: string, now: number): LedgerRecord {
  return {
    invocation_id: invocationId,
    function_name: functionName,
    state: 'running',
    attempts: 1,
    reply: null,
    replied_at: null,
    in_flight: 1,
    reply_failures: 0,
    reply_abandoned_at: null,
    steps: null,
    created_at: now,
    updated_at: now,
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

function prepareStatements(db: Database.Database) {
  return {
    get: db.prepare<[string], LedgerRecord>('SELECT * FROM invocation_ledger WHERE invocation_id = ?'),
    insert: db.prepare<[string, string, number, number]>(
      `INSERT INTO invocation_ledger (invocation_id, function_name, state, attempts, reply, created_at, updated_at, in_flight)
       VALUES (?, ?, 'running', 1, NULL, ?, ?, 1) ON CONFLICT (invocation_id) DO NOTHING`,
    ),
    retry: db.prepare<[number, string]>(
      `UPDATE invocation_ledger SET attempts = attempts + 1, updated_at = ?, in_flight = 1
       WHERE invocation_id = ? AND state = 'running'`,
    ),
    finish: db.prepare<[string, string, string | null, number, number]>(
      `INSERT INTO invocation_ledger (invocation_id, function_name, state, attempts, reply, created_at, updated_at)
       VALUES (?, '', ?, 1, ?, ?, ?)
       ON CONFLICT (invocation_id) DO UPDATE SET state = excluded.state, reply = excluded.reply,
         updated_at = excluded.updated_at, in_flight = 0`,
    ),
    steps: db.prepare<[string], { steps: string | null }>(
      `SELECT steps FROM invocation_ledger WHERE invocation_id = ? AND state = 'running'`,
    ),
    setSteps: db.prepare<[string, string]>(`UPDATE invocation_ledger SET steps = ? WHERE invocation_id = ?`),
    release: db.prepare<[string]>(`UPDATE invocation_ledger SET in_flight = 0 WHERE invocation_id = ? AND state = 'running'`),
    replied: db.prepare<[number, string]>(
      `UPDATE invocation_ledger SET replied_at = COALESCE(replied_at, ?)
       WHERE invocation_id = ? AND state <> 'running'`,
    ),
    replyFailed: db.prepare<[number, string], { reply_failures: number }>(
      `UPDATE invocation_ledger SET reply_failures = reply_failures + 1, updated_at = ?
       WHERE invocation_id = ? AND state <> 'running' RETURNING reply_failures`,
    ),
    abandon: db.prepare<[number, string]>(
      `UPDATE invocation_ledger SET reply_abandoned_at = COALESCE(reply_abandoned_at, ?)
       WHERE invocation_id = ? AND state <> 'running'`,
    ),
    prune: db.prepare<[number]>(`DELETE FROM invocation_ledger WHERE state <> 'running' AND updated_at < ?`),
  };
}

export class SqliteLedger implements InvocationLedger {
  private statements: ReturnType<typeof prepareStatements> | undefined;

  constructor(private readonly store: SqliteAccess) {}

  /** The prepared statements; asks the store first, so a closed or unmigrated store refuses. */
  private stmts(): ReturnType<typeof prepareStatements> {
    const db = this.store.db();
    this.statements ??= prepareStatements(db);
    return this.statements;
  }

  begin(invocationId: string, functionName: string): Promise<LedgerBegin> {
    // Runs inside the group commit's IMMEDIATE transaction: the write lock is taken
    // before the read, so another process on the same file cannot read the same
    // attempt count in between.
    return this.store.write(() => {
      const s = this.stmts();
      const now = Date.now();
      // A first delivery (the usual case) is one statement: the new row's every value is
      // known here, so it is neither looked for before nor read back after.
      if (s.insert.run(invocationId, functionName, now, now).changes === 1) {
        return { entry: toLedgerEntry(newLedgerRecord(invocationId, functionName, now)), finished: false, interrupted: false };
      }
      const existing = s.get.get(invocationId)!;
      if (existing.state !== 'running') return { entry: toLedgerEntry(existing), finished: true, interrupted: false };
      s.retry.run(now, invocationId);
      return { entry: toLedgerEntry(s.get.get(invocationId)!), finished: false, interrupted: true };
    });
  }

  finish(invocationId: string, state: Exclude<LedgerState, 'running'>, reply: Record<string, unknown>): Promise<void> {
    const json = JSON.stringify(reply);
    return this.store.write(() => {
      const now = Date.now();
      this.stmts().finish.run(invocationId, state, json, now, now);
    });
  }

  recordStep(invocationId: string, name: string, value: unknown): Promise<void> {
    let json: string;
    try {
      json = stepJson(name, value);
    } catch (err) {
      return Promise.reject(err);
    }
    // Read-modify-write is safe here: it runs inside the group commit's IMMEDIATE
    // transaction, which holds the write lock across the read.
    return this.store.write(() => {
      const s = this.stmts();
      const row = s.steps.get(invocationId);
      if (row === undefined) throw new Error(`Invocation ${invocationId} has no running ledger entry to record step "${name}" on`);
      const steps = row.steps === null ? {} : (JSON.parse(row.steps) as Record<string, unknown>);
      steps[name] = JSON.parse(json);
      s.setSteps.run(JSON.stringify(steps), invocationId);
    });
  }

  release(invocationId: string): Promise<void> {
    return this.store.write(() => {
      this.stmts().release.run(invocationId);
    });
  }

  markReplied(invocationId: string): Promise<boolean> {
    return this.store.write(() => this.stmts().replied.run(Date.now(), invocationId).changes === 1);
  }

  replyFailed(invocationId: string): Promise<number> {
    return this.store.write(() => this.stmts().replyFailed.get(Date.now(), invocationId)?.reply_failures ?? 0);
  }

  abandonReply(invocationId: string): Promise<boolean> {
    return this.store.write(() => this.stmts().abandon.run(Date.now(), invocationId).changes === 1);
  }

  get(invocationId: string): Promise<LedgerEntry | undefined> {
    return this.store.call(() => {
      const r = this.stmts().get.get(invocationId);
      return r === undefined ? undefined : toLedgerEntry(r);
    });
  }

  prune(before: Date): Promise<number> {
    return this.store.call(() => this.stmts().prune.run(before.getTime()).changes, true);
  }
}
