/**
 * `fn_slack_asks`: one row per slack_ask invocation, from the question's post until its
 * final reply is confirmed. It is what lets an ask outlive the worker that posted it: any
 * worker that sees the click or the deadline finds here where the question was posted,
 * who may answer and where the final reply goes.
 *
 * Every change of state is one conditional UPDATE (`… WHERE state = 'pending'`), never a
 * read-then-write, so two workers handling two clicks at the same moment (or a click and
 * the deadline) end the ask once: the store's row lock decides, and the loser changes
 * nothing. The reply to send is written in the same statement, so a worker that dies
 * before sending it leaves the row for the sweeper ({@link AskTable.claimUnfinished}).
 *
 * Times are epoch milliseconds (BIGINT; node-pg returns those as strings, hence `num`).
 * Rows are kept after they finish (the SOAR side may look an answer up, a late click is told
 * who answered) for the worker's retention, then pruned ({@link AskTable.prune}); a pending
 * ask, or one ended but not yet finished, is never deleted.
 */
import type { DeferredFinalReply, DeferredTicket } from '../../../core/runtime/plugin.js';
import type { PluginTable, SqlExecutor } from '../../../core/store/store.js';

export const ASK_TABLE = 'fn_slack_asks';

const COLUMNS = `
  ask_id TEXT PRIMARY KEY,
  invocation_id TEXT NOT NULL UNIQUE,
  incident_id BIGINT NOT NULL,
  task_id BIGINT,
  reply_to TEXT,
  correlation_id TEXT,
  ticket TEXT NOT NULL,
  question TEXT NOT NULL,
  answers TEXT NOT NULL,
  default_answer TEXT,
  allowed TEXT,
  escalation_channel TEXT,
  posts TEXT NOT NULL,
  deadline BIGINT NOT NULL,
  state TEXT NOT NULL,
  answer TEXT,
  responder TEXT,
  ended_at BIGINT,
  reply TEXT,
  claimed_until BIGINT,
  finished_at BIGINT,
  created_at BIGINT NOT NULL`;

/** The table as a plugin declares it (core's store creates and upgrades it). */
export const ASK_TABLE_DEFINITION: PluginTable = {
  name: ASK_TABLE,
  migrations: [
    {
      version: 1,
      sqlite: `CREATE TABLE ${ASK_TABLE} (${COLUMNS});
CREATE INDEX ${ASK_TABLE}_due ON ${ASK_TABLE} (state, deadline)`,
      postgres: `CREATE TABLE ${ASK_TABLE} (${COLUMNS});
CREATE INDEX ${ASK_TABLE}_due ON ${ASK_TABLE} (state, deadline)`,
    },
  ],
};

export type AskState = 'pending' | 'answered' | 'expired';

/** Where one copy of the question was posted. */
export interface AskPost {
  channel_id: string;
  /** `#name`, or `@email` for a direct message. */
  channel: string;
  ts: string;
  url: string;
}

/** A question as laid out for Slack, before its buttons are added. */
export interface QuestionContent {
  text: string;
  blocks: Record<string, unknown>[];
}

/** Who answered, as the result gives it. */
export interface Responder {
  id: string;
  name: string;
  email: string | null;
}

export interface AskRow {
  askId: string;
  invocationId: string;
  incidentId: number;
  taskId: number | null;
  ticket: DeferredTicket;
  /** The question as posted (text fallback and blocks, without the buttons). */
  question: QuestionContent;
  answers: string[];
  defaultAnswer: string | null;
  /** Slack ids allowed to answer; null: anyone who sees the question. */
  allowed: string[] | null;
  escalationChannel: string | null;
  posts: AskPost[];
  /** Epoch ms. */
  deadline: number;
  state: AskState;
  answer: string | null;
  responder: Responder | null;
  endedAt: number | null;
  reply: DeferredFinalReply | null;
  claimedUntil: number | null;
  finishedAt: number | null;
  createdAt: number;
}

export type NewAsk = Omit<AskRow, 'state' | 'answer' | 'responder' | 'endedAt' | 'reply' | 'claimedUntil' | 'finishedAt'>;

function num(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

function json<T>(v: unknown): T | null {
  return typeof v === 'string' ? (JSON.parse(v) as T) : null;
}

function fromRow(r: Record<string, unknown>): AskRow {
  return {
    askId: String(r.ask_id),
    invocationId: String(r.invocation_id),
    incidentId: Number(r.incident_id),
    taskId: num(r.task_id),
    ticket: json<DeferredTicket>(r.ticket) as DeferredTicket,
    question: json<QuestionContent>(r.question) as QuestionContent,
    answers: json<string[]>(r.answers) ?? [],
    defaultAnswer: (r.default_answer as string | null) ?? null,
    allowed: json<string[]>(r.allowed),
    escalationChannel: (r.escalation_channel as string | null) ?? null,
    posts: json<AskPost[]>(r.posts) ?? [],
    deadline: Number(r.deadline),
    state: r.state as AskState,
    answer: (r.answer as string | null) ?? null,
    responder: json<Responder>(r.responder),
    endedAt: num(r.ended_at),
    reply: json<DeferredFinalReply>(r.reply),
    claimedUntil: num(r.claimed_until),
    finishedAt: num(r.finished_at),
    createdAt: Number(r.created_at),
  };
}

/** How an ask ends: the answer (or the default on timeout), who gave it, and the reply to send. */
export interface AskEnding {
  answer: string | null;
  responder: Responder | null;
  endedAt: number;
  reply: DeferredFinalReply;
  /** The ender holds the ask for this long to finish it (update, note, reply) before a sweeper may. */
  claimUntil: number;
}

export class AskTable {
  constructor(private readonly sql: SqlExecutor) {}

  async get(askId: string): Promise<AskRow | undefined> {
    const rows = await this.sql.query(`SELECT * FROM ${ASK_TABLE} WHERE ask_id = $1`, [askId]);
    return rows[0] ? fromRow(rows[0]) : undefined;
  }

  /** Stores a pending ask unless its invocation stored one; returns the row that is stored. */
  async insert(ask: NewAsk): Promise<AskRow> {
    await this.sql.execute(
      `INSERT INTO ${ASK_TABLE} (ask_id, invocation_id, incident_id, task_id, reply_to, correlation_id, ticket, question, answers,
         default_answer, allowed, escalation_channel, posts, deadline, state, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending', $15)
       ON CONFLICT (ask_id) DO NOTHING`,
      [
        ask.askId,
        ask.invocationId,
        ask.incidentId,
        ask.taskId,
        ask.ticket.replyTo,
        ask.ticket.correlationId,
        JSON.stringify(ask.ticket),
        JSON.stringify(ask.question),
        JSON.stringify(ask.answers),
        ask.defaultAnswer,
        ask.allowed === null ? null : JSON.stringify(ask.allowed),
        ask.escalationChannel,
        JSON.stringify(ask.posts),
        ask.deadline,
        ask.createdAt,
      ],
    );
    return (await this.get(ask.askId)) as AskRow;
  }

  /**
   * Ends a pending ask with an answer: true for the one caller whose UPDATE changed the row
   * (the first click), false for everyone else (it was answered or expired already).
   */
  answer(askId: string, ending: AskEnding): Promise<boolean> {
    return this.end(askId, 'answered', ending, '');
  }

  /** Ends a pending ask whose deadline passed (by `ending.endedAt`), as {@link answer} does. */
  expire(askId: string, ending: AskEnding): Promise<boolean> {
    return this.end(askId, 'expired', ending, ` AND deadline <= $7`);
  }

  private async end(askId: string, state: AskState, e: AskEnding, extra: string): Promise<boolean> {
    const params: unknown[] = [askId, state, e.answer, e.responder === null ? null : JSON.stringify(e.responder), e.endedAt, JSON.stringify(e.reply)];
    if (extra) params.push(e.endedAt);
    params.push(e.claimUntil);
    const changed = await this.sql.execute(
      `UPDATE ${ASK_TABLE} SET state = $2, answer = $3, responder = $4, ended_at = $5, reply = $6, claimed_until = $${params.length}
       WHERE ask_id = $1 AND state = 'pending'${extra}`,
      params,
    );
    return changed === 1;
  }

  /** Pending asks whose deadline is at or before `now`, oldest deadline first. */
  async due(now: number, limit = 100): Promise<AskRow[]> {
    const rows = await this.sql.query(`SELECT * FROM ${ASK_TABLE} WHERE state = 'pending' AND deadline <= $1 ORDER BY deadline LIMIT $2`, [
      now,
      limit,
    ]);
    return rows.map(fromRow);
  }

  /**
   * Ended asks not yet finished whose ender's hold lapsed (it died, or lost the store): each
   * one returned is claimed by this caller until `claimUntil` (a conditional UPDATE, so two
   * sweepers never take the same row).
   */
  async claimUnfinished(now: number, claimUntil: number, limit = 100): Promise<AskRow[]> {
    const rows = await this.sql.query(
      `SELECT ask_id FROM ${ASK_TABLE} WHERE state <> 'pending' AND finished_at IS NULL AND (claimed_until IS NULL OR claimed_until <= $1)
       ORDER BY ended_at LIMIT $2`,
      [now, limit],
    );
    const claimed: AskRow[] = [];
    for (const r of rows) {
      const changed = await this.sql.execute(
        `UPDATE ${ASK_TABLE} SET claimed_until = $3 WHERE ask_id = $1 AND finished_at IS NULL AND (claimed_until IS NULL OR claimed_until <= $2)`,
        [r.ask_id, now, claimUntil],
      );
      if (changed === 1) {
        const row = await this.get(String(r.ask_id));
        if (row) claimed.push(row);
      }
    }
    return claimed;
  }

  /** Records that everything an ended ask owes (updates, note, final reply) is done. */
  async markFinished(askId: string, at: number): Promise<void> {
    await this.sql.execute(`UPDATE ${ASK_TABLE} SET finished_at = $2 WHERE ask_id = $1 AND finished_at IS NULL`, [askId, at]);
  }

  /**
   * Deletes the asks that finished (answered or expired, everything they owed done) before
   * `before` (epoch ms); returns how many. Pending and unfinished asks stay whatever their age.
   */
  prune(before: number): Promise<number> {
    return this.sql.execute(`DELETE FROM ${ASK_TABLE} WHERE state <> 'pending' AND finished_at IS NOT NULL AND finished_at < $1`, [
      before,
    ]);
  }

  /** Counts by state (for logs and tests). */
  async counts(): Promise<Record<AskState, number>> {
    const out: Record<AskState, number> = { pending: 0, answered: 0, expired: 0 };
    for (const r of await this.sql.query(`SELECT state, COUNT(*) AS n FROM ${ASK_TABLE} GROUP BY state`)) out[r.state as AskState] = Number(r.n);
    return out;
  }
}
