/**
 * The runner: one invocation from request to final reply.
 *
 * It knows the message contract and the ledger, and nothing about the broker (a
 * {@link Delivery} from transport.ts is all it sees, whatever its source) or about Slack
 * (a plugin's handler is all it calls).
 *
 * Order of effects for each invocation, and why:
 * 1. parse and look up the function, check the `reply_to` (one that can never work is
 *    refused, recorded and dead-lettered before anything has an effect), validate inputs
 *    — cheap, and bad input never reaches a handler;
 * 2. `ledger.begin` — a redelivery of a finished invocation is answered from the ledger;
 * 3. run the handler, forwarding its progress messages;
 * 4. `ledger.finish` with the final reply, *then* send the reply, *then* record in the
 *    ledger that the broker confirmed it, *then* ack. A crash between any two steps leads
 *    to a redelivery that the ledger answers, so the caller always gets its reply and the
 *    handler's effect happens once. A broker redelivery (the `redelivered` flag) of an
 *    invocation whose reply is recorded as confirmed is acked without a second reply; a
 *    caller publishing the same message_id again still gets the stored reply. A final
 *    reply that fails is counted in the ledger; after `max_attempts` failures it is given
 *    up and the request dead-lettered, so an unanswerable caller cannot loop forever.
 *
 * What becomes of the message (ack, requeue, dead-letter, retry later) is decided in one
 * place, {@link decideOutcome}, from the facts gathered here. Nothing here waits with a
 * message in hand: a retry is a `RetryLater` disposition, and the transport holds
 * the message (AMQP: in the destination's retry queue) while its delay runs, so a
 * failing function does not take a `num_workers` slot from the others.
 */
import os from 'node:os';
import { BACKOFF, backoffDelay } from '../backoff.js';
import { RequestConnectionLostError, ShuttingDownError, toWorkerError, UnknownFunctionError, WorkerError } from './errors.js';
import { LogThrottle } from '../log-throttle.js';
import type { Logger } from '../logging.js';
import {
  errorReply,
  parseInvocation,
  progressReply,
  resultReply,
  withoutNulls,
  type FinalReply,
  type Invocation,
} from './messages.js';
import { decideOutcome, failureIsFinal, type ReplyFate } from './outcome.js';
import { isDeferred } from './deferred.js';
import { ledgerSteps, type FunctionContext } from './plugin.js';
import type { PluginRegistry, RegisteredFunction } from './registry.js';
import type { Platform } from '../../platforms/platform.js';
import { KeyedMutex } from '../store/keyed-mutex.js';
import type { Store } from '../store/store.js';
import type { Delivery, Disposition } from './transport.js';

/** What the runner reports to metrics and logs for each invocation. */
export interface InvocationOutcome {
  functionName: string;
  outcome: 'succeeded' | 'failed' | 'requeued' | 'dead-lettered' | 'replayed' | 'rejected' | 'deferred';
  code?: string;
  durationMs: number;
}

export interface RunnerOptions {
  registry: PluginRegistry;
  /** Per-plugin state from `setup`, by package name. */
  pluginStates: Map<string, unknown>;
  store: Store;
  platform: Platform;
  log: Logger;
  /** Deliveries of one invocation before it is dead-lettered. */
  maxAttempts: number;
  maxMessageBytes: number;
  /**
   * How long a message waits before it comes back for retry number `attempt` (a
   * retryable failure, a failed final reply, an unreachable ledger). Without a delay a
   * failure that repeats at once (store down) would spin through its attempts in
   * milliseconds. Default: the `retry` policy of backoff.ts.
   */
  retryDelayMs?: (attempt: number) => number;
  onOutcome?: (outcome: InvocationOutcome) => void;
  host?: string;
  /**
   * The plugins' own queues (fed by their listeners): the only queues an internal
   * function is run from, so a caller cannot inject one on a destination.
   */
  pluginQueues?: ReadonlySet<string>;
}

/** The delay before retry number `attempt`: the `retry` backoff policy. */
function defaultRetryDelay(attempt: number): number {
  return backoffDelay(BACKOFF.retry, attempt);
}

/** A final reply's fate, and (when it failed) how long before the request comes back to try it again. */
interface SentReply {
  fate: ReplyFate;
  retryAfterMs: number;
}

export class Runner {
  private readonly host: string;
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly abort = new AbortController();
  private stopping = false;
  /** Serialises deliveries whose earlier delivery ended with its process (see isolateIfSuspect). */
  private readonly suspects = new KeyedMutex();
  /** One bad reply queue must not fill the log: repeated reply failures are rate-limited. */
  private readonly replyWarnings = new LogThrottle();
  private readonly retryDelay: (attempt: number) => number;

  constructor(private readonly opts: RunnerOptions) {
    this.host = opts.host ?? os.hostname();
    this.retryDelay = opts.retryDelayMs ?? defaultRetryDelay;
  }

  /** Invocations currently being handled. */
  get activeCount(): number {
    return this.active;
  }

  /** Stop starting new invocations; running ones go on. */
  stopAccepting(): void {
    this.stopping = true;
  }

  /** Tell running handlers to give up (the shutdown timeout passed). */
  abortRunning(): void {
    this.abort.abort();
  }

  /** Resolves when no invocation is running. */
  whenIdle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Handles one delivery and says what the transport should do with it. */
  async handle(delivery: Delivery): Promise<Disposition> {
    this.active++;
    try {
      return await this.process(delivery);
    } finally {
      this.active--;
      if (this.active === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  private async process(delivery: Delivery): Promise<Disposition> {
    const started = Date.now();
    const { log } = this.opts;
    let invocation: Invocation;
    let fn: RegisteredFunction;
    try {
      if (this.stopping) throw new ShuttingDownError();
      invocation = parseInvocation(delivery, this.opts.maxMessageBytes);
      const registered = this.opts.registry.get(invocation.functionName);
      const found = registered?.definition.internal && !this.opts.pluginQueues?.has(delivery.destination) ? undefined : registered;
      if (!found) {
        const known = this.opts.registry.functionNames().join(', ');
        throw new UnknownFunctionError(
          `Unknown function "${invocation.functionName}" on ${delivery.destination}; this worker provides: ${known}`,
          'unknown_function',
        );
      }
      fn = found;
    } catch (err) {
      const error = toWorkerError(err);
      if (error instanceof ShuttingDownError) return decideOutcome({ kind: 'shutting-down' });
      const problem = await this.replyToProblem(delivery);
      log.warn(
        `Rejected message ${delivery.messageId ?? '(no message_id)'} from ${delivery.destination}: ${error.message}` +
          (problem ? `; no error reply either: ${problem}` : ''),
        { code: error.code },
      );
      const reply = problem ? 'abandoned' : await this.sendFinal(delivery, errorReply(error));
      this.report({ functionName: '(unparsed)', outcome: 'rejected', code: error.code, durationMs: Date.now() - started });
      return decideOutcome({ kind: 'unusable', reply });
    }

    // Two deliveries of one invocation in this process at once (a duplicate publish):
    // the second waits for the first, then is answered from the ledger.
    const previous = this.inFlight.get(invocation.id);
    if (previous) await previous.catch(() => undefined);
    const work = this.isolateIfSuspect(delivery, invocation.id, () => this.run(delivery, invocation, fn, started));
    this.inFlight.set(invocation.id, work);
    try {
      return await work;
    } finally {
      if (this.inFlight.get(invocation.id) === work) this.inFlight.delete(invocation.id);
    }
  }

  /**
   * An invocation whose earlier delivery began and neither finished nor was handed back
   * ended with its worker process (or its broker connection): it may be what killed the
   * process. Such deliveries run one at a time, so that if one kills the process again
   * the others are not running, and their delivery counts are not charged for a crash
   * they did not cause (which would dead-letter innocent invocations after
   * `max_attempts` crashes caused by one poison message). Only broker redeliveries can be
   * suspects, so a first delivery costs no extra ledger read.
   */
  private async isolateIfSuspect<T>(delivery: Delivery, invocationId: string, work: () => Promise<T>): Promise<T> {
    if (!delivery.redelivered) return work();
    let suspect = false;
    try {
      const entry = await this.opts.store.ledger.get(invocationId);
      suspect = entry?.state === 'running' && entry.inFlight;
    } catch {
      // The ledger is unreachable: run() finds out and hands the message back.
    }
    if (!suspect) return work();
    this.opts.log.info(`Invocation ${invocationId}: its earlier delivery ended with its worker; running it alone among such deliveries`);
    return this.suspects.run('crash-suspects', work);
  }
  private async run(delivery: Delivery, invocation: Invocation, fn: RegisteredFunction, started: number): Promise<Disposition> {
    const { log, store, maxAttempts } = this.opts;
    const name = invocation.functionName;
    const invLog = log.child({ invocation: invocation.id, function: name });

    // Before anything has an effect: a reply_to that can never be answered would make the
    // function's effect happen with nobody told, and its reply fail on every redelivery.
    const problem = await this.replyToProblem(delivery);
    if (problem) return this.refuseReplyTo(delivery, invocation, problem, started, invLog);

    let inputs: Record<string, unknown>;
    try {
      inputs = this.opts.registry.validateInputs(fn, withoutNulls(invocation.inputs));
    } catch (err) {
      const error = toWorkerError(err);
      invLog.warn(error.message, { code: error.code });
      const reply = await this.sendFinal(delivery, errorReply(error));
      this.report({ functionName: name, outcome: 'failed', code: error.code, durationMs: Date.now() - started });
      return decideOutcome({ kind: 'invalid-inputs', reply });
    }

    let attempt: number;
    let steps: Record<string, unknown>;
    try {
      const begun = await store.ledger.begin(invocation.id, name);
      if (begun.finished && begun.entry.reply) {
        if (delivery.redelivered && begun.entry.repliedAt) {
          // The worker that handled it died (or lost the broker) after the caller's reply
          // was confirmed but before the ack: the caller has its answer already.
          invLog.info(`Invocation already ${begun.entry.state} and answered; acking the broker's redelivery without a second reply`);
          this.report({ functionName: name, outcome: 'replayed', code: 'already_replied', durationMs: Date.now() - started });
          return decideOutcome({ kind: 'already-answered' });
        }
        if (delivery.redelivered && begun.entry.replyAbandonedAt) {
          // Its reply was given up and it was being dead-lettered when its worker stopped.
          invLog.warn(`Invocation already ${begun.entry.state} and its reply was given up; dead-lettering the broker's redelivery`);
          this.report({ functionName: name, outcome: 'dead-lettered', code: 'reply_undeliverable', durationMs: Date.now() - started });
          return decideOutcome({ kind: 'already-abandoned' });
        }
        invLog.info(`Invocation already ${begun.entry.state}; answering from the ledger`);
        // A caller that published the same message_id again: if the ledger holds the
        // first reply as confirmed already, recording it again would change nothing.
        const sent = await this.sendRecordedFinal(delivery, begun.entry.reply as unknown as FinalReply, invocation.id, invLog, {
          repliedBefore: begun.entry.repliedAt !== null,
        });
        this.report({
          functionName: name,
          outcome: sent.fate === 'abandoned' ? 'dead-lettered' : 'replayed',
          ...(sent.fate === 'abandoned' ? { code: 'reply_undeliverable' } : {}),
          durationMs: Date.now() - started,
        });
        return decideOutcome({ kind: 'replayed', reply: sent.fate, retryAfterMs: sent.retryAfterMs });
      }
      attempt = begun.entry.attempts;
      steps = begun.entry.steps;
      if (begun.interrupted) invLog.warn(`Delivery ${attempt} of an invocation that did not finish before`);
    } catch (err) {
      // The ledger is unreachable: without it a redelivery could repeat an effect, so
      // hand the message back and try later.
      invLog.error(`Invocation ledger unavailable: ${(err as Error).message}`);
      return this.ledgerUnavailable(name, started);
    }

    if (attempt > maxAttempts) {
      const error = new WorkerError(
        `Invocation was delivered ${attempt} times without finishing (limit: max_attempts = ${maxAttempts}); ` +
          'it was dead-lettered. Check the worker log for what stopped it.',
        { code: 'attempts_exhausted', retryable: false, deadLetter: true },
      );
      return this.fail(delivery, invocation, error, attempt, started, invLog);
    }

    const ctx: FunctionContext = {
      invocationId: invocation.id,
      functionName: name,
      inputs,
      origin: invocation.origin,
      attempt,
      status: async (message: string) => {
        invLog.debug(`progress: ${message}`);
        try {
          await this.sendProgress(delivery, message);
        } catch (err) {
          // A lost progress message must not fail the invocation; the final reply matters.
          const line = this.replyWarnings.pass(
            `progress:${delivery.replyTo}`,
            `Could not send a progress message to ${delivery.replyTo}: ${(err as Error).message}`,
          );
          if (line) invLog.warn(line);
        }
      },
      log: invLog,
      store,
      platform: this.opts.platform,
      steps: ledgerSteps(store.ledger, invocation.id, steps),
      signal: this.abort.signal,
      deferral: {
        invocationId: invocation.id,
        functionName: name,
        replyTo: delivery.replyTo ?? null,
        correlationId: delivery.correlationId ?? null,
        packageName: fn.plugin.packageName,
        packageVersion: fn.plugin.packageVersion,
        inputs,
        startedAt: started,
      },
    };

    try {
      // DEBUG: at INFO one line per invocation (its outcome, below) is enough; two cost
      // a measurable share of a busy worker's CPU (formatting, redaction, two transports).
      invLog.debug(`Running ${name} (attempt ${attempt})`);
      const state = this.opts.pluginStates.get(fn.plugin.packageName);
      const result = await fn.definition.handler(ctx, state);
      if (isDeferred(result)) return await this.deferred(invocation.id, name, started, invLog);
      const reply = resultReply(result, {
        packageName: fn.plugin.packageName,
        packageVersion: fn.plugin.packageVersion,
        inputs,
        startedAt: started,
        host: this.host,
      });
      await store.ledger.finish(invocation.id, 'succeeded', reply as unknown as Record<string, unknown>);
      const sent = await this.sendRecordedFinal(delivery, reply, invocation.id, invLog);
      invLog.info(`Completed ${name} in ${Date.now() - started} ms`);
      this.report({
        functionName: name,
        outcome: sent.fate === 'abandoned' ? 'dead-lettered' : 'succeeded',
        ...(sent.fate === 'abandoned' ? { code: 'reply_undeliverable' } : {}),
        durationMs: Date.now() - started,
      });
      return decideOutcome({ kind: 'finished', reply: sent.fate, retryAfterMs: sent.retryAfterMs });
    } catch (err) {
      return this.fail(delivery, invocation, toWorkerError(err), attempt, started, invLog);
    }
  }

  private async fail(
    delivery: Delivery,
    invocation: Invocation,
    thrown: WorkerError,
    attempt: number,
    started: number,
    invLog: Logger,
  ): Promise<Disposition> {
    const { maxAttempts } = this.opts;
    const name = invocation.functionName;
    if (!failureIsFinal(thrown, attempt, maxAttempts)) {
      invLog.warn(`Attempt ${attempt} of ${maxAttempts} failed, will retry: ${thrown.message}`, { code: thrown.code });
      // Handed back, not crashed: its next delivery need not run in isolation.
      await this.opts.store.ledger.release(invocation.id).catch((err: Error) => {
        invLog.warn(`Could not record the retry in the ledger: ${err.message}`);
      });
      await this.sendProgress(delivery, `Attempt ${attempt} failed (${thrown.message}); retrying`).catch(() => undefined);
      this.report({ functionName: name, outcome: 'requeued', code: thrown.code, durationMs: Date.now() - started });
      return decideOutcome({ kind: 'retry', retryAfterMs: this.retryDelay(attempt) });
    }
    const error = lastAttemptError(thrown, attempt, maxAttempts);
    if (error.code === 'internal_error') {
      invLog.error(`${name} failed: ${error.message}`, { stack: (error.cause as Error | undefined)?.stack });
    } else {
      invLog.warn(`${name} failed: ${error.message}`, { code: error.code });
    }
    const reply = errorReply(error);
    try {
      await this.opts.store.ledger.finish(invocation.id, 'failed', reply as unknown as Record<string, unknown>);
    } catch (err) {
      invLog.error(`Could not record the failure in the ledger: ${(err as Error).message}`);
      return this.ledgerUnavailable(name, started);
    }
    const sent = await this.sendRecordedFinal(delivery, reply, invocation.id, invLog);
    const disposition = decideOutcome({ kind: 'finished', error, reply: sent.fate, retryAfterMs: sent.retryAfterMs });
    this.report({
      functionName: name,
      outcome: disposition === 'dead-letter' ? 'dead-lettered' : disposition === 'ack' ? 'failed' : 'requeued',
      code: sent.fate === 'abandoned' ? 'reply_undeliverable' : error.code,
      durationMs: Date.now() - started,
    });
    return disposition;
  }

  /**
   * The handler deferred its result: the ledger entry stays `running` (a redelivery runs the
   * handler again, which resumes from its steps) but is no longer in flight, and the message
   * is acked. The final reply is sent later by plugin code (core/runtime/deferred.ts).
   */
  private async deferred(invocationId: string, name: string, started: number, invLog: Logger): Promise<Disposition> {
    await this.opts.store.ledger.release(invocationId).catch((err: Error) => {
      invLog.warn(`Could not record the deferred invocation in the ledger: ${err.message}`);
    });
    invLog.info(`Deferred ${name}: acked; the final reply follows when its answer comes`);
    this.report({ functionName: name, outcome: 'deferred', durationMs: Date.now() - started });
    return decideOutcome({ kind: 'deferred' });
  }

  /** Hands the message back after a pause: a store that is down stays down for a while. */
  private ledgerUnavailable(functionName: string, started: number): Disposition {
    this.report({ functionName, outcome: 'requeued', code: 'store_unavailable', durationMs: Date.now() - started });
    return decideOutcome({ kind: 'ledger-unavailable', retryAfterMs: this.retryDelay(1) });
  }

  /** Why the delivery's reply_to can never be answered, if the transport can tell. */
  private async replyToProblem(delivery: Delivery): Promise<string | undefined> {
    if (!delivery.replyTo || !delivery.checkReplyTo) return undefined;
    try {
      return await delivery.checkReplyTo();
    } catch {
      return undefined; // could not ask: the reply itself will find out
    }
  }

  /**
   * A reply_to that can never work: the function is not run, and since no error reply
   * can reach the caller, the refusal is logged, recorded in the ledger (failed, reply
   * given up) and the message dead-lettered for an operator.
   */
  private async refuseReplyTo(
    delivery: Delivery,
    invocation: Invocation,
    problem: string,
    started: number,
    invLog: Logger,
  ): Promise<Disposition> {
    const { ledger } = this.opts.store;
    const error = new WorkerError(`Cannot reply to ${delivery.replyTo}: ${problem}; the function was not run`, {
      code: 'reply_to_invalid',
      retryable: false,
    });
    try {
      const begun = await ledger.begin(invocation.id, invocation.functionName);
      if (begun.finished && begun.entry.repliedAt && delivery.redelivered) {
        // Answered before its worker could ack it; the caller took its reply and left,
        // which is why its reply queue is gone now. Nothing is wrong: ack.
        invLog.info(`Invocation already ${begun.entry.state} and answered; acking the broker's redelivery without a second reply`);
        this.report({ functionName: invocation.functionName, outcome: 'replayed', code: 'already_replied', durationMs: Date.now() - started });
        return decideOutcome({ kind: 'already-answered' });
      }
      if (!begun.finished) await ledger.finish(invocation.id, 'failed', errorReply(error) as unknown as Record<string, unknown>);
      await ledger.abandonReply(invocation.id);
    } catch (err) {
      invLog.error(`Invocation ledger unavailable: ${(err as Error).message}`);
      return this.ledgerUnavailable(invocation.functionName, started);
    }
    invLog.warn(`${error.message}. Dead-lettered (the caller cannot be told); fix the caller's reply_to`, { code: error.code });
    this.report({ functionName: invocation.functionName, outcome: 'dead-lettered', code: error.code, durationMs: Date.now() - started });
    return decideOutcome({ kind: 'reply-to-refused' });
  }

  /**
   * Sends the final reply of a message the ledger does not hold (unusable, invalid
   * inputs). Nothing counts its tries, so a reply that fails is given up at once: the
   * message is dead-lettered rather than retried without bound.
   */
  private async sendFinal(delivery: Delivery, reply: FinalReply): Promise<ReplyFate> {
    try {
      await delivery.reply(reply);
      return 'confirmed';
    } catch (err) {
      if (err instanceof RequestConnectionLostError) return 'connection-lost';
      this.warnReplyFailed(this.opts.log, delivery, err as Error);
      return 'abandoned';
    }
  }

  /**
   * Sends the final reply of an invocation the ledger holds. A confirmed reply is
   * recorded, so that a broker redelivery is not answered a second time. A failed one is
   * counted in the ledger: below `max_attempts` failures the message comes back after a
   * delay (by the count), to be answered from the ledger; at `max_attempts` it gives the
   * reply up (recorded) and the message is dead-lettered, so a reply queue that refuses
   * everything costs a bounded number of tries instead of a hot loop.
   */
  private async sendRecordedFinal(
    delivery: Delivery,
    reply: FinalReply,
    invocationId: string,
    invLog: Logger,
    known: { repliedBefore?: boolean } = {},
  ): Promise<SentReply> {
    const { ledger } = this.opts.store;
    const { maxAttempts } = this.opts;
    // Only a failed reply comes back later; the delay is not asked for otherwise.
    const sent = (fate: ReplyFate, failures = 1): SentReply => ({ fate, retryAfterMs: fate === 'failed' ? this.retryDelay(failures) : 0 });
    try {
      await delivery.reply(reply);
    } catch (err) {
      if (err instanceof RequestConnectionLostError) return sent('connection-lost');
      this.warnReplyFailed(invLog, delivery, err as Error);
      let failures: number;
      try {
        failures = await ledger.replyFailed(invocationId);
      } catch (ledgerErr) {
        invLog.warn(`Could not count the failed reply in the ledger: ${(ledgerErr as Error).message}`);
        return sent('failed');
      }
      if (failures >= maxAttempts) {
        await ledger.abandonReply(invocationId).catch((abandonErr: Error) => {
          invLog.error(`Could not record the given-up reply in the ledger: ${abandonErr.message}`);
        });
        invLog.warn(
          `Gave up the final reply to ${delivery.replyTo} after ${failures} failed attempts (limit: max_attempts = ${maxAttempts}): ` +
            `${(err as Error).message}. The request is dead-lettered; its outcome is in the ledger`,
          { code: 'reply_undeliverable' },
        );
        return sent('abandoned', failures);
      }
      return sent('failed', failures);
    }
    // markReplied keeps the first time, so an entry already marked needs no write.
    if (delivery.replyTo && !known.repliedBefore) {
      try {
        await ledger.markReplied(invocationId);
      } catch (err) {
        // Not fatal: a redelivery would then answer once more from the ledger (same reply).
        invLog.warn(`Could not record the confirmed reply of ${invocationId} in the ledger: ${(err as Error).message}`);
      }
    }
    return sent('confirmed');
  }

  /** Progress needs order, not a broker round trip each: no confirm is awaited when the transport can do without. */
  private sendProgress(delivery: Delivery, message: string): Promise<void> {
    const payload = progressReply(message);
    return delivery.progress ? delivery.progress(payload) : delivery.reply(payload);
  }

  private warnReplyFailed(log: Logger, delivery: Delivery, err: Error): void {
    const line = this.replyWarnings.pass(
      `final:${delivery.replyTo}:${err.message}`,
      `Could not send the final reply to ${delivery.replyTo ?? '(none)'}: ${err.message}`,
    );
    if (line) log.warn(line);
  }

  private report(outcome: InvocationOutcome): void {
    try {
      this.opts.onOutcome?.(outcome);
    } catch {
      // metrics must never break an invocation
    }
  }
}

/**
 * The error the caller gets when a retryable failure used up the last attempt: it must
 * not read as if another try were coming (issue #11 item 6), so it says it was the last.
 */
function lastAttemptError(error: WorkerError, attempt: number, maxAttempts: number): WorkerError {
  if (!error.retryable || error.deadLetter || attempt < maxAttempts) return error;
  return new WorkerError(`${error.message} (gave up after attempt ${attempt} of ${maxAttempts}; max_attempts = ${maxAttempts})`, {
    code: error.code,
    retryable: error.retryable,
    ...(error.details === undefined ? {} : { details: error.details }),
    cause: error.cause ?? error,
  });
}
