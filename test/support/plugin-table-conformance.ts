/**
 * The plugin-table part of the Store conformance suite (called by storeConformance):
 * `Store.sql` and the migrations of tables plugins declare, the same on every store.
 */
import { expect } from 'chai';
import type { PluginTable, Store } from '../../src/core/store/store.js';

/** Opens a fresh, empty, not migrated store with these plugin tables. */
export type OpenWithTables = (tables?: readonly PluginTable[]) => Promise<Store>;
/** Opens the same database as `store` (closed by the caller first) with other plugin tables. */
export type ReopenWithTables = (store: Store, tables: readonly PluginTable[]) => Promise<Store>;

/** A plugin table in two versions: v2 adds a column and an index to v1's table. */
export const NOTES_V1 = {
  version: 1,
  // No IF NOT EXISTS: running version 1 twice would fail, so the tests see it runs once.
  sqlite: `CREATE TABLE conformance_notes (
             id      TEXT PRIMARY KEY,
             n       INTEGER NOT NULL,
             flag    INTEGER NOT NULL CHECK (flag IN (0, 1)),
             at      INTEGER,
             note    TEXT
           )`,
  postgres: `CREATE TABLE conformance_notes (
               id      TEXT PRIMARY KEY,
               n       BIGINT NOT NULL,
               flag    BOOLEAN NOT NULL,
               at      TIMESTAMPTZ,
               note    TEXT
             )`,
};
export const NOTES_V2 = {
  version: 2,
  sqlite: `ALTER TABLE conformance_notes ADD COLUMN tag TEXT NOT NULL DEFAULT 'none';
           CREATE INDEX conformance_notes_tag ON conformance_notes (tag)`,
  postgres: `ALTER TABLE conformance_notes ADD COLUMN tag TEXT NOT NULL DEFAULT 'none';
             CREATE INDEX conformance_notes_tag ON conformance_notes (tag)`,
};
const NOTES: PluginTable = { name: 'conformance_notes', migrations: [NOTES_V1, NOTES_V2] };
const NOTES_V1_ONLY: PluginTable = { name: 'conformance_notes', migrations: [NOTES_V1] };
/** A second table whose migration needs the first table's version 2 (the tag column). */
const TAGS: PluginTable = {
  name: 'conformance_tags',
  migrations: [
    {
      version: 3,
      sqlite: `CREATE TABLE conformance_tags AS SELECT DISTINCT tag FROM conformance_notes`,
      postgres: `CREATE TABLE conformance_tags AS SELECT DISTINCT tag FROM conformance_notes`,
    },
  ],
};

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(Error);
    return err as Error;
  }
  throw new Error('expected a rejection');
}

export function pluginTableConformance(open: OpenWithTables, reopen?: ReopenWithTables): void {
  describe('plugin tables', function () {
    const stores: Store[] = [];
    const track = (s: Store) => (stores.push(s), s);
    afterEach(async function () {
      await Promise.all(stores.splice(0).map((s) => s.close()));
    });

    it('migrate creates each declared table at its last version, in order, and records the versions', async function () {
      const store = track(await open([NOTES, TAGS]));
      const before = await store.schemaStatus();
      expect(before.tables).to.deep.equal([
        { name: 'conformance_notes', current: 0, expected: 2 },
        { name: 'conformance_tags', current: 0, expected: 3 },
      ]);
      await store.migrate();
      const after = await store.schemaStatus();
      expect(after.current).to.equal(after.expected);
      expect(after.tables).to.deep.equal([
        { name: 'conformance_notes', current: 2, expected: 2 },
        { name: 'conformance_tags', current: 3, expected: 3 },
      ]);
      expect(
        await store.sql.execute(`INSERT INTO conformance_notes (id, n, flag, tag) VALUES ($1, $2, $3, $4)`, ['a', 1, true, 'x']),
      ).to.equal(1);
      expect(await store.migrate()).to.deep.equal([]);
      expect(await store.sql.query(`SELECT id, tag FROM conformance_notes`)).to.deep.equal([{ id: 'a', tag: 'x' }]);
    });

    it('a failing table migration rolls the whole migration back and names the table and version', async function () {
      const broken: PluginTable = {
        name: 'conformance_broken',
        migrations: [{ version: 1, sqlite: 'CREATE TABLE conformance_broken (', postgres: 'CREATE TABLE conformance_broken (' }],
      };
      const store = track(await open([NOTES, broken]));
      const err = await rejection(store.migrate());
      expect(err.message).to.contain('conformance_broken').and.contain('migration 1');
      const status = await store.schemaStatus();
      expect(status.current).to.equal(0);
      expect(status.tables.map((t) => t.current)).to.deep.equal([0, 0]);
      await rejection(store.sql.query('SELECT * FROM conformance_notes'));
    });

    if (reopen) {
      it('an upgraded declaration applies only the new versions and keeps the rows', async function () {
        const first = await open([NOTES_V1_ONLY]);
        await first.migrate();
        expect((await first.schemaStatus()).tables).to.deep.equal([{ name: 'conformance_notes', current: 1, expected: 1 }]);
        await first.sql.execute(`INSERT INTO conformance_notes (id, n, flag) VALUES ($1, $2, $3)`, ['kept', 7, false]);
        await first.close();
        const second = track(await reopen(first, [NOTES]));
        expect((await second.schemaStatus()).tables).to.deep.equal([{ name: 'conformance_notes', current: 1, expected: 2 }]);
        expect(await second.migrate()).to.deep.equal([]); // the core schema was current already
        expect((await second.schemaStatus()).tables).to.deep.equal([{ name: 'conformance_notes', current: 2, expected: 2 }]);
        expect(await second.sql.query(`SELECT id, n, tag FROM conformance_notes`)).to.deep.equal([
          { id: 'kept', n: second.sql.dialect === 'postgres' ? '7' : 7, tag: 'none' },
        ]);
      });
    }

    describe('Store.sql', function () {
      let store: Store;
      beforeEach(async function () {
        store = track(await open([NOTES]));
        await store.migrate();
      });

      it('speaks the store dialect', function () {
        expect(store.sql.dialect).to.equal(store.kind);
      });

      it('binds $1… (a placeholder used twice too) and returns the rows; execute returns the rows changed', async function () {
        const at = new Date('2024-05-01T10:11:12.345Z');
        expect(
          await store.sql.execute(`INSERT INTO conformance_notes (id, n, flag, at, note) VALUES ($1, $2, $3, $4, $5)`, [
            'a',
            1,
            true,
            at,
            null,
          ]),
        ).to.equal(1);
        expect(
          await store.sql.execute(`INSERT INTO conformance_notes (id, n, flag, note) VALUES ($1, $2, $3, $1)`, ['b', 2, false]),
        ).to.equal(1);
        const rows = await store.sql.query<{ id: string; flag: unknown; at: unknown; note: string | null }>(
          `SELECT id, flag, at, note FROM conformance_notes WHERE n >= $1 ORDER BY id`,
          [1],
        );
        expect(rows.map((r) => [r.id, r.note])).to.deep.equal([
          ['a', null],
          ['b', 'b'],
        ]);
        // Booleans and Dates go in as such on both stores; they come back as each stores them.
        if (store.sql.dialect === 'sqlite') {
          expect(rows.map((r) => [r.flag, r.at])).to.deep.equal([
            [1, at.getTime()],
            [0, null],
          ]);
        } else {
          expect(rows.map((r) => [r.flag, r.at])).to.deep.equal([
            [true, at],
            [false, null],
          ]);
        }
        expect(await store.sql.execute(`UPDATE conformance_notes SET note = $1`, ['all'])).to.equal(2);
        expect(await store.sql.execute(`DELETE FROM conformance_notes WHERE id = $1`, ['zzz'])).to.equal(0);
        expect(await store.sql.query(`SELECT id FROM conformance_notes WHERE id = $1`, ['zzz'])).to.deep.equal([]);
      });

      it('a write with RETURNING goes through query; a conflict the SQL ignores returns nothing', async function () {
        const insert = `INSERT INTO conformance_notes (id, n, flag) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING RETURNING id, note`;
        expect(await store.sql.query(insert, ['r', 1, true])).to.deep.equal([{ id: 'r', note: null }]);
        expect(await store.sql.query(insert, ['r', 2, true])).to.deep.equal([]);
      });

      it('refuses an undefined parameter, naming it', async function () {
        const err = await rejection(
          store.sql.execute(`INSERT INTO conformance_notes (id, n, flag) VALUES ($1, $2, $3)`, ['u', undefined, true]),
        );
        expect(err.message).to.contain('$2').and.contain('null');
        expect(await store.sql.query(`SELECT id FROM conformance_notes`)).to.deep.equal([]);
      });

      it('rejects bad SQL and constraint violations, and the store keeps working', async function () {
        expect((await rejection(store.sql.query('SELECT * FROM conformance_nowhere'))).message).to.match(/run the migrations/);
        await store.sql.execute(`INSERT INTO conformance_notes (id, n, flag) VALUES ($1, $2, $3)`, ['dup', 1, true]);
        await rejection(store.sql.execute(`INSERT INTO conformance_notes (id, n, flag) VALUES ($1, $2, $3)`, ['dup', 2, true]));
        await rejection(store.sql.execute(`INSERT INTO conformance_notes (id, n, flag) VALUES ($1, $2, $3)`, ['nul', null, true]));
        expect(await store.sql.query(`SELECT id, n FROM conformance_notes`)).to.have.length(1);
        expect((await store.ledger.begin('after-errors', 'fn')).entry.attempts).to.equal(1);
      });

      it('rejects once the store is closed', async function () {
        await store.close();
        await rejection(store.sql.query('SELECT 1 AS one'));
        await rejection(store.sql.execute(`DELETE FROM conformance_notes`));
      });
    });
  });
}
