/**
 * The plugin registry: which functions this worker provides, and their compiled schemas.
 *
 * Built-in plugins are passed in explicitly; extra ones are imported from the module
 * names or paths listed in `[worker] plugins`. Input schemas are compiled once here, so
 * validating an invocation costs one function call.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { InputValidationError, PluginLoadError, type InputProblem } from './errors.js';
import type { FunctionDefinition, Plugin, PluginTable } from './plugin.js';
import { checkPluginTables } from '../store/plugin-tables.js';
import { needsEscaping, visible } from './messages.js';

export interface RegisteredFunction {
  plugin: Plugin<any, any>;
  definition: FunctionDefinition<any>;
  validate: ValidateFunction;
}

/** Turns ajv's errors into one line per failing field. */
export function describeInputErrors(errors: ErrorObject[] | null | undefined): InputProblem[] {
  const problems: InputProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    const params = e.params as Record<string, unknown>;
    let field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    let problem: string;
    switch (e.keyword) {
      case 'required':
        field = field ? `${field}.${String(params.missingProperty)}` : String(params.missingProperty);
        problem = 'is required';
        break;
      case 'additionalProperties': {
        // The name comes from the caller: shown escaped when it is long or has invisible characters.
        const name = String(params.additionalProperty);
        const shown = needsEscaping(name) ? visible(name, 100) : name;
        field = field ? `${field}.${shown}` : shown;
        problem = 'is not an input of this function';
        break;
      }
      case 'enum':
        problem = `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
        break;
      default:
        problem = e.message ?? 'is invalid';
    }
    const key = `${field}|${problem}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push({ field: field || '(inputs)', problem });
  }
  return problems;
}

export class PluginRegistry {
  readonly plugins: Plugin<any, any>[] = [];
  private readonly functions = new Map<string, RegisteredFunction>();
  private readonly ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: true, strict: false });

  /** Registers a plugin; a function name already taken stops the worker. */
  add(plugin: Plugin<any, any>): void {
    if (!plugin || typeof plugin.packageName !== 'string' || !Array.isArray(plugin.functions)) {
      throw new PluginLoadError('A plugin must export packageName, configSection, configSchema, functions, setup and selftest');
    }
    if (this.plugins.some((p) => p.packageName === plugin.packageName)) {
      throw new PluginLoadError(`Plugin package ${plugin.packageName} is loaded twice; list it once`);
    }
    checkPluginTables(plugin.tables ?? [], plugin.packageName);
    for (const table of plugin.tables ?? []) {
      const owner = this.plugins.find((p) => p.tables?.some((t) => t.name === table.name));
      if (owner) {
        throw new PluginLoadError(
          `Table ${table.name} is declared by both ${owner.packageName} and ${plugin.packageName}; table names must be unique`,
        );
      }
    }
    for (const definition of plugin.functions) {
      const existing = this.functions.get(definition.name);
      if (existing) {
        throw new PluginLoadError(
          `Function ${definition.name} is defined by both ${existing.plugin.packageName} and ${plugin.packageName}; function names must be unique`,
        );
      }
      let validate: ValidateFunction;
      try {
        validate = this.ajv.compile(definition.inputSchema);
      } catch (err) {
        throw new PluginLoadError(
          `Input schema of ${plugin.packageName}/${definition.name} does not compile: ${(err as Error).message}`,
          err,
        );
      }
      this.functions.set(definition.name, { plugin, definition, validate });
    }
    this.plugins.push(plugin);
  }

  get(functionName: string): RegisteredFunction | undefined {
    return this.functions.get(functionName);
  }

  /** The tables of the given plugins (default: every registered one), for the store to migrate. */
  tables(plugins: readonly Plugin<any, any>[] = this.plugins): PluginTable[] {
    return plugins.flatMap((p) => p.tables ?? []);
  }

  /** The functions callers may call (internal ones, run only from plugin queues, left out). */
  functionNames(): string[] {
    return [...this.functions.values()]
      .filter((f) => !f.definition.internal)
      .map((f) => f.definition.name)
      .sort();
  }

  /** Validates inputs in place (defaults applied, types coerced); throws listing every failing field. */
  validateInputs(fn: RegisteredFunction, inputs: Record<string, unknown>): Record<string, unknown> {
    if (!fn.validate(inputs)) {
      throw new InputValidationError(fn.definition.name, describeInputErrors(fn.validate.errors));
    }
    return inputs;
  }

  /** Keeps only the named packages (for `-l PACKAGE`); unknown names are an error. */
  only(packages: string[]): Plugin<any, any>[] {
    if (packages.length === 0) return this.plugins;
    const unknown = packages.filter((p) => !this.plugins.some((pl) => pl.packageName === p));
    if (unknown.length) {
      const known = this.plugins.map((p) => p.packageName).join(', ');
      throw new PluginLoadError(`Unknown package(s): ${unknown.join(', ')}; loaded packages are: ${known}`);
    }
    return this.plugins.filter((p) => packages.includes(p.packageName));
  }

  /**
   * Builds the registry from the built-in plugins and the `plugins` config value
   * (comma-separated module names or paths, paths relative to the config file).
   */
  static async load(builtins: Plugin<any, any>[], extra: string, baseDir: string): Promise<PluginRegistry> {
    const registry = new PluginRegistry();
    for (const plugin of builtins) registry.add(plugin);
    const specs = extra
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const spec of specs) {
      const isPath = spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('~');
      const target = isPath ? pathToFileURL(path.resolve(baseDir, spec)).href : spec;
      let mod: Record<string, unknown>;
      try {
        mod = (await import(target)) as Record<string, unknown>;
      } catch (err) {
        throw new PluginLoadError(`Plugin "${spec}" (from [worker] plugins) failed to load: ${(err as Error).message}`, err);
      }
      const plugin = (mod.default ?? mod.plugin) as Plugin<any, any> | undefined;
      if (!plugin) {
        throw new PluginLoadError(`Plugin "${spec}" exports no plugin: export it as default or as "plugin"`);
      }
      registry.add(plugin);
    }
    return registry;
  }
}
