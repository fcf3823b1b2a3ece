/**
 * The `soar` platform: attachments come from, and exports go to, IBM SOAR itself over
 * its REST API (what fn_slack did through resilient-lib).
 *
 * Reading (paths relative to `/rest/orgs/{org}`):
 * - incident attachment: metadata `GET /incidents/{inc}/attachments/{att}` (name,
 *   content_type, size), bytes `GET …/contents`;
 * - task attachment: `GET /tasks/{task}/attachments/{att}` and `…/contents`;
 * - artifact file: `GET /incidents/{inc}/artifacts/{art}?handle_format=names` (its
 *   `type` as a name, its file under `attachment`), bytes `GET …/contents`. A server that
 *   still answers with a numeric type id gets it resolved by `GET /artifact_types/{id}`.
 *   Artifacts of type "Malware Sample" are refused before any byte is read.
 * The contents are streamed to the caller, never buffered whole.
 *
 * Writing: the export is uploaded as an attachment of the incident or task, a
 * multipart/form-data POST with the file in the part named `file` (the field
 * resilient's `post_attachment` uses), streamed from disk with a computed
 * Content-Length.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { FunctionError } from '../../core/runtime/errors.js';
import { checkAttachmentRef, checkId, describeValue, optionalId } from '../ids.js';
import { checkFileName, guessContentType } from '../local/local-platform.js';
import type {
  AddedNote,
  AttachmentInfo,
  AttachmentRef,
  ExportTarget,
  IncidentChange,
  IncidentSummary,
  NewNote,
  Platform,
  PlatformUser,
  SavedExport,
} from '../platform.js';
import type { SoarClient } from './soar-client.js';
import { addSoarNote } from './soar-notes.js';
import { SoarIncidents } from './soar-incidents.js';
import { SOAR_PERMISSIONS } from './soar-permissions.js';

/** Artifacts of this type are never read, let alone sent anywhere. */
export const MALWARE_SAMPLE = 'Malware Sample';

// Where the SOAR API key permissions are named (re-exported for existing imports).
export { SOAR_PERMISSIONS };

/** AttachmentDTO fields the worker reads. */
interface AttachmentDto {
  id?: number;
  name?: unknown;
  content_type?: unknown;
  size?: unknown;
  inc_id?: unknown;
  task_id?: unknown;
}

/** ArtifactDTO fields the worker reads. */
interface ArtifactDto {
  id?: number;
  type?: unknown;
  value?: unknown;
  attachment?: AttachmentDto | null;
}

/** Quotes a file name for a Content-Disposition header (names are already checked: no controls). */
function quoteFileName(name: string): string {
  return name.replace(/["\\]/g, (c) => encodeURIComponent(c));
}

export class SoarPlatform implements Platform {
  readonly kind = 'soar';
  private readonly incidents: SoarIncidents;

  /**
   * @param mirrorDataTable `[soar] data_table`: also keep the incident ↔ channel mapping in
   *   SOAR's data table (fn_slack mirrors its table there: src/functions/slack/store/soar-data-table.ts).
   */
  constructor(
    readonly client: SoarClient,
    readonly mirrorDataTable = false,
  ) {
    this.incidents = new SoarIncidents(client);
  }

  async getAttachment(ref: AttachmentRef): Promise<AttachmentInfo> {
    const checked = checkAttachmentRef(ref);
    const { incidentId, taskId } = checked;
    if (checked.artifactId !== undefined) return this.artifact(incidentId, checked.artifactId);
    const { attachmentId } = checked;

    const owner = taskId === undefined ? `incident ${incidentId}` : `task ${taskId} of incident ${incidentId}`;
    const what = `attachment ${attachmentId} of ${owner}`;
    const path =
      taskId === undefined ? `/incidents/${incidentId}/attachments/${attachmentId}` : `/tasks/${taskId}/attachments/${attachmentId}`;
    const permission = taskId === undefined ? SOAR_PERMISSIONS.readIncidents : SOAR_PERMISSIONS.readTasks;
    const meta = await this.client.getJson<AttachmentDto>(path, { what, permission });
    // A task id names the task across the org: make sure it is the incident's own.
    if (taskId !== undefined && typeof meta.inc_id === 'number' && meta.inc_id !== incidentId) {
      throw new FunctionError(
        `Task ${taskId} belongs to incident ${meta.inc_id}, not incident ${incidentId}; check task_id`,
        'not_found',
      );
    }
    return this.info(meta, `${path}/contents`, what, permission);
  }

  async checkExportTarget(target: ExportTarget): Promise<void> {
    const incidentId = checkId(target.incidentId, 'incident_id');
    const taskId = optionalId(target.taskId, 'task_id');
    if (taskId === undefined) {
      await this.client.getJson(`/incidents/${incidentId}`, { what: `incident ${incidentId}`, permission: SOAR_PERMISSIONS.readIncidents });
      return;
    }
    const task = await this.client.getJson<{ inc_id?: number }>(`/tasks/${taskId}`, {
      what: `task ${taskId} of incident ${incidentId}`,
      permission: SOAR_PERMISSIONS.readTasks,
    });
    // A task id names the task across the org: make sure it is the incident's own.
    if (typeof task?.inc_id === 'number' && task.inc_id !== incidentId) {
      throw new FunctionError(`Task ${taskId} belongs to incident ${task.inc_id}, not incident ${incidentId}; check task_id`, 'not_found');
    }
  }

  async saveExport(target: ExportTarget, name: string, sourcePath: string): Promise<SavedExport> {
    const incidentId = checkId(target.incidentId, 'incident_id');
    const taskId = optionalId(target.taskId, 'task_id');
    checkFileName(name);
    const size = (await stat(sourcePath)).size;

    const owner = taskId === undefined ? `incident ${incidentId}` : `task ${taskId} of incident ${incidentId}`;
    const path = taskId === undefined ? `/incidents/${incidentId}/attachments` : `/tasks/${taskId}/attachments`;
    const contentType = guessContentType(name);
    const boundary = `----soar-worker-${randomBytes(12).toString('hex')}`;
    const head = Buffer.from(
      `--${boundary}\r\n` +
        `Content-Disposition: form-data; name="file"; filename="${quoteFileName(name)}"\r\n` +
        `Content-Type: ${contentType}\r\n\r\n`,
      'utf8',
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8');

    const saved = await this.client.json<AttachmentDto>({
      method: 'POST',
      path,
      what: `a new attachment ${JSON.stringify(name)} on ${owner}`,
      permission: taskId === undefined ? SOAR_PERMISSIONS.editIncidents : SOAR_PERMISSIONS.editTasks,
      body: () => ({
        stream: Readable.from(
          (async function* () {
            yield head;
            yield* createReadStream(sourcePath);
            yield tail;
          })(),
          { objectMode: false },
        ),
        length: head.length + size + tail.length,
        contentType: `multipart/form-data; boundary=${boundary}`,
      }),
    });
    const attachmentId = typeof saved?.id === 'number' ? saved.id : undefined;
    const location =
      `${this.client.baseUrl}/#incidents/${incidentId}` +
      ` (attachment ${attachmentId ?? '?'} of ${owner}, ${JSON.stringify(name)})`;
    return attachmentId === undefined ? { location } : { location, attachmentId };
  }

  /**
   * Checks the API key and its org (`GET /rest/session`), then that it can read
   * incidents (a one-row `POST /incidents/query_paged`). Writing attachments cannot be
   * probed without leaving one behind; the README lists the permissions it needs.
   */
  /** Adds the note as a comment (soar-notes.ts); idempotent on `note.key`. */
  async addNote(note: NewNote): Promise<AddedNote> {
    return addSoarNote(this.client, note);
  }

  async getIncident(incidentId: number): Promise<IncidentSummary> {
    return this.incidents.get(incidentId);
  }

  async updateIncident(incidentId: number, change: IncidentChange, actor: PlatformUser): Promise<IncidentSummary> {
    return this.incidents.update(incidentId, change, actor);
  }

  async findUserByEmail(email: string): Promise<PlatformUser | undefined> {
    return this.incidents.findUser(email);
  }

  async check(): Promise<string> {
    const session = await this.client.getJson<{ orgs?: { id?: number; name?: string; enabled?: boolean }[]; api_key_handle?: unknown }>(
      '/rest/session',
      { what: 'the session of the API key' },
    );
    const orgs = Array.isArray(session?.orgs) ? session.orgs : [];
    const org = orgs.find((o) => o.id === this.client.orgId);
    if (!org) {
      const known = orgs.map((o) => `${o.id} (${o.name ?? '?'})`).join(', ') || 'none';
      throw new FunctionError(
        `The API key is not a member of SOAR org ${this.client.orgId}: check [soar] org_id (the key's orgs: ${known})`,
        'soar_org_not_found',
      );
    }
    if (org.enabled === false) {
      throw new FunctionError(`SOAR org ${org.id} (${org.name ?? '?'}) is not accessible to this API key (disabled, or an IP restriction)`, 'soar_forbidden');
    }
    const page = await this.client.postJson<{ recordsTotal?: number }>(
      '/incidents/query_paged',
      { filters: [], start: 0, length: 1 },
      { what: 'the list of incidents', permission: SOAR_PERMISSIONS.readIncidents },
      { return_level: 'partial' },
    );
    const total = typeof page?.recordsTotal === 'number' ? `${page.recordsTotal} incident(s) visible` : 'incidents readable';
    return `SOAR at ${this.client.baseUrl}, org ${org.id} (${org.name ?? '?'}): API key accepted; ${total}`;
  }

  // --- helpers -------------------------------------------------------------------

  private async artifact(incidentId: number, artifactId: number): Promise<AttachmentInfo> {
    const what = `artifact ${artifactId} of incident ${incidentId}`;
    const path = `/incidents/${incidentId}/artifacts/${artifactId}`;
    const permission = SOAR_PERMISSIONS.readIncidents;
    const artifact = await this.client.getJson<ArtifactDto>(path, { what, permission }, { handle_format: 'names' });
    const type = await this.artifactTypeName(artifact?.type, what);
    const label = `Artifact ${artifactId} of incident ${incidentId} (${type}${typeof artifact.value === 'string' && artifact.value ? ` ${JSON.stringify(artifact.value)}` : ''})`;
    if (type === MALWARE_SAMPLE) {
      throw new FunctionError(`${label} is a ${MALWARE_SAMPLE}; its file is never read or sent`, 'malware_refused');
    }
    if (!artifact.attachment || typeof artifact.attachment !== 'object') {
      throw new FunctionError(`${label} has no file`, 'not_found');
    }
    const info = this.info(artifact.attachment, `${path}/contents`, `the file of ${what}`, permission);
    info.artifactType = type;
    return info;
  }

  /** The artifact type's name: given by handle_format=names, else looked up by id. */
  private async artifactTypeName(type: unknown, what: string): Promise<string> {
    if (typeof type === 'string' && type !== '') return type;
    if (typeof type === 'number') {
      const found = await this.client.getJson<{ name?: unknown }>(`/artifact_types/${type}`, {
        what: `artifact type ${type} (of ${what})`,
        permission: SOAR_PERMISSIONS.readData,
      });
      if (typeof found?.name === 'string' && found.name) return found.name;
    }
    throw new FunctionError(`SOAR gave ${what} no usable type (${describeValue(type)})`, 'invalid_artifact');
  }

  private info(meta: AttachmentDto, contentsPath: string, what: string, permission: string): AttachmentInfo {
    const name = typeof meta?.name === 'string' && meta.name ? meta.name : `attachment-${meta?.id ?? 'file'}`;
    const contentType = typeof meta?.content_type === 'string' && meta.content_type ? meta.content_type : guessContentType(name);
    const size = typeof meta?.size === 'number' && meta.size >= 0 ? meta.size : 0;
    return {
      name,
      contentType,
      size,
      open: async (): Promise<Readable> => {
        const res = await this.client.request({ method: 'GET', path: contentsPath, what: `the contents of ${what}`, permission });
        return res.body;
      },
    };
  }
}
