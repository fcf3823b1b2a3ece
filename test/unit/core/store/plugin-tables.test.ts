import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { PluginLoadError, StoreUnusableError } from '../../../../src/core/runtime/errors.js';
import type { Plugin } from '../../../../src/core/runtime/plugin.js';
import { PluginRegistry } from '../../../../src/core/runtime/registry.js';
import { openStore } from '../../../../src/core/store/index.js';
import { checkPluginTables } from '../../../../src/core/store/plugin-tables.js';
import { schemaBehind, type PluginTable } from '../../../../src/core/store/store.js';
import { reportUnusable } from '../../../../src/core/store/unusable.js';

const SQL = { sqlite: 'CREATE TABLE t (id TEXT)', postgres: 'CREATE TABLE t (id TEXT)' };
const table = (name: string, versions = [1]): PluginTable => ({ name, migrations: versions.map((version) => ({ version, ...SQL })) });

function refusal(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(PluginLoadError);
    return err as Error;
  }
  throw new Error('expected a PluginLoadError');
}

function plugin(packageName: string, tables: PluginTable[]): Plugin<any, any> {
  return {
    packageName,
    packageVersion: '1.0.0',
    configSection: packageName,
    configSchema: { type: 'object' },
    destination: packageName,
    functions: [],
    tables,
    setup: async () => ({}),
    selftest: async () => ({ state: 'success' }),
  };
}

describe('plugin table declarations', function () {
  it('accepts well-formed tables', function () {
    checkPluginTables([table('fn_x_rows', [1, 2, 5]), table('fn_x_other')], 'fn_x');
  });

  it('refuses what the store could not run or version, saying what to fix', function () {
    expect(refusal(() => checkPluginTables([table('Bad-Name')], 'fn_x')).message).to.match(
      /"Bad-Name" of fn_x: a table name is lower-case letters/,
    );
    expect(refusal(() => checkPluginTables([table('invocation_ledger')], 'fn_x')).message).to.contain(
      "belongs to the worker's own store tables",
    );
    expect(refusal(() => checkPluginTables([table('t1'), table('t1')], 'fn_x')).message).to.contain('declared twice');
    expect(refusal(() => checkPluginTables([{ name: 't1', migrations: [] }], 'fn_x')).message).to.contain('has no migrations');
    expect(refusal(() => checkPluginTables([table('t1', [1, 3, 2])], 'fn_x')).message).to.contain(
      'migration version 2 must be an integer above 3',
    );
    expect(refusal(() => checkPluginTables([table('t1', [0])], 'fn_x')).message).to.contain('must be an integer above 0');
    const noPostgres = { name: 't1', migrations: [{ version: 1, sqlite: 'CREATE TABLE t1 (id TEXT)', postgres: ' ' }] };
    expect(refusal(() => checkPluginTables([noPostgres], 'fn_x')).message).to.contain('migration 1 has no postgres SQL');
  });

  it('the registry refuses a bad declaration and a table two plugins declare, and lists every table', function () {
    const registry = new PluginRegistry();
    registry.add(plugin('fn_a', [table('shared_rows'), table('a_rows')]));
    expect(refusal(() => registry.add(plugin('fn_b', [table('shared_rows')]))).message).to.equal(
      'Table shared_rows is declared by both fn_a and fn_b; table names must be unique',
    );
    expect(refusal(() => registry.add(plugin('fn_c', [table('c_rows', [2, 1])]))).message).to.contain('fn_c');
    registry.add(plugin('fn_d', [table('d_rows')]));
    expect(registry.tables().map((t) => t.name)).to.deep.equal(['shared_rows', 'a_rows', 'd_rows']);
    expect(registry.tables(registry.only(['fn_d'])).map((t) => t.name)).to.deep.equal(['d_rows']);
  });

  it('openStore refuses bad tables before touching the store', async function () {
    let error: unknown;
    try {
      await openStore(':memory:', { tables: [table('t1'), table('t1')] });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(PluginLoadError);
  });

  it('schemaBehind names each part of the schema that is behind', function () {
    expect(schemaBehind({ current: 7, expected: 7, tables: [{ name: 'a', current: 2, expected: 2 }] })).to.deep.equal([]);
    expect(schemaBehind({ current: 6, expected: 7, tables: [{ name: 'a', current: 0, expected: 2 }] })).to.deep.equal([
      'schema version 6, this worker needs 7',
      'table a at version 0, this worker needs 2',
    ]);
  });
});

describe('reportUnusable and Store.sql', function () {
  let dir: string;
  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'plugin-tables-'));
  });
  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes plugin SQL through with its dialect and reports a store gone for good', async function () {
    const file = join(dir, 'worker.db');
    const base = await openStore(file, { migrate: true, tables: [table('t')] });
    const reported: StoreUnusableError[] = [];
    const store = reportUnusable(base, (err) => reported.push(err));
    try {
      expect(store.sql.dialect).to.equal('sqlite');
      expect(await store.sql.execute('INSERT INTO t (id) VALUES ($1)', ['one'])).to.equal(1);
      expect(await store.sql.query('SELECT id FROM t')).to.deep.equal([{ id: 'one' }]);
      expect(reported).to.deep.equal([]);
      await unlink(file); // a write now would be lost: the store is unusable
      let error: unknown;
      try {
        await store.sql.execute('INSERT INTO t (id) VALUES ($1)', ['two']);
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(StoreUnusableError);
      expect(reported).to.have.length(1);
      expect(reported[0]).to.equal(error);
    } finally {
      await store.close();
    }
  });
});
