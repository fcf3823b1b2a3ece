/**
 * The runner: one invocation from request to final reply.
 *
 * It knows the message contract and the ledger, and nothing about the broker (a
 * {@link Delivery} is all it sees) or about Slack (a plugin's handler is all it calls).
 *
 * Order of effects for each invocation, and why:
 * 1. parse and look up the function, validate inputs — cheap, and bad input never
 *    reaches the ledger or a handler;
 * 2. `ledger.begin` — a redelivery of a finished invocation is answered from the ledger;
 * 3. run the handler, forwarding its progress messages;
 * 4. `ledger.finish` with the final reply, *then* send the reply, *then* record in the
 *    ledger that the broker confirmed it, *then* ack. A crash between any two steps leads
 *    to a redelivery that the ledger answers, so the caller always gets its reply and the
 *    handler's effect happens once. A broker redelivery (the `redelivered` flag) of an
 *    invocation whose reply is recorded as confirmed is acked without a second reply; a
 *    caller publishing the same message_id again still gets the stored reply.
 */
import os from 'node:os';
import {
  decideDisposition,
  ShuttingDownError,
  toWorkerError,
  UnknownFunctionError,
  WorkerError,
  type Disposition,
} from './errors.js';
import type { Logger } from './logging.js';
import {
  errorReply,
  parseInvocation,
  progressReply,
  resultReply,
  withoutNulls,
  type FinalReply,
  type Invocation,
  type Reply,
  type RequestEnvelope,
} from './messages.js';
import { ledgerSteps, type FunctionContext } from './plugin.js';
import type { PluginRegistry, RegisteredFunction } from './registry.js';
import type { Platform } from './platform/platform.js';
import { KeyedMutex } from './store/keyed-mutex.js';
import type { Store } from './store/store.js';

/** One request message as the transport hands it over. */
export interface Delivery extends RequestEnvelope {
  /** The queue it came from. */
  destination: string;
  /** The broker's redelivered flag. */
  redelivered: boolean;
  /**
   * Publishes a reply to the caller's `reply_to` with its `correlation_id` and resolves
   * once the broker has confirmed it. Resolves at once when there is no `reply_to`.
   */
  reply(payload: Reply): Promise<void>;
}

/** What the runner reports to metrics and logs for each invocation. */
export interface InvocationOutcome {
  functionName: string;
  outcome: 'succeeded' | 'failed' | 'requeued' | 'dead-lettered' | 'replayed' | 'rejected';
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
   * Delay before a retryable failure is handed back to the broker. Without it a
   * failure that repeats at once (store down) would spin through its attempts in
   * milliseconds; with it the attempts are spread over a meaningful window.
   */
  requeueDelayMs?: (attempt: number) => number;
  onOutcome?: (outcome: InvocationOutcome) => void;
  host?: string;
}

/** 1 s, 2 s, 4 s … capped at 30 s: long enough for a broker or Slack blip to pass. */
export function defaultRequeueDelay(attempt: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, attempt - 1));
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });

export class Runner {
  private readonly host: string;
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly abort = new AbortController();
  private stopping = false;
  /** Serialises deliveries whose earlier delivery ended with its process (see isolateIfSuspect). */
  private readonly suspects = new KeyedMutex();

  constructor(private readonly opts: RunnerOptions) {
    this.host = opts.host ?? os.hostname();
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
      const found = this.opts.registry.get(invocation.functionName);
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
      if (error instanceof ShuttingDownError) return 'requeue';
      log.warn(`Rejected message ${delivery.messageId ?? '(no message_id)'} from ${delivery.destination}: ${error.message}`, {
        code: error.code,
      });
      await this.sendFinal(delivery, errorReply(error));
      this.report({ functionName: '(unparsed)', outcome: 'rejected', code: error.code, durationMs: Date.now() - started });
      return 'dead-letter';
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
    let inputs: Record<string, unknown>;
    try {
      inputs = this.opts.registry.validateInputs(fn, withoutNulls(invocation.inputs));
    } catch (err) {
      const error = toWorkerError(err);
      invLog.warn(error.message, { code: error.code });
      await this.sendFinal(delivery, errorReply(error));
      this.report({ functionName: name, outcome: 'failed', code: error.code, durationMs: Date.now() - started });
      return 'ack';
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
          return 'ack';
        }
        invLog.info(`Invocation already ${begun.entry.state}; answering from the ledger`);
        const sent = await this.sendFinal(delivery, begun.entry.reply as unknown as FinalReply, invocation.id);
        this.report({ functionName: name, outcome: 'replayed', durationMs: Date.now() - started });
        return sent ? 'ack' : 'requeue';
      }
      attempt = begun.entry.attempts;
      steps = begun.entry.steps;
      if (begun.interrupted) invLog.warn(`Delivery ${attempt} of an invocation that did not finish before`);
    } catch (err) {
      // The ledger is unreachable: without it a redelivery could repeat an effect, so
      // hand the message back and try later.
      invLog.error(`Invocation ledger unavailable: ${(err as Error).message}`);
      await sleep((this.opts.requeueDelayMs ?? defaultRequeueDelay)(1), this.abort.signal);
      this.report({ functionName: name, outcome: 'requeued', code: 'store_unavailable', durationMs: Date.now() - started });
      return 'requeue';
    }

    if (attempt > maxAttempts) {
      const error = new WorkerError(
        `Invocation was delivered ${attempt} times without finishing (limit: max_attempts = ${maxAttempts}); ` +
          'it was dead-lettered. Check the worker log for what stopped it.',
        { code: 'attempts_exhausted', retryable: false },
      );
      return this.fail(delivery, invocation, error, attempt, started, invLog, true);
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
          await delivery.reply(progressReply(message));
        } catch (err) {
          // A lost progress message must not fail the invocation; the final reply matters.
          invLog.warn(`Could not send progress message: ${(err as Error).message}`);
        }
      },
      log: invLog,
      store,
      platform: this.opts.platform,
      steps: ledgerSteps(store.ledger, invocation.id, steps),
      signal: this.abort.signal,
    };

    try {
      // DEBUG: at INFO one line per invocation (its outcome, below) is enough; two cost
      // a measurable share of a busy worker's CPU (formatting, redaction, two transports).
      invLog.debug(`Running ${name} (attempt ${attempt})`);
      const state = this.opts.pluginStates.get(fn.plugin.packageName);
      const result = await fn.definition.handler(ctx, state);
      const reply = resultReply(result, {
        packageName: fn.plugin.packageName,
        packageVersion: fn.plugin.packageVersion,
        inputs,
        startedAt: started,
        host: this.host,
      });
      await store.ledger.finish(invocation.id, 'succeeded', reply as unknown as Record<string, unknown>);
      const sent = await this.sendFinal(delivery, reply, invocation.id);
      invLog.info(`Completed ${name} in ${Date.now() - started} ms`);
      this.report({ functionName: name, outcome: 'succeeded', durationMs: Date.now() - started });
      return sent ? 'ack' : 'requeue';
    } catch (err) {
      return this.fail(delivery, invocation, toWorkerError(err), attempt, started, invLog, false);
    }
  }

  private async fail(
    delivery: Delivery,
    invocation: Invocation,
    error: WorkerError,
    attempt: number,
    started: number,
    invLog: Logger,
    forceFinal: boolean,
  ): Promise<Disposition> {
    const decision = forceFinal
      ? { disposition: 'dead-letter' as const, replyNow: true }
      : decideDisposition(error, attempt, this.opts.maxAttempts);
    const name = invocation.functionName;
    if (!decision.replyNow) {
      invLog.warn(`Attempt ${attempt} of ${this.opts.maxAttempts} failed, will retry: ${error.message}`, { code: error.code });
      // Handed back, not crashed: its next delivery need not run in isolation.
      await this.opts.store.ledger.release(invocation.id).catch((err: Error) => {
        invLog.warn(`Could not record the retry in the ledger: ${err.message}`);
      });
      await delivery
        .reply(progressReply(`Attempt ${attempt} failed (${error.message}); retrying`))
        .catch(() => undefined);
      await sleep((this.opts.requeueDelayMs ?? defaultRequeueDelay)(attempt), this.abort.signal);
      this.report({ functionName: name, outcome: 'requeued', code: error.code, durationMs: Date.now() - started });
      return 'requeue';
    }
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
      return 'requeue';
    }
    const sent = await this.sendFinal(delivery, reply, invocation.id);
    this.report({
      functionName: name,
      outcome: decision.disposition === 'dead-letter' ? 'dead-lettered' : 'failed',
      code: error.code,
      durationMs: Date.now() - started,
    });
    return sent ? decision.disposition : 'requeue';
  }

  /**
   * Sends a final reply; false when it could not be confirmed (the message is then
   * redelivered). With an `invocationId` (the ledger holds the invocation) a confirmed
   * reply is recorded, so that a broker redelivery is not answered a second time.
   */
  private async sendFinal(delivery: Delivery, reply: FinalReply, invocationId?: string): Promise<boolean> {
    try {
      await delivery.reply(reply);
    } catch (err) {
      this.opts.log.warn(`Could not send the final reply to ${delivery.replyTo ?? '(none)'}: ${(err as Error).message}`);
      return false;
    }
    if (invocationId !== undefined && delivery.replyTo) {
      try {
        await this.opts.store.ledger.markReplied(invocationId);
      } catch (err) {
        // Not fatal: a redelivery would then answer once more from the ledger (same reply).
        this.opts.log.warn(`Could not record the confirmed reply of ${invocationId} in the ledger: ${(err as Error).message}`);
      }
    }
    return true;
  }

  private report(outcome: InvocationOutcome): void {
    try {
      this.opts.onOutcome?.(outcome);
    } catch {
      // metrics must never break an invocation
    }
  }
}
