/**
 * The Platform interface: where attachments come from and exports go to.
 *
 * `local` keeps incidents in a directory tree; `soar` talks to the IBM SOAR REST API.
 * Function plugins see only this interface.
 */
import type { Readable } from 'node:stream';

/** Which attachment or artifact a function refers to. */
export interface AttachmentRef {
  incidentId: number;
  taskId?: number | undefined;
  attachmentId?: number | undefined;
  artifactId?: number | undefined;
}

export interface AttachmentInfo {
  name: string;
  contentType: string;
  size: number;
  /** For artifacts: the artifact type's name, e.g. "Malware Sample". */
  artifactType?: string;
  /** Opens the content as a stream (not buffered whole). */
  open(): Promise<Readable>;
}

/** Where an export is saved: on the incident, or on one of its tasks. */
export interface ExportTarget {
  incidentId: number;
  taskId?: number | undefined;
}

export interface SavedExport {
  /** Human-readable location (path or URL) for messages and results. */
  location: string;
  attachmentId?: number;
}

export interface Platform {
  readonly kind: string;
  getAttachment(ref: AttachmentRef): Promise<AttachmentInfo>;
  /** Saves the file at `sourcePath` as an attachment named `name` of the target. */
  saveExport(target: ExportTarget, name: string, sourcePath: string): Promise<SavedExport>;
  /**
   * Checks that the target exists, throwing a FunctionError (`not_found`) when it does
   * not: a function that ends with an export asks first, so that it does nothing
   * elsewhere (posts, archives) for an export that could never be saved.
   */
  checkExportTarget(target: ExportTarget): Promise<void>;
  /** Checks that the platform can be used; throws with a clear message otherwise. */
  check(): Promise<string>;
}
