import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { InputValidationError, PluginLoadError } from '../../../../src/core/runtime/errors.js';
import type { Plugin } from '../../../../src/core/runtime/plugin.js';
import { PluginRegistry } from '../../../../src/core/runtime/registry.js';

function plugin(packageName: string, fnNames: string[], schema: Record<string, unknown> = { type: 'object' }): Plugin<any, any> {
  return {
    packageName,
    packageVersion: '1.0.0',
    configSection: packageName,
    configSchema: { type: 'object' },
    destination: packageName,
    functions: fnNames.map((name) => ({
      name,
      displayName: name,
      description: name,
      inputSchema: schema,
      handler: async () => ({ content: {} }),
    })),
    setup: async () => ({}),
    selftest: async () => ({ state: 'success' }),
  };
}

async function loadError(fn: () => Promise<unknown> | unknown): Promise<Error | undefined> {
  try {
    await fn();
  } catch (err) {
    return err as Error;
  }
  return undefined;
}

describe('plugin registry', () => {
  it('leaves internal functions out of the callable names, but still finds them for the runner', () => {
    const p = plugin('fn_a', ['public_one', 'from_listener']);
    p.functions[1]!.internal = true;
    const registry = new PluginRegistry();
    registry.add(p);
    expect(registry.functionNames()).to.deep.equal(['public_one']);
    expect(registry.get('from_listener')?.definition.internal).to.equal(true);
  });

  it('refuses two functions with the same name, naming both packages', async () => {
    const err = await loadError(() => PluginRegistry.load([plugin('fn_a', ['do_it']), plugin('fn_b', ['other', 'do_it'])], '', '/'));
    expect(err).to.be.instanceOf(PluginLoadError);
    expect(err!.message).to.equal('Function do_it is defined by both fn_a and fn_b; function names must be unique');
  });

  it('refuses an input schema that does not compile', async () => {
    const err = await loadError(() => PluginRegistry.load([plugin('fn_a', ['f'], { type: 'no-such-type' })], '', '/'));
    expect(err).to.be.instanceOf(PluginLoadError);
    expect(err!.message).to.match(/^Input schema of fn_a\/f does not compile/);
  });

  it('loads extra plugins from paths relative to the config file, and names one that fails', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plugins-'));
    fs.writeFileSync(
      path.join(dir, 'good.mjs'),
      `export default { packageName: 'fn_good', packageVersion: '2.0.0', configSection: 'fn_good', configSchema: {}, destination: 'fn_good',
        functions: [{ name: 'good_fn', displayName: 'g', description: 'g', inputSchema: { type: 'object' }, handler: async () => ({ content: {} }) }],
        setup: async () => ({}), selftest: async () => ({ state: 'success' }) };\n`,
    );
    fs.writeFileSync(path.join(dir, 'bad.mjs'), 'throw new Error("cannot start");\n');
    const registry = await PluginRegistry.load([plugin('fn_a', ['a_fn'])], './good.mjs', dir);
    expect(registry.functionNames()).to.deep.equal(['a_fn', 'good_fn']);
    const err = await loadError(() => PluginRegistry.load([], './good.mjs, ./bad.mjs', dir));
    expect(err).to.be.instanceOf(PluginLoadError);
    expect(err!.message).to.equal('Plugin "./bad.mjs" (from [worker] plugins) failed to load: cannot start');
    const missing = await loadError(() => PluginRegistry.load([], 'no-such-plugin-package-xyz', dir));
    expect(missing!.message).to.match(/^Plugin "no-such-plugin-package-xyz" \(from \[worker\] plugins\) failed to load/);
  });

  it('validates inputs naming every failing field, coercing and defaulting', async () => {
    const registry = await PluginRegistry.load(
      [
        plugin('fn_a', ['f'], {
          type: 'object',
          additionalProperties: false,
          required: ['incident_id', 'text'],
          properties: { incident_id: { type: 'integer', minimum: 1 }, text: { type: 'string' }, flag: { type: 'boolean', default: true } },
        }),
      ],
      '',
      '/',
    );
    const fn = registry.get('f')!;
    expect(registry.validateInputs(fn, { incident_id: '12', text: 'x' })).to.deep.equal({ incident_id: 12, text: 'x', flag: true });
    let err: InputValidationError | undefined;
    try {
      registry.validateInputs(fn, { incident_id: 0, extra: 1 });
    } catch (e) {
      err = e as InputValidationError;
    }
    expect(err).to.be.instanceOf(InputValidationError);
    expect(err!.problems).to.deep.equal([
      { field: 'text', problem: 'is required' },
      { field: 'extra', problem: 'is not an input of this function' },
      { field: 'incident_id', problem: 'must be >= 1' },
    ]);
  });

  it('shows an unknown input name escaped and cut when it has invisible characters or is very long', async () => {
    const registry = await PluginRegistry.load(
      [plugin('fn_a', ['f'], { type: 'object', additionalProperties: false, properties: { text: { type: 'string' } } })],
      '',
      '/',
    );
    let err: InputValidationError | undefined;
    try {
      registry.validateInputs(registry.get('f')!, { 'te\u202ext': 1, ['k'.repeat(50_000)]: 2, plain_extra: 3 });
    } catch (e) {
      err = e as InputValidationError;
    }
    expect(err!.problems.map((p) => p.field)).to.deep.equal(['"te\\u202ext"', `"${'k'.repeat(100)}…"`, 'plain_extra']);
    expect(err!.message.length).to.be.lessThan(400);
  });

  it('-l selects packages and names unknown ones', async () => {
    const registry = await PluginRegistry.load([plugin('fn_a', ['a']), plugin('fn_b', ['b'])], '', '/');
    expect(registry.only(['fn_b']).map((p) => p.packageName)).to.deep.equal(['fn_b']);
    expect(() => registry.only(['fn_zz'])).to.throw(PluginLoadError, 'Unknown package(s): fn_zz; loaded packages are: fn_a, fn_b');
  });
});
