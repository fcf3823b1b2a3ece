/**
 * Checks a {@link NewNote} before any platform writes it, so that a bad note gets the
 * same clear error (`invalid_note`) on every platform.
 */
import { FunctionError } from '../core/runtime/errors.js';
import { checkId, describeValue, optionalId } from './ids.js';
import type { NewNote } from './platform.js';

/** Longer keys are refused: a key names one message or action, it is never prose. */
export const MAX_NOTE_KEY_LENGTH = 500;

function invalid(problem: string): FunctionError {
  return new FunctionError(`Invalid note: ${problem}`, 'invalid_note');
}

/** Returns the note's incident and task ids, checked; throws `invalid_id` or `invalid_note`. */
export function checkNote(note: NewNote): { incidentId: number; taskId: number | undefined } {
  const incidentId = checkId(note?.incidentId, 'incident_id');
  const taskId = optionalId(note.taskId, 'task_id');
  if (typeof note.key !== 'string' || note.key.trim() === '') {
    throw invalid(`key must be a non-empty string (e.g. "<channel>:<ts>"), got ${describeValue(note.key)}`);
  }
  if (note.key.length > MAX_NOTE_KEY_LENGTH) throw invalid(`key is longer than ${MAX_NOTE_KEY_LENGTH} characters`);
  if (typeof note.text !== 'string') throw invalid(`text must be a string, got ${describeValue(note.text)}`);
  const author = note.author;
  if (!author || typeof author !== 'object' || typeof author.id !== 'string' || typeof author.name !== 'string') {
    throw invalid('author must be {id, name, email} with id and name strings');
  }
  if (author.email !== null && typeof author.email !== 'string') throw invalid('author.email must be a string or null');
  if (!(note.created instanceof Date) || Number.isNaN(note.created.getTime())) {
    throw invalid(`created must be a valid Date, got ${describeValue(note.created)}`);
  }
  const slack = note.slack;
  if (slack !== undefined) {
    if (!slack || typeof slack.channel_id !== 'string' || typeof slack.ts !== 'string') {
      throw invalid('slack must be {channel_id, ts, thread_ts?, permalink?} with channel_id and ts strings');
    }
  }
  return { incidentId, taskId };
}

/** True for an http(s) URL: only those become links in a note. */
export function isWebUrl(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}
