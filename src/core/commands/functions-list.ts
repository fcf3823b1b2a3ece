/**
 * `worker functions`: the functions callers can use, with their inputs.
 *
 * After `worker customize` it lists what the store records (what SOAR engineers and
 * other workers sharing the store see), and flags loaded functions that are not
 * recorded or differ from their record. Before, it lists the loaded plugins' functions
 * and says they are not yet recorded. It never creates or migrates a store.
 */
import type { Plugin } from '../runtime/plugin.js';
import { loadCustomizations } from './customizations.js';
import { redact } from '../redact.js';
import { definitionHash, storeExists } from './customize.js';
import { openStore } from '../store/index.js';
import type { FunctionDefinitionRecord, Store } from '../store/store.js';
import type { PluginRegistry } from '../runtime/registry.js';

interface InputSpec {
  type?: unknown;
  description?: string;
}

/** One line per input: `name: type (required) — description`, in schema order. */
export function describeInputs(schema: Record<string, unknown>): string[] {
  const s = schema as { properties?: Record<string, InputSpec>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([input, spec]) => {
    const required = s.required?.includes(input) ? ' (required)' : '';
    const type = Array.isArray(spec.type) ? spec.type.filter((t) => t !== 'null').join('|') : String(spec.type ?? 'any');
    return `${input}: ${type}${required}${spec.description ? ` — ${spec.description}` : ''}`;
  });
}

function functionLines(name: string, description: string, inputSchema: Record<string, unknown>, note = ''): string {
  return `  ${name}: ${description}${note}\n${describeInputs(inputSchema).map((l) => `    ${l}\n`).join('')}`;
}

function listLoaded(plugins: Plugin<any, any>[]): string {
  return plugins
    .map(
      (p) =>
        `${p.packageName} ${p.packageVersion} (destination ${p.destination})\n` +
        p.functions.filter((fn) => !fn.internal).map((fn) => functionLines(fn.name, fn.description, fn.inputSchema)).join(''),
    )
    .join('');
}

/**
 * The hash `worker customize` would record for each loaded function: computed from the
 * same packaged items it imports, so a record differs only when customize would update it.
 */
function packagedHashes(plugins: Plugin<any, any>[]): Map<string, string> {
  const hashes = new Map<string, string>();
  for (const plugin of plugins) {
    for (const item of loadCustomizations(plugin).items) {
      if (item.kind === 'function') hashes.set(item.name, definitionHash(item.packageName, item.definition));
    }
  }
  return hashes;
}

/** Reads the recorded definitions; undefined when there is no store or no definitions table yet. */
async function readRecords(location: string): Promise<{ records: FunctionDefinitionRecord[]; where: string } | undefined> {
  if (!storeExists(location)) return undefined;
  let store: Store | undefined;
  try {
    store = await openStore(location);
    const { current, expected } = await store.schemaStatus();
    if (current < expected) return undefined;
    return { records: await store.definitions.list(), where: `${store.kind} ${store.location}` };
  } finally {
    await store?.close().catch(() => undefined);
  }
}

/** The text `worker functions` prints. */
export async function listFunctions(registry: PluginRegistry, storeLocation: string): Promise<string> {
  let recorded: Awaited<ReturnType<typeof readRecords>>;
  let storeProblem = '';
  try {
    recorded = await readRecords(storeLocation);
  } catch (err) {
    storeProblem = redact(err instanceof Error ? err.message : String(err));
  }
  if (!recorded || recorded.records.length === 0) {
    const why = storeProblem ? `the store could not be read (${storeProblem})` : 'they are not yet recorded in the store';
    return `${listLoaded(registry.plugins)}\nThese are the loaded plugins' functions; ${why}: run \`worker customize\`.\n`;
  }

  const packaged = packagedHashes(registry.plugins);
  const out: string[] = [`Functions recorded in the store (${recorded.where}) by \`worker customize\`:\n`];
  const byPackage = new Map<string, FunctionDefinitionRecord[]>();
  for (const r of recorded.records) byPackage.set(r.packageName, [...(byPackage.get(r.packageName) ?? []), r]);
  for (const [pkg, records] of [...byPackage].sort(([a], [b]) => a.localeCompare(b))) {
    const destinations = [...new Set(records.map((r) => r.destination))].join(', ');
    out.push(`${pkg} (destination ${destinations})\n`);
    for (const r of records) {
      const loaded = registry.get(r.name);
      let note = '';
      if (!loaded) note = ' [not provided by this worker]';
      else if (packaged.get(r.name) !== r.hash) {
        note = ' [this worker has a newer definition: run `worker customize`]';
      }
      out.push(functionLines(r.name, r.description, r.inputSchema, note));
    }
  }
  const recordedNames = new Set(recorded.records.map((r) => r.name));
  const missing = registry.functionNames().filter((n) => !recordedNames.has(n));
  if (missing.length) out.push(`\nLoaded but not yet recorded: ${missing.join(', ')}; run \`worker customize\`.\n`);
  return out.join('');
}
