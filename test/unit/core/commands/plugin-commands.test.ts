/**
 * Which plugin commands `worker` registers (src/core/commands/plugin-commands.ts): a
 * name clash or a malformed command is refused with what to rename, and `--config-file`
 * is found before yargs parses.
 */
import { expect } from 'chai';
import { PluginLoadError } from '../../../../src/core/runtime/errors.js';
import type { Plugin, PluginCommand } from '../../../../src/core/runtime/plugin.js';
import { configFileArgument, pluginCommands } from '../../../../src/core/commands/plugin-commands.js';
import { builtinPlugins } from '../../../../src/functions/index.js';

function pluginWith(packageName: string, ...names: string[]): Plugin<any, any> {
  const commands: PluginCommand[] = names.map((name) => ({ name, description: name, handler: async () => undefined }));
  return { ...builtinPlugins[0]!, packageName, functions: [], commands };
}

describe('plugin commands', () => {
  it("fn_slack contributes slack-manifest, paired with its plugin", () => {
    const found = pluginCommands(builtinPlugins, ['run', 'config']);
    expect(found.map((f) => [f.plugin.packageName, f.command.name])).to.deep.equal([['fn_slack', 'slack-manifest']]);
  });

  it('refuses a command named like a built-in one, or like another plugin\'s, naming both', () => {
    expect(() => pluginCommands([pluginWith('fn_a', 'config')], ['run', 'config'])).to.throw(
      PluginLoadError,
      'Plugin fn_a: command "config" is already a built-in command; rename one of them',
    );
    expect(() => pluginCommands([pluginWith('fn_a', 'sync'), pluginWith('fn_b', 'sync')], [])).to.throw(
      PluginLoadError,
      'Plugin fn_b: command "sync" is already a command of fn_a',
    );
  });

  it('refuses commands that are not a list', () => {
    const plugin = { ...pluginWith('fn_a'), commands: { name: 'sync' } } as unknown as Plugin<any, any>;
    expect(() => pluginCommands([plugin], [])).to.throw(PluginLoadError, 'Plugin fn_a: commands must be a list of commands');
  });

  it('refuses a name that is not one lower-case word', () => {
    for (const name of ['Sync', 'sync <file>', '', '-x']) {
      expect(() => pluginCommands([pluginWith('fn_a', name)], []), name).to.throw(PluginLoadError, 'one-word lower-case name');
    }
  });

  it('finds --config-file in both spellings; the last one wins', () => {
    expect(configFileArgument(['run'])).to.equal(undefined);
    expect(configFileArgument(['--config-file', 'a.config', 'greet'])).to.equal('a.config');
    expect(configFileArgument(['greet', '--config-file=b.config'])).to.equal('b.config');
    expect(configFileArgument(['--config-file', 'a', '--config-file=b'])).to.equal('b');
  });
});
