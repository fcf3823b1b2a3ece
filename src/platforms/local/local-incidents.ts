/**
 * Incident look-up and update for the `local` platform: `incidents/<id>/incident.json`,
 *
 * ```json
 * {"id": 2103, "name": "…", "description": "…", "severity": "High", "status": "Active",
 *  "owner": "alice@example.com", "resolution": null, "resolution_summary": null}
 * ```
 *
 * - An incident folder without incident.json is an Active incident named "Incident <id>"
 *   with nothing else set (folders made for attachments and exports stay usable).
 * - Writes are atomic: a private temp file in the folder, then a rename over the old one.
 * - Changes to one incident are serialised (read, change, write), so two clicks at once
 *   both apply, one after the other: in this process by a keyed mutex, and across the
 *   processes sharing the folder (two `worker run` on one host) by a lock file beside
 *   incident.json (`.incident.json.lock`, core/file-lock.ts; a killed holder's is taken over).
 * - A local platform user is anyone with an email; their id is the email.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { withFileLock } from '../../core/file-lock.js';
import { errorCode, FunctionError } from '../../core/runtime/errors.js';
import { KeyedMutex } from '../../core/store/keyed-mutex.js';
import { checkId } from '../ids.js';
import type { IncidentChange, IncidentResolution, IncidentSeverity, IncidentStatus, IncidentSummary, PlatformUser } from '../platform.js';
import { checkIncidentChange, INCIDENT_RESOLUTIONS, INCIDENT_SEVERITIES } from '../incident-change.js';

export const INCIDENT_FILE = 'incident.json';
/** Held while one process changes incident.json (a hidden name: not a note, not an attachment). */
const LOCK_FILE = `.${INCIDENT_FILE}.lock`;
const MAX_INCIDENT_FILE_BYTES = 1024 * 1024;
/** Deliberately loose: Slack gives verified emails; this only keeps out what cannot be one. */
const EMAIL = /^[^\s@<>]+@[^\s@<>]+$/;

/** The record as stored in incident.json. */
interface IncidentRecord {
  id: number;
  name: string;
  description: string;
  severity: IncidentSeverity | null;
  status: IncidentStatus;
  owner: string | null;
  resolution: IncidentResolution | null;
  resolution_summary: string | null;
}

export class LocalIncidents {
  private readonly mutex = new KeyedMutex();

  /**
   * @param incidentDir resolves an incident's folder (inside the root, symlinks checked),
   *   throwing `not_found` when there is none.
   */
  constructor(private readonly incidentDir: (incidentId: number) => Promise<string>) {}

  async get(incidentId: number): Promise<IncidentSummary> {
    const id = checkId(incidentId, 'incident_id');
    return toSummary(await this.read(id, await this.incidentDir(id)));
  }

  async update(incidentId: number, change: IncidentChange, actor: PlatformUser): Promise<IncidentSummary> {
    const id = checkId(incidentId, 'incident_id');
    checkIncidentChange(change);
    const dir = await this.incidentDir(id);
    const critical = (fn: () => Promise<IncidentSummary>) =>
      this.mutex.run(String(id), () => withFileLock(join(dir, LOCK_FILE), fn, { what: `changes to incident ${id}` }));
    return critical(async () => {
      const record = await this.read(id, dir);
      if (change.owner !== undefined) record.owner = change.owner.email;
      if (change.severity !== undefined) record.severity = change.severity;
      if (change.resolution !== undefined) record.resolution = change.resolution;
      if (change.resolution_summary !== undefined) record.resolution_summary = change.resolution_summary;
      if (change.status !== undefined) record.status = change.status;
      if (change.status === 'Active') {
        record.resolution = null;
        record.resolution_summary = null;
      }
      await writeAtomically(dir, record);
      void actor; // the local record keeps no history; the note added with the change says who
      return toSummary(record);
    });
  }

  async findUser(email: string): Promise<PlatformUser | undefined> {
    const trimmed = typeof email === 'string' ? email.trim() : '';
    if (!EMAIL.test(trimmed)) return undefined;
    const lower = trimmed.toLowerCase();
    return { id: lower, email: lower, name: lower };
  }

  private async read(id: number, dir: string): Promise<IncidentRecord> {
    const path = join(dir, INCIDENT_FILE);
    let text: string;
    try {
      // The folder is checked to be inside the root; O_NOFOLLOW keeps incident.json from
      // being a symlink out of it.
      const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        const st = await handle.stat();
        if (!st.isFile() || st.size > MAX_INCIDENT_FILE_BYTES) {
          throw new FunctionError(`${path} is not a file of at most 1 MB`, 'invalid_incident');
        }
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return defaultRecord(id);
      if (errorCode(err) === 'ELOOP') throw new FunctionError(`${path} is a symlink; refusing to follow it`, 'forbidden_path');
      throw err;
    }
    return parseRecord(id, text, path);
  }
}

function defaultRecord(id: number): IncidentRecord {
  return {
    id,
    name: `Incident ${id}`,
    description: '',
    severity: null,
    status: 'Active',
    owner: null,
    resolution: null,
    resolution_summary: null,
  };
}

function parseRecord(id: number, text: string, path: string): IncidentRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new FunctionError(`${path} is not valid JSON: ${(err as Error).message}`, 'invalid_incident');
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new FunctionError(
      `${path} must hold a JSON object like {"name": "…", "severity": "High", "status": "Active"}`,
      'invalid_incident',
    );
  }
  const r = raw as Record<string, unknown>;
  const bad = (field: string, expected: string): never => {
    throw new FunctionError(`${path}: "${field}" must be ${expected}`, 'invalid_incident');
  };
  const optionalString = (field: string): string | null => {
    const v = r[field];
    if (v === undefined || v === null) return null;
    return typeof v === 'string' ? v : bad(field, 'a string or null');
  };
  const oneOf = <T extends string>(field: string, allowed: readonly T[]): T | null => {
    const v = r[field];
    if (v === undefined || v === null) return null;
    return (allowed as readonly unknown[]).includes(v) ? (v as T) : bad(field, `one of ${allowed.join(', ')} or null`);
  };
  if (r.id !== undefined && r.id !== id) bad('id', `${id} (the folder's id)`);
  const status = oneOf<IncidentStatus>('status', ['Active', 'Closed']) ?? 'Active';
  return {
    id,
    name: optionalString('name') ?? `Incident ${id}`,
    description: optionalString('description') ?? '',
    severity: oneOf('severity', INCIDENT_SEVERITIES),
    status,
    owner: optionalString('owner'),
    resolution: oneOf('resolution', INCIDENT_RESOLUTIONS),
    resolution_summary: optionalString('resolution_summary'),
  };
}

function toSummary(r: IncidentRecord): IncidentSummary {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    severity: r.severity,
    status: r.status,
    owner: r.owner ? { id: r.owner, email: r.owner, name: r.owner } : null,
    resolution: r.resolution,
    resolution_summary: r.resolution_summary,
  };
}

/** Writes the record to a private temp file beside incident.json, then renames it over. */
async function writeAtomically(dir: string, record: IncidentRecord): Promise<void> {
  const temp = join(dir, `.${INCIDENT_FILE}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(record, null, 2)}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(temp, 0o600); // the mode above is cut by the umask, this is not
    await rename(temp, join(dir, INCIDENT_FILE));
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
