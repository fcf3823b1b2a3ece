/**
 * Checks for the ids a function's inputs carry (incident, task, attachment, artifact),
 * shared by every platform so that a bad id gets the same clear `invalid_id` error
 * whichever platform the worker runs against.
 */
import { FunctionError } from '../errors.js';

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
