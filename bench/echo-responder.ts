/**
 * The reference for the runner-overhead benchmark: a bare amqplib request/reply echo.
 * It consumes a durable queue with the same prefetch as the worker, parses the request
 * body, answers reply_to with a final reply of the contract's shape, and acks. No
 * validation, no ledger, no publisher confirms, no logging: the floor that the broker,
 * amqplib and JSON set on this machine.
 *
 * argv: QUEUE PREFETCH AMQP_URL. Sends "ready" over IPC once consuming.
 */
import amqp from 'amqplib';

const [queue, prefetchText, url] = process.argv.slice(2) as [string, string, string];
const connection = await amqp.connect(url, { noDelay: true });
const channel = await connection.createChannel();
await channel.assertQueue(queue, { durable: true });
await channel.prefetch(Number(prefetchText));
await channel.consume(queue, (msg) => {
  if (!msg) return;
  const request = JSON.parse(msg.content.toString('utf8')) as { inputs?: Record<string, unknown> };
  const reply = {
    message_type: 0,
    message: 'Completed',
    complete: true,
    results: { version: 2, success: true, reason: null, content: { echoed: request.inputs?.text }, raw: null, inputs: request.inputs },
  };
  channel.sendToQueue(String(msg.properties.replyTo), Buffer.from(JSON.stringify(reply)), {
    correlationId: msg.properties.correlationId,
    contentType: 'application/json',
  });
  channel.ack(msg);
});
process.send?.('ready');
process.on('disconnect', () => {
  void connection.close().finally(() => process.exit(0));
});
process.on('SIGTERM', () => {
  void connection.close().finally(() => process.exit(0));
});
