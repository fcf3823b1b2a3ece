/**
 * Deferred results: a function whose answer comes much later than its invocation (a
 * question waiting for a person) acks the invocation now and sends the final reply later,
 * from whichever worker learns the answer.
 *
 * Why not hold the message: RabbitMQ closes a channel whose delivery stays unacked past
 * its consumer timeout (30 minutes by default), taking every delivery on it along. So the
 * handler returns {@link DEFERRED}; the runner records nothing final, hands the ledger
 * entry back (still `running`) and acks. The handler keeps the invocation's
 * {@link DeferredTicket} (plain JSON) wherever it waits; when the answer comes, plugin code
 * builds the reply with {@link DeferredReplies.finalReply}, stores it with its own state,
 * and sends it with {@link DeferredReplies.send}: the ledger records it as the final
 * reply (so a redelivery of the invocation is answered from the ledger, never run
 * again), the reply is published to the caller's `reply_to` with its `correlation_id`
 * and confirmed by the broker, and the ledger records the confirm.
 *
 * A second `send` after a confirmed one publishes nothing. Two senders at the same moment
 * (a worker that crashed mid-send being resumed by another) can both publish: the caller
 * may then get the same final reply twice, never two different ones, since the ledger's
 * stored reply is what both send.
 */
import os from 'node:os';
import type { Logger } from '../logging.js';
import type { InvocationLedger } from '../store/store.js';
import { RetryableError, toWorkerError } from './errors.js';
import { errorReply, resultReply, type FinalReply } from './messages.js';
import type { DeferredFinalReply, DeferredReplies, DeferredResult, DeferredSendOutcome, DeferredTicket, FunctionResult } from './plugin.js';

export type { DeferredFinalReply, DeferredReplies, DeferredResult, DeferredSendOutcome, DeferredTicket } from './plugin.js';

export const DEFERRED: DeferredResult = Object.freeze({ deferred: true as const });

export function isDeferred(value: unknown): value is DeferredResult {
  return typeof value === 'object' && value !== null && (value as { deferred?: unknown }).deferred === true;
}

/** Publishes a reply and resolves once the broker confirmed it. */
export type ReplyPublish = (replyTo: string, correlationId: string | undefined, body: Buffer) => Promise<void>;

export interface DeferredRepliesOptions {
  ledger: InvocationLedger;
  publish: ReplyPublish;
  log: Logger;
  host?: string;
}

export class LedgerDeferredReplies implements DeferredReplies {
  private readonly host: string;

  constructor(private readonly opts: DeferredRepliesOptions) {
    this.host = opts.host ?? os.hostname();
  }

  finalReply(ticket: DeferredTicket, outcome: FunctionResult | Error): FinalReply {
    if (outcome instanceof Error) return errorReply(toWorkerError(outcome));
    return resultReply(outcome, {
      packageName: ticket.packageName,
      packageVersion: ticket.packageVersion,
      inputs: ticket.inputs,
      startedAt: ticket.startedAt,
      host: this.host,
    });
  }

  async send(ticket: DeferredTicket, built: DeferredFinalReply): Promise<DeferredSendOutcome> {
    const { ledger, log } = this.opts;
    const id = ticket.invocationId;
    const reply = built as FinalReply;
    let toSend: FinalReply = reply;
    try {
      const entry = await ledger.get(id);
      if (entry?.repliedAt) return 'already-sent';
      if (entry && entry.state !== 'running' && entry.reply) {
        // Finished by an earlier send that was not confirmed: the stored reply is the answer.
        toSend = entry.reply as unknown as FinalReply;
      } else {
        await ledger.finish(id, reply.message_type === 1 ? 'failed' : 'succeeded', reply as unknown as Record<string, unknown>);
      }
    } catch (err) {
      throw new RetryableError(
        `Could not record the final reply of ${id} in the ledger: ${(err as Error).message}`,
        'store_unavailable',
        undefined,
        err,
      );
    }
    if (ticket.replyTo) {
      try {
        await this.opts.publish(ticket.replyTo, ticket.correlationId ?? undefined, Buffer.from(JSON.stringify(toSend)));
      } catch (err) {
        throw new RetryableError(
          `Could not send the final reply of ${id} to ${ticket.replyTo}: ${(err as Error).message}`,
          'reply_failed',
          undefined,
          err,
        );
      }
    }
    try {
      await ledger.markReplied(id);
    } catch (err) {
      // Sent: a later send would publish the same reply once more, nothing worse.
      log.warn(`Could not record the confirmed reply of ${id} in the ledger: ${(err as Error).message}`);
    }
    return 'sent';
  }
}

/**
 * The deferred replies of a worker whose broker publisher is attached later (plugins are
 * set up before the transport exists): a send before then waits for it.
 */
export class LateBoundPublish {
  private publisher: ReplyPublish | undefined;
  private waiters: ((p: ReplyPublish) => void)[] = [];

  readonly publish: ReplyPublish = async (replyTo, correlationId, body) => {
    const p = this.publisher ?? (await new Promise<ReplyPublish>((resolve) => this.waiters.push(resolve)));
    return p(replyTo, correlationId, body);
  };

  attach(publisher: ReplyPublish): void {
    this.publisher = publisher;
    for (const w of this.waiters.splice(0)) w(publisher);
  }

  /** Fails the waiting sends (the worker stops before its broker came up). */
  detach(reason: string): void {
    const failing: ReplyPublish = () => Promise.reject(new Error(reason));
    this.publisher = failing;
    for (const w of this.waiters.splice(0)) w(failing);
  }
}
