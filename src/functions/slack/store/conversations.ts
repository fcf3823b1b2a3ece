/**
 * fn_slack's own data table, `slack_conversations_db`: which Slack channel belongs to an
 * incident or task. The worker's store creates and upgrades it from {@link CONVERSATIONS_TABLE}
 * (declared in the plugin's `tables`); the handlers read and write it through
 * {@link SqlConversationTable}, built on the store's `sql` in `setup`.
 *
 * The same SQL serves SQLite and PostgreSQL: `$n` placeholders in both, Dates and booleans
 * bound as such (SQLite's executor stores them as epoch ms and 1/0), and rows read back
 * through conversions that accept either store's column types.
 */
import { RetryableError } from '../../../core/runtime/errors.js';
import type { PluginTable, SqlExecutor } from '../../../core/runtime/plugin.js';

export const CONVERSATIONS_TABLE_NAME = 'slack_conversations_db';

/** A row of fn_slack's `slack_conversations_db` data table. */
export interface ConversationRow {
  /** `RES-<incident>` or `RES-<incident>-<task>`. */
  resId: string;
  incidentId: number;
  taskId: number | null;
  channel: string;
  channelId: string;
  channelType: 'Private' | 'Public';
  permalink: string | null;
  time: Date;
  archived: boolean;
  archivedAt: Date | null;
}

export interface ConversationTable {
  get(resId: string): Promise<ConversationRow | undefined>;
  /**
   * Inserts the row unless one exists for its resId; returns the row that is stored
   * (the existing one when another writer was first). This is what makes "the first
   * post records the association" safe under races.
   */
  insertIfAbsent(row: ConversationRow): Promise<{ row: ConversationRow; inserted: boolean }>;
  /** Replaces the channel of an existing row (used when an archived association is superseded). */
  replace(row: ConversationRow): Promise<void>;
  markArchived(resId: string, at: Date): Promise<boolean>;
  findByChannelId(channelId: string): Promise<ConversationRow[]>;
  list(): Promise<ConversationRow[]>;
}

/**
 * The table's schema history. Append new versions; never edit a released one.
 *
 * Version 1 says IF NOT EXISTS because until the worker's store learnt plugin tables
 * (core schema version 6 and earlier), core's own migrations 1 and 2 created this table
 * and its index: on such a store version 1 finds them and keeps every row.
 */
export const CONVERSATIONS_TABLE: PluginTable = {
  name: CONVERSATIONS_TABLE_NAME,
  migrations: [
    {
      version: 1,
      sqlite: `CREATE TABLE IF NOT EXISTS slack_conversations_db (
                 slack_db_res_id       TEXT PRIMARY KEY,
                 incident_id           INTEGER NOT NULL,
                 task_id               INTEGER,
                 slack_db_channel      TEXT NOT NULL,
                 slack_db_channel_id   TEXT NOT NULL,
                 slack_db_channel_type TEXT NOT NULL CHECK (slack_db_channel_type IN ('Private', 'Public')),
                 slack_db_permalink    TEXT,
                 slack_db_time         INTEGER NOT NULL,
                 slack_db_archived     INTEGER NOT NULL DEFAULT 0 CHECK (slack_db_archived IN (0, 1)),
                 slack_db_archived_at  INTEGER
               );
               CREATE INDEX IF NOT EXISTS slack_conversations_db_channel_id ON slack_conversations_db (slack_db_channel_id)`,
      postgres: `CREATE TABLE IF NOT EXISTS slack_conversations_db (
                   slack_db_res_id       TEXT PRIMARY KEY,
                   incident_id           BIGINT NOT NULL,
                   task_id               BIGINT,
                   slack_db_channel      TEXT NOT NULL,
                   slack_db_channel_id   TEXT NOT NULL,
                   slack_db_channel_type TEXT NOT NULL CHECK (slack_db_channel_type IN ('Private', 'Public')),
                   slack_db_permalink    TEXT,
                   slack_db_time         TIMESTAMPTZ NOT NULL,
                   slack_db_archived     BOOLEAN NOT NULL DEFAULT false,
                   slack_db_archived_at  TIMESTAMPTZ
                 );
                 CREATE INDEX IF NOT EXISTS slack_conversations_db_channel_id ON slack_conversations_db (slack_db_channel_id)`,
    },
  ],
};

/** The columns as either store returns them (PostgreSQL: BIGINT as text, real booleans and Dates). */
interface ConversationRecord extends Record<string, unknown> {
  slack_db_res_id: string;
  incident_id: number | string;
  task_id: number | string | null;
  slack_db_channel: string;
  slack_db_channel_id: string;
  slack_db_channel_type: 'Private' | 'Public';
  slack_db_permalink: string | null;
  slack_db_time: number | Date;
  slack_db_archived: number | boolean;
  slack_db_archived_at: number | Date | null;
}

const COLUMNS = `slack_db_res_id, incident_id, task_id, slack_db_channel, slack_db_channel_id,
  slack_db_channel_type, slack_db_permalink, slack_db_time, slack_db_archived, slack_db_archived_at`;
const VALUES = '$1, $2, $3, $4, $5, $6, $7, $8, $9, $10';

const toDate = (v: number | Date): Date => (v instanceof Date ? v : new Date(Number(v)));

function toRow(r: ConversationRecord): ConversationRow {
  return {
    resId: r.slack_db_res_id,
    incidentId: Number(r.incident_id),
    taskId: r.task_id === null ? null : Number(r.task_id),
    channel: r.slack_db_channel,
    channelId: r.slack_db_channel_id,
    channelType: r.slack_db_channel_type,
    permalink: r.slack_db_permalink,
    time: toDate(r.slack_db_time),
    archived: r.slack_db_archived === true || r.slack_db_archived === 1,
    archivedAt: r.slack_db_archived_at === null ? null : toDate(r.slack_db_archived_at),
  };
}

function values(row: ConversationRow): unknown[] {
  return [
    row.resId,
    row.incidentId,
    row.taskId,
    row.channel,
    row.channelId,
    row.channelType,
    row.permalink,
    row.time,
    row.archived,
    row.archivedAt,
  ];
}

/** {@link ConversationTable} on the worker's store (either dialect). */
export class SqlConversationTable implements ConversationTable {
  constructor(private readonly sql: SqlExecutor) {}

  async get(resId: string): Promise<ConversationRow | undefined> {
    const rows = await this.sql.query<ConversationRecord>('SELECT * FROM slack_conversations_db WHERE slack_db_res_id = $1', [resId]);
    return rows[0] === undefined ? undefined : toRow(rows[0]);
  }

  async insertIfAbsent(row: ConversationRow): Promise<{ row: ConversationRow; inserted: boolean }> {
    // On PostgreSQL DO NOTHING waits for a concurrent uncommitted insert of the same key,
    // so the follow-up SELECT (a new snapshot) sees the winner's row; SQLite serialises
    // writers anyway.
    for (let attempt = 0; attempt < 5; attempt++) {
      const rows = await this.sql.query<ConversationRecord>(
        `INSERT INTO slack_conversations_db (${COLUMNS}) VALUES (${VALUES})
         ON CONFLICT (slack_db_res_id) DO NOTHING
         RETURNING *`,
        values(row),
      );
      if (rows[0] !== undefined) return { row: toRow(rows[0]), inserted: true };
      const stored = await this.get(row.resId);
      if (stored !== undefined) return { row: stored, inserted: false };
      // The conflicting row was deleted in between: try again.
    }
    throw new RetryableError(`slack_conversations_db row ${row.resId} keeps changing; try again`, 'store_conflict');
  }

  async replace(row: ConversationRow): Promise<void> {
    await this.sql.execute(
      `INSERT INTO slack_conversations_db (${COLUMNS}) VALUES (${VALUES})
       ON CONFLICT (slack_db_res_id) DO UPDATE SET incident_id = excluded.incident_id,
         task_id = excluded.task_id, slack_db_channel = excluded.slack_db_channel,
         slack_db_channel_id = excluded.slack_db_channel_id, slack_db_channel_type = excluded.slack_db_channel_type,
         slack_db_permalink = excluded.slack_db_permalink, slack_db_time = excluded.slack_db_time,
         slack_db_archived = excluded.slack_db_archived, slack_db_archived_at = excluded.slack_db_archived_at`,
      values(row),
    );
  }

  async markArchived(resId: string, at: Date): Promise<boolean> {
    // The first archive time is kept: a second mark changes nothing but says the row exists.
    const changed = await this.sql.execute(
      `UPDATE slack_conversations_db
       SET slack_db_archived_at = CASE WHEN slack_db_archived = $3 THEN slack_db_archived_at ELSE $2 END,
           slack_db_archived = $3
       WHERE slack_db_res_id = $1`,
      [resId, at, true],
    );
    return changed === 1;
  }

  async findByChannelId(channelId: string): Promise<ConversationRow[]> {
    const rows = await this.sql.query<ConversationRecord>(
      'SELECT * FROM slack_conversations_db WHERE slack_db_channel_id = $1 ORDER BY slack_db_res_id',
      [channelId],
    );
    return rows.map(toRow);
  }

  async list(): Promise<ConversationRow[]> {
    return (await this.sql.query<ConversationRecord>('SELECT * FROM slack_conversations_db ORDER BY slack_db_res_id')).map(toRow);
  }
}
