/**
 * Writing app.config: `worker config -c` (a new, commented file) and `worker config -u`
 * (add the sections and keys an existing file lacks), like resilient-circuits'
 * `config -c` / `config -u`.
 *
 * Everything written comes from the JSON Schemas: one `key = default` line per schema
 * property, preceded by its `description` as a `;` comment. Special cases:
 *
 * - a key without a default is written empty (`metrics_port =`), which the loader
 *   treats as "not set";
 * - a key whose name looks secret ({@link isSecretKey}) is never written with a value:
 *   it refers to an environment variable instead. The variable is the property's
 *   `x-env` annotation when the schema has one (fn_slack's `api_token` →
 *   `$SLACK_BOT_TOKEN`), else `$<SECTION>_<KEY>` upper-cased. A required secret is
 *   written active (`api_token = $SLACK_BOT_TOKEN`); an optional one commented out, so
 *   that the file loads without the variable being set.
 *
 * `-u` edits the file as text, never re-serialises it: every existing line, value and
 * comment is kept byte for byte, new keys go after the last key of their section, new
 * sections at the end. A key that is present only commented out (`;key = value`)
 * counts as present: someone turned it off on purpose.
 *
 * A platform's section (`[soar]`, handed in by src/platforms/index.ts so that core imports
 * no platform) is always written, like resilient-circuits' `[resilient]`, but commented out
 * (`;[soar]`, `;key = value`) unless `[worker] platform = soar`: an active `[soar]` refers
 * to `$SOAR_API_KEY_ID` / `$SOAR_API_KEY_SECRET`, and a local install must load without
 * them. `-u` reads the file's `[worker] platform` to decide: it adds a commented-out
 * `[soar]` (or commented-out keys to any `[soar]` there) for a local config, and an
 * active section, or active missing keys, only when the file says `platform = soar`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expandHome } from '../config.js';
import { ConfigError } from '../runtime/errors.js';
import type { JsonSchema, Plugin } from '../runtime/plugin.js';
import { isSecretKey } from '../redact.js';
import { pluginDestinations, WORKER_SECTION_SCHEMA } from '../worker-config.js';

/** One section to write: its name, its schema and an optional comment above the header. */
export interface ConfigSectionSpec {
  name: string;
  schema: JsonSchema;
  /** Written as `;` comment lines just above `[name]`. */
  comment?: string;
  /**
   * Written with the header and every key commented out (`;[name]`, `;key = value`), so
   * the loader ignores it until someone uncomments it (`[soar]` of a local install).
   */
  commentedOut?: boolean;
}

/**
 * A platform's own section (`[soar]`), handed in by whoever knows the platforms
 * (src/platforms/index.ts): core writes it without importing any platform.
 */
export interface PlatformConfigSection extends ConfigSectionSpec {
  /** The `[worker] platform` value that uses this section, e.g. `soar`. */
  platform: string;
  /** How a person calls the platform, e.g. `SOAR`. */
  displayName: string;
}

export interface UpdateConfigResult {
  /** What was added, per section, in file order; empty when the file lacked nothing. */
  added: { section: string; keys: string[]; newSection: boolean; commentedOut: boolean }[];
}

interface PropertySchema {
  default?: unknown;
  description?: string;
  'x-env'?: string;
}

const HEADER = [
  '; app.config for soar-slack-worker (`worker`), written by `worker config -c`.',
  ';',
  '; Each key is preceded by what it does. An empty value means "not set": the default',
  '; applies. Values may refer to the environment with $VAR or ${VAR} ($$ is a literal $);',
  '; keep secrets such as the Slack token in the environment, not in this file.',
  '; A ; or # starts a comment only after white space, so URLs keep their #fragment.',
  '; After an upgrade, `worker config -u` adds the sections and keys this file lacks.',
];

/** What `configSectionsFor` writes for. */
export interface ConfigSectionsOptions {
  /** The platform `[worker]` names (default `local`). */
  platform?: string | undefined;
  /** The platforms' own sections (`[soar]`); none when left out. */
  platformSections?: readonly PlatformConfigSection[];
}

/**
 * The sections the worker reads: `[worker]` first, then each plugin's (once per
 * section), then each platform's (`[soar]`) — active for the platform chosen (and
 * `[worker] platform` written as it), else commented out.
 */
export function configSectionsFor(
  plugins: readonly Pick<Plugin<any, any>, 'packageName' | 'packageVersion' | 'configSection' | 'configSchema' | 'destination'>[],
  options: ConfigSectionsOptions = {},
): ConfigSectionSpec[] {
  // The destinations a worker without the key would consume, written out so the file says it.
  let workerSchema = plugins.length ? withDefault(WORKER_SECTION_SCHEMA, 'destinations', pluginDestinations(plugins)) : WORKER_SECTION_SCHEMA;
  if (options.platform) workerSchema = withDefault(workerSchema, 'platform', options.platform);
  const specs: ConfigSectionSpec[] = [
    { name: 'worker', schema: workerSchema, comment: 'The worker: broker, store, platform, logging and limits.' },
  ];
  const seen = new Set(['worker']);
  for (const plugin of plugins) {
    if (seen.has(plugin.configSection)) continue;
    seen.add(plugin.configSection);
    specs.push({
      name: plugin.configSection,
      schema: plugin.configSchema,
      comment: `Settings of the ${plugin.packageName} function package (${plugin.packageVersion}).`,
    });
  }
  for (const { platform, displayName, ...section } of options.platformSections ?? []) {
    if (seen.has(section.name)) continue;
    seen.add(section.name);
    specs.push(
      options.platform === platform
        ? section
        : {
            ...section,
            comment: `${section.comment ?? ''}\nUncomment it (and set [worker] platform = ${platform}) to use ${displayName}.`.trimStart(),
            commentedOut: true,
          },
    );
  }
  return specs;
}

/** A copy of `schema` whose property `key` defaults to `value`. */
function withDefault(schema: JsonSchema, key: string, value: unknown): JsonSchema {
  const props = schema.properties as Record<string, JsonSchema>;
  return { ...schema, properties: { ...props, [key]: { ...props[key], default: value } } };
}

/**
 * The raw value of `[worker] platform` in an app.config, without `$VAR` substitution;
 * undefined when the file cannot be read or does not set it (the default, local).
 */
export function configuredPlatform(file: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(resolveFile(file), 'utf8');
  } catch {
    return undefined;
  }
  let inWorker = false;
  let value: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const header = SECTION_RE.exec(raw);
    if (header) {
      inWorker = header[1]!.trim() === 'worker';
      continue;
    }
    const m = inWorker ? /^\s*platform\s*=\s*(.*)$/.exec(raw) : null;
    if (m) value = m[1]!.replace(/\s[;#].*$/, '').trim().replace(/^"(.*)"$/, '$1');
  }
  return value || undefined;
}

function properties(schema: JsonSchema): [string, PropertySchema][] {
  const props = (schema.properties ?? {}) as Record<string, PropertySchema>;
  return Object.entries(props);
}

function requiredKeys(schema: JsonSchema): Set<string> {
  return new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
}

/** The environment variable a secret key refers to. */
export function secretEnvName(section: string, key: string, prop: PropertySchema = {}): string {
  if (typeof prop['x-env'] === 'string' && prop['x-env']) return prop['x-env'];
  const name = `${section}_${key}`.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  return /^[A-Z_]/.test(name) ? name : `_${name}`;
}

/** `a`, `a and b`, `a, b and c`. */
function listText(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/**
 * What a person must still fill in before a config written from `sections` loads: the
 * environment variables its active required secrets refer to, and its active required
 * keys without a default. E.g. `set SLACK_BOT_TOKEN in the environment`; empty when none.
 */
export function configTodo(sections: readonly ConfigSectionSpec[]): string {
  const variables: string[] = [];
  const keys: string[] = [];
  for (const spec of sections) {
    if (spec.commentedOut) continue;
    const required = requiredKeys(spec.schema);
    const missing = properties(spec.schema).filter(([key, prop]) => required.has(key) && (isSecretKey(key) || prop.default === undefined));
    variables.push(...missing.filter(([key]) => isSecretKey(key)).map(([key, prop]) => secretEnvName(spec.name, key, prop)));
    const plain = missing.filter(([key]) => !isSecretKey(key)).map(([key]) => key);
    if (plain.length) keys.push(`[${spec.name}] ${listText(plain)}`);
  }
  const parts = [
    ...(variables.length ? [`${listText(variables)} in the environment`] : []),
    ...(keys.length ? [`${keys.join('; ')} in the file`] : []),
  ];
  return parts.length ? `set ${parts.join(' and ')}` : '';
}

/** A default as the loader will read it back: `$` escaped, quoted when it would be cut. */
function formatValue(value: unknown, where: string): string {
  let text: string;
  if (value === undefined || value === null) text = '';
  else if (Array.isArray(value)) text = value.map(String).join(', ');
  else if (typeof value === 'object') text = JSON.stringify(value);
  else text = String(value);
  if (/[\r\n]/.test(text)) throw new ConfigError(`${where}: a default with a line break cannot be written to an INI file`);
  text = text.replace(/\$/g, '$$$$');
  const needsQuotes = text !== text.trim() || /^["';#]/.test(text) || /\s[;#]/.test(text);
  if (!needsQuotes) return text;
  if (text.includes('"')) throw new ConfigError(`${where}: the default ${JSON.stringify(text)} cannot be written to an INI file unchanged`);
  return `"${text}"`;
}

function commentLines(text: string | undefined): string[] {
  if (!text) return [];
  return text.split(/\r?\n/).map((line) => (line.trim() ? `; ${line.trimEnd()}` : ';'));
}

/** The comment and `key = value` lines of one key; `;key = value` when `commented`. */
function renderKey(section: string, key: string, prop: PropertySchema, required: boolean, commented = false): string[] {
  const description = prop.description ?? '';
  const lines = commentLines(required ? (description ? `${description} (required)` : '(required)') : description);
  if (isSecretKey(key)) {
    const ref = `$${secretEnvName(section, key, prop)}`;
    lines.push(required && !commented ? `${key} = ${ref}` : `;${key} = ${ref}`);
  } else {
    const value = formatValue(prop.default, `[${section}] ${key}`);
    lines.push(`${commented ? ';' : ''}${value === '' ? `${key} =` : `${key} = ${value}`}`);
  }
  return lines;
}

function renderSection(spec: ConfigSectionSpec): string[] {
  const required = requiredKeys(spec.schema);
  const commented = spec.commentedOut === true;
  const lines = [...commentLines(spec.comment), `${commented ? ';' : ''}[${spec.name}]`];
  for (const [key, prop] of properties(spec.schema)) {
    lines.push(...renderKey(spec.name, key, prop, required.has(key), commented));
  }
  return lines;
}

/**
 * A complete, commented app.config for `sections` (in the order given; put `[worker]`
 * first, as {@link configSectionsFor} does). Ends with a newline.
 */
export function renderConfig(sections: ConfigSectionSpec[]): string {
  const blocks = [HEADER.join('\n'), ...sections.map((s) => renderSection(s).join('\n'))];
  return `${blocks.join('\n\n')}\n`;
}

function resolveFile(file: string): string {
  return path.resolve(expandHome(file));
}

/**
 * Writes a new app.config (mode 0600: it may hold secrets), creating its folder.
 * Refuses to replace an existing file unless `overwrite`. Returns the absolute path.
 */
export function createConfig(file: string, sections: ConfigSectionSpec[], options: { overwrite: boolean }): string {
  const target = resolveFile(file);
  const text = renderConfig(sections);
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
    fs.writeFileSync(target, text, { mode: 0o600, flag: options.overwrite ? 'w' : 'wx' });
    // `mode` only applies when the file is created; an overwritten file gets it here.
    fs.chmodSync(target, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new ConfigError(
        `${target} already exists; refusing to overwrite it. Use \`worker config -u\` to add the sections and keys it lacks, ` +
          'or remove the file (or choose another) to write a new one',
        err,
      );
    }
    throw new ConfigError(`${target}: cannot write the config (${code ?? (err as Error).message})`, err);
  }
  return target;
}

interface ScannedSection {
  name: string;
  /** Index of the line after which new keys go: the last key line, else the header. */
  insertAfter: number;
  keys: Set<string>;
}

const SECTION_RE = /^\s*\[([^\]]+)\]\s*(?:[;#].*)?$/;
/** `;[soar]`: a section someone commented out (or `config -c` wrote commented out). */
const COMMENTED_SECTION_RE = /^\s*[;#]\s*\[([A-Za-z0-9_.:-]+)\]\s*$/;
const KEY_RE = /^\s*([^=;#\[\s][^=]*?)\s*=/;
const COMMENTED_KEY_RE = /^\s*[;#]\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*=/;

interface ScannedConfig {
  sections: Map<string, ScannedSection>;
  /** Commented-out sections (`;[name]`), whose keys are the commented keys below them. */
  commented: Map<string, ScannedSection>;
}

/**
 * Finds the sections of an INI text (a section named twice is merged; keys go to its
 * last block). After a commented-out header, commented keys belong to that commented
 * section, active keys still to the active section above (as the loader reads them).
 */
function scan(lines: string[]): ScannedConfig {
  const sections = new Map<string, ScannedSection>();
  const commentedSections = new Map<string, ScannedSection>();
  let current: ScannedSection | undefined;
  let commentedCurrent: ScannedSection | undefined;
  lines.forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    const header = SECTION_RE.exec(line);
    if (header) {
      const name = header[1]!.trim();
      const existing = sections.get(name);
      current = { name, insertAfter: index, keys: existing?.keys ?? new Set() };
      sections.set(name, current);
      commentedCurrent = undefined;
      return;
    }
    const commentedHeader = COMMENTED_SECTION_RE.exec(line);
    if (commentedHeader) {
      const name = commentedHeader[1]!;
      const existing = commentedSections.get(name);
      commentedCurrent = { name, insertAfter: index, keys: existing?.keys ?? new Set() };
      commentedSections.set(name, commentedCurrent);
      return;
    }
    const key = KEY_RE.exec(line);
    if (key) {
      if (!current) return;
      current.keys.add(key[1]!.trim());
      current.insertAfter = index;
      return;
    }
    const commented = COMMENTED_KEY_RE.exec(line);
    if (!commented) return;
    if (commentedCurrent) {
      commentedCurrent.keys.add(commented[1]!);
      commentedCurrent.insertAfter = index;
    } else {
      current?.keys.add(commented[1]!);
    }
  });
  return { sections, commented: commentedSections };
}

/**
 * Adds to an existing app.config the sections and keys it lacks, keeping everything
 * already there byte for byte. Writes nothing when nothing is missing, so running it
 * twice changes nothing the second time.
 */
export function updateConfig(file: string, sections: ConfigSectionSpec[]): UpdateConfigResult {
  const target = resolveFile(file);
  let text: string;
  try {
    text = fs.readFileSync(target, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ConfigError(`${target} does not exist; there is nothing to update. Create it with \`worker config -c\``, err);
    }
    throw new ConfigError(`${target}: cannot read the config (${code ?? (err as Error).message})`, err);
  }

  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  // Each line with its own terminator, so that joining gives back the exact bytes.
  const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const found = scan(lines.map((l) => l.replace(/\r?\n$/, '')));
  const added: UpdateConfigResult['added'] = [];
  // Insertions into existing sections, applied bottom-up so indexes stay valid.
  const inserts: { after: number; lines: string[] }[] = [];
  const appended: string[][] = [];

  for (const spec of sections) {
    const commentedOut = spec.commentedOut === true;
    // A commented-out spec is content with any block of that name, active or not; an
    // active one needs an active block (it is appended even after a commented copy).
    const existing = found.sections.get(spec.name) ?? (commentedOut ? found.commented.get(spec.name) : undefined);
    const required = requiredKeys(spec.schema);
    if (!existing) {
      appended.push(renderSection(spec));
      added.push({ section: spec.name, keys: properties(spec.schema).map(([k]) => k), newSection: true, commentedOut });
      continue;
    }
    const missing = properties(spec.schema).filter(([key]) => !existing.keys.has(key));
    if (!missing.length) continue;
    const newLines = missing.flatMap(([key, prop]) => renderKey(spec.name, key, prop, required.has(key), commentedOut));
    inserts.push({ after: existing.insertAfter, lines: newLines });
    added.push({ section: spec.name, keys: missing.map(([k]) => k), newSection: false, commentedOut });
  }
  if (!added.length) return { added };

  inserts.sort((a, b) => b.after - a.after);
  for (const insert of inserts) {
    // Only a last line without a final newline is touched: it gets one before the new keys.
    if (!lines[insert.after]!.endsWith('\n')) lines[insert.after] += eol;
    lines.splice(insert.after + 1, 0, ...insert.lines.map((l) => `${l}${eol}`));
  }
  let out = lines.join('');
  if (appended.length) {
    if (out.length && !out.endsWith('\n')) out += eol;
    if (out.length && !/\n(\r?\n)$/.test(out)) out += eol;
    out += appended.map((block) => block.join(eol)).join(eol + eol) + eol;
  }

  try {
    fs.writeFileSync(target, out);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`${target}: cannot write the config (${code ?? (err as Error).message})`, err);
  }
  return { added };
}
