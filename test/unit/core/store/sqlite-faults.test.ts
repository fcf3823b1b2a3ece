/**
 * The SQLite store when its file cannot be used: read-only, not permitted, deleted or
 * replaced under an open store, and lost between two runs. Real files in temp folders;
 * read-only is made real with test/support/read-only.ts.
 */
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { openStore } from '../../../../src/core/store/index.js';
import type { Store } from '../../../../src/core/store/store.js';
import { makeReadOnly, makeWritable } from '../../../support/read-only.js';
import { functionDefinition } from '../../../support/store-conformance.js';

interface Failure {
  code?: string;
  retryable?: boolean;
  message: string;
}

async function failureOf(call: () => Promise<unknown>): Promise<Failure> {
  try {
    await call();
  } catch (err) {
    return err as Failure;
  }
  throw new Error('expected the call to fail, it succeeded');
}

describe('SqliteStore faults', function () {
  const dirs: string[] = [];
  const readOnly: string[] = [];
  const stores: Store[] = [];
  async function tempDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'sqlite-faults-'));
    dirs.push(dir);
    return dir;
  }
  function readOnlyNow(path: string): void {
    makeReadOnly(path);
    readOnly.push(path);
  }
  async function open(file: string, migrate = true): Promise<Store> {
    const store = await openStore(file, { migrate });
    stores.push(store);
    return store;
  }
  afterEach(async function () {
    await Promise.all(stores.splice(0).map((s) => s.close().catch(() => undefined)));
    for (const p of readOnly.splice(0)) makeWritable(p);
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  it('a read-only database file: writes and checkWritable fail as store_unusable naming the file and what to do', async function () {
    const file = join(await tempDir(), 'worker.db');
    await (await open(file)).close();
    readOnlyNow(file);
    const store = await open(file, false);
    // Reads work: the worker could start and say ready without a write check.
    expect((await store.schemaStatus()).current).to.be.greaterThan(0);
    for (const call of [() => store.ledger.begin('inv-1', 'fn'), () => store.checkWritable()]) {
      const err = await failureOf(call);
      expect(err.code, err.message).to.equal('store_unusable');
      expect(err.message).to.include(file);
      expect(err.message).to.include('read-only');
      expect(err.message).to.match(/writable/);
    }
  });

  it('a folder that does not permit creating the store: a clear store_unusable error at open', async function () {
    const dir = await tempDir();
    readOnlyNow(dir);
    const file = join(dir, 'worker.db');
    const err = await failureOf(() => open(file));
    expect(err.code, err.message).to.equal('store_unusable');
    expect(err.message).to.include(file);
    expect(err.message).to.match(/permitted/);
  });

  it('a file that is not a database: store_unusable saying it is corrupt and to restore it, not a retry', async function () {
    const file = join(await tempDir(), 'worker.db');
    fs.writeFileSync(file, 'this is not an SQLite database, it is a text file that was put in its place\n'.repeat(100));
    const err = await failureOf(() => open(file));
    expect(err.code, err.message).to.equal('store_unusable');
    expect(err.message).to.include(file);
    expect(err.message).to.include('corrupt');
    expect(err.message).to.include('backup');
  });

  it('the file deleted under an open store: the next write fails as store_unusable instead of writing into the deleted file', async function () {
    const file = join(await tempDir(), 'worker.db');
    const store = await open(file);
    await store.ledger.begin('inv-1', 'fn');
    fs.unlinkSync(file);
    for (const call of [
      () => store.ledger.begin('inv-2', 'fn'),
      () => store.definitions.upsert(functionDefinition('fn_after_delete')),
      () => store.sql.execute('DELETE FROM invocation_ledger WHERE invocation_id = $1', ['inv-1']),
      () => store.checkWritable(),
    ]) {
      const err = await failureOf(call);
      expect(err.code, err.message).to.equal('store_unusable');
      expect(err.message).to.include(file);
      expect(err.message).to.include('deleted');
    }
  });

  it('the file replaced under an open store is noticed as well', async function () {
    const dir = await tempDir();
    const file = join(dir, 'worker.db');
    const store = await open(file);
    await (await open(join(dir, 'other.db'))).close();
    fs.renameSync(join(dir, 'other.db'), file);
    const err = await failureOf(() => store.ledger.finish('inv-1', 'succeeded', { ok: true }));
    expect(err.code, err.message).to.equal('store_unusable');
    expect(err.message).to.include('replaced');
  });

  it('a store lost between runs is not silently replaced by an empty one; deleting the marker allows a fresh start', async function () {
    const file = join(await tempDir(), 'worker.db');
    const first = await open(file);
    expect(first.created).to.equal(true);
    await first.ledger.begin('inv-1', 'fn');
    await first.close();
    expect((await open(file)).created).to.equal(false);
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });

    const err = await failureOf(() => open(file));
    expect(err.code, err.message).to.equal('store_unusable');
    expect(err.message).to.include(file);
    expect(err.message).to.include(`${file}.created`);
    expect(fs.existsSync(file), 'no empty store was created').to.equal(false);

    fs.unlinkSync(`${file}.created`);
    const fresh = await open(file);
    expect(fresh.created).to.equal(true);
    expect(await fresh.ledger.get('inv-1')).to.equal(undefined);
    expect(fs.statSync(`${file}.created`).mode & 0o777).to.equal(0o600);
  });
});
