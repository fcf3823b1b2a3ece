/**
 * Optional (`[soar] data_table = true`): keep a copy of the incident ↔ channel mapping in
 * SOAR's own `slack_conversations_db` data table, so analysts see it on the incident, as
 * fn_slack did.
 *
 * The worker's store stays the source of truth (it has the locks and the race-safe
 * insert); this wraps its conversation table and, after each successful write (a new
 * association, a replaced one, an archive mark), writes the row to SOAR:
 * `GET /incidents/{inc}/table_data/{table}?handle_format=names` to find the row of the
 * same `slack_db_res_id`, then `PUT …/row_data/{row_id}` or `POST …/row_data` with
 * `{"cells": {column: {"value": v}}}`. Only the columns the SOAR table has (read once
 * from `GET /types/{table}`) are written, so a table imported from an older definition
 * still works. A failed copy is logged as a warning and never fails the function: the
 * Slack side and the store are already done, and the next write of the row repairs it.
 */
import type { Logger } from '../../../core/logging.js';
import type { Platform } from '../../../platforms/platform.js';
import type { SoarClient } from '../../../platforms/soar/soar-client.js';
import { SOAR_PERMISSIONS, SoarPlatform } from '../../../platforms/soar/soar-platform.js';
import { CONVERSATIONS_TABLE_NAME, type ConversationRow, type ConversationTable } from './conversations.js';

/** fn_slack's data table in SOAR has the name of the store's. */
export const SOAR_CONVERSATIONS_TABLE = CONVERSATIONS_TABLE_NAME;

type Cells = Record<string, { value: unknown }>;

/** The row as SOAR cells (every column the worker knows; filtered by what the table has). */
export function rowCells(row: ConversationRow): Cells {
  return {
    slack_db_time: { value: row.time.getTime() },
    slack_db_res_id: { value: row.resId },
    slack_db_channel: { value: row.channel },
    slack_db_channel_id: { value: row.channelId },
    slack_db_channel_type: { value: row.channelType },
    // fn_slack wrote the permalink as a link, "N/A" when there was none.
    slack_db_permalink: { value: row.permalink ? `<a href="${row.permalink.replace(/"/g, '%22')}">Link</a>` : 'N/A' },
    slack_db_archived: { value: row.archived },
    slack_db_archived_time: { value: row.archivedAt ? row.archivedAt.getTime() : null },
  };
}

export class SoarMirroredConversations implements ConversationTable {
  private columns: Promise<Set<string>> | undefined;

  constructor(
    private readonly inner: ConversationTable,
    private readonly client: SoarClient,
    private readonly log: Logger,
    private readonly table = SOAR_CONVERSATIONS_TABLE,
  ) {}

  get(resId: string): Promise<ConversationRow | undefined> {
    return this.inner.get(resId);
  }

  findByChannelId(channelId: string): Promise<ConversationRow[]> {
    return this.inner.findByChannelId(channelId);
  }

  list(): Promise<ConversationRow[]> {
    return this.inner.list();
  }

  async insertIfAbsent(row: ConversationRow): Promise<{ row: ConversationRow; inserted: boolean }> {
    const result = await this.inner.insertIfAbsent(row);
    if (result.inserted) await this.mirror(result.row);
    return result;
  }

  async replace(row: ConversationRow): Promise<void> {
    await this.inner.replace(row);
    const stored = await this.inner.get(row.resId);
    await this.mirror(stored ?? row);
  }

  async markArchived(resId: string, at: Date): Promise<boolean> {
    const changed = await this.inner.markArchived(resId, at);
    const row = await this.inner.get(resId);
    if (row) await this.mirror(row);
    return changed;
  }

  /** Writes the row to SOAR; a failure is a warning (see the module comment). */
  async mirror(row: ConversationRow): Promise<void> {
    try {
      await this.upsert(row);
    } catch (err) {
      this.log.warn(
        `Could not copy ${row.resId} to the SOAR data table ${this.table} of incident ${row.incidentId}: ${(err as Error).message}`,
      );
    }
  }

  private async upsert(row: ConversationRow): Promise<void> {
    const columns = await this.tableColumns();
    const cells: Cells = {};
    for (const [name, cell] of Object.entries(rowCells(row))) if (columns.has(name)) cells[name] = cell;
    const base = `/incidents/${row.incidentId}/table_data/${this.table}`;
    const what = `the ${this.table} row ${row.resId} of incident ${row.incidentId}`;
    const data = await this.client.getJson<{ rows?: { id?: number; cells?: Cells }[] }>(
      base,
      { what: `the ${this.table} rows of incident ${row.incidentId}`, permission: SOAR_PERMISSIONS.readIncidents },
      { handle_format: 'names' },
    );
    const existing = (data?.rows ?? []).find((r) => r.cells?.slack_db_res_id?.value === row.resId);
    if (existing?.id !== undefined) {
      await this.client.putJson(
        `${base}/row_data/${existing.id}?handle_format=names`,
        { cells },
        { what, permission: SOAR_PERMISSIONS.editIncidents },
      );
    } else {
      await this.client.postJson(
        `${base}/row_data`,
        { cells },
        { what, permission: SOAR_PERMISSIONS.editIncidents },
        { handle_format: 'names' },
      );
    }
  }

  /** The table's column names, read once; a failed read is retried at the next write. */
  private tableColumns(): Promise<Set<string>> {
    if (!this.columns) {
      this.columns = this.client
        .getJson<{ fields?: Record<string, unknown> }>(`/types/${this.table}`, {
          what: `the data table ${this.table} (import it with \`worker customize\`)`,
          permission: SOAR_PERMISSIONS.readData,
        })
        .then((type) => new Set(Object.keys(type?.fields ?? {})));
      this.columns.catch(() => (this.columns = undefined));
    }
    return this.columns;
  }
}

/**
 * The conversation table the handlers use: `table` itself, or mirrored to SOAR when the
 * platform is SOAR with `[soar] data_table = true`.
 */
export function withSoarDataTable(table: ConversationTable, platform: Platform, log: Logger): ConversationTable {
  if (!(platform instanceof SoarPlatform) || !platform.mirrorDataTable) return table;
  return new SoarMirroredConversations(table, platform.client, log);
}
