/**
 * The message contract (DESIGN.md): parsing invocation bodies and building replies in
 * the shapes resilient-circuits callers know.
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { InvalidMessageError, UnknownFunctionError, type WorkerError } from './errors.js';
import type { FunctionResult, InvocationOrigin } from './plugin.js';
import { redact, redactValue } from '../redact.js';

/** What a transport hands the runner for one request message. */
export interface RequestEnvelope {
  body: Buffer;
  messageId?: string | undefined;
  correlationId?: string | undefined;
  replyTo?: string | undefined;
}

/** A parsed, well-formed invocation. Its inputs are not yet validated against the schema. */
export interface Invocation {
  /** The idempotency key: AMQP `message_id`, else `correlation_id`, else a fresh id. */
  id: string;
  functionName: string;
  inputs: Record<string, unknown>;
  origin: InvocationOrigin;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Strict: a body with bytes that are not UTF-8 is refused, not patched with U+FFFD. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Names a parsed JSON value's kind for an error message ("null", "an array", "a number"). */
function describeJson(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Control, format (zero-width, bidi), surrogate, private-use and unassigned code points. */
const INVISIBLE = /\p{C}/u;

/**
 * `s` as a JSON string with every invisible code point written as `\uXXXX`, cut to
 * `max` characters: how a caller-supplied name is shown in an error message, so that
 * neither invisible characters nor a megabyte-long name make the message unreadable.
 */
export function visible(s: string, max = 1000): string {
  const cut = s.length > max ? `${s.slice(0, max)}…` : s;
  return JSON.stringify(cut).replace(/\p{C}/gu, (c) =>
    [...Array(c.length).keys()].map((i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''),
  );
}

/** Whether a caller-supplied name needs {@link visible} to be shown clearly. */
export function needsEscaping(s: string, max = 100): boolean {
  return s.length > max || INVISIBLE.test(s);
}

/** Longest function name accepted; longer ones are certainly not ours. */
const MAX_FUNCTION_NAME = 200;

/**
 * Parses a request body. Throws {@link InvalidMessageError} for a body that is too
 * large, not JSON or not an object, and {@link UnknownFunctionError} (`missing_function`)
 * when it names no function.
 */
export function parseInvocation(envelope: RequestEnvelope, maxBytes: number): Invocation {
  if (envelope.body.length > maxBytes) {
    throw new InvalidMessageError(
      `Message of ${envelope.body.length} bytes is larger than max_message_bytes (${maxBytes}); it was not parsed`,
      'message_too_large',
    );
  }
  let text: string;
  try {
    text = UTF8.decode(envelope.body);
  } catch (err) {
    // Decoding leniently would turn the bad bytes into U+FFFD and run the invocation
    // with inputs the caller never sent; refusing says what to fix instead.
    throw new InvalidMessageError('Message body is not valid UTF-8: send the JSON encoded as UTF-8', 'invalid_encoding', err);
  }
  if (text.trim() === '') {
    throw new InvalidMessageError(
      'Message body is empty: send a JSON object like {"function": {"name": …}, "inputs": {…}}',
      'invalid_json',
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new InvalidMessageError(`Message body is not valid JSON: ${(err as Error).message}`, 'invalid_json', err);
  }
  if (!isPlainObject(body)) {
    throw new InvalidMessageError(
      `Message body must be a JSON object like {"function": {"name": …}, "inputs": {…}}, got ${describeJson(body)}`,
    );
  }
  const fn = body.function;
  const name = isPlainObject(fn) ? fn.name : undefined;
  if (typeof name !== 'string' || name.trim() === '') {
    throw new UnknownFunctionError('Message names no function: set "function": {"name": "<function name>"}', 'missing_function');
  }
  if (name.length > MAX_FUNCTION_NAME) {
    throw new UnknownFunctionError(`Function name is ${name.length} characters long; no function has such a name`, 'unknown_function');
  }
  if (INVISIBLE.test(name)) {
    // Said with the name JSON-escaped: a control or format character (zero-width, bidi
    // override) would otherwise make the error show a name that looks like a valid one.
    throw new UnknownFunctionError(
      `Function name ${visible(name)} contains control or invisible characters; no function has such a name`,
      'unknown_function',
    );
  }
  const inputs = body.inputs ?? {};
  if (!isPlainObject(inputs)) {
    throw new InvalidMessageError(`"inputs" must be a JSON object of input name → value, got ${describeJson(inputs)}`);
  }
  const origin: InvocationOrigin = {};
  if (isPlainObject(body.workflow)) origin.workflow = body.workflow;
  if (isPlainObject(body.workflow_instance)) origin.workflow_instance = body.workflow_instance;
  if (isPlainObject(body.principal)) origin.principal = body.principal;

  const fromCaller = envelope.messageId || envelope.correlationId;
  return {
    id: fromCaller ? String(fromCaller) : randomUUID(),
    functionName: name,
    inputs,
    origin,
  };
}

/** SOAR sends every input of a function, with null for the ones not set: drop those. */
export function withoutNulls(inputs: Record<string, unknown>): Record<string, unknown> {
  // Object.fromEntries defines own properties: an input named "__proto__" stays an
  // (unknown, refused) input instead of replacing the object's prototype, which would
  // let a body smuggle in inherited inputs that schema validation does not see.
  return Object.fromEntries(Object.entries(inputs).filter(([, v]) => v !== null && v !== undefined));
}

export interface ProgressReply {
  message_type: 0;
  message: string;
  complete: false;
}

/** resilient-lib's ResultPayload, version 2. */
export interface ResultPayloadV2 {
  version: 2;
  success: boolean;
  reason: string | null;
  content: Record<string, unknown>;
  raw: unknown;
  inputs: Record<string, unknown>;
  metrics: {
    version: 1;
    package: string;
    package_version: string;
    host: string;
    execution_time_ms: number;
    timestamp: string;
  };
}

export interface ResultReply {
  message_type: 0;
  message: string;
  complete: true;
  results: ResultPayloadV2;
}

export interface ErrorReply {
  message_type: 1;
  message: string;
  complete: true;
  error: { code: string; retryable: boolean; details?: Record<string, unknown> };
}

export type FinalReply = ResultReply | ErrorReply;
export type Reply = ProgressReply | FinalReply;

export function progressReply(message: string): ProgressReply {
  return { message_type: 0, message: redact(message), complete: false };
}

/** `YYYY-MM-DD HH:MM:SS` in UTC, resilient-lib's metrics timestamp format. */
export function metricsTimestamp(date: Date): string {
  return date.toISOString().replace('T', ' ').slice(0, 19);
}

export interface ResultContext {
  packageName: string;
  packageVersion: string;
  inputs: Record<string, unknown>;
  startedAt: number;
  now?: number;
  host?: string;
}

export function resultReply(result: FunctionResult, ctx: ResultContext): ResultReply {
  const now = ctx.now ?? Date.now();
  const results: ResultPayloadV2 = {
    version: 2,
    success: result.success ?? true,
    reason: result.reason ?? null,
    content: redactValue(result.content),
    raw: result.raw === undefined ? null : redactValue(result.raw),
    inputs: redactValue(ctx.inputs),
    metrics: {
      version: 1,
      package: ctx.packageName,
      package_version: ctx.packageVersion,
      host: ctx.host ?? os.hostname(),
      execution_time_ms: Math.max(0, Math.round(now - ctx.startedAt)),
      timestamp: metricsTimestamp(new Date(now)),
    },
  };
  return { message_type: 0, message: 'Completed', complete: true, results };
}

export function errorReply(err: WorkerError): ErrorReply {
  const error: ErrorReply['error'] = { code: err.code, retryable: err.retryable };
  if (err.details) error.details = redactValue(err.details);
  return { message_type: 1, message: redact(err.message), complete: true, error };
}
