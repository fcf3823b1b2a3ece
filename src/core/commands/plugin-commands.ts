/**
 * Commands that plugins add to `worker` (fn_slack's `slack-manifest`): which plugins
 * contribute them, a check of their names, and the neutral context their handler gets.
 *
 * cli.ts must know the commands before it parses the command line, so the plugins named
 * in `[worker] plugins` are loaded up front from the raw config (no section validated,
 * no variable needed). That load may fail — no config yet, a plugin path that moved —
 * and must not stop the built-in commands (`worker config -c` writes the first config):
 * the built-in plugins' commands stay, and the reason is kept for an unknown command.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfigFile, resolveConfigPath, validateSection, type LoadedConfig } from '../config.js';
import { createLogger } from '../logging.js';
import { PluginLoadError } from '../runtime/errors.js';
import type { CommandContext, Plugin, PluginCommand } from '../runtime/plugin.js';
import { PluginRegistry } from '../runtime/registry.js';

/** The plugins whose commands `worker` offers, and why `[worker] plugins` did not load. */
export interface CommandPlugins {
  plugins: Plugin<any, any>[];
  /** Set when the config exists but its plugins could not be loaded. */
  problem?: string;
}

/** `--config-file FILE` / `--config-file=FILE` from the raw arguments (the last one wins, as in yargs). */
export function configFileArgument(argv: readonly string[]): string | undefined {
  let found: string | undefined;
  argv.forEach((arg, i) => {
    if (arg === '--config-file' && i + 1 < argv.length) found = argv[i + 1];
    else if (arg.startsWith('--config-file=')) found = arg.slice('--config-file='.length);
  });
  return found;
}

/** The built-in plugins plus those `[worker] plugins` names, when the config can be read. */
export async function commandPlugins(configFile: string | undefined, builtins: Plugin<any, any>[]): Promise<CommandPlugins> {
  if (!fs.existsSync(resolveConfigPath(configFile))) return { plugins: builtins };
  try {
    const config = loadConfigFile(configFile);
    const extra = config.sections.worker?.plugins ?? '';
    if (!extra.trim()) return { plugins: builtins };
    const registry = await PluginRegistry.load(builtins, extra, path.dirname(config.file));
    return { plugins: registry.plugins };
  } catch (err) {
    return { plugins: builtins, problem: (err as Error).message };
  }
}

const COMMAND_NAME = /^[a-z][a-z0-9-]*$/;

/**
 * Each plugin command with the plugin it belongs to. A name that is not one word, or
 * that a built-in command or another plugin already uses, is a PluginLoadError: yargs
 * would otherwise run whichever was registered first, silently.
 */
export function pluginCommands(plugins: readonly Plugin<any, any>[], builtinNames: readonly string[]): { plugin: Plugin<any, any>; command: PluginCommand<any> }[] {
  const owners = new Map<string, string>(builtinNames.map((n) => [n, 'a built-in command']));
  const found: { plugin: Plugin<any, any>; command: PluginCommand<any> }[] = [];
  for (const plugin of plugins) {
    if (plugin.commands !== undefined && !Array.isArray(plugin.commands)) {
      throw new PluginLoadError(`Plugin ${plugin.packageName}: commands must be a list of commands`);
    }
    for (const command of plugin.commands ?? []) {
      if (typeof command?.name !== 'string' || !COMMAND_NAME.test(command.name) || typeof command.handler !== 'function') {
        throw new PluginLoadError(
          `Plugin ${plugin.packageName}: command ${JSON.stringify(command?.name)} needs a one-word lower-case name (letters, digits, dashes) and a handler`,
        );
      }
      const owner = owners.get(command.name);
      if (owner) {
        throw new PluginLoadError(`Plugin ${plugin.packageName}: command "${command.name}" is already ${owner}; rename one of them`);
      }
      owners.set(command.name, `a command of ${plugin.packageName}`);
      found.push({ plugin, command });
    }
  }
  return found;
}

/** The context a plugin command's handler gets; the config is read only if it asks. */
export function commandContext<C>(
  plugin: Plugin<C, any>,
  args: Record<string, unknown>,
  configFile: string | undefined,
  stdout: (text: string) => void,
): CommandContext<C> {
  let config: LoadedConfig | undefined;
  const loaded = () => (config ??= loadConfigFile(configFile));
  return {
    args,
    config: loaded,
    pluginConfig: () => validateSection<C>(loaded(), plugin.configSection, plugin.configSchema),
    // Console only (stderr): a one-off command has no business in the worker's log files.
    log: createLogger({ level: 'INFO', console: true }),
    stdout,
  };
}
