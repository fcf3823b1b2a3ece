/**
 * The Platform interface: where attachments come from, where exports and notes go, and
 * how an incident is read and changed (Slack → SOAR: mirroring, asks, triage).
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

/** A person as the platform knows them (SOAR: a user of the org; local: anyone with an email). */
export interface PlatformUser {
  /** SOAR: the user's numeric id; local: the email. */
  id: number | string;
  email: string;
  /** Display name ("Alice Analyst"); the email when the platform has none. */
  name: string;
}

/** Who wrote a note, as Slack knows them. */
export interface NoteAuthor {
  /** The Slack user id. */
  id: string;
  name: string;
  email: string | null;
}

/** Where a note came from in Slack, so a reader can find the message. */
export interface NoteSlackOrigin {
  channel_id: string;
  ts: string;
  thread_ts?: string | undefined;
  permalink?: string | undefined;
}

/** A note to add to an incident or one of its tasks. */
export interface NewNote {
  incidentId: number;
  taskId?: number | undefined;
  /** Readable plain text (Slack mrkdwn already turned into names); the platform escapes it. */
  text: string;
  author: NoteAuthor;
  created: Date;
  source: 'slack';
  slack?: NoteSlackOrigin | undefined;
  /**
   * Idempotency key (for a mirrored message: `<channel_id>:<ts>`, plus a suffix for an
   * edit or a delete). Adding a note whose key the target already holds adds nothing and
   * returns the earlier note: a redelivered event never writes a second note.
   */
  key: string;
}

export interface AddedNote {
  /** The platform's id for the note (SOAR: comment id; local: the file's name). */
  id: string;
  /** False when a note with the same key already existed. */
  created: boolean;
}

export type IncidentSeverity = 'Low' | 'Medium' | 'High';
export type IncidentStatus = 'Active' | 'Closed';
export type IncidentResolution = 'Resolved' | 'Unresolved' | 'Duplicate' | 'Not an Issue';

/** An incident as a responder sees it in Slack. */
export interface IncidentSummary {
  id: number;
  name: string;
  description: string;
  severity: IncidentSeverity | null;
  status: IncidentStatus;
  owner: PlatformUser | null;
  resolution: IncidentResolution | null;
  resolution_summary: string | null;
}

/** A change made from Slack; only the fields present change. */
export interface IncidentChange {
  owner?: PlatformUser;
  severity?: IncidentSeverity;
  /** Closing needs `resolution` (and takes `resolution_summary`). */
  status?: IncidentStatus;
  resolution?: IncidentResolution;
  resolution_summary?: string;
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
  /** Adds a note to the incident (or task); idempotent on `note.key`. */
  addNote(note: NewNote): Promise<AddedNote>;
  /** The incident's summary; a FunctionError `not_found` when there is none. */
  getIncident(incidentId: number): Promise<IncidentSummary>;
  /**
   * Applies `change` as `actor` and returns the incident after it. SOAR retries a
   * version conflict (409) with the fresh version, so concurrent changes both apply.
   */
  updateIncident(incidentId: number, change: IncidentChange, actor: PlatformUser): Promise<IncidentSummary>;
  /** The platform user with this email (case-insensitive), or undefined when none. */
  findUserByEmail(email: string): Promise<PlatformUser | undefined>;
  /** Checks that the platform can be used; throws with a clear message otherwise. */
  check(): Promise<string>;
}
