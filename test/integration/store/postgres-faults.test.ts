/**
 * The PostgreSQL store when the network or the server misbehaves: a link that drops
 * every packet for a while (an in-process TCP proxy this test owns, between the store
 * and the shared server), and a server that refuses writes (a read-only session, set
 * per connection, so nothing shared is touched). Each test uses its own schema.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import pg from 'pg';
import { PostgresStore } from '../../../src/core/store/postgres-store.js';
import { TcpProxy } from '../../support/tcp-proxy.js';

const PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = `sf_${process.pid}_${randomBytes(3).toString('hex')}`;
let counter = 0;
const nextSchema = () => `${RUN}_${++counter}`;

/** Resolves with `p`'s settled results, or 'hung' when they did not all settle within `ms`. */
async function settledWithin<T>(ps: Promise<T>[], ms: number): Promise<PromiseSettledResult<T>[] | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), ms);
  });
  try {
    return await Promise.race([Promise.allSettled(ps), hung]);
  } finally {
    clearTimeout(timer);
  }
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

describe('PostgresStore under faults', function () {
  this.timeout(60_000);
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async function () {
    // In order: the proxy first, so a store with calls stuck on it can close.
    for (const c of cleanups.splice(0)) await c().catch(() => undefined);
  });
  after(dropRunSchemas);

  it('a link that drops packets: every call settles within its timeouts, and after healing the pool serves again on new connections', async function () {
    const target = new URL(PG_URL);
    const proxy = await TcpProxy.start(target.hostname, Number(target.port || 5432));
    cleanups.push(() => proxy.close());
    const viaProxy = new URL(PG_URL);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const store = await PostgresStore.open(viaProxy.toString(), {
      schema: nextSchema(),
      poolSize: 3,
      connectTimeoutMs: 1000,
      queryTimeoutMs: 500,
    });
    cleanups.push(() => store.close());
    await store.migrate();
    expect((await store.ledger.begin('before', 'fn')).entry.attempts).to.equal(1);

    proxy.blackhole();
    const started = Date.now();
    const during = await settledWithin(
      Array.from({ length: 8 }, (_, i) => store.ledger.begin(`during-${i}`, 'fn')),
      15_000,
    );
    expect(during, 'store calls hung while the link dropped packets').to.not.equal('hung');
    for (const r of during as PromiseSettledResult<unknown>[]) {
      expect(r.status).to.equal('rejected');
      const err = (r as PromiseRejectedResult).reason as { code?: string; retryable?: boolean; message: string };
      expect(err.retryable, err.message).to.equal(true);
      expect(['store_unavailable', 'store_timeout']).to.include(err.code);
      expect(err.message).to.include(`127.0.0.1:${proxy.port}`);
    }
    // 3 queries time out (0.5 s + 1 s), the others wait for a connection (1 s) or open one (1 s).
    expect(Date.now() - started).to.be.lessThan(8_000);

    const openedBefore = proxy.connectionsOpened;
    proxy.heal();
    const after = await settledWithin(
      Array.from({ length: 8 }, (_, i) => store.ledger.begin(`after-${i}`, 'fn')),
      15_000,
    );
    expect(after, 'store calls hung after the link healed').to.not.equal('hung');
    for (const r of after as PromiseSettledResult<{ entry: { attempts: number } }>[]) {
      expect(r.status, String((r as PromiseRejectedResult).reason)).to.equal('fulfilled');
    }
    expect(proxy.connectionsOpened, 'no new connection was opened after healing').to.be.greaterThan(openedBefore);
    // The calls that failed during the outage wrote nothing half-way: a retry starts at attempt 1 or 2
    // (2 when the server did run the timed-out statement before the answer was lost).
    const retried = await store.ledger.begin('during-0', 'fn');
    expect(retried.entry.attempts).to.be.within(1, 2);
  });

  it('a store that refuses writes (read-only session) is unusable, not retryable, and checkWritable says so', async function () {
    const schema = nextSchema();
    const rw = await PostgresStore.open(PG_URL, { schema });
    cleanups.push(() => rw.close());
    await rw.migrate();
    await rw.ledger.begin('seen', 'fn');

    const readOnly = new URL(PG_URL);
    readOnly.searchParams.set('options', '-c default_transaction_read_only=on');
    const ro = await PostgresStore.open(readOnly.toString(), { schema });
    cleanups.push(() => ro.close());
    // Reads still work: only writes are refused.
    expect((await ro.ledger.get('seen'))?.attempts).to.equal(1);
    for (const call of [() => ro.ledger.begin('new', 'fn'), () => ro.checkWritable()]) {
      let error: { code?: string; message: string } | undefined;
      try {
        await call();
      } catch (err) {
        error = err as { code?: string; message: string };
      }
      expect(error?.code, error?.message).to.equal('store_unusable');
      expect(error!.message).to.include('read-only');
      expect(error!.message).to.include('127.0.0.1:5432');
    }
    // The writable store passes the same check.
    await rw.checkWritable();
  });
});
