/**
 * The one decision of what becomes of a request message: ack, requeue, dead-letter or
 * retry later.
 *
 * The runner finds out what happened to an invocation (it could not be parsed, its
 * inputs were invalid, the ledger was down, the handler returned or threw, the final
 * reply was confirmed or not…) and describes it as {@link InvocationFacts}; this pure
 * function turns that into a {@link Disposition}. Keeping it in one place means the
 * delivery guarantees in the README can be checked against one function, and each case
 * is unit-tested without a broker. {@link failureIsFinal} says, for a handler's error,
 * whether the invocation is answered now or retried later; it is the other half of the
 * same decision.
 */
import type { WorkerError } from './errors.js';
import type { Disposition } from './transport.js';

/** How the final reply of an invocation fared. */
export type ReplyFate =
  /** The broker confirmed it, or there was no `reply_to` (nothing to send). */
  | 'confirmed'
  /** It was refused or not confirmed, and may be tried again (the request comes back later). */
  | 'failed'
  /** It was given up: its tries are used up, or its `reply_to` can never work. */
  | 'abandoned'
  /**
   * The connection the request came on is gone, so the request can be neither acked nor
   * rejected; the broker redelivers it and the ledger answers it then.
   */
  | 'connection-lost';

/** What happened to one delivery, as far as its disposition is concerned. */
export type InvocationFacts =
  /** The worker is stopping: the invocation was not started. */
  | { kind: 'shutting-down' }
  /** Not JSON, not an object, too large, no or an unknown function: a person must look at it. */
  | { kind: 'unusable'; reply: ReplyFate }
  /** The `reply_to` can never work (malformed, a queue that does not exist): refused before running. */
  | { kind: 'reply-to-refused' }
  /** The inputs fail the function's schema: answered with an error, never run. */
  | { kind: 'invalid-inputs'; reply: ReplyFate }
  /**
   * The ledger could not be read or written: without it a redelivery could repeat an
   * effect, so the message comes back after `retryAfterMs`.
   */
  | { kind: 'ledger-unavailable'; retryAfterMs: number }
  /** A broker redelivery of an invocation whose final reply was confirmed before. */
  | { kind: 'already-answered' }
  /** A broker redelivery of an invocation whose final reply was given up before. */
  | { kind: 'already-abandoned' }
  /** The handler deferred its result: acked now, the final reply is sent later (core/runtime/deferred.ts). */
  | { kind: 'deferred' }
  /**
   * A finished invocation answered again from the ledger (a redelivery, a duplicate
   * publish). `retryAfterMs`: when the reply failed, the delay before it is tried again.
   */
  | { kind: 'replayed'; reply: ReplyFate; retryAfterMs: number }
  /** The handler failed retryably with attempts left: no final reply yet, tried again after `retryAfterMs`. */
  | { kind: 'retry'; retryAfterMs: number }
  /**
   * The invocation finished: `error` is absent when the handler succeeded, and is final
   * when present (see {@link failureIsFinal}). `retryAfterMs`: when the reply failed, the
   * delay before it is tried again.
   */
  | { kind: 'finished'; error?: WorkerError | undefined; reply: ReplyFate; retryAfterMs: number };

/**
 * Whether a handler's error ends the invocation now (the caller gets an error reply), or
 * it is retried later without a reply:
 * - unusable messages (`deadLetter`) and final errors (not retryable) end it;
 * - retryable errors are retried until `attempt` reaches `maxAttempts`; the last one
 *   ends it, so it is neither lost nor retried forever.
 */
export function failureIsFinal(error: WorkerError, attempt: number, maxAttempts: number): boolean {
  return error.deadLetter || !error.retryable || attempt >= maxAttempts;
}

/**
 * What the transport does with the request message.
 *
 * - A reply whose connection is gone: requeue (the broker redelivers it in any case).
 * - A reply given up: dead-letter, whatever else happened, so an operator sees it.
 * - A reply that failed with tries left: retry later; the redelivery answers from the ledger.
 * - Otherwise (reply confirmed): see each kind.
 */
export function decideOutcome(facts: InvocationFacts): Disposition {
  switch (facts.kind) {
    case 'shutting-down':
      // Not started: another consumer (or this one after a restart) may take it at once.
      return 'requeue';
    case 'ledger-unavailable':
    case 'retry':
      return { retryAfterMs: facts.retryAfterMs };
    case 'unusable':
    case 'reply-to-refused':
    case 'already-abandoned':
      // Unusable or unanswerable: the dead-letter queue is where a person finds it.
      return facts.kind === 'unusable' && facts.reply === 'connection-lost' ? 'requeue' : 'dead-letter';
    case 'already-answered':
    case 'deferred':
      return 'ack';
    case 'invalid-inputs':
      // Not in the ledger, so a failed error reply cannot be counted and retried:
      // dead-letter it rather than ack it away or loop.
      if (facts.reply === 'connection-lost') return 'requeue';
      return facts.reply === 'confirmed' ? 'ack' : 'dead-letter';
    case 'replayed':
      return afterReply(facts.reply, 'ack', facts.retryAfterMs);
    case 'finished': {
      // A final error of an unusable message, or a retryable one that used the last
      // attempt, waits in the dead-letter queue; any other final error is answered.
      const error = facts.error;
      const onConfirmed = error && (error.deadLetter || error.retryable) ? 'dead-letter' : 'ack';
      return afterReply(facts.reply, onConfirmed, facts.retryAfterMs);
    }
  }
}

function afterReply(reply: ReplyFate, onConfirmed: Disposition, retryAfterMs: number): Disposition {
  switch (reply) {
    case 'confirmed':
      return onConfirmed;
    case 'abandoned':
      return 'dead-letter';
    case 'failed':
      return { retryAfterMs };
    case 'connection-lost':
      return 'requeue';
  }
}
