/**
 * The Store conformance suite against a real PostgreSQL, plus what only the shared
 * store does: advisory locks across pools (workers), concurrent migrations, error mapping.
 * Each store gets its own schema; all of this run's schemas are dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import pg from 'pg';
import { ConfigError, RetryableError } from '../../../src/core/runtime/errors.js';
import { openStore } from '../../../src/core/store/index.js';
import { POSTGRES_MIGRATIONS, PostgresStore } from '../../../src/core/store/postgres-store.js';
import { storeConformance } from '../../support/store-conformance.js';
import { NOTES_V1, NOTES_V2 } from '../../support/plugin-table-conformance.js';

const PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = `st_${process.pid}_${randomBytes(3).toString('hex')}`;
let counter = 0;
const nextSchema = () => `${RUN}_${++counter}`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function dropRunSchemas(): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`,
      [`${RUN}\\_%`],
    );
    for (const r of rows) await client.query(`DROP SCHEMA "${r.nspname}" CASCADE`);
  } finally {
    await client.end();
  }
}

storeConformance(
  'postgres',
  (tables) => PostgresStore.open(PG_URL, { schema: nextSchema(), poolSize: 5, tables }),
  dropRunSchemas,
  (store, tables) => PostgresStore.open(PG_URL, { schema: (store as PostgresStore).schema, poolSize: 5, tables }),
);

describe('PostgresStore specifics', function () {
  const opened: PostgresStore[] = [];
  async function openPg(schema: string, opts: { poolSize?: number } = {}): Promise<PostgresStore> {
    const s = await PostgresStore.open(PG_URL, { schema, ...opts });
    opened.push(s);
    return s;
  }
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });
  after(dropRunSchemas);

  it('keeps its tables in its own schema', async function () {
    const schema = nextSchema();
    const store = await openPg(schema);
    expect(await store.migrate()).to.deep.equal(POSTGRES_MIGRATIONS.map((m) => m.version));
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
        [schema],
      );
      expect(rows.map((r) => r.table_name)).to.deep.equal([
        'function_definitions',
        'invocation_ledger',
        'plugin_table_versions',
        'schema_migrations',
      ]);
    } finally {
      await client.end();
    }
  });

  it('several workers migrating one fresh schema at once apply each version exactly once', async function () {
    const schema = nextSchema();
    const stores = await Promise.all(Array.from({ length: 5 }, () => openPg(schema, { poolSize: 2 })));
    const applied = await Promise.all(stores.map((s) => s.migrate()));
    expect(applied.flat().sort((a, b) => a - b)).to.deep.equal(POSTGRES_MIGRATIONS.map((m) => m.version));
    for (const s of stores) {
      const status = await s.schemaStatus();
      expect(status.current).to.equal(status.expected);
    }
  });

  it('several workers migrating one fresh schema with plugin tables create each table once and agree on its version', async function () {
    const schema = nextSchema();
    const tables = [{ name: 'conformance_notes', migrations: [NOTES_V1, NOTES_V2] }];
    const stores = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const s = await PostgresStore.open(PG_URL, { schema, poolSize: 2, tables });
        opened.push(s);
        return s;
      }),
    );
    // NOTES_V1 has no IF NOT EXISTS: a second run of it would fail one of these.
    await Promise.all(stores.map((s) => s.migrate()));
    for (const s of stores) {
      expect((await s.schemaStatus()).tables).to.deep.equal([{ name: 'conformance_notes', current: 2, expected: 2 }]);
    }
    expect(await stores[0]!.sql.execute(`INSERT INTO conformance_notes (id, n, flag) VALUES ($1, $2, $3)`, ['a', 1, true])).to.equal(1);
    expect(await stores[3]!.sql.query(`SELECT id, tag FROM conformance_notes`)).to.deep.equal([{ id: 'a', tag: 'none' }]);
  });

  it('two stores (two pools, like two workers) serialise withLock + check-then-create on one key', async function () {
    const schema = nextSchema();
    const a = await openPg(schema);
    const b = await openPg(schema);
    await a.migrate();
    let active = 0;
    let maxActive = 0;
    let created = 0;
    const ensureChannel = (store: PostgresStore, who: string) =>
      store.withLock('RES-2103', async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        try {
          const existing = await store.ledger.get('RES-2103');
          if (existing) return existing.reply;
          await sleep(30); // creating the Slack channel
          created++;
          await store.ledger.finish('RES-2103', 'succeeded', { channel: `by-${who}` });
          return (await store.ledger.get('RES-2103'))!.reply;
        } finally {
          active--;
        }
      });
    const rows = await Promise.all([
      ensureChannel(a, 'a1'),
      ensureChannel(b, 'b1'),
      ensureChannel(a, 'a2'),
      ensureChannel(b, 'b2'),
      ensureChannel(b, 'b3'),
    ]);
    expect(maxActive).to.equal(1);
    expect(created).to.equal(1);
    for (const r of rows) expect(r).to.deep.equal(rows[0]);
  });

  it('a lock held by one store blocks another store until released, also after fn throws', async function () {
    const schema = nextSchema();
    const a = await openPg(schema);
    const b = await openPg(schema);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const aEntered = new Promise<void>((r) => (entered = r));
    const aDone = a
      .withLock('k', async () => {
        entered();
        await held;
        throw new Error('fn failed');
      })
      .catch((err: Error) => err.message);
    await aEntered;
    let bRan = false;
    const bDone = b.withLock('k', async () => {
      bRan = true;
    });
    await sleep(200);
    expect(bRan).to.equal(false);
    // A different key is not blocked.
    expect(await b.withLock('other', async () => 'free')).to.equal('free');
    release();
    expect(await aDone).to.equal('fn failed');
    await bDone;
    expect(bRan).to.equal(true);
  });

  it('a lock on the same key in another schema does not block', async function () {
    const a = await openPg(nextSchema());
    const b = await openPg(nextSchema());
    const result = await a.withLock('k', () =>
      Promise.race([b.withLock('k', async () => 'not blocked'), sleep(3000).then(() => 'blocked')]),
    );
    expect(result).to.equal('not blocked');
  });

  it('many different keys at once do not exhaust the pool (locks use their own connections)', async function () {
    const store = await openPg(nextSchema(), { poolSize: 2 });
    await store.migrate();
    const results = await Promise.race([
      Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          store.withLock(`incident:${i}`, async () => {
            await store.ledger.begin(`inv-${i}`, 'fn');
            return (await store.ledger.begin(`inv-${i}`, 'fn')).interrupted;
          }),
        ),
      ),
      sleep(10_000).then(() => 'deadlocked'),
    ]);
    expect(results).to.deep.equal([true, true, true, true, true, true]);
  });

  it('does not migrate on open; openStore migrates when asked', async function () {
    const schema = nextSchema();
    const plain = await openPg(schema);
    expect((await plain.schemaStatus()).current).to.equal(0);
    const store = await openStore(PG_URL, { migrate: true, pgSchema: schema });
    try {
      expect(store.kind).to.equal('postgres');
      const status = await store.schemaStatus();
      expect(status.current).to.equal(status.expected);
    } finally {
      await store.close();
    }
  });

  it('location hides the password', async function () {
    const u = new URL(PG_URL);
    u.password = 'not-the-real-one';
    let error: unknown;
    try {
      // trust auth accepts any password; if the server checks, the error must not show it either
      const s = await PostgresStore.open(u.toString(), { schema: nextSchema() });
      opened.push(s);
      expect(s.location).to.not.include('not-the-real-one');
      expect(s.location).to.include(':***@');
    } catch (err) {
      error = err;
    }
    if (error) expect(String((error as Error).message)).to.not.include('not-the-real-one');
  });

  it('an unreachable server gives a RetryableError naming host:port and never the password', async function () {
    let error: unknown;
    try {
      await PostgresStore.open('postgres://worker:hunter2secret@127.0.0.1:1/soar', { connectTimeoutMs: 3000 });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(RetryableError);
    const e = error as RetryableError;
    expect(e.retryable).to.equal(true);
    expect(e.message).to.include('127.0.0.1:1');
    expect(e.message).to.not.include('hunter2secret');
    expect(JSON.stringify(e.details)).to.not.include('hunter2secret');
  });

  it('a database that does not exist is a ConfigError (retrying will not help)', async function () {
    const u = new URL(PG_URL);
    u.pathname = `/no_such_db_${randomBytes(3).toString('hex')}`;
    let error: unknown;
    try {
      await PostgresStore.open(u.toString());
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as Error).message).to.include(`${u.hostname}:${u.port || 5432}`);
  });

  it('refuses a schema name that is not a plain identifier', async function () {
    let error: unknown;
    try {
      await PostgresStore.open(PG_URL, { schema: 'x"; DROP TABLE y; --' });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ConfigError);
  });
});
