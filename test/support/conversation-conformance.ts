/**
 * fn_slack's conversation table (`slack_conversations_db`) on a real store: the same
 * behaviour on SQLite and PostgreSQL. Each spec file calls `conversationConformance(name,
 * open, cleanup)` with a factory that returns a fresh, empty, not yet migrated store
 * opened with the table's declaration.
 */
import { expect } from 'chai';
import type { PluginTable, Store } from '../../src/core/store/store.js';
import {
  CONVERSATIONS_TABLE,
  SqlConversationTable,
  type ConversationRow,
  type ConversationTable,
} from '../../src/functions/slack/store/conversations.js';

/** For tests that never reach the conversation table: any use of it fails them. */
export const UNUSED_CONVERSATIONS = new Proxy({} as ConversationTable, {
  get: (_t, name) => () => Promise.reject(new Error(`this test does not use the conversation table (${String(name)})`)),
});

export function conversation(resId: string, overrides: Partial<ConversationRow> = {}): ConversationRow {
  const m = /^RES-(\d+)(?:-(\d+))?$/.exec(resId);
  return {
    resId,
    incidentId: m ? Number(m[1]) : 1,
    taskId: m?.[2] !== undefined ? Number(m[2]) : null,
    channel: `incident-${m ? m[1] : 1}`,
    channelId: 'C0000000001',
    channelType: 'Private',
    permalink: null,
    time: new Date('2024-05-01T10:11:12.345Z'),
    archived: false,
    archivedAt: null,
    ...overrides,
  };
}

export function conversationConformance(
  name: string,
  open: (tables: readonly PluginTable[]) => Promise<Store>,
  cleanup?: () => Promise<void>,
): void {
  describe(`slack_conversations_db conformance: ${name}`, function () {
    let store: Store;
    let table: SqlConversationTable;

    beforeEach(async function () {
      store = await open([CONVERSATIONS_TABLE]);
      await store.migrate();
      table = new SqlConversationTable(store.sql);
    });

    afterEach(async function () {
      await store?.close();
    });

    if (cleanup) after(cleanup);

    it('is created by migrate at the version the plugin declares', async function () {
      const status = await store.schemaStatus();
      expect(status.tables).to.deep.equal([{ name: 'slack_conversations_db', current: 1, expected: 1 }]);
    });

    it('insertIfAbsent stores a new row and returns it', async function () {
      const row = conversation('RES-2103', { permalink: 'https://x.slack.com/archives/C1/p1' });
      const r = await table.insertIfAbsent(row);
      expect(r.inserted).to.equal(true);
      expect(r.row).to.deep.equal(row);
      expect(await table.get('RES-2103')).to.deep.equal(row);
    });

    it('insertIfAbsent keeps the existing row and returns it', async function () {
      const first = conversation('RES-2103', { channel: 'first', channelId: 'C1' });
      await table.insertIfAbsent(first);
      const r = await table.insertIfAbsent(conversation('RES-2103', { channel: 'second', channelId: 'C2', channelType: 'Public' }));
      expect(r.inserted).to.equal(false);
      expect(r.row).to.deep.equal(first);
      expect(await table.get('RES-2103')).to.deep.equal(first);
    });

    it('50 concurrent inserts for one resId: exactly one is stored and every caller gets it', async function () {
      const candidates = Array.from({ length: 50 }, (_, i) => conversation('RES-42', { channel: `candidate-${i}`, channelId: `C${i}` }));
      const results = await Promise.all(candidates.map((c) => table.insertIfAbsent(c)));
      const winners = results.filter((r) => r.inserted);
      expect(winners).to.have.length(1);
      for (const r of results) expect(r.row).to.deep.equal(winners[0]!.row);
      const stored = await table.get('RES-42');
      expect(stored).to.deep.equal(winners[0]!.row);
      expect(candidates.map((c) => c.channel)).to.include(stored!.channel);
      expect(await table.list()).to.have.length(1);
    });

    it('keeps task rows apart from incident rows', async function () {
      const incident = conversation('RES-2103', { channel: 'inc-2103', channelId: 'C1' });
      const task = conversation('RES-2103-7', { channel: 'task-7', channelId: 'C2', channelType: 'Public' });
      expect((await table.insertIfAbsent(incident)).inserted).to.equal(true);
      expect((await table.insertIfAbsent(task)).inserted).to.equal(true);
      const gotIncident = await table.get('RES-2103');
      const gotTask = await table.get('RES-2103-7');
      expect(gotIncident).to.deep.equal(incident);
      expect(gotIncident!.taskId).to.equal(null);
      expect(gotTask).to.deep.equal(task);
      expect(gotTask!.taskId).to.equal(7);
      expect(gotTask!.incidentId).to.equal(2103);
    });

    it('get of an unknown resId is undefined', async function () {
      await table.insertIfAbsent(conversation('RES-1'));
      expect(await table.get('RES-2')).to.equal(undefined);
      expect(await table.get('RES-1-1')).to.equal(undefined);
    });

    it('markArchived flags the row, keeps the first archive time, and reports unknown rows', async function () {
      await table.insertIfAbsent(conversation('RES-5'));
      const at = new Date('2024-06-01T00:00:00.123Z');
      expect(await table.markArchived('RES-5', at)).to.equal(true);
      const got = await table.get('RES-5');
      expect(got!.archived).to.equal(true);
      expect(got!.archivedAt).to.deep.equal(at);
      expect(got!.channel).to.equal('incident-5');

      expect(await table.markArchived('RES-5', new Date('2025-01-01T00:00:00Z'))).to.equal(true);
      expect((await table.get('RES-5'))!.archivedAt).to.deep.equal(at);

      expect(await table.markArchived('RES-6', at)).to.equal(false);
      expect(await table.get('RES-6')).to.equal(undefined);
    });

    it('replace supersedes an archived association with a new channel', async function () {
      await table.insertIfAbsent(conversation('RES-8', { channel: 'old', channelId: 'COLD' }));
      await table.markArchived('RES-8', new Date('2024-06-01T00:00:00Z'));
      const fresh = conversation('RES-8', {
        channel: 'new',
        channelId: 'CNEW',
        channelType: 'Public',
        permalink: 'https://x.slack.com/archives/CNEW/p9',
        time: new Date('2024-07-01T08:00:00.999Z'),
      });
      await table.replace(fresh);
      expect(await table.get('RES-8')).to.deep.equal(fresh);
      expect(await table.list()).to.have.length(1);
      expect(await table.findByChannelId('COLD')).to.deep.equal([]);
    });

    it('findByChannelId returns every row mapped to the channel, sorted by resId', async function () {
      const a = conversation('RES-9', { channelId: 'CSHARED' });
      const b = conversation('RES-9-3', { channelId: 'CSHARED' });
      const c = conversation('RES-10', { channelId: 'COTHER' });
      await table.insertIfAbsent(b);
      await table.insertIfAbsent(c);
      await table.insertIfAbsent(a);
      expect(await table.findByChannelId('CSHARED')).to.deep.equal([a, b]);
      expect(await table.findByChannelId('COTHER')).to.deep.equal([c]);
      expect(await table.findByChannelId('CNONE')).to.deep.equal([]);
    });

    it('list returns all rows sorted by resId', async function () {
      expect(await table.list()).to.deep.equal([]);
      const rows = ['RES-3', 'RES-1', 'RES-2-1', 'RES-2'].map((id) => conversation(id));
      for (const r of rows) await table.insertIfAbsent(r);
      const listed = await table.list();
      expect(listed.map((r) => r.resId)).to.deep.equal(['RES-1', 'RES-2', 'RES-2-1', 'RES-3']);
      expect(listed[0]).to.deep.equal(conversation('RES-1'));
    });
  });
}
