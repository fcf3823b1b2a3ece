/**
 * Incident look-up and update on IBM SOAR (paths relative to `/rest/orgs/{org}`):
 *
 * - look-up: `GET /incidents/{id}` (IncidentDTO: `name`, `description`, `severity_code`,
 *   `plan_status` A/C, `owner_id`, `resolution_id`, `resolution_summary`, `vers`);
 * - update: `PATCH /incidents/{id}` with a PatchDTO, `{"version": vers, "changes":
 *   [{"field": "severity_code", "old_value": {"id": 4}, "new_value": {"id": 6}}, …]}`.
 *   SOAR answers 409 when `version` is stale, and `success: false` with `field_failures`
 *   when an `old_value` no longer holds: either way the incident is read again and the
 *   change re-applied to the fresh version, a few times, so that two people clicking at
 *   once both get their change in (last one wins) rather than an error;
 * - select values (`severity_code`, `resolution_id`) are ids whose labels come from the
 *   incident type's field definitions, `GET /types/incident/fields/{field}` (`values`:
 *   `{value, label}`), read once and again when an id or label is unknown;
 * - users: `GET /users` (id, fname, lname, email, status), cached for a few minutes; a
 *   miss reads the list again at most once a minute, so a new colleague is found soon.
 */
import { FunctionError, WorkerError } from '../../core/runtime/errors.js';
import { checkId } from '../ids.js';
import { checkIncidentChange, INCIDENT_RESOLUTIONS, INCIDENT_SEVERITIES } from '../incident-change.js';
import type { IncidentChange, IncidentResolution, IncidentSeverity, IncidentSummary, PlatformUser } from '../platform.js';
import type { SoarClient } from './soar-client.js';
import { SOAR_PERMISSIONS } from './soar-permissions.js';

/** IncidentDTO fields read here. */
export interface IncidentDto {
  id?: number;
  name?: unknown;
  description?: unknown;
  severity_code?: unknown;
  plan_status?: unknown;
  owner_id?: unknown;
  resolution_id?: unknown;
  resolution_summary?: unknown;
  vers?: unknown;
}

interface PatchStatus {
  success?: boolean;
  field_failures?: unknown[];
  message?: unknown;
}

interface UserDto {
  id?: unknown;
  fname?: unknown;
  lname?: unknown;
  email?: unknown;
  status?: unknown;
}

interface FieldValue {
  value?: unknown;
  label?: unknown;
  enabled?: unknown;
}

export interface SoarIncidentsOptions {
  /** How long the user list is reused (default 5 minutes). */
  userCacheMs?: number;
  /** A miss re-reads the list only if it is older than this (default 1 minute). */
  userRefreshMs?: number;
  /** PATCH attempts when the incident keeps changing under us (default 5). */
  maxAttempts?: number;
  now?: () => number;
}

const SELECT_FIELDS = { severity: 'severity_code', resolution: 'resolution_id' } as const;
type SelectField = (typeof SELECT_FIELDS)[keyof typeof SELECT_FIELDS];

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  // Rich text comes as {format, content}.
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return '';
}

function idOf(value: unknown): number | null {
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : null;
}

function isConflict(err: unknown): boolean {
  return err instanceof WorkerError && err.details?.status === 409;
}

export class SoarIncidents {
  private users: { at: number; byEmail: Map<string, PlatformUser>; byId: Map<number, PlatformUser> } | undefined;
  private usersPending: Promise<void> | undefined;
  private readonly fieldValues = new Map<SelectField, Map<number, string>>();
  private readonly opts: Required<Omit<SoarIncidentsOptions, 'now'>> & { now: () => number };

  constructor(
    private readonly client: SoarClient,
    opts: SoarIncidentsOptions = {},
  ) {
    this.opts = {
      userCacheMs: opts.userCacheMs ?? 5 * 60_000,
      userRefreshMs: opts.userRefreshMs ?? 60_000,
      maxAttempts: opts.maxAttempts ?? 5,
      now: opts.now ?? Date.now,
    };
  }

  async get(incidentId: number): Promise<IncidentSummary> {
    const id = checkId(incidentId, 'incident_id');
    return this.summary(await this.read(id));
  }

  async update(incidentId: number, change: IncidentChange, actor: PlatformUser): Promise<IncidentSummary> {
    const id = checkId(incidentId, 'incident_id');
    checkIncidentChange(change);
    if (change.owner !== undefined && idOf(change.owner.id) === null) {
      throw new FunctionError(`The new owner ${change.owner.email} is not a SOAR user (no numeric user id)`, 'invalid_change');
    }
    const what = `incident ${id}`;
    for (let attempt = 1; ; attempt++) {
      const dto = await this.read(id);
      const patch = { version: dto.vers, changes: await this.changes(dto, change) };
      if (patch.changes.length === 0) return this.summary(dto); // already as asked
      let status: PatchStatus | undefined;
      try {
        status = await this.client.patchJson<PatchStatus>(`/incidents/${id}`, patch, {
          what: `${what} (changed by ${actor.email})`,
          permission: SOAR_PERMISSIONS.editIncidents,
        });
      } catch (err) {
        if (!isConflict(err)) throw err;
        status = { success: false };
      }
      if (status?.success !== false) return this.summary(await this.read(id));
      if (attempt >= this.opts.maxAttempts) {
        throw new FunctionError(
          `SOAR kept refusing the change to ${what} as it changed meanwhile (${attempt} attempts); try again`,
          'soar_conflict',
          { attempts: attempt },
        );
      }
    }
  }

  async findUser(email: string): Promise<PlatformUser | undefined> {
    const key = typeof email === 'string' ? email.trim().toLowerCase() : '';
    if (key === '') return undefined;
    const now = this.opts.now();
    if (!this.users || now - this.users.at > this.opts.userCacheMs) await this.loadUsers();
    let found = this.users?.byEmail.get(key);
    if (!found && this.users && now - this.users.at > this.opts.userRefreshMs) {
      await this.loadUsers();
      found = this.users?.byEmail.get(key);
    }
    return found;
  }

  // --- helpers -------------------------------------------------------------------

  private read(id: number): Promise<IncidentDto> {
    return this.client.getJson<IncidentDto>(`/incidents/${id}`, { what: `incident ${id}`, permission: SOAR_PERMISSIONS.readIncidents });
  }

  private async summary(dto: IncidentDto): Promise<IncidentSummary> {
    const id = idOf(dto.id) ?? 0;
    const severity = await this.label('severity_code', dto.severity_code);
    const resolution = await this.label('resolution_id', dto.resolution_id);
    const ownerId = idOf(dto.owner_id);
    return {
      id,
      name: text(dto.name) || `Incident ${id}`,
      description: text(dto.description),
      severity: (INCIDENT_SEVERITIES as readonly string[]).includes(severity ?? '') ? (severity as IncidentSeverity) : null,
      status: dto.plan_status === 'C' ? 'Closed' : 'Active',
      owner: ownerId === null ? null : ((await this.userById(ownerId)) ?? { id: ownerId, email: '', name: `user ${ownerId}` }),
      resolution: (INCIDENT_RESOLUTIONS as readonly string[]).includes(resolution ?? '') ? (resolution as IncidentResolution) : null,
      resolution_summary: text(dto.resolution_summary) || null,
    };
  }

  /** The PatchDTO changes that turn `dto` into what `change` asks; fields already as asked are left out. */
  private async changes(dto: IncidentDto, change: IncidentChange): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    const put = (field: string, oldValue: unknown, newValue: unknown) => out.push({ field, old_value: oldValue, new_value: newValue });
    if (change.owner !== undefined) {
      const next = idOf(change.owner.id)!;
      if (idOf(dto.owner_id) !== next) put('owner_id', { id: idOf(dto.owner_id) }, { id: next });
    }
    if (change.severity !== undefined) {
      const next = await this.valueId('severity_code', change.severity);
      if (idOf(dto.severity_code) !== next) put('severity_code', { id: idOf(dto.severity_code) }, { id: next });
    }
    if (change.resolution !== undefined) {
      const next = await this.valueId('resolution_id', change.resolution);
      if (idOf(dto.resolution_id) !== next) put('resolution_id', { id: idOf(dto.resolution_id) }, { id: next });
    }
    if (change.resolution_summary !== undefined && text(dto.resolution_summary) !== change.resolution_summary) {
      put(
        'resolution_summary',
        { textarea: { format: 'text', content: text(dto.resolution_summary) } },
        { textarea: { format: 'text', content: change.resolution_summary } },
      );
    }
    if (change.status !== undefined) {
      const next = change.status === 'Closed' ? 'C' : 'A';
      const current = dto.plan_status === 'C' ? 'C' : 'A';
      // Closing goes last: SOAR checks the fields required on close against the patch's new values.
      if (current !== next) put('plan_status', { text: current }, { text: next });
    }
    return out;
  }

  private async values(field: SelectField, refresh = false): Promise<Map<number, string>> {
    let known = this.fieldValues.get(field);
    if (known && !refresh) return known;
    const def = await this.client.getJson<{ values?: FieldValue[] }>(`/types/incident/fields/${field}`, {
      what: `the incident field ${field}`,
      permission: SOAR_PERMISSIONS.readData,
    });
    known = new Map();
    for (const v of Array.isArray(def?.values) ? def.values : []) {
      if (typeof v?.value === 'number' && typeof v.label === 'string' && v.enabled !== false) known.set(v.value, v.label);
    }
    this.fieldValues.set(field, known);
    return known;
  }

  private async label(field: SelectField, value: unknown): Promise<string | null> {
    const id = idOf(value);
    if (id === null) return null;
    return (await this.values(field)).get(id) ?? (await this.values(field, true)).get(id) ?? null;
  }

  private async valueId(field: SelectField, label: string): Promise<number> {
    const find = (m: Map<number, string>) => [...m].find(([, l]) => l.toLowerCase() === label.toLowerCase())?.[0];
    const id = find(await this.values(field)) ?? find(await this.values(field, true));
    if (id === undefined) {
      throw new FunctionError(
        `SOAR's incident field ${field} has no value ${JSON.stringify(label)}: add it to the field's values in SOAR, or enable it`,
        'soar_unknown_value',
        { field, label },
      );
    }
    return id;
  }

  private async userById(id: number): Promise<PlatformUser | undefined> {
    if (!this.users || this.opts.now() - this.users.at > this.opts.userCacheMs) await this.loadUsers();
    return this.users?.byId.get(id);
  }

  /** Reads the org's users; concurrent callers share one request. */
  private loadUsers(): Promise<void> {
    this.usersPending ??= (async () => {
      const answer = await this.client.getJson<unknown>('/users', { what: "the org's users" });
      const list = (Array.isArray(answer) ? answer : ((answer as { entities?: unknown[] })?.entities ?? [])) as UserDto[];
      const byEmail = new Map<string, PlatformUser>();
      const byId = new Map<number, PlatformUser>();
      for (const u of list) {
        const id = idOf(u?.id);
        if (id === null || typeof u.email !== 'string' || u.email === '') continue;
        const name = [u.fname, u.lname].filter((p) => typeof p === 'string' && p).join(' ') || u.email;
        const user: PlatformUser = { id, email: u.email, name };
        byId.set(id, user);
        // A disabled account cannot own or change incidents.
        if (u.status === undefined || u.status === 'A') byEmail.set(u.email.toLowerCase(), user);
      }
      this.users = { at: this.opts.now(), byEmail, byId };
    })().finally(() => {
      this.usersPending = undefined;
    });
    return this.usersPending;
  }
}
