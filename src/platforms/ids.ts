/**
 * Checks for the ids a function's inputs carry (incident, task, attachment, artifact),
 * shared by every platform so that a bad id or reference gets the same clear error
 * (`invalid_id`, `invalid_reference`) whichever platform the worker runs against.
 */
import { FunctionError } from '../core/runtime/errors.js';
import type { AttachmentRef } from './platform.js';

/** Describes a value for an error message without echoing an object's contents. */
export function describeValue(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'null';
  return `a ${typeof value}`;
}

/** Returns `value` if it is a positive safe integer; else throws `invalid_id` naming `field`. */
export function checkId(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new FunctionError(`${field} must be a positive integer, got ${describeValue(value)}`, 'invalid_id', { field });
  }
  return value;
}

/** Like {@link checkId}, but an absent id (`undefined` or `null`) gives `undefined`. */
export function optionalId(value: unknown, field: string): number | undefined {
  return value === undefined || value === null ? undefined : checkId(value, field);
}

/** An {@link AttachmentRef} whose ids are checked and that names exactly one file: an attachment or an artifact. */
export type CheckedAttachmentRef = { incidentId: number; taskId: number | undefined } & (
  | { attachmentId: number; artifactId?: undefined }
  | { artifactId: number; attachmentId?: undefined }
);

/**
 * Checks every id of `ref` (in the order incident, task, attachment, artifact) and that
 * it names either an attachment or an artifact, not both and not neither.
 */
export function checkAttachmentRef(ref: AttachmentRef): CheckedAttachmentRef {
  const incidentId = checkId(ref.incidentId, 'incident_id');
  const taskId = optionalId(ref.taskId, 'task_id');
  const attachmentId = optionalId(ref.attachmentId, 'attachment_id');
  const artifactId = optionalId(ref.artifactId, 'artifact_id');
  if (attachmentId !== undefined && artifactId !== undefined) {
    throw new FunctionError(
      `Give either attachment_id or artifact_id, not both (got attachment ${attachmentId} and artifact ${artifactId})`,
      'invalid_reference',
    );
  }
  if (artifactId !== undefined) return { incidentId, taskId, artifactId };
  if (attachmentId === undefined) {
    throw new FunctionError(
      `Give attachment_id (an attachment of the incident or task) or artifact_id (an artifact of the incident) ` +
        `to choose the file of incident ${incidentId}`,
      'invalid_reference',
    );
  }
  return { incidentId, taskId, attachmentId };
}
