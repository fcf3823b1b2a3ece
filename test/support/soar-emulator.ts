/**
 * A stateful, in-process emulator of the parts of the IBM SOAR REST API the worker uses,
 * over real HTTP (or HTTPS with a given certificate):
 *
 *   const soar = await SoarEmulator.start();
 *   const client = new SoarClient({ baseUrl: soar.baseUrl, orgId: soar.orgId, apiKeyId: soar.apiKeyId, apiKeySecret: soar.apiKeySecret });
 *
 * Behaviour, as documented by IBM's clients (where SOAR leaves room, the choice is noted):
 * - Auth: HTTP Basic with an API key id and secret on every request. A wrong or missing
 *   key → 401. Each key has a set of permissions (default: all); a request needing one
 *   the key lacks → 403 (SOAR's 403 does not name the permission; neither does this).
 * - `GET /rest/session` → `{api_key_handle, orgs: [{id, name, enabled}]}`; everything else
 *   is under `/rest/orgs/{org_id}` (another org id → 404).
 * - Incidents (`GET /incidents/{id}`), tasks (`GET /tasks/{id}`, with `inc_id`), attachments (AttachmentDTO: id, name, content_type, size, inc_id,
 *   task_id), artifacts (ArtifactDTO: id, type, value, attachment), artifact types
 *   (built-in ids: 1 IP Address, 2 DNS Name, 3 URL, 12 Malware Sample, 15 Log File,
 *   16 Other File). `?handle_format=names` gives the artifact type as its name,
 *   otherwise its id.
 * - `…/contents` streams the bytes (a source may be a generator, so a 50 MB attachment
 *   costs no memory here); uploads are multipart/form-data with the file in the part
 *   named `file`, parsed as they stream in; the bytes are kept for tests to compare.
 * - Customization endpoints: `/functions` and `/message_destinations` (lists wrapped in
 *   `{entities}`), `/types/__function/fields` (a bare list), `/types/{type_name}` for
 *   data tables, `/incidents/{id}/table_data/{table}` (rows) and its `row_data` (POST, PUT
 *   `row_data/{row_id}`; a cell for a column the table lacks → 400).
 * - Incident fields, PATCH with versions (409 when stale), users and incident field
 *   values: see soar-incident-records.ts.
 * - Comments (notes) of incidents and tasks: `GET /incidents/{id}/comments` (and
 *   `/tasks/{id}/comments`) lists them as a bare array of CommentDTO (`id`, `parent_id`,
 *   `text` as an HTML string, `user_id`, `create_date`, `children`); `POST` with
 *   `{"text": {"format": "html"|"text", "content"}, "parent_id"?}` creates one (every POST
 *   creates one: SOAR has no idempotency key). Unknown incident or task → 404; no text → 400.
 * - Injectable failures (`fail`): a status n times, a connection reset, a delay; and a
 *   log of every request (`requests`).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  applyPatch,
  fieldDefinition,
  incidentDto,
  newIncident,
  PatchError,
  type EmulatedIncident,
  type EmulatedSoarUser,
} from './soar-incident-records.js';

/** Every permission the emulator checks (named as SOAR's API key permissions are). */
export const ALL_PERMISSIONS: readonly string[] = Object.freeze([
  'read_data',
  'edit_data',
  'read_function',
  'create_function',
  'edit_function',
  'read_all_incidents',
  'edit_all_incidents_fields',
  'edit_incident_public_task_fields',
]);

export const ARTIFACT_TYPES: Readonly<Record<number, string>> = Object.freeze({
  1: 'IP Address',
  2: 'DNS Name',
  3: 'URL',
  12: 'Malware Sample',
  15: 'Log File',
  16: 'Other File',
});

/** File content: bytes, or a size and a generator of chunks (for big files). */
export type ContentSource = Buffer | string | { size: number; chunks: () => Iterable<Buffer> | AsyncIterable<Buffer> };

export interface EmulatedKey {
  id: string;
  secret: string;
  handle: number;
  permissions: Set<string>;
}

export interface StoredFile {
  id: number;
  name: string;
  contentType: string;
  size: number;
  content: ContentSource;
  incidentId: number;
  taskId?: number;
}

export interface Upload {
  attachmentId: number;
  incidentId: number;
  taskId?: number;
  name: string;
  contentType: string;
  bytes: Buffer;
  /** The Content-Length header the client sent (undefined when chunked). */
  declaredLength?: number;
}

export interface Fault {
  method?: string;
  /** Matched against the path (without query). */
  path: RegExp;
  /** How many requests it hits (default 1). */
  times?: number;
  kind: 'status' | 'reset' | 'delay';
  status?: number;
  delayMs?: number;
}

export interface LoggedRequest {
  method: string;
  path: string;
  query: string;
  status: number;
  keyId?: string;
}

/** A comment as stored: on an incident, or on one of its tasks (`taskId`). */
export interface StoredComment {
  id: number;
  incidentId: number;
  taskId?: number;
  parentId: number | null;
  format: string;
  /** The content as sent (HTML for `format: html`). */
  text: string;
  userId: number;
  created: number;
}

interface Artifact {
  id: number;
  incidentId: number;
  typeId: number;
  value: string;
  file?: StoredFile;
}

type Json = Record<string, any>;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function sizeOf(content: ContentSource): number {
  if (Buffer.isBuffer(content)) return content.length;
  if (typeof content === 'string') return Buffer.byteLength(content);
  return content.size;
}

function chunksOf(content: ContentSource): Iterable<Buffer> | AsyncIterable<Buffer> {
  if (Buffer.isBuffer(content)) return [content];
  if (typeof content === 'string') return [Buffer.from(content)];
  return content.chunks();
}

export class SoarEmulator {
  readonly orgId: number;
  readonly orgName: string;
  readonly keys = new Map<string, EmulatedKey>();
  readonly apiKeyId: string;
  readonly apiKeySecret: string;
  readonly requests: LoggedRequest[] = [];
  readonly uploads: Upload[] = [];
  readonly incidents = new Map<number, EmulatedIncident>();
  readonly users = new Map<number, EmulatedSoarUser>();
  /** Run on the next PATCH of that incident, before it is checked (another person's change in between). */
  private readonly interference = new Map<number, (inc: EmulatedIncident) => void>();
  readonly tasks = new Map<number, { id: number; incidentId: number; name: string }>();
  readonly attachments = new Map<number, StoredFile>();
  readonly artifacts = new Map<number, Artifact>();
  readonly functions = new Map<number, Json>();
  readonly functionFields = new Map<string, Json>();
  readonly messageDestinations = new Map<number, Json>();
  readonly dataTables = new Map<string, Json>();
  readonly rows: { id: number; incidentId: number; table: string; cells: Json }[] = [];
  readonly comments: StoredComment[] = [];
  /** When true, `handle_format=names` is ignored (an older server): artifact types come as ids. */
  ignoreHandleFormat = false;
  private faults: (Fault & { left: number })[] = [];
  private nextId = 100;
  private nextHandle = 1000;
  private server!: http.Server;
  baseUrl = '';

  private constructor(opts: { orgId?: number; orgName?: string }) {
    this.orgId = opts.orgId ?? 201;
    this.orgName = opts.orgName ?? 'Test Org';
    const key = this.addKey();
    this.apiKeyId = key.id;
    this.apiKeySecret = key.secret;
  }

  /** Starts on 127.0.0.1 (a free port); with `tls`, serves HTTPS with that key and certificate. */
  static async start(opts: { orgId?: number; orgName?: string; tls?: { key: Buffer | string; cert: Buffer | string } } = {}): Promise<SoarEmulator> {
    const emu = new SoarEmulator(opts);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void emu.handle(req, res);
    emu.server = opts.tls ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : http.createServer(handler);
    await new Promise<void>((resolve) => emu.server.listen(0, '127.0.0.1', resolve));
    const { port } = emu.server.address() as AddressInfo;
    emu.baseUrl = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    return emu;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // --- seeding ----------------------------------------------------------------------

  /** Adds an API key; `permissions` defaults to all of {@link ALL_PERMISSIONS}. */
  addKey(opts: { id?: string; secret?: string; permissions?: readonly string[] } = {}): EmulatedKey {
    const key: EmulatedKey = {
      id: opts.id ?? randomUUID(),
      secret: opts.secret ?? randomBytes(18).toString('base64url'),
      handle: this.nextHandle++,
      permissions: new Set(opts.permissions ?? ALL_PERMISSIONS),
    };
    this.keys.set(key.id, key);
    return key;
  }

  addIncident(id: number, name = `Incident ${id}`, extra: Partial<Omit<EmulatedIncident, 'id' | 'vers'>> = {}): EmulatedIncident {
    const incident = newIncident(id, name, extra);
    this.incidents.set(id, incident);
    return incident;
  }

  /** Adds an org user (active unless `status: 'D'`); returns its id. */
  addUser(u: { email: string; fname?: string; lname?: string; status?: 'A' | 'D' }): number {
    const id = this.nextId++;
    this.users.set(id, { id, fname: u.fname ?? '', lname: u.lname ?? '', email: u.email, status: u.status ?? 'A' });
    return id;
  }

  /**
   * Someone else changes the incident just before the next PATCH of it arrives: `change`
   * runs on the record and its version goes up, so that PATCH carries a stale version.
   */
  interfereBeforeNextPatch(incidentId: number, change: (inc: EmulatedIncident) => void): void {
    this.interference.set(incidentId, change);
  }

  addTask(id: number, incidentId: number, name = `Task ${id}`): void {
    if (!this.incidents.has(incidentId)) this.addIncident(incidentId);
    this.tasks.set(id, { id, incidentId, name });
  }

  /** Adds an attachment to an incident (or to one of its tasks); returns its id. */
  addAttachment(opts: { incidentId: number; taskId?: number; name: string; contentType?: string; content: ContentSource }): number {
    if (!this.incidents.has(opts.incidentId)) this.addIncident(opts.incidentId);
    if (opts.taskId !== undefined && !this.tasks.has(opts.taskId)) this.addTask(opts.taskId, opts.incidentId);
    const file: StoredFile = {
      id: this.nextId++,
      name: opts.name,
      contentType: opts.contentType ?? 'application/octet-stream',
      size: sizeOf(opts.content),
      content: opts.content,
      incidentId: opts.incidentId,
      ...(opts.taskId !== undefined ? { taskId: opts.taskId } : {}),
    };
    this.attachments.set(file.id, file);
    return file.id;
  }

  /** Adds an artifact (type by name or id), with a file or without; returns its id. */
  addArtifact(opts: { incidentId: number; type: string | number; value: string; file?: { name: string; contentType?: string; content: ContentSource } }): number {
    if (!this.incidents.has(opts.incidentId)) this.addIncident(opts.incidentId);
    const typeId =
      typeof opts.type === 'number'
        ? opts.type
        : Number(Object.entries(ARTIFACT_TYPES).find(([, name]) => name === opts.type)?.[0] ?? NaN);
    if (!Number.isInteger(typeId)) throw new Error(`unknown artifact type ${opts.type}`);
    const id = this.nextId++;
    const artifact: Artifact = { id, incidentId: opts.incidentId, typeId, value: opts.value };
    if (opts.file) {
      artifact.file = {
        id: this.nextId++,
        name: opts.file.name,
        contentType: opts.file.contentType ?? 'application/octet-stream',
        size: sizeOf(opts.file.content),
        content: opts.file.content,
        incidentId: opts.incidentId,
      };
    }
    this.artifacts.set(id, artifact);
    return id;
  }

  /** Injects a failure for the next matching request(s). */
  fail(fault: Fault): void {
    this.faults.push({ ...fault, left: fault.times ?? 1 });
  }

  /** Requests whose path matches, optionally of one method. */
  requestsTo(path: RegExp, method?: string): LoggedRequest[] {
    return this.requests.filter((r) => path.test(r.path) && (!method || r.method === method));
  }

  // --- HTTP -------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const entry: LoggedRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.search, status: 0 };
    this.requests.push(entry);
    try {
      const fault = this.faults.find((f) => f.left > 0 && f.path.test(url.pathname) && (!f.method || f.method === req.method));
      if (fault) {
        fault.left--;
        if (fault.kind === 'reset') {
          entry.status = -1;
          req.socket.destroy();
          return;
        }
        if (fault.kind === 'delay') await new Promise((r) => setTimeout(r, fault.delayMs ?? 1000));
        else throw new HttpError(fault.status ?? 500, `injected failure ${fault.status ?? 500}`);
      }
      const key = this.authenticate(req);
      entry.keyId = key.id;
      await this.route(req, res, url, key, entry);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      entry.status = status;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      req.resume();
      const body = JSON.stringify({ success: false, title: null, message: (err as Error).message, hints: [] });
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }
  }

  private authenticate(req: http.IncomingMessage): EmulatedKey {
    const header = req.headers.authorization ?? '';
    const match = /^Basic\s+(\S+)$/i.exec(header);
    if (!match) throw new HttpError(401, 'Unauthorized');
    const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const key = this.keys.get(decoded.slice(0, colon));
    if (!key || colon < 0 || key.secret !== decoded.slice(colon + 1)) throw new HttpError(401, 'Unauthorized');
    return key;
  }

  private need(key: EmulatedKey, permission: string): void {
    if (!key.permissions.has(permission)) throw new HttpError(403, 'Forbidden');
  }

  private sendJson(res: http.ServerResponse, entry: LoggedRequest, value: unknown, status = 200): void {
    const body = JSON.stringify(value);
    entry.status = status;
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private async readJson(req: http.IncomingMessage): Promise<Json> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json;
    } catch {
      throw new HttpError(400, 'The request body is not valid JSON');
    }
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse, url: URL, key: EmulatedKey, entry: LoggedRequest): Promise<void> {
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(/\/+$/, '');
    if (path === '/rest/session' && method === 'GET') {
      this.sendJson(res, entry, {
        api_key_handle: key.handle,
        is_api_key: true,
        orgs: [{ id: this.orgId, name: this.orgName, enabled: true }],
      });
      return;
    }
    const org = /^\/rest\/orgs\/(\d+)(\/.*)$/.exec(path);
    if (!org) throw new HttpError(404, `No such endpoint: ${path}`);
    if (Number(org[1]) !== this.orgId) throw new HttpError(404, `Organization ${org[1]} not found`);
    const rest = org[2]!;
    const send = (value: unknown) => this.sendJson(res, entry, value);
    let m: RegExpExecArray | null;

    if (rest === '/incidents/query_paged' && method === 'POST') {
      this.need(key, 'read_all_incidents');
      if (!url.searchParams.get('return_level')) throw new HttpError(400, 'return_level is required');
      const body = await this.readJson(req);
      const all = [...this.incidents.values()];
      const start = Number(body.start ?? 0);
      const length = Number(body.length ?? all.length);
      send({ recordsTotal: all.length, recordsFiltered: all.length, data: all.slice(start, start + length) });
      return;
    }

    // One incident (IncidentDTO) or task (TaskDTO, with the incident it belongs to).
    if ((m = /^\/(incidents|tasks)\/(\d+)$/.exec(rest)) && method === 'GET') {
      this.need(key, 'read_all_incidents');
      const id = Number(m[2]);
      if (m[1] === 'incidents') {
        const incident = this.incidents.get(id);
        if (!incident) throw new HttpError(404, `Incident ${id} not found`);
        send(incidentDto(incident));
      } else {
        const task = this.tasks.get(id);
        if (!task) throw new HttpError(404, `Task ${id} not found`);
        send({ id: task.id, inc_id: task.incidentId, name: task.name });
      }
      return;
    }

    if ((m = /^\/incidents\/(\d+)$/.exec(rest)) && method === 'PATCH') {
      this.need(key, 'edit_all_incidents_fields');
      const incident = this.incidents.get(Number(m[1]));
      if (!incident) throw new HttpError(404, `Incident ${m[1]} not found`);
      const body = await this.readJson(req);
      const interfere = this.interference.get(incident.id);
      if (interfere) {
        this.interference.delete(incident.id);
        interfere(incident);
        incident.vers++;
      }
      try {
        send(applyPatch(incident, body, this.users));
      } catch (err) {
        throw err instanceof PatchError ? new HttpError(err.status, err.message) : err;
      }
      return;
    }

    if (rest === '/users' && method === 'GET') {
      send([...this.users.values()]);
      return;
    }

    if ((m = /^\/types\/incident\/fields\/(\w+)$/.exec(rest)) && method === 'GET') {
      this.need(key, 'read_data');
      const field = fieldDefinition(m[1]!);
      if (!field) throw new HttpError(404, `Field ${m[1]} not found`);
      send(field);
      return;
    }

    // Attachments of incidents and tasks: metadata, contents, upload.
    if ((m = /^\/(incidents|tasks)\/(\d+)\/attachments(?:\/(\d+)(\/contents)?)?$/.exec(rest))) {
      const [, ownerKind, ownerIdText, attIdText, contents] = m;
      const ownerId = Number(ownerIdText);
      const isTask = ownerKind === 'tasks';
      if (isTask ? !this.tasks.has(ownerId) : !this.incidents.has(ownerId)) {
        throw new HttpError(404, `${isTask ? 'Task' : 'Incident'} ${ownerId} not found`);
      }
      if (attIdText === undefined) {
        if (method !== 'POST') throw new HttpError(405, 'Method not allowed');
        this.need(key, isTask ? 'edit_incident_public_task_fields' : 'edit_all_incidents_fields');
        const incidentId = isTask ? this.tasks.get(ownerId)!.incidentId : ownerId;
        const upload = await this.receiveUpload(req, incidentId, isTask ? ownerId : undefined);
        send(this.attachmentDto(this.attachments.get(upload.attachmentId)!));
        return;
      }
      this.need(key, 'read_all_incidents');
      const file = this.attachments.get(Number(attIdText));
      const belongs = file && (isTask ? file.taskId === ownerId : file.incidentId === ownerId && file.taskId === undefined);
      if (!file || !belongs) throw new HttpError(404, `Attachment ${attIdText} not found`);
      if (contents) await this.stream(res, entry, file);
      else send(this.attachmentDto(file));
      return;
    }

    if ((m = /^\/(incidents|tasks)\/(\d+)\/comments$/.exec(rest))) {
      const isTask = m[1] === 'tasks';
      const ownerId = Number(m[2]);
      if (isTask ? !this.tasks.has(ownerId) : !this.incidents.has(ownerId)) {
        throw new HttpError(404, `${isTask ? 'Task' : 'Incident'} ${ownerId} not found`);
      }
      const mine = (c: StoredComment) => (isTask ? c.taskId === ownerId : c.incidentId === ownerId && c.taskId === undefined);
      if (method === 'GET') {
        this.need(key, 'read_all_incidents');
        send(this.comments.filter((c) => mine(c) && c.parentId === null).map((c) => this.commentDto(c)));
        return;
      }
      if (method !== 'POST') throw new HttpError(405, 'Method not allowed');
      this.need(key, isTask ? 'edit_incident_public_task_fields' : 'edit_all_incidents_fields');
      const body = await this.readJson(req);
      const text = body.text as Json | undefined;
      if (!text || typeof text.content !== 'string' || text.content === '') throw new HttpError(400, 'text.content is required');
      if (text.format !== undefined && text.format !== 'html' && text.format !== 'text') throw new HttpError(400, `Unknown text format ${text.format}`);
      const parentId = body.parent_id === undefined || body.parent_id === null ? null : Number(body.parent_id);
      if (parentId !== null && !this.comments.some((c) => c.id === parentId && mine(c))) throw new HttpError(404, `Comment ${parentId} not found`);
      const comment: StoredComment = {
        id: this.nextId++,
        incidentId: isTask ? this.tasks.get(ownerId)!.incidentId : ownerId,
        ...(isTask ? { taskId: ownerId } : {}),
        parentId,
        format: typeof text.format === 'string' ? text.format : 'text',
        text: text.content,
        userId: key.handle,
        created: Date.now(),
      };
      this.comments.push(comment);
      send(this.commentDto(comment));
      return;
    }

    if ((m = /^\/incidents\/(\d+)\/artifacts\/(\d+)(\/contents)?$/.exec(rest)) && method === 'GET') {
      this.need(key, 'read_all_incidents');
      const artifact = this.artifacts.get(Number(m[2]));
      if (!this.incidents.has(Number(m[1]))) throw new HttpError(404, `Incident ${m[1]} not found`);
      if (!artifact || artifact.incidentId !== Number(m[1])) throw new HttpError(404, `Artifact ${m[2]} not found`);
      if (m[3]) {
        if (!artifact.file) throw new HttpError(404, `Artifact ${m[2]} has no attachment`);
        await this.stream(res, entry, artifact.file);
        return;
      }
      const names = url.searchParams.get('handle_format') === 'names' && !this.ignoreHandleFormat;
      send({
        id: artifact.id,
        inc_id: artifact.incidentId,
        type: names ? ARTIFACT_TYPES[artifact.typeId] : artifact.typeId,
        value: artifact.value,
        attachment: artifact.file ? this.attachmentDto(artifact.file) : null,
      });
      return;
    }

    if ((m = /^\/artifact_types\/(\d+)$/.exec(rest)) && method === 'GET') {
      this.need(key, 'read_data');
      const name = ARTIFACT_TYPES[Number(m[1])];
      if (!name) throw new HttpError(404, `Artifact type ${m[1]} not found`);
      send({ id: Number(m[1]), name, programmatic_name: name.toLowerCase().replace(/\W+/g, '_') });
      return;
    }

    if ((m = /^\/incidents\/(\d+)\/table_data\/(\w+)(?:\/row_data(?:\/(\d+))?)?$/.exec(rest))) {
      const incidentId = Number(m[1]);
      const tableName = m[2]!;
      const isRowData = rest.includes('/row_data');
      if (!this.incidents.has(incidentId)) throw new HttpError(404, `Incident ${incidentId} not found`);
      const table = this.dataTables.get(tableName);
      if (!table) throw new HttpError(404, `Data table ${tableName} not found`);
      if (method === 'GET' && !isRowData) {
        this.need(key, 'read_all_incidents');
        send({ id: table.id, rows: this.rows.filter((r) => r.incidentId === incidentId && r.table === tableName).map((r) => ({ id: r.id, cells: r.cells })) });
        return;
      }
      this.need(key, 'edit_all_incidents_fields');
      const body = await this.readJson(req);
      const cells = (body.cells ?? {}) as Json;
      for (const name of Object.keys(cells)) {
        if (!table.fields?.[name]) throw new HttpError(400, `Data table ${tableName} has no column ${name}`);
      }
      if (method === 'POST' && isRowData && !m[3]) {
        const row = { id: this.nextId++, incidentId, table: tableName, cells };
        this.rows.push(row);
        send({ id: row.id, cells: row.cells });
        return;
      }
      if (method === 'PUT' && m[3]) {
        const row = this.rows.find((r) => r.id === Number(m![3]) && r.incidentId === incidentId && r.table === tableName);
        if (!row) throw new HttpError(404, `Row ${m[3]} not found`);
        row.cells = { ...row.cells, ...cells };
        send({ id: row.id, cells: row.cells });
        return;
      }
      throw new HttpError(405, 'Method not allowed');
    }

    if (rest === '/functions' || (m = /^\/functions\/(\d+)$/.exec(rest))) {
      return this.crud(req, res, entry, key, this.functions, 'name', m?.[1], {
        read: 'read_function',
        create: 'create_function',
        edit: 'edit_function',
      });
    }
    if (rest === '/message_destinations' || (m = /^\/message_destinations\/(\d+)$/.exec(rest))) {
      return this.crud(req, res, entry, key, this.messageDestinations, 'programmatic_name', m?.[1], {
        read: 'read_data',
        create: 'edit_data',
        edit: 'edit_data',
      });
    }

    if ((m = /^\/types\/__function\/fields(?:\/(\w+))?$/.exec(rest))) {
      if (method === 'GET' && !m[1]) {
        this.need(key, 'read_data');
        send([...this.functionFields.values()]);
        return;
      }
      this.need(key, 'edit_data');
      const body = await this.readJson(req);
      if (method === 'POST' && !m[1]) {
        if (typeof body.name !== 'string' || !/^\w+$/.test(body.name)) throw new HttpError(400, 'A field needs a name');
        if (this.functionFields.has(body.name)) throw new HttpError(409, `Field ${body.name} already exists`);
        const field = { ...body, id: this.nextId++, uuid: randomUUID(), type_id: 11 };
        this.functionFields.set(body.name, field);
        send(field);
        return;
      }
      if (method === 'PUT' && m[1]) {
        const field = this.functionFields.get(m[1]);
        if (!field) throw new HttpError(404, `Field ${m[1]} not found`);
        const updated = { ...field, ...body, id: field.id, uuid: field.uuid, name: field.name };
        this.functionFields.set(m[1], updated);
        send(updated);
        return;
      }
      throw new HttpError(405, 'Method not allowed');
    }

    if ((m = /^\/types(?:\/(\w+))?$/.exec(rest))) {
      const name = m[1];
      if (method === 'GET' && name) {
        this.need(key, 'read_data');
        const table = this.dataTables.get(name);
        if (!table) throw new HttpError(404, `Type ${name} not found`);
        send(table);
        return;
      }
      this.need(key, 'edit_data');
      const body = await this.readJson(req);
      if (method === 'POST' && !name) {
        if (typeof body.type_name !== 'string' || !/^\w+$/.test(body.type_name)) throw new HttpError(400, 'type_name is required');
        if (body.type_id !== 8) throw new HttpError(400, 'Only data tables (type_id 8) can be created here');
        if (this.dataTables.has(body.type_name)) throw new HttpError(409, `Type ${body.type_name} already exists`);
        const table = { ...body, id: this.nextId++, uuid: randomUUID() };
        this.dataTables.set(body.type_name, table);
        send(table);
        return;
      }
      if (method === 'PUT' && name) {
        const table = this.dataTables.get(name);
        if (!table) throw new HttpError(404, `Type ${name} not found`);
        const updated = { ...table, ...body, id: table.id, uuid: table.uuid, type_name: name, fields: { ...table.fields, ...(body.fields ?? {}) } };
        this.dataTables.set(name, updated);
        send(updated);
        return;
      }
      throw new HttpError(405, 'Method not allowed');
    }

    throw new HttpError(404, `No such endpoint: ${rest}`);
  }

  /** GET list / POST create / PUT update of an `{entities}` collection keyed by `unique`. */
  private async crud(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    entry: LoggedRequest,
    key: EmulatedKey,
    store: Map<number, Json>,
    unique: string,
    idText: string | undefined,
    perms: { read: string; create: string; edit: string },
  ): Promise<void> {
    const method = req.method ?? 'GET';
    if (method === 'GET' && idText === undefined) {
      this.need(key, perms.read);
      this.sendJson(res, entry, { entities: [...store.values()] });
      return;
    }
    if (method === 'GET') {
      this.need(key, perms.read);
      const found = store.get(Number(idText));
      if (!found) throw new HttpError(404, `Object ${idText} not found`);
      this.sendJson(res, entry, found);
      return;
    }
    if (method === 'POST' && idText === undefined) {
      this.need(key, perms.create);
      const body = await this.readJson(req);
      if (typeof body[unique] !== 'string' || !body[unique]) throw new HttpError(400, `${unique} is required`);
      if ([...store.values()].some((o) => o[unique] === body[unique])) throw new HttpError(409, `${body[unique]} already exists`);
      const created = { ...body, id: this.nextId++, uuid: randomUUID() };
      store.set(created.id, created);
      this.sendJson(res, entry, created);
      return;
    }
    if (method === 'PUT' && idText !== undefined) {
      this.need(key, perms.edit);
      const found = store.get(Number(idText));
      if (!found) throw new HttpError(404, `Object ${idText} not found`);
      const body = await this.readJson(req);
      const updated = { ...found, ...body, id: found.id, uuid: found.uuid };
      store.set(found.id, updated);
      this.sendJson(res, entry, updated);
      return;
    }
    throw new HttpError(405, 'Method not allowed');
  }

  /** CommentDTO with its replies; `text` is the content (a text comment's content escaped as SOAR shows it). */
  private commentDto(c: StoredComment): Json {
    const html = c.format === 'html' ? c.text : c.text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
    return {
      id: c.id,
      parent_id: c.parentId,
      inc_id: c.incidentId,
      task_id: c.taskId ?? null,
      text: html,
      user_id: c.userId,
      create_date: c.created,
      modify_date: c.created,
      children: this.comments.filter((r) => r.parentId === c.id).map((r) => this.commentDto(r)),
      is_deleted: false,
    };
  }

  private attachmentDto(file: StoredFile): Json {
    return {
      id: file.id,
      name: file.name,
      content_type: file.contentType,
      size: file.size,
      inc_id: file.incidentId,
      task_id: file.taskId ?? null,
      created: Date.now(),
    };
  }

  /** Streams a file's content with backpressure (a generator source is never held whole). */
  private async stream(res: http.ServerResponse, entry: LoggedRequest, file: StoredFile): Promise<void> {
    entry.status = 200;
    res.writeHead(200, { 'content-type': file.contentType, 'content-length': file.size });
    await pipeline(Readable.from(chunksOf(file.content)), res);
  }

  /**
   * Parses a multipart/form-data upload as it streams in, keeping the bytes of the part
   * named `file`. A declared Content-Length must match what arrived.
   */
  private async receiveUpload(req: http.IncomingMessage, incidentId: number, taskId: number | undefined): Promise<Upload> {
    const type = req.headers['content-type'] ?? '';
    const b = /^multipart\/form-data;.*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
    if (!b) throw new HttpError(415, 'Expected multipart/form-data');
    const delimiter = Buffer.from(`\r\n--${b[1] ?? b[2]}`);
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);

    // State machine over the stream: before the first part, in a part's headers, in its body.
    let buffer = Buffer.from('\r\n'); // lets the first delimiter match like the later ones
    let received = 0;
    let state: 'preamble' | 'headers' | 'body' | 'done' = 'preamble';
    let part: { name?: string; filename?: string; contentType: string; chunks: Buffer[] } | undefined;
    let file: { filename: string; contentType: string; bytes: Buffer } | undefined;
    for await (const chunk of req) {
      received += (chunk as Buffer).length;
      buffer = Buffer.concat([buffer, chunk as Buffer]);
      for (;;) {
        if (state === 'preamble' || state === 'body') {
          const at = buffer.indexOf(delimiter);
          if (at < 0) {
            // Keep a tail that may hold the start of a delimiter; the rest is body.
            const keep = Math.min(buffer.length, delimiter.length - 1);
            if (state === 'body') part!.chunks.push(buffer.subarray(0, buffer.length - keep));
            buffer = buffer.subarray(buffer.length - keep);
            break;
          }
          if (state === 'body') {
            part!.chunks.push(buffer.subarray(0, at));
            if (part!.name === 'file') {
              file = { filename: part!.filename ?? '', contentType: part!.contentType, bytes: Buffer.concat(part!.chunks) };
            }
            // The part is complete; look at what follows its delimiter as a new start.
            buffer = buffer.subarray(at);
            state = 'preamble';
            continue;
          }
          const after = buffer.subarray(at + delimiter.length);
          if (after.length < 2) break; // need to see "--" or CRLF
          if (after.subarray(0, 2).toString() === '--') {
            state = 'done';
            buffer = Buffer.alloc(0);
            break;
          }
          buffer = after.subarray(2); // the CRLF after the delimiter
          state = 'headers';
          part = { contentType: 'application/octet-stream', chunks: [] };
        }
        if (state === 'headers') {
          const end = buffer.indexOf('\r\n\r\n');
          if (end < 0) break;
          for (const line of buffer.subarray(0, end).toString('utf8').split('\r\n')) {
            const [h, ...v] = line.split(':');
            const value = v.join(':').trim();
            if (/^content-disposition$/i.test(h!.trim())) {
              part!.name = /\bname="([^"]*)"/i.exec(value)?.[1];
              const fn = /\bfilename="([^"]*)"/i.exec(value)?.[1];
              if (fn !== undefined) part!.filename = decodeURIComponent(fn);
            } else if (/^content-type$/i.test(h!.trim())) {
              part!.contentType = value;
            }
          }
          buffer = buffer.subarray(end + 4);
          state = 'body';
          continue;
        }
        break;
      }
    }
    if (declared !== undefined && declared !== received) {
      throw new HttpError(400, `Content-Length ${declared} but ${received} bytes arrived`);
    }
    if (state !== 'done' || !file) throw new HttpError(400, 'The upload has no complete part named "file"');
    if (!file.filename) throw new HttpError(400, 'The "file" part has no filename');
    const id = this.addAttachment({
      incidentId,
      ...(taskId !== undefined ? { taskId } : {}),
      name: file.filename,
      contentType: file.contentType,
      content: file.bytes,
    });
    const upload: Upload = {
      attachmentId: id,
      incidentId,
      ...(taskId !== undefined ? { taskId } : {}),
      name: file.filename,
      contentType: file.contentType,
      bytes: file.bytes,
      ...(declared !== undefined ? { declaredLength: declared } : {}),
    };
    this.uploads.push(upload);
    return upload;
  }
}
