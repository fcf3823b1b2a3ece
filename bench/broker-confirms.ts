/**
 * The broker's share of the inbound ack latency: a bare amqplib client publishing
 * `count` persistent, mandatory messages the size of a recorded envelope to a queue
 * shaped like `[fn_slack] inbound_queue` (durable, classic, single active consumer) and
 * timing each publisher confirm. The worker acks an envelope only after this confirm,
 * so this is the floor the broker sets under the worker's figure, measured in the same
 * run, with the same spacing as the Slack burst. Nothing consumes the probe queue
 * (the worker's consumer holds recorded envelopes out the reorder window anyway).
 */
import amqp from 'amqplib';
import { AMQP_URL, deleteDestination, uniqueName } from '../test/support/harness.js';
import { sleep } from './common.js';

/** Confirm latency (ms) of each of `count` publishes of `body`, sent `spacingMs` apart (0: in one synchronous loop). */
export async function brokerConfirmLatencies(body: Buffer, count: number, spacingMs: number): Promise<number[]> {
  const queue = uniqueName('bench_inbound_probe');
  const connection = await amqp.connect(AMQP_URL, { noDelay: true });
  connection.on('error', () => undefined);
  try {
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(queue, { durable: true, arguments: { 'x-single-active-consumer': true } });
    const latencies: number[] = [];
    const confirms: Promise<void>[] = [];
    const publish = (i: number) => {
      const sentAt = performance.now();
      confirms.push(
        new Promise<void>((resolve, reject) => {
          channel.publish('', queue, body, { persistent: true, mandatory: true, messageId: `probe-${i}`, contentType: 'application/json' }, (err) => {
            if (err) return reject(err instanceof Error ? err : new Error(String(err)));
            latencies.push(performance.now() - sentAt);
            resolve();
          });
        }),
      );
    };
    const started = performance.now();
    let sent = 0;
    while (sent < count) {
      const due = spacingMs > 0 ? Math.min(count, Math.floor((performance.now() - started) / spacingMs) + 1) : count;
      while (sent < due) publish(sent++);
      if (sent < count) await sleep(Math.max(0, started + sent * spacingMs - performance.now()));
    }
    await Promise.all(confirms);
    await channel.close();
    return latencies;
  } finally {
    await connection.close().catch(() => undefined);
    await deleteDestination(queue);
  }
}
