/**
 * The worker's one error taxonomy.
 *
 * Every failure that reaches the runner is (or is wrapped into) a {@link WorkerError}
 * with a stable `code` and a `retryable` flag. What an error means for its message
 * (retry later, answer and ack, answer and dead-letter) is decided in outcome.ts, with
 * everything else that happened (the ledger, the fate of the final reply).
 */

export interface WorkerErrorOptions {
  /** Stable machine-readable code, e.g. `invalid_inputs`, `slack_channel_archived`. */
  code: string;
  /** True when the same invocation may succeed later (a transient outage, a rate limit). */
  retryable?: boolean;
  /**
   * Set when the message itself is unusable (not JSON, no function name, unknown
   * function): it goes to the dead-letter queue for a person to inspect instead of
   * being acked away.
   */
  deadLetter?: boolean;
  cause?: unknown;
  /** Extra facts for the error reply; must never hold secrets. */
  details?: Record<string, unknown>;
}

/** Base class of every error the worker reports to a caller. */
export class WorkerError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly deadLetter: boolean;
  readonly details?: Record<string, unknown>;

  constructor(message: string, options: WorkerErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.retryable = options.retryable ?? false;
    this.deadLetter = options.deadLetter ?? false;
    if (options.details !== undefined) this.details = options.details;
  }
}

/** The message body cannot be used at all (not JSON, not an object, too large). */
export class InvalidMessageError extends WorkerError {
  constructor(message: string, code = 'invalid_message', cause?: unknown) {
    super(message, { code, deadLetter: true, cause });
  }
}

/** The body names no function, or one this worker does not provide. */
export class UnknownFunctionError extends WorkerError {
  constructor(message: string, code: 'missing_function' | 'unknown_function') {
    super(message, { code, deadLetter: true });
  }
}

/** One failing input field, as reported in an {@link InputValidationError}. */
export interface InputProblem {
  field: string;
  problem: string;
}

/** The inputs fail the function's JSON Schema; the message lists every failing field. */
export class InputValidationError extends WorkerError {
  readonly problems: InputProblem[];
  constructor(functionName: string, problems: InputProblem[]) {
    const list = problems.map((p) => `${p.field}: ${p.problem}`).join('; ');
    super(`Invalid inputs for ${functionName}: ${list}`, {
      code: 'invalid_inputs',
      details: { problems },
    });
    this.problems = problems;
  }
}

/**
 * A function failed for a reason that will not change on retry (an archived channel,
 * a missing permission, bad input found by the handler). Plugins throw this, like
 * BullMQ's UnrecoverableError: "do not retry".
 */
export class FunctionError extends WorkerError {
  constructor(message: string, code = 'function_failed', details?: Record<string, unknown>, cause?: unknown) {
    super(message, { code, retryable: false, details, cause });
  }
}

/**
 * A function failed for a transient reason (the remote service is down, a rate-limit
 * budget ran out). The runner redelivers it up to the attempt limit, then answers the
 * caller with `retryable: true` and dead-letters it so nothing is lost.
 */
export class RetryableError extends WorkerError {
  constructor(message: string, code = 'temporarily_unavailable', details?: Record<string, unknown>, cause?: unknown) {
    super(message, { code, retryable: true, details, cause });
  }
}

/**
 * The store cannot be used and will not recover by waiting: its file is read-only, not
 * permitted, deleted or replaced under the worker, or corrupt; the PostgreSQL role lost
 * its rights or the server is read-only. The invocation that met it is handed back
 * (`retryable`: it may succeed once the store is fixed), and the worker stops with the
 * config exit code instead of retrying every invocation forever. The message names the
 * store and says what to fix.
 */
export class StoreUnusableError extends WorkerError {
  constructor(message: string, details?: Record<string, unknown>, cause?: unknown) {
    super(message, { code: 'store_unusable', retryable: true, details, cause });
  }
}

/** True for an error that means "stop the worker: the store is unusable" (see {@link StoreUnusableError}). */
export function isStoreUnusable(err: unknown): err is StoreUnusableError {
  return err instanceof StoreUnusableError;
}

/** The config file is missing, unreadable or invalid. The message names file, section and key. */
export class ConfigError extends WorkerError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'config_invalid', cause });
  }
}

/** A plugin failed to load or two plugins define the same function. */
export class PluginLoadError extends WorkerError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'plugin_load_failed', cause });
  }
}

/**
 * The broker cannot be reached or refused the login. The message names `[worker] amqp_url`
 * (password hidden) and the reason in words; retryable: the broker may come back.
 */
export class BrokerUnavailableError extends WorkerError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'broker_unavailable', retryable: true, cause });
  }
}

/**
 * The broker holds a queue declared differently from what the config asks for (another
 * `queue_type`, another delivery limit) and refuses to redeclare it; or a queue this
 * worker must consume alone (SQLite store) has another consumer. A config problem: the
 * message says which queue and what to change.
 */
export class TopologyError extends ConfigError {
  constructor(message: string, cause?: unknown) {
    super(message, cause);
  }
}

/** Another worker holds the lock file. */
export class LockError extends WorkerError {
  constructor(message: string) {
    super(message, { code: 'lock_held' });
  }
}

/**
 * A graceful shutdown that did not end cleanly; the worker is stopped all the same. As
 * such: the message names each part that could not be closed (a plugin's teardown, the
 * store…). Nothing is lost by it; the cause may need a look.
 */
export class ShutdownError extends WorkerError {
  constructor(message: string, code = 'shutdown_incomplete') {
    super(message, { code });
  }

  static unreleased(failures: string[]): ShutdownError {
    return new ShutdownError(`Stopped, but could not close ${failures.join('; ')}`);
  }
}

/** In-flight invocations did not finish within the shutdown timeout. */
export class ShutdownTimeoutError extends ShutdownError {
  constructor(readonly unfinished: number, timeoutSeconds: number) {
    super(
      `${unfinished} invocation(s) still running after the ${timeoutSeconds}s shutdown timeout; ` +
        'they were not acked and the broker will deliver them again',
      'shutdown_timeout',
    );
  }
}

/** The worker is shutting down; an invocation that had not started is handed back. */
export class ShuttingDownError extends WorkerError {
  constructor() {
    super('The worker is shutting down', { code: 'shutting_down', retryable: true });
  }
}

/**
 * The broker connection a request came on closed before its reply was confirmed. The
 * request can no longer be acked or rejected; the broker redelivers it and the ledger
 * answers it then. Not the reply's fault, so not counted as a failed reply.
 */
export class RequestConnectionLostError extends WorkerError {
  constructor(cause?: unknown) {
    super('the broker connection this request came on is closed', { code: 'request_connection_lost', retryable: true, cause });
  }
}

/** The string `code` of a Node.js or driver error (`ECONNREFUSED`, a SQLSTATE…), if it has one. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Wraps anything thrown into a WorkerError. Unknown exceptions are treated as
 * retryable internal errors: a bug or a crash in a handler is retried a bounded number
 * of times (see `failureIsFinal` in outcome.ts), then dead-lettered with an error reply.
 */
export function toWorkerError(err: unknown): WorkerError {
  if (err instanceof WorkerError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new WorkerError(`Internal error: ${message}`, { code: 'internal_error', retryable: true, cause: err });
}
