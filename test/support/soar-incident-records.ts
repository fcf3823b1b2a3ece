/**
 * The SOAR emulator's incidents, users and incident field values (kept apart from the
 * HTTP plumbing in soar-emulator.ts):
 *
 * - IncidentDTO as `GET /incidents/{id}` gives it: `id`, `name`, `description`
 *   (`{format, content}`), `severity_code`, `plan_status` (A/C), `owner_id`,
 *   `resolution_id`, `resolution_summary` (`{format, content}`), `vers` (bumped by every
 *   change).
 * - `PATCH /incidents/{id}` takes a PatchDTO `{version, changes: [{field, old_value,
 *   new_value}]}` with FieldValueDTOs (`{id}` for selects and the owner, `{text}` for
 *   plan_status, `{textarea: {format, content}}` for text areas). A stale `version` →
 *   409; an `old_value` that no longer holds → 200 `{success: false, field_failures}`;
 *   closing (plan_status C) without a resolution → 400, as SOAR's required-on-close
 *   fields do.
 * - Field values as the incident type's field definitions give them
 *   (`GET /types/incident/fields/{field}` → `{name, values: [{value, label, enabled}]}`),
 *   with SOAR's default ids: severity 4 Low, 5 Medium, 6 High; resolution 7 Unresolved,
 *   8 Duplicate, 9 Not an Issue, 10 Resolved.
 * - Users (`GET /users`): `{id, fname, lname, email, status}` (status A or D).
 */

export const SEVERITY_VALUES: Readonly<Record<number, string>> = Object.freeze({ 4: 'Low', 5: 'Medium', 6: 'High' });
export const RESOLUTION_VALUES: Readonly<Record<number, string>> = Object.freeze({
  7: 'Unresolved',
  8: 'Duplicate',
  9: 'Not an Issue',
  10: 'Resolved',
});
export const INCIDENT_FIELDS: Readonly<Record<string, Readonly<Record<number, string>>>> = Object.freeze({
  severity_code: SEVERITY_VALUES,
  resolution_id: RESOLUTION_VALUES,
});

export interface EmulatedIncident {
  id: number;
  name: string;
  description: string;
  severity_code: number | null;
  plan_status: 'A' | 'C';
  owner_id: number | null;
  resolution_id: number | null;
  resolution_summary: string | null;
  vers: number;
}

export interface EmulatedSoarUser {
  id: number;
  fname: string;
  lname: string;
  email: string;
  status: 'A' | 'D';
}

export class PatchError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function newIncident(id: number, name: string, extra: Partial<Omit<EmulatedIncident, 'id' | 'vers'>> = {}): EmulatedIncident {
  return {
    id,
    name,
    description: '',
    severity_code: null,
    plan_status: 'A',
    owner_id: null,
    resolution_id: null,
    resolution_summary: null,
    ...extra,
    vers: 1,
  };
}

export function incidentDto(inc: EmulatedIncident): Record<string, unknown> {
  return {
    id: inc.id,
    name: inc.name,
    description: { format: 'html', content: inc.description },
    severity_code: inc.severity_code,
    plan_status: inc.plan_status,
    owner_id: inc.owner_id,
    resolution_id: inc.resolution_id,
    resolution_summary: inc.resolution_summary === null ? null : { format: 'text', content: inc.resolution_summary },
    vers: inc.vers,
  };
}

export function fieldDefinition(name: string): Record<string, unknown> | undefined {
  const values = INCIDENT_FIELDS[name];
  if (!values) return undefined;
  return {
    name,
    input_type: 'select',
    values: Object.entries(values).map(([value, label]) => ({ value: Number(value), label, enabled: true, hidden: false })),
  };
}

type Json = Record<string, any>;

/** The current value of a field as a FieldValueDTO, for comparing with an `old_value`. */
function currentValue(inc: EmulatedIncident, field: string): Json {
  switch (field) {
    case 'owner_id':
    case 'severity_code':
    case 'resolution_id':
      return { id: inc[field] };
    case 'plan_status':
      return { text: inc.plan_status };
    case 'resolution_summary':
      return { textarea: { format: 'text', content: inc.resolution_summary ?? '' } };
    default:
      throw new PatchError(400, `Field ${field} cannot be changed here`);
  }
}

function sameValue(a: Json | undefined, b: Json): boolean {
  if (!a || typeof a !== 'object') return false;
  if ('textarea' in b) return (a.textarea?.content ?? '') === b.textarea.content;
  if ('text' in b) return a.text === b.text;
  return (a.id ?? null) === b.id;
}

/**
 * Applies a PatchDTO to `inc`. Returns the PatchStatusDTO to send (200), or throws a
 * PatchError (400, 409).
 */
export function applyPatch(inc: EmulatedIncident, body: Json, users: Map<number, EmulatedSoarUser>): Json {
  if (typeof body.version !== 'number') throw new PatchError(400, 'version is required');
  if (!Array.isArray(body.changes) || body.changes.length === 0) throw new PatchError(400, 'changes must be a non-empty list');
  if (body.version !== inc.vers) {
    throw new PatchError(409, `Incident ${inc.id} has been changed since version ${body.version} (now ${inc.vers})`);
  }
  const next = { ...inc };
  const failures: Json[] = [];
  for (const change of body.changes as Json[]) {
    const field = typeof change?.field === 'string' ? change.field : change?.field?.name;
    if (typeof field !== 'string') throw new PatchError(400, 'Each change needs a field');
    const current = currentValue(inc, field);
    if (!sameValue(change.old_value, current)) {
      failures.push({ field: { name: field }, message: `The value of ${field} has changed`, current_value: current });
      continue;
    }
    const value = change.new_value as Json | undefined;
    if (!value || typeof value !== 'object') throw new PatchError(400, `${field}: new_value is required`);
    if (field === 'owner_id') {
      const id = value.id;
      if (id !== null && !(typeof id === 'number' && users.get(id)?.status === 'A'))
        throw new PatchError(400, `${id} is not an active user`);
      next.owner_id = id;
    } else if (field === 'severity_code' || field === 'resolution_id') {
      const id = value.id;
      if (id !== null && !(typeof id === 'number' && INCIDENT_FIELDS[field]![id]))
        throw new PatchError(400, `${id} is not a value of ${field}`);
      next[field] = id;
    } else if (field === 'plan_status') {
      if (value.text !== 'A' && value.text !== 'C') throw new PatchError(400, 'plan_status must be A or C');
      next.plan_status = value.text;
    } else {
      const content = value.textarea?.content;
      if (typeof content !== 'string') throw new PatchError(400, `${field}: new_value must be a textarea`);
      next.resolution_summary = content;
    }
  }
  if (failures.length)
    return { success: false, title: null, message: 'Some fields could not be changed', hints: [], field_failures: failures };
  if (next.plan_status === 'C' && inc.plan_status !== 'C' && (next.resolution_id === null || !next.resolution_summary)) {
    throw new PatchError(400, 'Resolution and resolution summary are required to close an incident');
  }
  Object.assign(inc, next, { vers: inc.vers + 1 });
  return { success: true, title: null, message: null, hints: [] };
}
