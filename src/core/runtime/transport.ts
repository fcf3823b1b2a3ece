/**
 * The contract between a source of work and the runner.
 *
 * A transport hands the runner one {@link Delivery} at a time and does what the returned
 * {@link Disposition} says. The runner knows nothing else about where work comes from:
 * the AMQP transport (amqp-transport.ts) is one implementation; another source (Slack
 * envelopes) can feed the same runner by implementing {@link Transport}.
 */
import type { Reply, RequestEnvelope } from './messages.js';

/** One request message as the transport hands it over. */
export interface Delivery extends RequestEnvelope {
  /** The queue (or other named source) it came from. */
  destination: string;
  /**
   * True when this message may have been handled before: the broker's redelivered flag,
   * or a copy the transport itself put back for a delayed retry.
   */
  redelivered: boolean;
  /**
   * Publishes a reply to the caller's `reply_to` with its `correlation_id` and resolves
   * once it is confirmed. Resolves at once when there is no `reply_to`.
   */
  reply(payload: Reply): Promise<void>;
  /**
   * Publishes a progress message without waiting for its confirm: resolves once it is
   * on its way, ahead of anything sent after it (order is kept); a refusal after that
   * is the transport's to log. Optional: without it progress goes through `reply`.
   */
  progress?(payload: Reply): Promise<void>;
  /**
   * Why replies to this delivery's `reply_to` can never be delivered (a name the broker
   * refuses, a queue that does not exist), or undefined when they may be (or there is no
   * `reply_to`, or the transport could not ask). Optional: without it nothing is refused.
   */
  checkReplyTo?(): Promise<string | undefined>;
}

/** Hand the message back after at least `retryAfterMs`, without holding a consumer slot meanwhile. */
export interface RetryLater {
  retryAfterMs: number;
}

/**
 * What the transport does with a message once the runner is done with it:
 * - `ack`: done, forget it;
 * - `requeue`: hand it back now (to this or another consumer);
 * - `dead-letter`: park it where a person finds it;
 * - {@link RetryLater}: hand it back after a delay. The transport must not keep the
 *   message in flight while it waits (AMQP: a retry queue with a per-message TTL).
 */
export type Disposition = 'ack' | 'requeue' | 'dead-letter' | RetryLater;

export function isRetryLater(d: Disposition): d is RetryLater {
  return typeof d === 'object';
}

/** `ack`, `requeue`, `dead-letter` or `retry-later (N ms)`, for logs. */
export function describeDisposition(d: Disposition): string {
  return isRetryLater(d) ? `retry-later (${d.retryAfterMs} ms)` : d;
}

export type DeliveryHandler = (delivery: Delivery) => Promise<Disposition>;

/** Events a transport reports (metrics, readiness): its link to the source of work. */
export type TransportEvent = 'connected' | 'disconnected' | 'reconnected';

/** How a listener's message is submitted (see {@link Transport.submit}). */
export interface SubmitProps {
  /** Its idempotency key, as a caller's `message_id`. */
  messageId: string;
  /** Messages with one key are handled one after another, in order. */
  orderingKey?: string | undefined;
  /** Its position within its ordering key, when the source knows one. */
  orderingSeq?: number | undefined;
}

export interface Transport {
  /** Starts delivering to `handler`. Rejects when the source cannot be reached at first. */
  start(handler: DeliveryHandler): Promise<void>;
  /**
   * Adds a message a plugin's listener received to one of the plugin's own queues that
   * this transport consumes; resolves once it is stored durably.
   */
  submit(queue: string, body: Buffer, props: SubmitProps): Promise<void>;
  /** No new deliveries; those in flight may still reply and be settled. */
  stopConsuming(): Promise<void>;
  /** Closes everything; unsettled deliveries go back to their source. */
  close(): Promise<void>;
  /** Why the transport cannot take work now (for `/readyz`), or undefined when it can. */
  readinessProblem(): string | undefined;
  on(event: TransportEvent, listener: (...args: unknown[]) => void): unknown;
}
