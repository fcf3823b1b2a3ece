/**
 * The copy of a request that waits in its destination's retry queue (amqp-topology.ts).
 *
 * The copy must be the same request to everyone who looks at it: the same body,
 * `message_id` (the ledger's key, so the attempt count carries on), `correlation_id`,
 * `reply_to` and the caller's headers. It differs in three ways:
 * - `expiration` is the retry delay (the broker removes it when it dead-letters the copy
 *   back to the work queue, so the copy does not expire there);
 * - the broker's own dead-lettering headers (`x-death`…) and a quorum queue's
 *   `x-delivery-count` are dropped: they describe the original's trip, and a client
 *   must not forge them;
 * - the header {@link RETRY_HEADER} marks it as a copy. A copy may reach the worker after
 *   the original was handled (the worker stopped between publishing the copy and acking
 *   the original, so both came back), so it is treated like a broker redelivery: the
 *   ledger answers it, and a caller already answered is not answered twice.
 *
 * `user_id` is not copied: RabbitMQ refuses a `user_id` other than the publishing
 * connection's user, and nothing in the worker reads it.
 */
import type { MessageProperties, Options } from 'amqplib';

/** Marks a message the worker put in a retry queue; its value identifies the publish. */
export const RETRY_HEADER = 'x-worker-retry';

/** Headers the broker sets on its own, which a republished copy must not carry. */
const BROKER_HEADERS = new Set([
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-delivery-count',
]);

/** True when the message is a retry copy the worker published (see {@link RETRY_HEADER}). */
export function isRetryCopy(headers: Record<string, unknown> | undefined): boolean {
  return headers !== undefined && headers[RETRY_HEADER] !== undefined;
}

/** The publish options of the retry copy of a message with `props`, waiting `delayMs`. */
export function retryCopyOptions(props: MessageProperties, delayMs: number, token: string): Options.Publish {
  const headers: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(props.headers ?? {})) {
    if (!BROKER_HEADERS.has(key)) headers[key] = value;
  }
  headers[RETRY_HEADER] = token;
  const options: Options.Publish = {
    persistent: true,
    mandatory: true,
    expiration: String(Math.max(0, Math.round(delayMs))),
    headers,
  };
  if (props.messageId !== undefined) options.messageId = props.messageId;
  if (props.correlationId !== undefined) options.correlationId = props.correlationId;
  if (props.replyTo !== undefined) options.replyTo = props.replyTo;
  if (props.contentType !== undefined) options.contentType = props.contentType;
  if (props.contentEncoding !== undefined) options.contentEncoding = props.contentEncoding;
  if (props.priority !== undefined) options.priority = props.priority;
  if (props.timestamp !== undefined) options.timestamp = props.timestamp;
  if (props.type !== undefined) options.type = props.type;
  if (props.appId !== undefined) options.appId = props.appId;
  return options;
}
