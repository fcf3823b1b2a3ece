/**
 * The `local` platform: incidents, tasks, artifacts and attachments kept in a directory
 * tree (`[worker] platform_dir`); exports are written back into it.
 *
 * Directory layout:
 *
 * ```
 * <root>/incidents/<incident_id>/attachments/<attachment_id>/<file name>          (exactly one file per folder)
 * <root>/incidents/<incident_id>/artifacts/<artifact_id>/artifact.json             ({"type": "Malware Sample", "value": "…", "content_type"?: "…"})
 * <root>/incidents/<incident_id>/artifacts/<artifact_id>/<file name>              (the artifact's file, if any)
 * <root>/incidents/<incident_id>/tasks/<task_id>/attachments/<attachment_id>/<file name>
 * <root>/incidents/<incident_id>/notes/<created>-<key>.json                        (one note each; see local-notes.ts)
 * <root>/incidents/<incident_id>/tasks/<task_id>/notes/<created>-<key>.json
 * ```
 *
 * Rules:
 * - Ids are positive integers written in decimal (`2103`, not `02103`).
 * - Names starting with `.` are ignored when looking for an attachment's file (an export
 *   being written is a hidden `.partial-…` file until it is complete).
 * - The content type comes from `content_type` in artifact.json, else from the file
 *   name's extension (a small built-in table), else `application/octet-stream`.
 * - An incident (or task) must exist as a folder before exports can be saved to it, as
 *   SOAR answers 404 for an unknown incident. Saving creates
 *   `attachments/<max existing id + 1>/<name>`.
 * - Every path is resolved (symlinks included) and must stay inside `<root>`; a symlink
 *   pointing outside the root is refused.
 */
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { access, chmod, mkdir, open, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { ConfigError, errorCode, FunctionError } from '../../core/runtime/errors.js';
import { expandHome } from '../../core/config.js';
import { checkAttachmentRef, checkId, describeValue, optionalId } from '../ids.js';
import { LocalIncidents } from './local-incidents.js';
import { addLocalNote } from './local-notes.js';
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

const CONTENT_TYPES: Record<string, string> = {
  '.txt': 'text/plain',
  '.log': 'text/plain',
  '.md': 'text/markdown',
  '.csv': 'text/csv',
  '.tsv': 'text/tab-separated-values',
  '.htm': 'text/html',
  '.html': 'text/html',
  '.css': 'text/css',
  '.js': 'text/javascript',
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.yaml': 'application/yaml',
  '.yml': 'application/yaml',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.tgz': 'application/gzip',
  '.tar': 'application/x-tar',
  '.7z': 'application/x-7z-compressed',
  '.rar': 'application/vnd.rar',
  '.doc': 'application/msword',
  '.docx': 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  '.xls': 'application/vnd.ms-excel',
  '.xlsx': 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  '.ppt': 'application/vnd.ms-powerpoint',
  '.pptx': 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  '.eml': 'message/rfc822',
  '.msg': 'application/vnd.ms-outlook',
  '.pcap': 'application/vnd.tcpdump.pcap',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.ico': 'image/vnd.microsoft.icon',
  '.mp3': 'audio/mpeg',
  '.wav': 'audio/wav',
  '.mp4': 'video/mp4',
  '.mov': 'video/quicktime',
};

/** Guesses a MIME type from a file name's extension; `application/octet-stream` when unknown. */
export function guessContentType(name: string): string {
  return CONTENT_TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream';
}

/** Refuses names that could leave their folder or hide from readers. */
export function checkFileName(name: unknown): string {
  const problem =
    typeof name !== 'string'
      ? 'it is not a string'
      : name.length === 0
        ? 'it is empty'
        : /[/\\]/.test(name)
          ? 'it contains a path separator'
          : name.includes('\0')
            ? 'it contains a NUL character'
            : name.includes('..')
              ? 'it contains ".."'
              : name.startsWith('.')
                ? 'it starts with "." (hidden files are ignored)'
                : /[\x01-\x1f\x7f]/.test(name)
                  ? 'it contains a control character'
                  : Buffer.byteLength(name, 'utf8') > 255
                    ? 'it is longer than 255 bytes'
                    : undefined;
  if (problem !== undefined) {
    throw new FunctionError(`Invalid file name ${describeValue(name)}: ${problem}`, 'invalid_name');
  }
  return name as string;
}

const ID_NAME = /^[1-9][0-9]*$/;
const ARTIFACT_JSON = 'artifact.json';
const MAX_ARTIFACT_JSON_BYTES = 1024 * 1024;
const MAX_SAVE_ATTEMPTS = 1000;

interface FoundFile {
  name: string;
  path: string;
  size: number;
}

export class LocalPlatform implements Platform {
  readonly kind = 'local';
  /** The root, absolute (not symlink-resolved). */
  readonly root: string;
  private readonly incidents = new LocalIncidents((id) => this.requireDir(['incidents', String(id)], `Incident ${id}`));

  constructor(root: string) {
    this.root = resolve(expandHome(root));
  }

  async getAttachment(ref: AttachmentRef): Promise<AttachmentInfo> {
    const checked = checkAttachmentRef(ref);
    const { incidentId, taskId } = checked;
    const incidentDir = await this.requireDir(['incidents', String(incidentId)], `Incident ${incidentId}`);

    if (checked.artifactId !== undefined) {
      // Artifacts belong to the incident; like resilient-lib, a task id is not used for them.
      return this.artifact(incidentDir, incidentId, checked.artifactId);
    }
    const { attachmentId } = checked;

    let owner = `incident ${incidentId}`;
    let ownerDir = incidentDir;
    if (taskId !== undefined) {
      ownerDir = await this.requireDir(['tasks', String(taskId)], `Task ${taskId} of incident ${incidentId}`, incidentDir);
      owner = `task ${taskId} of incident ${incidentId}`;
    }
    const what = `Attachment ${attachmentId} of ${owner}`;
    const dir = await this.requireDir(['attachments', String(attachmentId)], what, ownerDir);
    const file = await this.singleFile(dir, what);
    return this.info(file, guessContentType(file.name));
  }

  async checkExportTarget(target: ExportTarget): Promise<void> {
    const incidentId = checkId(target.incidentId, 'incident_id');
    const taskId = optionalId(target.taskId, 'task_id');
    const incidentDir = await this.requireDir(['incidents', String(incidentId)], `Incident ${incidentId}`);
    if (taskId !== undefined) await this.requireDir(['tasks', String(taskId)], `Task ${taskId} of incident ${incidentId}`, incidentDir);
  }

  async saveExport(target: ExportTarget, name: string, sourcePath: string): Promise<SavedExport> {
    const incidentId = checkId(target.incidentId, 'incident_id');
    const taskId = optionalId(target.taskId, 'task_id');
    checkFileName(name);

    let ownerDir = await this.requireDir(['incidents', String(incidentId)], `Incident ${incidentId}`);
    if (taskId !== undefined) {
      ownerDir = await this.requireDir(['tasks', String(taskId)], `Task ${taskId} of incident ${incidentId}`, ownerDir);
    }
    // Exports hold whole conversations: private to the worker's user whatever the umask.
    await mkdir(join(ownerDir, 'attachments'), { recursive: true, mode: 0o700 });
    const attachmentsDir = await this.requireDir(['attachments'], 'The attachments folder', ownerDir);

    for (let attempt = 0; attempt < MAX_SAVE_ATTEMPTS; attempt++) {
      const attachmentId = (await this.maxId(attachmentsDir)) + 1;
      const dir = join(attachmentsDir, String(attachmentId));
      try {
        // mkdir is atomic: of two concurrent saves choosing the same id, one gets EEXIST.
        await mkdir(dir, { mode: 0o700 });
      } catch (err) {
        if (errorCode(err) === 'EEXIST') continue;
        throw err;
      }
      const partial = join(dir, `.partial-${randomBytes(6).toString('hex')}`);
      const finalPath = join(dir, name);
      try {
        await pipeline(createReadStream(sourcePath), createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
        await chmod(partial, 0o600); // the mode above is cut by the umask, this is not
        await chmod(dir, 0o700);
        await rename(partial, finalPath);
      } catch (err) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
      return { location: finalPath, attachmentId };
    }
    throw new FunctionError(
      `Could not choose a free attachment id in ${attachmentsDir} after ${MAX_SAVE_ATTEMPTS} attempts`,
      'save_conflict',
    );
  }

  /** Writes the note's file (local-notes.ts); idempotent on `note.key`. */
  async addNote(note: NewNote): Promise<AddedNote> {
    return addLocalNote(this, note);
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
    let isDir: boolean;
    try {
      isDir = (await stat(this.root)).isDirectory();
    } catch (err) {
      if (errorCode(err) === 'ENOENT') {
        throw new ConfigError(
          `The local platform directory ${this.root} does not exist: create it or set [worker] platform_dir`,
          err,
        );
      }
      throw new ConfigError(`Cannot read the local platform directory ${this.root}: ${(err as Error).message}`, err);
    }
    if (!isDir) {
      throw new ConfigError(`The local platform directory ${this.root} is not a directory: set [worker] platform_dir`);
    }
    try {
      await access(this.root, constants.R_OK | constants.W_OK | constants.X_OK);
    } catch (err) {
      throw new ConfigError(
        `The local platform directory ${this.root} is not writable by this user (${errorCode(err) ?? 'no access'}): ` +
          'exports could not be saved',
        err,
      );
    }
    let incidents = 0;
    try {
      incidents = (await readdir(join(this.root, 'incidents'))).filter((n) => ID_NAME.test(n)).length;
    } catch {
      incidents = 0;
    }
    return `local platform at ${this.root} (${incidents} incident${incidents === 1 ? '' : 's'})`;
  }

  // --- helpers -------------------------------------------------------------------

  /** The real path of the root; a missing root reads as "not found" for what was asked. */
  private async realRoot(what: string): Promise<string> {
    try {
      return await realpath(this.root);
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') {
        throw new FunctionError(
          `${what} not found: the local platform directory ${this.root} does not exist`,
          'not_found',
        );
      }
      throw err;
    }
  }

  private isInside(realRoot: string, realPath: string): boolean {
    const rel = relative(realRoot, realPath);
    return rel === '' || (!isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${sep}`));
  }

  /**
   * Resolves `segments` under `base` (default the root) to a real path inside the
   * root; undefined when it does not exist. Refuses anything that escapes the root.
   */
  private async resolveInside(segments: string[], what: string, base?: string): Promise<string | undefined> {
    const realRoot = await this.realRoot(what);
    const candidate = join(base ?? realRoot, ...segments);
    let real: string;
    try {
      real = await realpath(candidate);
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
    if (!this.isInside(realRoot, real)) {
      throw new FunctionError(
        `${what} resolves outside the local platform directory ${this.root}; refusing to use it`,
        'forbidden_path',
      );
    }
    return real;
  }

  /** The real path of an existing folder inside the root (for the platform's own modules: notes). */
  async requireDir(segments: string[], what: string, base?: string): Promise<string> {
    const real = await this.resolveInside(segments, what, base);
    if (real === undefined || !(await stat(real)).isDirectory()) {
      throw new FunctionError(`${what} not found under ${this.root}`, 'not_found');
    }
    return real;
  }

  /** The one visible regular file in `dir` (other than those in `exclude`). */
  private async singleFile(dir: string, what: string, exclude: string[] = []): Promise<FoundFile> {
    const files: FoundFile[] = [];
    for (const entry of await readdir(dir)) {
      // readdir names are single path components; symlinks are resolved and checked below.
      if (entry.startsWith('.') || exclude.includes(entry)) continue;
      const real = await this.resolveInside([entry], `${what}: file ${JSON.stringify(entry)}`, dir);
      if (real === undefined) continue; // a dangling symlink
      const st = await stat(real);
      if (!st.isFile()) continue;
      files.push({ name: entry, path: real, size: st.size });
    }
    if (files.length === 0) {
      throw new FunctionError(`${what} has no file (expected exactly one in ${dir})`, 'not_found');
    }
    if (files.length > 1) {
      throw new FunctionError(
        `${what} has ${files.length} files (${files.map((f) => f.name).join(', ')}); expected exactly one in ${dir}`,
        'ambiguous_attachment',
      );
    }
    return files[0]!;
  }

  private async artifact(incidentDir: string, incidentId: number, artifactId: number): Promise<AttachmentInfo> {
    const what = `Artifact ${artifactId} of incident ${incidentId}`;
    const dir = await this.requireDir(['artifacts', String(artifactId)], what, incidentDir);
    const metaPath = await this.resolveInside([ARTIFACT_JSON], `${what}: ${ARTIFACT_JSON}`, dir);
    if (metaPath === undefined) {
      throw new FunctionError(`${what} has no ${ARTIFACT_JSON} in ${dir}`, 'invalid_artifact');
    }
    const metaStat = await stat(metaPath);
    if (!metaStat.isFile() || metaStat.size > MAX_ARTIFACT_JSON_BYTES) {
      throw new FunctionError(`${what}: ${ARTIFACT_JSON} is not a file of at most 1 MB`, 'invalid_artifact');
    }
    let meta: { type?: unknown; value?: unknown; content_type?: unknown };
    try {
      meta = JSON.parse(await readFile(metaPath, 'utf8')) as typeof meta;
    } catch (err) {
      throw new FunctionError(`${what}: ${ARTIFACT_JSON} is not valid JSON: ${(err as Error).message}`, 'invalid_artifact');
    }
    if (meta === null || typeof meta !== 'object' || Array.isArray(meta) || typeof meta.type !== 'string' || meta.type === '') {
      throw new FunctionError(
        `${what}: ${ARTIFACT_JSON} must be an object with a "type" string, e.g. {"type": "Malware Sample", "value": "x.exe"}`,
        'invalid_artifact',
      );
    }
    if (meta.content_type !== undefined && typeof meta.content_type !== 'string') {
      throw new FunctionError(`${what}: "content_type" in ${ARTIFACT_JSON} must be a string`, 'invalid_artifact');
    }
    const label = `${what} (${meta.type}${typeof meta.value === 'string' ? ` ${JSON.stringify(meta.value)}` : ''})`;
    const file = await this.singleFile(dir, label, [ARTIFACT_JSON]);
    const contentType = typeof meta.content_type === 'string' && meta.content_type !== '' ? meta.content_type : guessContentType(file.name);
    return this.info(file, contentType, meta.type);
  }

  private info(file: FoundFile, contentType: string, artifactType?: string): AttachmentInfo {
    const info: AttachmentInfo = {
      name: file.name,
      contentType,
      size: file.size,
      open: async (): Promise<Readable> => {
        // O_NOFOLLOW: the resolved file must not have been swapped for a symlink since.
        const handle = await open(file.path, constants.O_RDONLY | constants.O_NOFOLLOW);
        return handle.createReadStream();
      },
    };
    if (artifactType !== undefined) info.artifactType = artifactType;
    return info;
  }

  private async maxId(dir: string): Promise<number> {
    let max = 0;
    for (const entry of await readdir(dir)) {
      if (ID_NAME.test(entry)) max = Math.max(max, Number(entry));
    }
    return max;
  }
}
