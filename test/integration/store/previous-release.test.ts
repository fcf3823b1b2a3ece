/**
 * A store made by an earlier release opens with this one, migrates in place and keeps
 * every row: the invocation ledger, the function definitions and fn_slack's
 * slack_conversations_db, which core's migrations created until the table became the
 * plugin's own. The fixtures were written by those releases' own code
 * (test/fixtures/previous-store/make-fixture.ts):
 *
 * - v6: the last release before plugin tables (core schema 6, commit cdaf73f);
 * - v7: main with the plugin-tables contract but the table still core's (commit 83b5a5b).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import pg from 'pg';
import { openStore } from '../../../src/core/store/index.js';
import type { Store } from '../../../src/core/store/store.js';
import { slackPlugin } from '../../../src/functions/slack/index.js';
import { SqlConversationTable, type ConversationRow } from '../../../src/functions/slack/store/conversations.js';
import { FIXTURE_ARCHIVED, FIXTURE_CONVERSATIONS, FIXTURE_DEFINITIONS, FIXTURE_LEDGER } from '../../fixtures/previous-store/data.js';

const PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/previous-store');
const RUN = `prev_${process.pid}_${randomBytes(3).toString('hex')}`;
let counter = 0;

const TABLES = slackPlugin.tables ?? [];

/**
 * fn_slack's tables as schemaStatus reports them: before the migration none is recorded
 * (slack_conversations_db exists, made by core's old migrations, and is adopted by the
 * plugin's first one); after it each is at its latest version.
 */
function tableStatus(migrated: boolean): { name: string; current: number; expected: number }[] {
  return TABLES.map((t) => {
    const latest = Math.max(...t.migrations.map((m) => m.version));
    return { name: t.name, current: migrated ? latest : 0, expected: latest };
  });
}

/** The rows as the fixture wrote them, one archived afterwards. */
function expectedConversations(): ConversationRow[] {
  return FIXTURE_CONVERSATIONS.map((row) =>
    row.resId === FIXTURE_ARCHIVED.resId ? { ...row, archived: true, archivedAt: FIXTURE_ARCHIVED.at } : { ...row },
  ).sort((a, b) => a.resId.localeCompare(b.resId));
}

/** Loads a `pg_dump` fixture into a new schema of this run; returns the schema. */
async function loadPostgresFixture(file: string): Promise<string> {
  const schema = `${RUN}_${++counter}`;
  const dump = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => !line.startsWith('\\')) // psql meta-commands (\restrict) are for psql only
    .join('\n')
    .replaceAll('fixture_previous', schema);
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(dump);
  } finally {
    await client.end();
  }
  return schema;
}

async function dropRunSchemas(): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [`${RUN}\\_%`]);
    for (const r of rows) await client.query(`DROP SCHEMA "${r.nspname}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** What every migrated fixture must hold, read through this release's API. */
async function expectRowsKept(store: Store): Promise<void> {
  const conversations = new SqlConversationTable(store.sql);
  expect(await conversations.list()).to.deep.equal(expectedConversations());

  const definitions = await store.definitions.list();
  expect(definitions.map(({ importedAt, ...rest }) => (expect(importedAt).to.be.instanceOf(Date), rest))).to.deep.equal(
    [...FIXTURE_DEFINITIONS].sort((a, b) => a.name.localeCompare(b.name)),
  );

  const { running, succeeded, failed } = FIXTURE_LEDGER;
  const r = await store.ledger.get(running.id);
  expect(r).to.include({ functionName: running.functionName, state: 'running', attempts: 1, inFlight: true, reply: null });
  expect(r!.steps).to.deep.equal({ [running.step[0]]: running.step[1] });
  const s = await store.ledger.get(succeeded.id);
  expect(s).to.include({ functionName: succeeded.functionName, state: 'succeeded', attempts: 2, inFlight: false, replyFailures: 0 });
  expect(s!.reply).to.deep.equal(succeeded.reply);
  expect(s!.repliedAt).to.be.instanceOf(Date);
  const f = await store.ledger.get(failed.id);
  expect(f).to.include({ state: 'failed', attempts: 1, replyFailures: 1, repliedAt: null });
  expect(f!.reply).to.deep.equal(failed.reply);
  expect(f!.replyAbandonedAt).to.be.instanceOf(Date);
}

/** The migrated store keeps working: a redelivery is answered from the ledger, new rows go in. */
async function expectUsable(store: Store): Promise<void> {
  const again = await store.ledger.begin(FIXTURE_LEDGER.succeeded.id, FIXTURE_LEDGER.succeeded.functionName);
  expect(again.finished).to.equal(true);
  expect(again.entry.reply).to.deep.equal(FIXTURE_LEDGER.succeeded.reply);
  const conversations = new SqlConversationTable(store.sql);
  const existing = await conversations.insertIfAbsent({ ...FIXTURE_CONVERSATIONS[0]!, channel: 'another' });
  expect(existing).to.deep.equal({ row: FIXTURE_CONVERSATIONS[0], inserted: false });
  const fresh = { ...FIXTURE_CONVERSATIONS[0]!, resId: 'RES-1', incidentId: 1 };
  expect((await conversations.insertIfAbsent(fresh)).inserted).to.equal(true);
  expect(await conversations.findByChannelId(FIXTURE_CONVERSATIONS[0]!.channelId)).to.deep.equal([fresh, FIXTURE_CONVERSATIONS[0]]);
  await store.checkWritable();
}

for (const version of ['v6', 'v7'] as const) {
  const coreBefore = version === 'v6' ? 6 : 7;

  describe(`a store made by the previous release (${version}) migrates in place`, function () {
    describe('SQLite', function () {
      let dir: string;
      before(async function () {
        dir = await mkdtemp(path.join(tmpdir(), 'previous-store-'));
      });
      after(async function () {
        await rm(dir, { recursive: true, force: true });
      });

      it('opens, migrates (core and the plugin table) and keeps every ledger entry, definition and conversation row', async function () {
        const file = path.join(dir, `${version}.db`);
        fs.copyFileSync(path.join(FIXTURES, `${version}.db`), file);
        const store = await openStore(file, { tables: TABLES });
        try {
          expect(await store.schemaStatus()).to.deep.equal({
            current: coreBefore,
            expected: 7,
            tables: tableStatus(false),
          });
          expect(await store.migrate()).to.deep.equal(coreBefore < 7 ? [7] : []);
          expect((await store.schemaStatus()).tables).to.deep.equal(tableStatus(true));
          await expectRowsKept(store);
          await expectUsable(store);
          expect(await store.migrate()).to.deep.equal([]);
        } finally {
          await store.close();
        }
      });

      it('ends with the same conversation table and index as a store made new', async function () {
        const migrated = path.join(dir, `${version}-shape.db`);
        fs.copyFileSync(path.join(FIXTURES, `${version}.db`), migrated);
        const fresh = path.join(dir, `${version}-fresh.db`);
        for (const file of [migrated, fresh]) await (await openStore(file, { migrate: true, tables: TABLES })).close();
        const shape = (file: string) => {
          const db = new Database(file, { readonly: true });
          try {
            return {
              columns: db.prepare(`SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info('slack_conversations_db')`).all(),
              indexes: db
                .prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'slack_conversations_db' AND sql IS NOT NULL`)
                .all(),
            };
          } finally {
            db.close();
          }
        };
        expect(shape(migrated)).to.deep.equal(shape(fresh));
        expect(shape(fresh).indexes).to.deep.equal([{ name: 'slack_conversations_db_channel_id' }]);
      });
    });

    describe('PostgreSQL', function () {
      after(dropRunSchemas);

      it('opens, migrates (core and the plugin table) and keeps every ledger entry, definition and conversation row', async function () {
        const schema = await loadPostgresFixture(path.join(FIXTURES, `${version}-postgres.sql`));
        const store = await openStore(PG_URL, { pgSchema: schema, tables: TABLES });
        try {
          expect(await store.schemaStatus()).to.deep.equal({
            current: coreBefore,
            expected: 7,
            tables: tableStatus(false),
          });
          expect(await store.migrate()).to.deep.equal(coreBefore < 7 ? [7] : []);
          expect((await store.schemaStatus()).tables).to.deep.equal(tableStatus(true));
          await expectRowsKept(store);
          await expectUsable(store);
          expect(await store.migrate()).to.deep.equal([]);
        } finally {
          await store.close();
        }
      });

      it('ends with the same conversation table and index as a store made new', async function () {
        const migrated = await loadPostgresFixture(path.join(FIXTURES, `${version}-postgres.sql`));
        const fresh = `${RUN}_${++counter}`;
        for (const schema of [migrated, fresh]) {
          await (await openStore(PG_URL, { migrate: true, pgSchema: schema, tables: TABLES })).close();
        }
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        try {
          const shape = async (schema: string) => ({
            columns: (
              await client.query(
                `SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name = 'slack_conversations_db' ORDER BY ordinal_position`,
                [schema],
              )
            ).rows,
            indexes: (
              await client.query(
                `SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'slack_conversations_db' ORDER BY indexname`,
                [schema],
              )
            ).rows,
          });
          expect(await shape(migrated)).to.deep.equal(await shape(fresh));
          expect((await shape(fresh)).indexes.map((r) => r.indexname)).to.deep.equal([
            'slack_conversations_db_channel_id',
            'slack_conversations_db_pkey',
          ]);
        } finally {
          await client.end();
        }
      });
    });
  });
}
