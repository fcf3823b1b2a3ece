/**
 * The PostgreSQL store's invocation ledger (`invocation_ledger`): each call one
 * statement on the store's pool, atomic by itself (no client-side transactions).
 */
import type { PgQuery } from './postgres-sql.js';
import type { InvocationLedger, LedgerBegin, LedgerEntry, LedgerState } from './store.js';
import { stepJson } from './store.js';

interface LedgerRecord {
  invocation_id: string;
  function_name: string;
  state: LedgerState;
  attempts: number;
  reply: Record<string, unknown> | null;
  replied_at: Date | null;
  in_flight: boolean;
  reply_failures: number;
  reply_abandoned_at: Date | null;
  steps: Record<string, unknown> | null;
  created_at: Date;
  updated_at: Date;
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
    replyFailures: r.reply_failures,
    replyAbandonedAt: r.reply_abandoned_at,
    steps: r.steps ?? {},
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export class PostgresLedger implements InvocationLedger {
  /** `run`: a query on the store's pool, bounded by its timeouts, its failure classified. */
  constructor(private readonly run: PgQuery) {}

  async begin(invocationId: string, functionName: string): Promise<LedgerBegin> {
    // The conflict path locks the existing row and re-reads its latest version, so
    // concurrent deliveries increment one after another. `state` is never changed
    // here, so the returned state is the state before this delivery; `xmax = 0`
    // holds only for a freshly inserted row version.
    const { rows } = await this.run<LedgerRecord & { inserted: boolean }>(
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
  }

  async finish(invocationId: string, state: Exclude<LedgerState, 'running'>, reply: Record<string, unknown>): Promise<void> {
    await this.run(
      `INSERT INTO invocation_ledger AS l (invocation_id, function_name, state, attempts, reply, created_at, updated_at)
       VALUES ($1, '', $2, 1, $3::jsonb, now(), now())
       ON CONFLICT (invocation_id) DO UPDATE SET state = EXCLUDED.state, reply = EXCLUDED.reply,
         updated_at = EXCLUDED.updated_at, in_flight = false`,
      [invocationId, state, JSON.stringify(reply)],
    );
  }

  async recordStep(invocationId: string, name: string, value: unknown): Promise<void> {
    const json = stepJson(name, value);
    // One statement: `||` merges the step into the object under the row lock, so
    // concurrent steps of one invocation do not overwrite each other.
    const result = await this.run(
      `UPDATE invocation_ledger SET steps = COALESCE(steps, '{}'::jsonb) || jsonb_build_object($2::text, $3::jsonb)
       WHERE invocation_id = $1 AND state = 'running'`,
      [invocationId, name, json],
    );
    if (result.rowCount !== 1) {
      throw new Error(`Invocation ${invocationId} has no running ledger entry to record step "${name}" on`);
    }
  }

  async release(invocationId: string): Promise<void> {
    await this.run(`UPDATE invocation_ledger SET in_flight = false WHERE invocation_id = $1 AND state = 'running'`, [invocationId]);
  }

  async markReplied(invocationId: string): Promise<boolean> {
    const result = await this.run(
      `UPDATE invocation_ledger SET replied_at = COALESCE(replied_at, now())
       WHERE invocation_id = $1 AND state <> 'running'`,
      [invocationId],
    );
    return result.rowCount === 1;
  }

  async replyFailed(invocationId: string): Promise<number> {
    const { rows } = await this.run<{ reply_failures: number }>(
      `UPDATE invocation_ledger SET reply_failures = reply_failures + 1, updated_at = now()
       WHERE invocation_id = $1 AND state <> 'running' RETURNING reply_failures`,
      [invocationId],
    );
    return rows[0]?.reply_failures ?? 0;
  }

  async abandonReply(invocationId: string): Promise<boolean> {
    const result = await this.run(
      `UPDATE invocation_ledger SET reply_abandoned_at = COALESCE(reply_abandoned_at, now())
       WHERE invocation_id = $1 AND state <> 'running'`,
      [invocationId],
    );
    return result.rowCount === 1;
  }

  async get(invocationId: string): Promise<LedgerEntry | undefined> {
    const { rows } = await this.run<LedgerRecord>('SELECT * FROM invocation_ledger WHERE invocation_id = $1', [invocationId]);
    return rows[0] === undefined ? undefined : toLedgerEntry(rows[0]);
  }

  async prune(before: Date): Promise<number> {
    const result = await this.run(`DELETE FROM invocation_ledger WHERE state <> 'running' AND updated_at < $1`, [before]);
    return result.rowCount ?? 0;
  }
}
