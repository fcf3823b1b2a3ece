/**
 * The caller side of the message contract, as `worker invoke` uses it: publish one
 * invocation, collect progress messages, return the final reply.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../logging.js';
import type { FinalReply, ProgressReply, Reply } from '../runtime/messages.js';
import { openConnection, type TransportTls } from '../runtime/amqp-transport.js';
import { WorkerError } from '../runtime/errors.js';
import { redact } from '../redact.js';

export interface InvokeOptions {
  url: string;
  tls?: TransportTls;
  destination: string;
  functionName: string;
  inputs: Record<string, unknown>;
  timeoutMs: number;
  log: Logger;
  messageId?: string;
  principal?: string;
  onProgress?: (reply: ProgressReply) => void;
  /** Told about something the caller should know but that does not stop the call. */
  onWarning?: (message: string) => void;
}

/** Publishes one invocation and resolves with its final reply (result or error). */
export async function invokeFunction(opts: InvokeOptions): Promise<FinalReply> {
  let connection;
  try {
    connection = await openConnection(opts.url, opts.tls, opts.log, undefined, 'invoke');
  } catch (err) {
    throw new WorkerError(`Cannot connect to the broker ${redact(opts.url)}: ${redact((err as Error).message)}`, {
      code: 'broker_unavailable',
      retryable: true,
    });
  }
  try {
    const channel = await connection.createConfirmChannel();
    channel.on('error', () => undefined);
    let consumers: number;
    try {
      consumers = (await channel.checkQueue(opts.destination)).consumerCount;
    } catch {
      throw new WorkerError(
        `Message destination ${opts.destination} does not exist on the broker; start a worker for it or run \`worker customize\``,
        { code: 'unknown_destination' },
      );
    }
    // The queue keeps the invocation until a worker starts, so this is not an error; but
    // without the warning a caller only learns it from a timeout.
    if (consumers === 0) {
      opts.onWarning?.(
        `no worker consumes ${opts.destination} right now: the invocation waits there until one starts ` +
          `(is \`worker run\` running with this destination in [worker] destinations?)`,
      );
    }
    const replyQueue = (await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false })).queue;
    const correlationId = randomUUID();
    const messageId = opts.messageId ?? randomUUID();
    const final = new Promise<FinalReply>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new WorkerError(
              `No final reply within ${opts.timeoutMs / 1000}s (invocation ${messageId}): the worker may still be working on it, ` +
                `or none has taken it from ${opts.destination} yet; wait longer with --timeout SECONDS, or look for the invocation id in the worker's log`,
              { code: 'timeout', retryable: true },
            ),
          ),
        opts.timeoutMs,
      );
      channel
        .consume(
          replyQueue,
          (msg) => {
            if (!msg) return;
            if (msg.properties.correlationId !== correlationId) return;
            let reply: Reply;
            try {
              reply = JSON.parse(msg.content.toString('utf8')) as Reply;
            } catch {
              return;
            }
            if (reply.complete) {
              clearTimeout(timer);
              resolve(reply);
            } else {
              opts.onProgress?.(reply);
            }
          },
          { noAck: true },
        )
        .catch(reject);
    });
    const body = {
      function: { name: opts.functionName },
      inputs: opts.inputs,
      workflow: { programmatic_name: 'worker_invoke' },
      workflow_instance: { workflow_instance_id: 0 },
      principal: { name: opts.principal ?? process.env.USER ?? 'worker-invoke' },
    };
    await new Promise<void>((resolve, reject) =>
      channel.publish(
        '',
        opts.destination,
        Buffer.from(JSON.stringify(body)),
        { messageId, correlationId, replyTo: replyQueue, contentType: 'application/json', persistent: true },
        (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
      ),
    );
    return await final;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/**
 * Parses `--input key=value` pairs. A value that is valid JSON (a number, true, an
 * object) is taken as JSON, anything else as a string: `incident_id=2103` is a number,
 * `slack_channel=inc-2103` a string, `slack_text='"42"'` the string "42". Inputs named
 * in `textInputs` (the function's schema says `string`) keep any other value verbatim:
 * `slack_text={"title": …}` is that text, `slack_text=42` the text "42".
 */
export function parseInputPairs(pairs: string[], textInputs: ReadonlySet<string> = new Set()): Record<string, unknown> {
  const inputs: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new WorkerError(`--input ${pair}: write it as name=value`, { code: 'invalid_arguments' });
    const key = pair.slice(0, eq).trim();
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    // A text input takes the value as written: a JSON container given as slack_text
    // stays the text the function parses, instead of becoming an object it refuses.
    // A quoted JSON string still gives its content, as for any other input.
    if (textInputs.has(key) && typeof value !== 'string') value = raw;
    inputs[key] = value;
  }
  return inputs;
}
