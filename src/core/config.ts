/**
 * app.config: finding, reading and validating the INI file.
 *
 * Values arrive as strings. `$VAR` and `${VAR}` are replaced from the environment (`$$`
 * is a literal `$`); an unset variable is an error when its section is validated. Each section is validated with ajv against its JSON Schema, which
 * also coerces types and fills defaults. Every problem is reported as one
 * {@link ConfigError} naming the file, the section, the key and what to fix.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ini from 'ini';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { ConfigError } from './runtime/errors.js';
import type { JsonSchema } from './runtime/plugin.js';
import { isSecretKey, registerSecret, registerUrlPassword } from './redact.js';

/** Used when neither `--config-file` nor `APP_CONFIG_FILE` names a file. */
export const DEFAULT_CONFIG_FILE = '~/.worker/app.config';

export type RawSection = Record<string, string>;

export interface LoadedConfig {
  /** Absolute path of the file read. */
  file: string;
  /** Every section, values after `$VAR` substitution, still strings. */
  sections: Record<string, RawSection>;
  /**
   * Values that refer to an unset environment variable: section → key → the error.
   * Reported when the section is validated, not when the file is read, so a command
   * that never uses a section (`worker invoke` and `[fn_slack] api_token`) does not
   * need its variables; a command that uses it fails exactly as before.
   */
  unresolved?: Record<string, Record<string, ConfigError>>;
}

/** Expands a leading `~/` to the home directory. */
export function expandHome(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return p;
}

/** `--config-file`, then `APP_CONFIG_FILE`, then {@link DEFAULT_CONFIG_FILE}. */
export function resolveConfigPath(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = explicit || env.APP_CONFIG_FILE || DEFAULT_CONFIG_FILE;
  return path.resolve(expandHome(chosen));
}

/**
 * Strips inline comments the way Python's configparser does for resilient-circuits
 * files: `;` or `#` only starts a comment when preceded by white space, so URLs such as
 * `https://soar.example.com/#incidents/1` keep their fragment. The value is then quoted
 * so that the `ini` package takes it verbatim (no comment stripping, no booleans).
 */
function normaliseLines(text: string): string {
  return text
    .split(/\r?\n/)
    .map((line) => {
      const trimmed = line.trim();
      if (trimmed === '' || trimmed.startsWith(';') || trimmed.startsWith('#') || trimmed.startsWith('[')) {
        return line;
      }
      const eq = line.indexOf('=');
      if (eq < 0) return line;
      const key = line.slice(0, eq).trim();
      let value = line.slice(eq + 1).trim();
      const closing = value.startsWith('"') ? value.indexOf('"', 1) : -1;
      if (closing > 0) {
        // A quoted value is taken verbatim; anything after the closing quote is a comment.
        value = value.slice(1, closing);
      } else {
        const comment = value.search(/\s[;#]/);
        if (comment >= 0) value = value.slice(0, comment).trim();
      }
      return `${key} = ${JSON.stringify(value)}`;
    })
    .join('\n');
}

/** Replaces `$VAR` / `${VAR}` from `env`; an unset variable is an error naming it. */
export function substituteEnv(value: string, env: NodeJS.ProcessEnv, where: string): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (match, braced, bare) => {
    if (match === '$$') return '$';
    const name = (braced ?? bare) as string;
    const found = env[name];
    if (found === undefined) {
      throw new ConfigError(`${where}: environment variable ${name} is not set (the value refers to $${name})`);
    }
    return found;
  });
}

/** Parses INI text into sections of strings, substituting environment variables. */
export function parseConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let parsed: Record<string, unknown>;
  try {
    parsed = ini.parse(normaliseLines(text)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`${file}: cannot parse as INI: ${(err as Error).message}`, err);
  }
  const sections: Record<string, RawSection> = {};
  const unresolved: Record<string, Record<string, ConfigError>> = {};
  for (const [name, body] of Object.entries(parsed)) {
    if (body === null || typeof body !== 'object') {
      throw new ConfigError(`${file}: "${name}" is outside any section; put it under a [section] header`);
    }
    const section: RawSection = {};
    for (const [key, raw] of Object.entries(body as Record<string, unknown>)) {
      if (raw !== null && typeof raw === 'object') {
        throw new ConfigError(`${file}: [${name}] ${key}: nested sections are not supported`);
      }
      let value: string;
      try {
        value = substituteEnv(String(raw ?? ''), env, `${file}: [${name}] ${key}`);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        ((unresolved[name] ??= {})[key] = err);
        continue;
      }
      if (isSecretKey(key)) registerSecret(value);
      registerUrlPassword(value);
      section[key] = value;
    }
    sections[name] = section;
  }
  return Object.keys(unresolved).length ? { file, sections, unresolved } : { file, sections };
}

/** Reads and parses the config file; a missing or unreadable file is a ConfigError. */
export function loadConfigFile(explicit?: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const file = resolveConfigPath(explicit, env);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint =
      code === 'ENOENT'
        ? 'not found; create one with `worker config -c`, or point --config-file / APP_CONFIG_FILE at it'
        : `cannot be read (${code ?? (err as Error).message})`;
    throw new ConfigError(`${file}: ${hint}`, err);
  }
  return parseConfigText(text, file, env);
}

const ajv = new Ajv({ allErrors: true, coerceTypes: true, useDefaults: true, strict: false });

/** True for a time zone this Node knows (an IANA name such as `Europe/Paris`, or `UTC`). */
export function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

// `format: 'time-zone'` in a section schema: an unknown zone stops the worker at start,
// where a person reads it, instead of failing each invocation that formats a date.
ajv.addFormat('time-zone', { type: 'string', validate: isTimeZone });
const compiled = new WeakMap<JsonSchema, ValidateFunction>();

function describe(error: ErrorObject, data: Record<string, unknown>): { key: string; problem: string } {
  const fromPath = error.instancePath.replace(/^\//, '');
  const key = fromPath || (error.params as { missingProperty?: string; additionalProperty?: string }).missingProperty ||
    (error.params as { additionalProperty?: string }).additionalProperty || '(section)';
  const got = fromPath && key in data ? ` (got ${JSON.stringify(data[key])})` : '';
  switch (error.keyword) {
    case 'required':
      return { key, problem: 'is required but missing' };
    case 'additionalProperties':
      return { key, problem: 'is not a known key; check its spelling' };
    case 'format':
      if ((error.params as { format?: string }).format === 'time-zone') {
        return { key, problem: `${JSON.stringify(data[key])} is not an IANA time zone this Node.js knows (e.g. UTC, Europe/Berlin, America/New_York)` };
      }
      return { key, problem: `${error.message ?? 'is invalid'}${got}` };
    case 'enum':
      return { key, problem: `must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')}${got}` };
    default:
      return { key, problem: `${error.message ?? 'is invalid'}${got}` };
  }
}

/**
 * Validates one section against its schema, coercing types and applying defaults.
 * A missing section is validated as empty, so required keys are reported by name.
 */
export function validateSection<T>(config: LoadedConfig, section: string, schema: JsonSchema): T {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  const missingVars = Object.values(config.unresolved?.[section] ?? {});
  if (missingVars.length) throw new ConfigError(missingVars.map((e) => e.message).join('\n'));
  const original = config.sections[section] ?? {};
  // Empty strings mean "not set" in an INI file: let the default apply.
  const data: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(original)) if (v !== '') data[k] = v;
  if (!validate(data)) {
    const problems = (validate.errors ?? []).map((e) => describe(e, original));
    const lines = problems.map((p) => `${config.file}: [${section}] ${p.key}: ${p.problem}`);
    throw new ConfigError(lines.join('\n'));
  }
  return data as T;
}
