/**
 * The broker topology of a destination, in one place: `worker run`, `worker selftest`
 * and `worker customize` all declare it through {@link declareDestination}, so they can
 * never disagree about a queue's arguments (the broker compares them on every declare).
 *
 * Per destination `D`:
 * - queue `D`, durable, with `x-dead-letter-exchange: D.dlx`;
 * - exchange `D.dlx` (fanout, durable) and queue `D.dead` bound to it, where messages
 *   that can never be processed wait for a person;
 * - queue `D.retry`, durable, without consumers, with `x-dead-letter-exchange: ""` (the
 *   default exchange) and `x-dead-letter-routing-key: D`: a message to be retried later
 *   is published there with a per-message `expiration` (its delay) and, when that runs
 *   out, the broker dead-letters it back to `D`. While it waits it holds no consumer's
 *   prefetch slot. RabbitMQ expires messages only at the head of a queue, so a message
 *   behind one with a longer delay waits for it: a delay is a lower bound, exceeded by
 *   at most the longest delay of the retry policy (backoff.ts, `retry`).
 *
 * `queue_type = quorum` makes all three queues quorum queues (replicated on the cluster's
 * nodes, so losing the node that held a classic queue loses nothing), and gives `D`
 * RabbitMQ's own poison count, `x-delivery-limit`: the broker dead-letters a message
 * delivered more often than that even when the worker cannot count (its store is down,
 * or it crashes before recording the delivery).
 */
import type { Channel, Options } from 'amqplib';
import { TopologyError } from './errors.js';
import type { QueueType } from '../worker-config.js';

export interface TopologyOptions {
  queueType: QueueType;
  /**
   * `max_attempts`. With quorum queues it becomes `x-delivery-limit`: RabbitMQ delivers
   * a message at most this many times plus one (the worker's own `attempts_exhausted`
   * answer needs that last delivery), then dead-letters it.
   */
  maxAttempts: number;
}

/** What a declaration without options means: the classic queues of earlier versions. */
export const CLASSIC_TOPOLOGY: TopologyOptions = { queueType: 'classic', maxAttempts: 5 };

/** The names of a destination's dead-letter exchange and queue. */
export function deadLetterNames(destination: string): { exchange: string; queue: string } {
  return { exchange: `${destination}.dlx`, queue: `${destination}.dead` };
}

/** The name of a destination's retry queue, where messages wait out their retry delay. */
export function retryQueueName(destination: string): string {
  return `${destination}.retry`;
}

/**
 * Declaration options of a queue of the given type. Classic queues carry no
 * `x-queue-type`, exactly as earlier versions declared them, so existing queues stay
 * equivalent. Any further queue of a destination (a retry queue) must be declared
 * through here too, so that it follows `queue_type`.
 */
export function queueOptions(
  queueType: QueueType,
  args: { deadLetterExchange?: string; deadLetterRoutingKey?: string; deliveryLimit?: number; singleActiveConsumer?: boolean } = {},
): Options.AssertQueue {
  const a: Record<string, unknown> = {};
  // '' is a real value here: the default exchange.
  if (args.deadLetterExchange !== undefined) a['x-dead-letter-exchange'] = args.deadLetterExchange;
  if (args.deadLetterRoutingKey !== undefined) a['x-dead-letter-routing-key'] = args.deadLetterRoutingKey;
  if (args.singleActiveConsumer) a['x-single-active-consumer'] = true;
  if (queueType === 'quorum') {
    a['x-queue-type'] = 'quorum';
    if (args.deliveryLimit !== undefined) a['x-delivery-limit'] = args.deliveryLimit;
  }
  return Object.keys(a).length > 0 ? { durable: true, arguments: a } : { durable: true };
}

/** The arguments every declaration of a destination queue must use (the broker compares them). */
export function queueArguments(
  destination: string,
  topology: TopologyOptions = CLASSIC_TOPOLOGY,
  queue: QueueShape = {},
): Options.AssertQueue {
  return queueOptions(topology.queueType, {
    deadLetterExchange: deadLetterNames(destination).exchange,
    deliveryLimit: topology.maxAttempts,
    ...(queue.singleActiveConsumer ? { singleActiveConsumer: true } : {}),
  });
}

/**
 * What sets one queue apart from a plain destination: a plugin's own queue fed by its
 * listeners may want a single active consumer (see PluginQueue).
 */
export interface QueueShape {
  singleActiveConsumer?: boolean;
}

/** Arguments of the dead-letter queue: same type as the work queue, no limit (it is read by people). */
export function deadQueueArguments(topology: TopologyOptions = CLASSIC_TOPOLOGY): Options.AssertQueue {
  return queueOptions(topology.queueType);
}

/**
 * Arguments of the retry queue: same type as the work queue; an expired message goes back
 * to the work queue through the default exchange. No delivery limit: nobody consumes it.
 * A quorum retry queue dead-letters at least once (RabbitMQ keeps the message until the
 * work queue has confirmed it, instead of dropping it should that fail); the broker
 * requires `x-overflow: reject-publish` for that, and a refused publish makes the
 * transport requeue the original instead.
 */
export function retryQueueArguments(destination: string, topology: TopologyOptions = CLASSIC_TOPOLOGY): Options.AssertQueue {
  const options = queueOptions(topology.queueType, { deadLetterExchange: '', deadLetterRoutingKey: destination });
  if (topology.queueType === 'quorum') {
    options.arguments = { ...options.arguments, 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' };
  }
  return options;
}

/**
 * Declares a destination's queue, its dead-letter exchange and queue, and its retry queue. Idempotent.
 * A queue the broker already holds with other arguments fails with a {@link TopologyError}
 * that names the queue, both values and what to do.
 */
export async function declareDestination(
  channel: Channel,
  destination: string,
  topology: TopologyOptions = CLASSIC_TOPOLOGY,
  queue: QueueShape = {},
): Promise<void> {
  const dl = deadLetterNames(destination);
  try {
    await channel.assertExchange(dl.exchange, 'fanout', { durable: true });
    await channel.assertQueue(dl.queue, deadQueueArguments(topology));
    await channel.bindQueue(dl.queue, dl.exchange, '');
    await channel.assertQueue(destination, queueArguments(destination, topology, queue));
    await channel.assertQueue(retryQueueName(destination), retryQueueArguments(destination, topology));
  } catch (err) {
    throw topologyError(err, topology) ?? err;
  }
}

/** `received 'quorum'`, `received none`, `current is the value 'quorum' of type 'longstr'` → the value. */
function argValue(text: string): string | undefined {
  if (text.trim() === 'none') return undefined;
  return /'([^']*)'/.exec(text)?.[1];
}

/**
 * Turns the broker's PRECONDITION_FAILED for an inequivalent queue argument into an
 * error that says what to do; undefined for any other error.
 */
export function topologyError(err: unknown, topology: TopologyOptions): TopologyError | undefined {
  const message = err instanceof Error ? err.message : String(err);
  const m = /inequivalent arg '([^']+)' for queue '([^']+)' in vhost '([^']*)': received (.+?) but current is (.+?)"?$/.exec(message);
  if (!m) return undefined;
  const [, arg, queue, vhost, receivedText, currentText] = m as unknown as [string, string, string, string, string, string];
  const received = argValue(receivedText);
  const current = argValue(currentText);
  const migrate =
    `To migrate: stop the workers and the callers of ${queue}, let it drain (or move its messages, e.g. with a shovel, to a ` +
    `temporary queue), delete ${queue} (rabbitmqctl delete_queue ${queue}${vhost === '/' ? '' : ` -p ${vhost}`}), then start a worker, ` +
    'which declares it anew (or run `worker customize`), and move any saved messages back';
  if (arg === 'x-queue-type') {
    const want = received ?? 'classic';
    const have = current ?? 'classic';
    return new TopologyError(
      `Queue ${queue} (vhost ${vhost}) exists as a ${have} queue, but [worker] queue_type = ${topology.queueType} declares it ${want}; ` +
        `RabbitMQ cannot change the type of an existing queue. Either set queue_type = ${have}, or migrate the queue. ${migrate}`,
      err,
    );
  }
  if (arg === 'x-delivery-limit') {
    return new TopologyError(
      `Queue ${queue} (vhost ${vhost}) was declared with x-delivery-limit ${current ?? 'none'} ([worker] max_attempts then), ` +
        `but max_attempts is now ${topology.maxAttempts}; RabbitMQ keeps a queue's arguments. ` +
        `Either set max_attempts = ${current ?? 'its old value'} again, or migrate the queue. ${migrate}`,
      err,
    );
  }
  return new TopologyError(
    `Queue ${queue} (vhost ${vhost}) exists with ${arg} = ${current ?? 'none'}, but this worker declares ${received ?? 'none'}; ` +
      `it was declared by another program or version. ${migrate}`,
    err,
  );
}
