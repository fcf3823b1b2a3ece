/**
 * A plugin's packaged definitions (its `customizations/` folder), read into typed items.
 *
 * The folder holds plain JSON files a person can read, one item per file, in the shapes
 * resilient-circuits packages ship (and a SOAR importer reads):
 *
 * ```
 * message_destinations/NAME.json  {programmatic_name, name, destination_type, expect_ack, description}
 * data_tables/TYPE_NAME.json      {type_name, display_name, description, fields: [{name, text, input_type, required, …}]}
 * functions/NAME.json             {name, display_name, description, destination, input_schema}
 * workflows/NAME.json             {programmatic_name, name, object_type, description, functions: [{name, pre_processing_script, …}]}
 * rules/NAME.json                 {programmatic_name, name, object_type, description, workflows: [...], functions: [...]}
 * ```
 *
 * Every file is validated here, with errors naming the file and the field, and checked
 * against the plugin: each function file must be one of the plugin's functions with the
 * very input schema the runner validates with, so what `worker customize` records is
 * what the worker enforces. A plugin without a customizations folder gets its message
 * destination and function items from its own definition.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Ajv, type ValidateFunction } from 'ajv';
import { PluginLoadError } from '../runtime/errors.js';
import type { JsonSchema, Plugin } from '../runtime/plugin.js';
import { describeInputErrors } from '../runtime/registry.js';

/** A packaged file that is missing, unreadable, not JSON, or not in its kind's shape. */
export class CustomizationError extends PluginLoadError {}

export interface MessageDestinationFile {
  programmatic_name: string;
  name: string;
  /** 0 = queue (the only type the worker consumes), 1 = topic, as in SOAR. */
  destination_type: 0 | 1;
  expect_ack: boolean;
  description: string;
  /**
   * A queue a plugin's listeners feed (Plugin.queues), declared on the broker only: SOAR
   * never publishes to it, so it is no SOAR message destination.
   */
  worker_queue?: { single_active_consumer: boolean };
}

export interface DataTableField {
  name: string;
  text: string;
  input_type: 'text' | 'textarea' | 'number' | 'boolean' | 'datetimepicker' | 'datepicker' | 'select';
  required: boolean;
  tooltip?: string;
  values?: string[];
}

export interface DataTableFile {
  type_name: string;
  display_name: string;
  description: string;
  fields: DataTableField[];
}

export interface FunctionFile {
  name: string;
  display_name: string;
  description: string;
  destination: string;
  input_schema: JsonSchema;
}

export interface WorkflowFile {
  programmatic_name: string;
  name: string;
  object_type: string;
  description: string;
  functions: { name: string; pre_processing_script?: string; post_processing_script?: string }[];
}

export interface RuleFile {
  programmatic_name: string;
  name: string;
  object_type: string;
  description: string;
  workflows: string[];
  functions: string[];
}

interface ItemBase {
  packageName: string;
  /** The item's identifier: programmatic name, type name or function name. */
  name: string;
  /** The file it came from (absolute), or `(plugin definition)` when synthesized. */
  file: string;
}

export type CustomizationItem =
  | (ItemBase & { kind: 'message_destination'; definition: MessageDestinationFile })
  | (ItemBase & { kind: 'data_table'; definition: DataTableFile })
  | (ItemBase & { kind: 'function'; definition: FunctionFile })
  | (ItemBase & { kind: 'workflow'; definition: WorkflowFile })
  | (ItemBase & { kind: 'rule'; definition: RuleFile });

export type CustomizationKind = CustomizationItem['kind'];

/** The order items are imported in: a function needs its destination, a rule its workflows. */
export const KIND_ORDER: readonly CustomizationKind[] = ['message_destination', 'data_table', 'function', 'workflow', 'rule'];

/** Each kind's folder under the customizations directory. */
export const KIND_FOLDERS: Record<CustomizationKind, string> = {
  message_destination: 'message_destinations',
  data_table: 'data_tables',
  function: 'functions',
  workflow: 'workflows',
  rule: 'rules',
};

/** How a kind is named in prompts and reports. */
export const KIND_LABELS: Record<CustomizationKind, string> = {
  message_destination: 'message destination',
  data_table: 'data table',
  function: 'function',
  workflow: 'workflow',
  rule: 'rule',
};

export interface PackageCustomizations {
  packageName: string;
  /** The folder read, or undefined when the items came from the plugin definition. */
  dir: string | undefined;
  /** In {@link KIND_ORDER}, then by name. */
  items: CustomizationItem[];
}

/** Names SOAR accepts for programmatic names: they become queue, table and API names. */
const API_NAME = '^[A-Za-z_][A-Za-z0-9_.:-]{0,99}$';
const TEXT = { type: 'string', minLength: 1 };

const SCHEMAS: Record<CustomizationKind, JsonSchema> = {
  message_destination: {
    type: 'object',
    required: ['programmatic_name', 'name', 'destination_type', 'expect_ack', 'description'],
    properties: {
      programmatic_name: { type: 'string', pattern: API_NAME },
      name: TEXT,
      destination_type: { enum: [0, 1] },
      expect_ack: { type: 'boolean' },
      description: { type: 'string' },
    },
  },
  data_table: {
    type: 'object',
    required: ['type_name', 'display_name', 'description', 'fields'],
    properties: {
      type_name: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$' },
      display_name: TEXT,
      description: { type: 'string' },
      fields: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['name', 'text', 'input_type', 'required'],
          properties: {
            name: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$' },
            text: TEXT,
            input_type: { enum: ['text', 'textarea', 'number', 'boolean', 'datetimepicker', 'datepicker', 'select'] },
            required: { type: 'boolean' },
            tooltip: { type: 'string' },
            values: { type: 'array', items: TEXT },
          },
        },
      },
    },
  },
  function: {
    type: 'object',
    required: ['name', 'display_name', 'description', 'destination', 'input_schema'],
    properties: {
      name: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,99}$' },
      display_name: TEXT,
      description: { type: 'string' },
      destination: { type: 'string', pattern: API_NAME },
      input_schema: { type: 'object', required: ['type', 'properties'], properties: { type: { const: 'object' }, properties: { type: 'object' } } },
    },
  },
  workflow: {
    type: 'object',
    required: ['programmatic_name', 'name', 'object_type', 'description', 'functions'],
    properties: {
      programmatic_name: { type: 'string', pattern: API_NAME },
      name: TEXT,
      object_type: TEXT,
      description: { type: 'string' },
      functions: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['name'],
          properties: { name: TEXT, pre_processing_script: { type: 'string' }, post_processing_script: { type: 'string' } },
        },
      },
    },
  },
  rule: {
    type: 'object',
    required: ['programmatic_name', 'name', 'object_type', 'description', 'workflows', 'functions'],
    properties: {
      programmatic_name: { type: 'string', pattern: API_NAME },
      name: TEXT,
      object_type: TEXT,
      description: { type: 'string' },
      workflows: { type: 'array', minItems: 1, items: TEXT },
      functions: { type: 'array', items: TEXT },
    },
  },
};

const ajv = new Ajv({ allErrors: true, strict: false });
const validators = new Map<CustomizationKind, ValidateFunction>();
function validatorFor(kind: CustomizationKind): ValidateFunction {
  let v = validators.get(kind);
  if (!v) {
    v = ajv.compile(SCHEMAS[kind]);
    validators.set(kind, v);
  }
  return v;
}

/** The field holding an item's identifier, which must equal its file's base name. */
const NAME_FIELD: Record<CustomizationKind, string> = {
  message_destination: 'programmatic_name',
  data_table: 'type_name',
  function: 'name',
  workflow: 'programmatic_name',
  rule: 'programmatic_name',
};

function readItem(packageName: string, kind: CustomizationKind, file: string): CustomizationItem {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CustomizationError(`${file}: not readable JSON: ${(err as Error).message}`, err);
  }
  const validate = validatorFor(kind);
  if (!validate(parsed)) {
    const problems = describeInputErrors(validate.errors).map((p) => `${p.field}: ${p.problem}`);
    throw new CustomizationError(`${file}: not a valid ${KIND_LABELS[kind]} definition: ${problems.join('; ')}`);
  }
  const definition = parsed as Record<string, unknown>;
  const name = String(definition[NAME_FIELD[kind]]);
  const base = path.basename(file, '.json');
  if (base !== name) {
    throw new CustomizationError(`${file}: ${NAME_FIELD[kind]} is "${name}" but the file is named ${base}.json; rename one so they match`);
  }
  return { kind, packageName, name, file, definition } as unknown as CustomizationItem;
}

function listJson(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => path.join(dir, f));
}

/** Items built from the plugin itself, for a plugin that ships no customizations folder. */
function fromPlugin(plugin: Plugin<any, any>): CustomizationItem[] {
  const file = '(plugin definition)';
  const packageName = plugin.packageName;
  return [
    {
      kind: 'message_destination',
      packageName,
      name: plugin.destination,
      file,
      definition: {
        programmatic_name: plugin.destination,
        name: plugin.destination,
        destination_type: 0,
        expect_ack: true,
        description: `Queue of the ${packageName} functions`,
      },
    },
    ...plugin.functions.filter((fn) => !fn.internal).map(
      (fn): CustomizationItem => ({
        kind: 'function',
        packageName,
        name: fn.name,
        file,
        definition: {
          name: fn.name,
          display_name: fn.displayName,
          description: fn.description,
          destination: plugin.destination,
          input_schema: fn.inputSchema,
        },
      }),
    ),
  ];
}

/** Cross-checks: references resolve, and function files are the plugin's functions. */
function checkPackage(plugin: Plugin<any, any>, items: CustomizationItem[]): void {
  const names = (kind: CustomizationKind) => new Set(items.filter((i) => i.kind === kind).map((i) => i.name));
  const destinations = names('message_destination');
  const functions = names('function');
  const workflows = names('workflow');
  for (const item of items) {
    if (item.kind === 'function') {
      const fn = plugin.functions.find((f) => f.name === item.name && !f.internal);
      if (!fn) {
        throw new CustomizationError(
          `${item.file}: ${plugin.packageName} has no function ${item.name}; remove the file or add the function to the plugin`,
        );
      }
      if (!isDeepStrictEqual(fn.inputSchema, item.definition.input_schema)) {
        throw new CustomizationError(
          `${item.file}: input_schema differs from the one ${plugin.packageName} validates ${item.name} with; load the plugin's schema from this file`,
        );
      }
      if (!destinations.has(item.definition.destination)) {
        throw new CustomizationError(
          `${item.file}: destination "${item.definition.destination}" has no file in ${KIND_FOLDERS.message_destination}/`,
        );
      }
    } else if (item.kind === 'workflow') {
      for (const f of item.definition.functions) {
        if (!functions.has(f.name)) throw new CustomizationError(`${item.file}: uses function ${f.name}, which ${plugin.packageName} does not ship`);
      }
    } else if (item.kind === 'rule') {
      for (const w of item.definition.workflows) {
        if (!workflows.has(w)) throw new CustomizationError(`${item.file}: runs workflow ${w}, which has no file in ${KIND_FOLDERS.workflow}/`);
      }
      for (const f of item.definition.functions) {
        if (!functions.has(f)) throw new CustomizationError(`${item.file}: names function ${f}, which ${plugin.packageName} does not ship`);
      }
    }
  }
  // Internal functions (run only from the plugin's own queues) have no definition file.
  const missing = plugin.functions.filter((f) => !f.internal && !functions.has(f.name)).map((f) => f.name);
  if (missing.length) {
    throw new CustomizationError(
      `${plugin.customizationsDir}: ${plugin.packageName} function(s) ${missing.join(', ')} have no file in ${KIND_FOLDERS.function}/`,
    );
  }
}

/** Reads and checks a plugin's customizations (or builds them from the plugin when it has no folder). */
export function loadCustomizations(plugin: Plugin<any, any>): PackageCustomizations {
  const dir = plugin.customizationsDir;
  if (dir === undefined) return { packageName: plugin.packageName, dir: undefined, items: fromPlugin(plugin) };
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new CustomizationError(`${plugin.packageName}: its customizations folder ${dir} does not exist`);
  }
  const items: CustomizationItem[] = [];
  for (const kind of KIND_ORDER) {
    for (const file of listJson(path.join(dir, KIND_FOLDERS[kind]))) items.push(readItem(plugin.packageName, kind, file));
  }
  checkPackage(plugin, items);
  return { packageName: plugin.packageName, dir, items };
}
