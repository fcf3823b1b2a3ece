/**
 * Importing the packaged customizations into SOAR over its REST API, idempotently:
 * function definitions, the message destination and the data table (what
 * `resilient-circuits customize` installs for fn_slack).
 *
 * `planSoarImport` only reads and says what `applySoarImport` would do — `create`,
 * `update` or `unchanged` — so `worker customize` can ask before each change; applying
 * twice leaves the second run `unchanged`.
 *
 * How each kind maps onto SOAR (paths relative to `/rest/orgs/{org}`):
 * - function: its inputs are fields of the `__function` type
 *   (`GET/POST /types/__function/fields`, `PUT /types/__function/fields/{name}`), shared
 *   by every function that uses the same name; the function itself is a FunctionDTO
 *   (`GET /functions?handle_format=names`, `POST /functions`, `PUT /functions/{id}`)
 *   with `display_name`, `description: {format: "text", content}`, `destination_handle`
 *   and `view_items` listing its input fields by uuid, in the schema's order. Because an
 *   input field is shared, a field that exists is only changed when its `input_type`
 *   differs; its tooltip and required flag are set when it is created (otherwise two
 *   functions describing `incident_id` differently would rewrite it on every run).
 * - message destination: `GET/POST /message_destinations`, `PUT /message_destinations/{id}`
 *   (`programmatic_name`, `name`, `destination_type` 0 = queue, `expect_ack`), with the
 *   importing API key added to its `api_keys`, as resilient-circuits does, so the key may
 *   use the destination.
 * - data table: a type with `type_id` 8 and parent `incident` (`GET /types/{type_name}`,
 *   `POST /types`, `PUT /types/{type_name}`), its fields keyed by name.
 */
import { FunctionError, WorkerError } from '../../core/runtime/errors.js';
import type { SoarClient } from './soar-client.js';
import { SOAR_PERMISSIONS } from './soar-platform.js';

export type SoarImportKind = 'function' | 'message_destination' | 'data_table';
export type SoarImportPlan = 'create' | 'update' | 'unchanged';

export interface SoarImportItem {
  kind: SoarImportKind;
  /** Programmatic name (function name, destination programmatic_name, table type_name). */
  name: string;
  /** The packaged JSON definition, as in customizations/fn_slack/…/*.json. */
  definition: Record<string, unknown>;
}

type Json = Record<string, any>;

/** SOAR's type id of data tables. */
const DATA_TABLE_TYPE_ID = 8;
/** SOAR's destination type of a queue (0; 1 is a topic). */
const QUEUE = 0;

function invalid(item: SoarImportItem, problem: string): FunctionError {
  return new FunctionError(`The ${item.kind.replace('_', ' ')} definition ${JSON.stringify(item.name)} ${problem}`, 'invalid_customization');
}

function str(item: SoarImportItem, key: string, required = true): string | undefined {
  const value = item.definition[key];
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || (required && value === '')) throw invalid(item, `needs "${key}" as a string`);
  return value;
}

function isNotFound(err: unknown): boolean {
  return err instanceof WorkerError && err.code === 'not_found';
}

// --- functions ----------------------------------------------------------------------

interface InputField {
  name: string;
  text: string;
  input_type: string;
  tooltip: string;
  placeholder: string;
  required: 'always' | null;
}

/** A JSON Schema property as a SOAR function input field. */
function inputType(prop: Json): string {
  if (typeof prop['x-soar-input-type'] === 'string') return prop['x-soar-input-type'];
  const type = Array.isArray(prop.type) ? prop.type.find((t: unknown) => t !== 'null') : prop.type;
  if (type === 'integer' || type === 'number') return 'number';
  if (type === 'boolean') return 'boolean';
  return 'text';
}

function inputFields(item: SoarImportItem): InputField[] {
  const schema = item.definition.input_schema as Json | undefined;
  if (!schema || typeof schema !== 'object' || !schema.properties || typeof schema.properties !== 'object') {
    throw invalid(item, 'needs "input_schema" with "properties"');
  }
  const required = new Set<string>(Array.isArray(schema.required) ? schema.required : []);
  return Object.entries(schema.properties as Record<string, Json>).map(([name, prop]) => ({
    name,
    text: name,
    input_type: inputType(prop ?? {}),
    tooltip: typeof prop?.description === 'string' ? prop.description.slice(0, 1000) : '',
    placeholder: '',
    required: required.has(name) ? 'always' : null,
  }));
}

async function functionFields(client: SoarClient): Promise<Map<string, Json>> {
  const list = await client.getJson<Json[]>('/types/__function/fields', {
    what: 'the function input fields',
    permission: SOAR_PERMISSIONS.readData,
  });
  return new Map((Array.isArray(list) ? list : []).map((f) => [String(f.name), f]));
}

async function findFunction(client: SoarClient, name: string): Promise<Json | undefined> {
  const list = await client.getJson<{ entities?: Json[] }>(
    '/functions',
    { what: 'the functions', permission: SOAR_PERMISSIONS.readFunctions },
    { handle_format: 'names' },
  );
  return (list?.entities ?? []).find((f) => f.name === name);
}

function viewItems(uuids: string[]): Json[] {
  return uuids.map((uuid) => ({
    element: 'field_uuid',
    content: uuid,
    field_type: '__function',
    show_if: null,
    show_link_header: false,
    step_label: null,
  }));
}

function functionBody(item: SoarImportItem, uuids: string[]): Json {
  return {
    name: item.name,
    display_name: str(item, 'display_name'),
    description: { format: 'text', content: str(item, 'description', false) ?? '' },
    destination_handle: str(item, 'destination'),
    view_items: viewItems(uuids),
  };
}

function sameFunction(existing: Json, desired: Json): boolean {
  const items = (v: Json[] | undefined) => (v ?? []).map((i) => `${i.element}:${i.content}`).join(',');
  return (
    existing.display_name === desired.display_name &&
    (existing.description?.content ?? '') === desired.description.content &&
    existing.destination_handle === desired.destination_handle &&
    items(existing.view_items) === items(desired.view_items)
  );
}

async function planFunction(client: SoarClient, item: SoarImportItem): Promise<SoarImportPlan> {
  const wanted = inputFields(item);
  const fields = await functionFields(client);
  const existing = await findFunction(client, item.name);
  if (!existing) return 'create';
  if (wanted.some((f) => !fields.has(f.name) || fields.get(f.name)!.input_type !== f.input_type)) return 'update';
  const desired = functionBody(item, wanted.map((f) => String(fields.get(f.name)!.uuid)));
  return sameFunction(existing, desired) ? 'unchanged' : 'update';
}

async function applyFunction(client: SoarClient, item: SoarImportItem): Promise<SoarImportPlan> {
  const wanted = inputFields(item);
  const fields = await functionFields(client);
  let changed = false;
  for (const field of wanted) {
    const have = fields.get(field.name);
    if (!have) {
      const created = await client.postJson<Json>('/types/__function/fields', field, {
        what: `the function input field ${field.name}`,
        permission: SOAR_PERMISSIONS.editData,
      });
      fields.set(field.name, created);
      changed = true;
    } else if (have.input_type !== field.input_type) {
      const updated = await client.putJson<Json>(`/types/__function/fields/${field.name}`, { ...have, input_type: field.input_type }, {
        what: `the function input field ${field.name}`,
        permission: SOAR_PERMISSIONS.editData,
      });
      fields.set(field.name, updated);
      changed = true;
    }
  }
  const desired = functionBody(item, wanted.map((f) => String(fields.get(f.name)!.uuid)));
  const existing = await findFunction(client, item.name);
  if (!existing) {
    await client.postJson('/functions', desired, { what: `the function ${item.name}`, permission: SOAR_PERMISSIONS.createFunctions });
    return 'create';
  }
  if (!sameFunction(existing, desired)) {
    await client.putJson(`/functions/${existing.id}`, { ...existing, ...desired }, {
      what: `the function ${item.name}`,
      permission: SOAR_PERMISSIONS.editFunctions,
    });
    return 'update';
  }
  return changed ? 'update' : 'unchanged';
}

// --- message destinations -----------------------------------------------------------

function destinationBody(item: SoarImportItem): Json {
  const expectAck = item.definition.expect_ack;
  const type = item.definition.destination_type ?? QUEUE;
  if (typeof type !== 'number') throw invalid(item, 'needs "destination_type" as a number (0: queue)');
  const body: Json = {
    programmatic_name: str(item, 'programmatic_name'),
    name: str(item, 'name'),
    destination_type: type,
    expect_ack: expectAck === undefined ? true : Boolean(expectAck),
  };
  const description = str(item, 'description', false);
  if (description !== undefined) body.description = description;
  return body;
}

async function findDestination(client: SoarClient, programmaticName: string): Promise<Json | undefined> {
  const list = await client.getJson<{ entities?: Json[] }>('/message_destinations', {
    what: 'the message destinations',
    permission: SOAR_PERMISSIONS.readData,
  });
  return (list?.entities ?? []).find((d) => d.programmatic_name === programmaticName);
}

/** The importing API key's handle (resilient-circuits adds it to the destination). */
async function apiKeyHandle(client: SoarClient): Promise<number | undefined> {
  const session = await client.getJson<{ api_key_handle?: unknown }>('/rest/session', { what: 'the session of the API key' });
  return typeof session?.api_key_handle === 'number' ? session.api_key_handle : undefined;
}

function destinationDiffers(existing: Json, desired: Json, handle: number | undefined): boolean {
  const fieldsDiffer = Object.entries(desired).some(([k, v]) => existing[k] !== v);
  const keys: unknown[] = Array.isArray(existing.api_keys) ? existing.api_keys : [];
  return fieldsDiffer || (handle !== undefined && !keys.includes(handle));
}

async function planDestination(client: SoarClient, item: SoarImportItem): Promise<SoarImportPlan> {
  const desired = destinationBody(item);
  const existing = await findDestination(client, desired.programmatic_name);
  if (!existing) return 'create';
  return destinationDiffers(existing, desired, await apiKeyHandle(client)) ? 'update' : 'unchanged';
}

async function applyDestination(client: SoarClient, item: SoarImportItem): Promise<SoarImportPlan> {
  const desired = destinationBody(item);
  const handle = await apiKeyHandle(client);
  const existing = await findDestination(client, desired.programmatic_name);
  const what = `the message destination ${desired.programmatic_name}`;
  if (!existing) {
    await client.postJson('/message_destinations', { ...desired, users: [], api_keys: handle === undefined ? [] : [handle] }, {
      what,
      permission: SOAR_PERMISSIONS.editData,
    });
    return 'create';
  }
  if (!destinationDiffers(existing, desired, handle)) return 'unchanged';
  const keys: unknown[] = Array.isArray(existing.api_keys) ? existing.api_keys : [];
  await client.putJson(
    `/message_destinations/${existing.id}`,
    { ...existing, ...desired, api_keys: handle === undefined || keys.includes(handle) ? keys : [...keys, handle] },
    { what, permission: SOAR_PERMISSIONS.editData },
  );
  return 'update';
}

// --- data tables --------------------------------------------------------------------

function tableFields(item: SoarImportItem): Record<string, Json> {
  const fields = item.definition.fields;
  if (!Array.isArray(fields) || fields.length === 0) throw invalid(item, 'needs "fields" as a non-empty list');
  const out: Record<string, Json> = {};
  fields.forEach((f: Json, order) => {
    if (!f || typeof f.name !== 'string' || !/^\w+$/.test(f.name)) throw invalid(item, `has a field without a valid "name" (#${order + 1})`);
    out[f.name] = {
      name: f.name,
      text: typeof f.text === 'string' ? f.text : f.name,
      input_type: typeof f.input_type === 'string' ? f.input_type : 'text',
      required: f.required ? 'always' : null,
      order,
    };
  });
  return out;
}

function tableBody(item: SoarImportItem): Json {
  const body: Json = {
    type_name: str(item, 'type_name'),
    display_name: str(item, 'display_name'),
    type_id: DATA_TABLE_TYPE_ID,
    parent_types: ['incident'],
    fields: tableFields(item),
  };
  const description = str(item, 'description', false);
  if (description !== undefined) body.description = description;
  return body;
}

/** The fields of `desired` that `existing` lacks or has with another label, type or required flag. */
function changedTableFields(existing: Json, desired: Json): Record<string, Json> {
  const have = (existing.fields ?? {}) as Record<string, Json>;
  const changed: Record<string, Json> = {};
  for (const [name, field] of Object.entries(desired.fields as Record<string, Json>)) {
    const h = have[name];
    if (!h || h.text !== field.text || h.input_type !== field.input_type || (h.required ?? null) !== field.required) changed[name] = field;
  }
  return changed;
}

async function findTable(client: SoarClient, typeName: string): Promise<Json | undefined> {
  try {
    return await client.getJson<Json>(`/types/${encodeURIComponent(typeName)}`, {
      what: `the data table ${typeName}`,
      permission: SOAR_PERMISSIONS.readData,
    });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function tableDiffers(existing: Json, desired: Json): boolean {
  return (
    existing.display_name !== desired.display_name ||
    (desired.description !== undefined && existing.description !== desired.description) ||
    Object.keys(changedTableFields(existing, desired)).length > 0
  );
}

async function planTable(client: SoarClient, item: SoarImportItem): Promise<SoarImportPlan> {
  const desired = tableBody(item);
  const existing = await findTable(client, desired.type_name);
  if (!existing) return 'create';
  return tableDiffers(existing, desired) ? 'update' : 'unchanged';
}

async function applyTable(client: SoarClient, item: SoarImportItem): Promise<SoarImportPlan> {
  const desired = tableBody(item);
  const what = `the data table ${desired.type_name}`;
  const existing = await findTable(client, desired.type_name);
  if (!existing) {
    await client.postJson('/types', desired, { what, permission: SOAR_PERMISSIONS.editData });
    return 'create';
  }
  if (!tableDiffers(existing, desired)) return 'unchanged';
  const update: Json = { display_name: desired.display_name, fields: changedTableFields(existing, desired) };
  if (desired.description !== undefined) update.description = desired.description;
  await client.putJson(`/types/${encodeURIComponent(desired.type_name)}`, update, { what, permission: SOAR_PERMISSIONS.editData });
  return 'update';
}

// --- entry points -------------------------------------------------------------------

function checkItem(item: SoarImportItem): void {
  if (!item || typeof item.name !== 'string' || !item.name || !item.definition || typeof item.definition !== 'object') {
    throw new FunctionError('A SOAR import item needs a kind, a name and a definition object', 'invalid_customization');
  }
}

/** Says what {@link applySoarImport} would do for `item`, changing nothing. */
export async function planSoarImport(client: SoarClient, item: SoarImportItem): Promise<SoarImportPlan> {
  checkItem(item);
  switch (item.kind) {
    case 'function':
      return planFunction(client, item);
    case 'message_destination':
      return planDestination(client, item);
    case 'data_table':
      return planTable(client, item);
    default:
      throw new FunctionError(`Unknown SOAR import kind ${JSON.stringify((item as SoarImportItem).kind)}`, 'invalid_customization');
  }
}

/** Creates or updates `item` in SOAR; returns what it did (`unchanged` when nothing was needed). */
export async function applySoarImport(client: SoarClient, item: SoarImportItem): Promise<SoarImportPlan> {
  checkItem(item);
  switch (item.kind) {
    case 'function':
      return applyFunction(client, item);
    case 'message_destination':
      return applyDestination(client, item);
    case 'data_table':
      return applyTable(client, item);
    default:
      throw new FunctionError(`Unknown SOAR import kind ${JSON.stringify((item as SoarImportItem).kind)}`, 'invalid_customization');
  }
}
