import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { ConfigError } from '../../../../src/core/runtime/errors.js';
import { openStore, redactStoreLocation } from '../../../../src/core/store/index.js';
import { SQLITE_MIGRATIONS, SqliteStore } from '../../../../src/core/store/sqlite-store.js';
import { KeyedMutex } from '../../../../src/core/store/keyed-mutex.js';
import { storeConformance } from '../../../support/store-conformance.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sqlite-store-'));
  dirs.push(dir);
  return dir;
}
async function removeTempDirs(): Promise<void> {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

storeConformance(
  'sqlite (file)',
  async (tables) => SqliteStore.open(join(await tempDir(), 'worker.db'), { tables }),
  removeTempDirs,
  async (store, tables) => SqliteStore.open(store.location, { tables }),
);
storeConformance('sqlite (:memory:)', async (tables) => SqliteStore.open(':memory:', { tables }));

describe('SqliteStore specifics', function () {
  after(removeTempDirs);

  it('creates parent directories, uses WAL and NORMAL sync, and reports the file as location', async function () {
    const file = join(await tempDir(), 'a', 'b', 'worker.db');
    const store = SqliteStore.open(file);
    try {
      expect(existsSync(file)).to.equal(true);
      expect(store.location).to.equal(resolve(file));
      expect(store.kind).to.equal('sqlite');
      const db = (store as unknown as { db: Database.Database }).db;
      expect(db.pragma('synchronous', { simple: true })).to.equal(1); // NORMAL
      expect(db.pragma('busy_timeout', { simple: true })).to.be.greaterThan(0);
      await store.migrate();
      const peek = new Database(file, { readonly: true });
      try {
        expect(peek.pragma('journal_mode', { simple: true })).to.equal('wal');
        const versions = peek.prepare('SELECT version FROM schema_migrations ORDER BY version').all();
        expect(versions.map((v) => (v as { version: number }).version)).to.deep.equal(SQLITE_MIGRATIONS.map((m) => m.version));
      } finally {
        peek.close();
      }
    } finally {
      await store.close();
    }
  });

  it('makes a new store private whatever the umask: its folder 0700, the database and its -wal and -shm files 0600', async function () {
    const dir = join(await tempDir(), 'state');
    const file = join(dir, 'worker.db');
    const umask = process.umask(0);
    let store: SqliteStore | undefined;
    try {
      store = SqliteStore.open(file);
      await store.migrate();
    } finally {
      process.umask(umask);
    }
    try {
      const mode = (path: string) => statSync(path).mode & 0o777;
      expect(mode(dir).toString(8)).to.equal('700');
      for (const f of [file, `${file}-wal`, `${file}-shm`]) expect(mode(f).toString(8), f).to.equal('600');
    } finally {
      await store.close();
    }
  });

  it('ledger writes requested together (one group commit): each sees the earlier ones, a failing write fails only its caller', async function () {
    const file = join(await tempDir(), 'group.db');
    const store = SqliteStore.open(file);
    try {
      await store.migrate();
      const ids = Array.from({ length: 20 }, (_, i) => `group-${i}`);
      const begun = await Promise.all(ids.map((id) => store.ledger.begin(id, 'fn')));
      expect(begun.map((b) => b.entry.attempts)).to.deep.equal(ids.map(() => 1));
      // A second begin of one id in the same batch sees the first (it is a redelivery).
      const [again, bad, good] = await Promise.allSettled([
        store.ledger.begin('group-0', 'fn'),
        store.ledger.finish('group-1', 'bogus' as 'failed', { message: 'x' }), // violates the state CHECK
        store.ledger.finish('group-2', 'succeeded', { message: 'ok' }),
      ]);
      expect(again.status === 'fulfilled' && again.value.interrupted && again.value.entry.attempts).to.equal(2);
      expect(bad.status).to.equal('rejected');
      expect(good.status).to.equal('fulfilled');
      expect((await store.ledger.get('group-1'))!.state).to.equal('running');
      expect((await store.ledger.get('group-2'))!.state).to.equal('succeeded');
      // Another connection sees what was committed.
      const peek = new Database(file, { readonly: true });
      try {
        const row = peek.prepare('SELECT state FROM invocation_ledger WHERE invocation_id = ?').get('group-2') as { state: string };
        expect(row.state).to.equal('succeeded');
      } finally {
        peek.close();
      }
    } finally {
      await store.close();
    }
  });

  it('close commits ledger writes already requested', async function () {
    const file = join(await tempDir(), 'close-flush.db');
    const store = SqliteStore.open(file);
    await store.migrate();
    await store.ledger.begin('inv-close', 'fn');
    const finished = store.ledger.finish('inv-close', 'succeeded', { message: 'done' });
    await store.close();
    await finished;
    const reopened = SqliteStore.open(file);
    try {
      expect((await reopened.ledger.get('inv-close'))!.state).to.equal('succeeded');
    } finally {
      await reopened.close();
    }
  });

  it('does not migrate on open', async function () {
    const store = SqliteStore.open(join(await tempDir(), 'w.db'));
    try {
      expect((await store.schemaStatus()).current).to.equal(0);
    } finally {
      await store.close();
    }
  });

  it('two stores on one file see each other and share withLock', async function () {
    const file = join(await tempDir(), 'shared.db');
    const a = SqliteStore.open(file);
    const b = SqliteStore.open(file);
    try {
      await a.migrate();
      expect(await b.migrate()).to.deep.equal([]);
      await a.ledger.begin('inv', 'fn');
      expect((await b.ledger.begin('inv', 'fn')).entry.attempts).to.equal(2);
      let active = 0;
      let maxActive = 0;
      const section = async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 10));
        active--;
      };
      await Promise.all([a.withLock('k', section), b.withLock('k', section), a.withLock('k', section)]);
      expect(maxActive).to.equal(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('separate processes on one file get distinct, increasing attempts', async function () {
    this.timeout(60_000);
    const file = join(await tempDir(), 'procs.db');
    const setup = SqliteStore.open(file);
    await setup.migrate();
    await setup.close();
    const moduleUrl = pathToFileURL(
      fileURLToPath(new URL('../../../../src/core/store/sqlite-store.ts', import.meta.url)),
    ).href;
    const startAt = Date.now() + 3000;
    const code = `
      const { SqliteStore } = await import(${JSON.stringify(moduleUrl)});
      const store = SqliteStore.open(${JSON.stringify(file)});
      while (Date.now() < ${startAt}) await new Promise((r) => setTimeout(r, 5));
      const out = [];
      for (let i = 0; i < 15; i++) out.push((await store.ledger.begin('inv-x', 'fn')).entry.attempts);
      await store.close();
      process.stdout.write(JSON.stringify(out));
    `;
    const run = () =>
      new Promise<number[]>((res, rej) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', rej);
        child.on('close', (status) =>
          status === 0 ? res(JSON.parse(out) as number[]) : rej(new Error(`child exited ${status}: ${err}`)),
        );
      });
    const results = await Promise.all([run(), run(), run(), run()]);
    for (const r of results) expect(r).to.deep.equal([...r].sort((x, y) => x - y));
    const all = results.flat().sort((x, y) => x - y);
    expect(all).to.deep.equal(Array.from({ length: 60 }, (_, i) => i + 1));
  });

  it('withLock is one critical section across processes on one file: no read-change-write lost', async function () {
    this.timeout(60_000);
    const dir = await tempDir();
    const file = join(dir, 'locks.db');
    const counter = join(dir, 'counter');
    await writeFile(counter, '0');
    const setup = SqliteStore.open(file);
    await setup.migrate();
    await setup.close();
    const moduleUrl = pathToFileURL(fileURLToPath(new URL('../../../../src/core/store/sqlite-store.ts', import.meta.url))).href;
    const startAt = Date.now() + 3000;
    const code = `
      const { readFile, writeFile } = await import('node:fs/promises');
      const { SqliteStore } = await import(${JSON.stringify(moduleUrl)});
      const store = SqliteStore.open(${JSON.stringify(file)});
      while (Date.now() < ${startAt}) await new Promise((r) => setTimeout(r, 5));
      for (let i = 0; i < 20; i++) {
        await store.withLock('counter', async () => {
          const n = Number(await readFile(${JSON.stringify(counter)}, 'utf8'));
          await new Promise((r) => setTimeout(r, 2)); // the window another process would write in
          await writeFile(${JSON.stringify(counter)}, String(n + 1));
        });
      }
      await store.close();
    `;
    const run = () =>
      new Promise<void>((res, rej) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', rej);
        child.on('close', (status) => (status === 0 ? res() : rej(new Error(`child exited ${status}: ${err}`))));
      });
    await Promise.all([run(), run(), run()]);
    expect(Number(await readFile(counter, 'utf8'))).to.equal(60);
    expect(await readdir(`${file}-locks`)).to.deep.equal([]); // every lock file released
  });
});

describe('KeyedMutex', function () {
  it('runs same-key callers in order and forgets idle keys', async function () {
    const m = new KeyedMutex();
    const order: string[] = [];
    const p1 = m.run('k', async () => {
      await new Promise((r) => setTimeout(r, 20));
      order.push('first');
    });
    const p2 = m.run('k', async () => {
      order.push('second');
    });
    const p3 = m.run('other', async () => {
      order.push('other');
    });
    expect(m.size).to.equal(2);
    await Promise.all([p1, p2, p3]);
    expect(order).to.deep.equal(['other', 'first', 'second']);
    expect(m.size).to.equal(0);
  });

  it('keeps working after a rejected section', async function () {
    const m = new KeyedMutex();
    const failed = m.run('k', async () => {
      throw new Error('x');
    });
    const next = m.run('k', async () => 'ok');
    await failed.then(
      () => expect.fail('should reject'),
      (err: Error) => expect(err.message).to.equal('x'),
    );
    expect(await next).to.equal('ok');
    expect(m.size).to.equal(0);
  });
});

describe('openStore (sqlite) and redactStoreLocation', function () {
  const savedHome = process.env.HOME;
  afterEach(function () {
    process.env.HOME = savedHome;
  });
  after(removeTempDirs);

  it('expands ~/ and migrates when asked', async function () {
    const home = await tempDir();
    process.env.HOME = home;
    const store = await openStore('~/.worker/worker.db', { migrate: true });
    try {
      expect(store.kind).to.equal('sqlite');
      expect(store.location).to.equal(join(home, '.worker', 'worker.db'));
      const status = await store.schemaStatus();
      expect(status.current).to.equal(status.expected);
    } finally {
      await store.close();
    }
  });

  it('opens :memory: without migrating by default', async function () {
    const store = await openStore(':memory:');
    try {
      expect(store.location).to.equal(':memory:');
      expect((await store.schemaStatus()).current).to.equal(0);
    } finally {
      await store.close();
    }
  });

  it('rejects an empty location with a ConfigError', async function () {
    let error: unknown;
    try {
      await openStore('  ');
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ConfigError);
  });

  it('redacts passwords of PostgreSQL URLs and leaves paths alone', function () {
    expect(redactStoreLocation('postgres://worker:s3cr%40t@db.example.com:5433/soar')).to.equal(
      'postgres://worker:***@db.example.com:5433/soar',
    );
    expect(redactStoreLocation('postgresql://worker@db/soar')).to.equal('postgresql://worker@db/soar');
    expect(redactStoreLocation('postgres://u@h/db?password=hunter2&sslmode=require')).to.equal(
      'postgres://u@h/db?password=***&sslmode=require',
    );
    expect(redactStoreLocation('/var/lib/worker/worker.db')).to.equal('/var/lib/worker/worker.db');
  });
});
