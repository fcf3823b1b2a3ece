/**
 * The AMQP 0-9-1 transport (amqplib): consumes each destination's queue and publishes
 * replies on a confirm channel.
 *
 * Topology per destination `D` (declared idempotently, also by `worker customize`):
 * - queue `D`, durable, with `x-dead-letter-exchange: D.dlx`;
 * - exchange `D.dlx` (fanout, durable) and queue `D.dead` bound to it, where messages
 *   that can never be processed wait for a person.
 *
 * Connection loss: the transport reconnects with capped exponential backoff (with
 * jitter, so several workers do not reconnect in lock-step), redeclares, and consumes
 * again. Deliveries from the lost channel cannot be acked any more; the broker
 * redelivers them and the ledger answers the ones that had finished.
 */
import fs from 'node:fs';
import os from 'node:os';
import { EventEmitter } from 'node:events';
import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { ConfigError, type Disposition } from './errors.js';
import type { Logger } from './logging.js';
import type { Reply } from './messages.js';
import { redact } from './redact.js';
import type { Delivery } from './runner.js';

export interface TransportTls {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

export interface AmqpTransportOptions {
  url: string;
  destinations: string[];
  /** Prefetch: how many deliveries may be unacked (in flight) at once. */
  prefetch: number;
  log: Logger;
  tls?: TransportTls;
  /** Cap of the reconnect backoff, in milliseconds. */
  reconnectMaxDelayMs?: number;
  /** First reconnect delay; doubles each failed try. */
  reconnectInitialDelayMs?: number;
}

export type DeliveryHandler = (delivery: Delivery) => Promise<Disposition>;

/** The names of a destination's dead-letter exchange and queue. */
export function deadLetterNames(destination: string): { exchange: string; queue: string } {
  return { exchange: `${destination}.dlx`, queue: `${destination}.dead` };
}

/** The arguments every declaration of a destination queue must use (the broker compares them). */
export function queueArguments(destination: string): Options.AssertQueue {
  return { durable: true, arguments: { 'x-dead-letter-exchange': deadLetterNames(destination).exchange } };
}

/** Declares a destination's queue and its dead-letter exchange and queue. Idempotent. */
export async function declareDestination(channel: Channel, destination: string): Promise<void> {
  const dl = deadLetterNames(destination);
  await channel.assertExchange(dl.exchange, 'fanout', { durable: true });
  await channel.assertQueue(dl.queue, { durable: true });
  await channel.bindQueue(dl.queue, dl.exchange, '');
  await channel.assertQueue(destination, queueArguments(destination));
}

/** Reads a TLS file named by a `[worker]` key; a failure names the key and the file. */
function readTlsFile(key: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(`[worker] ${key}: cannot read ${file} (${code})`, err);
  }
}

/**
 * Socket options for amqplib: Nagle off (request/reply is latency-bound) and the TLS
 * files (used by amqplib for `amqps://` URLs): the CA that signed the broker's
 * certificate, and the client certificate and key when the broker asks for one.
 */
export function socketOptions(tls?: TransportTls): Record<string, unknown> {
  const opts: Record<string, unknown> = { noDelay: true, timeout: 10_000 };
  if (tls?.caFile) opts.ca = [readTlsFile('ca_file', tls.caFile)];
  if (tls?.certFile) opts.cert = readTlsFile('cert_file', tls.certFile);
  if (tls?.keyFile) opts.key = readTlsFile('key_file', tls.keyFile);
  return opts;
}

/**
 * The name this process gives its broker connection (AMQP client property
 * `connection_name`): the broker shows it in `rabbitmqctl list_connections
 * client_properties` and the management UI, so an operator (or a test) can tell which
 * worker, on which host, a connection belongs to, and close that one alone.
 * `purpose` tells the short-lived connections of other commands apart from `worker run`'s.
 */
export function connectionName(purpose?: string): string {
  return `worker@${os.hostname()} pid ${process.pid}${purpose ? ` (${purpose})` : ''}`;
}

/** Opens a connection with the worker's socket options, its name, and an error handler attached. */
export async function openConnection(url: string, tls: TransportTls | undefined, log: Logger, purpose?: string): Promise<ChannelModel> {
  const connection = await amqp.connect(url, { ...socketOptions(tls), clientProperties: { connection_name: connectionName(purpose) } });
  connection.on('error', (err: Error) => log.warn(`Broker connection error: ${redact(err.message)}`));
  return connection;
}

interface Session {
  connection: ChannelModel;
  consumeChannel: Channel;
  replyChannel: ConfirmChannel;
  consumerTags: string[];
  closed: boolean;
}

/**
 * Events: `connected` (after the first connect and after each reconnect), `reconnected`
 * (total reconnects so far; after the `connected` of a reconnect), `disconnected` (err),
 * `reconnect-scheduled` ({attempt, delayMs}), `consumer-cancelled` (destination).
 */
export class AmqpTransport extends EventEmitter {
  private session: Session | undefined;
  private handler: DeliveryHandler | undefined;
  private stopped = false;
  private consuming = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempt = 0;
  private connecting: Promise<void> | undefined;
  reconnects = 0;

  constructor(private readonly opts: AmqpTransportOptions) {
    super();
  }

  get connected(): boolean {
    return Boolean(this.session && !this.session.closed);
  }

  /** True between `start` and `stopConsuming`/`close`: deliveries are wanted. */
  get isConsuming(): boolean {
    return this.consuming;
  }

  /** Connects, declares the topology and starts consuming. Rejects if the first connect fails. */
  async start(handler: DeliveryHandler): Promise<void> {
    this.handler = handler;
    this.consuming = true;
    await this.connect();
  }

  /** Cancels the consumers: no new deliveries; in-flight ones can still reply and ack. */
  async stopConsuming(): Promise<void> {
    this.consuming = false;
    const s = this.session;
    if (!s || s.closed) return;
    for (const tag of s.consumerTags) {
      try {
        await s.consumeChannel.cancel(tag);
      } catch (err) {
        this.opts.log.debug(`Cancelling consumer ${tag} failed: ${(err as Error).message}`);
      }
    }
    s.consumerTags = [];
  }

  /** Closes everything; no reconnect afterwards. Unacked deliveries go back to their queues. */
  async close(): Promise<void> {
    this.stopped = true;
    this.consuming = false;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const s = this.session;
    this.session = undefined;
    if (s && !s.closed) {
      s.closed = true;
      try {
        await s.connection.close();
      } catch (err) {
        this.opts.log.debug(`Closing the broker connection: ${(err as Error).message}`);
      }
    }
  }

  private async connect(): Promise<void> {
    if (this.connecting) return this.connecting;
    this.connecting = this.openSession().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async openSession(): Promise<void> {
    const { log } = this.opts;
    const connection = await openConnection(this.opts.url, this.opts.tls, log);
    const session: Session = {
      connection,
      consumeChannel: undefined as unknown as Channel,
      replyChannel: undefined as unknown as ConfirmChannel,
      consumerTags: [],
      closed: false,
    };
    connection.on('close', (err?: Error) => this.onConnectionLost(session, err));
    try {
      const consumeChannel = await connection.createChannel();
      consumeChannel.on('error', (err: Error) => log.warn(`Consumer channel error: ${redact(err.message)}`));
      // A channel-level error (e.g. PRECONDITION_FAILED on an ack) closes only the channel:
      // treat it as a lost connection so everything is rebuilt consistently.
      consumeChannel.on('close', () => {
        if (!session.closed) void connection.close().catch(() => undefined);
      });
      const replyChannel = await connection.createConfirmChannel();
      replyChannel.on('error', (err: Error) => log.warn(`Reply channel error: ${redact(err.message)}`));
      replyChannel.on('close', () => {
        if (!session.closed) void connection.close().catch(() => undefined);
      });
      session.consumeChannel = consumeChannel;
      session.replyChannel = replyChannel;
      await consumeChannel.prefetch(this.opts.prefetch);
      for (const destination of this.opts.destinations) await declareDestination(consumeChannel, destination);
      this.session = session;
      if (this.consuming) await this.consumeAll(session);
    } catch (err) {
      session.closed = true;
      await connection.close().catch(() => undefined);
      throw err;
    }
    this.reconnectAttempt = 0;
    log.info(`Connected to the broker ${redact(this.opts.url)}; consuming ${this.opts.destinations.join(', ')}`);
    this.emit('connected');
  }

  private async consumeAll(session: Session): Promise<void> {
    for (const destination of this.opts.destinations) {
      const { consumerTag } = await session.consumeChannel.consume(
        destination,
        (msg) => {
          if (msg === null) {
            // The broker cancelled the consumer (queue deleted, node failover): rebuild.
            this.opts.log.warn(`The broker cancelled the consumer of ${destination}; reconnecting`);
            this.emit('consumer-cancelled', destination);
            if (!session.closed) void session.connection.close().catch(() => undefined);
            return;
          }
          void this.dispatch(session, destination, msg);
        },
        { noAck: false },
      );
      session.consumerTags.push(consumerTag);
    }
  }

  private async dispatch(session: Session, destination: string, msg: ConsumeMessage): Promise<void> {
    const props = msg.properties;
    const delivery: Delivery = {
      body: msg.content,
      messageId: props.messageId ? String(props.messageId) : undefined,
      correlationId: props.correlationId ? String(props.correlationId) : undefined,
      replyTo: props.replyTo ? String(props.replyTo) : undefined,
      destination,
      redelivered: msg.fields.redelivered,
      reply: (payload) => this.publishReply(session, props.replyTo, props.correlationId, payload),
    };
    let disposition: Disposition;
    try {
      disposition = this.handler ? await this.handler(delivery) : 'requeue';
    } catch (err) {
      this.opts.log.error(`Unexpected error handling a delivery: ${redact((err as Error).message)}`);
      disposition = 'requeue';
    }
    if (session.closed) return; // the broker redelivers it on the new connection
    try {
      if (disposition === 'ack') session.consumeChannel.ack(msg);
      else if (disposition === 'requeue') session.consumeChannel.nack(msg, false, true);
      else session.consumeChannel.nack(msg, false, false);
    } catch (err) {
      this.opts.log.warn(`Could not ${disposition} a delivery: ${(err as Error).message}`);
    }
  }

  /**
   * Publishes on the delivery's own session's confirm channel and resolves when the
   * broker confirms. If that session is gone, the reply is not sent on a newer one:
   * the request could not be acked anyway, so the broker redelivers it and the ledger
   * answers it then, which keeps it to one final reply.
   */
  private async publishReply(session: Session, replyTo: unknown, correlationId: unknown, payload: Reply): Promise<void> {
    if (!replyTo) return;
    if (session.closed) throw new Error('the broker connection this request came on is closed');
    const body = Buffer.from(JSON.stringify(payload));
    await new Promise<void>((resolve, reject) => {
      try {
        session.replyChannel.publish(
          '',
          String(replyTo),
          body,
          {
            correlationId: correlationId === undefined ? undefined : String(correlationId),
            contentType: 'application/json',
            persistent: true,
          },
          (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
        );
      } catch (err) {
        reject(err as Error);
      }
    });
  }

  private onConnectionLost(session: Session, err?: Error): void {
    const wasCurrent = this.session === session;
    session.closed = true;
    if (wasCurrent) this.session = undefined;
    if (this.stopped || !wasCurrent) return;
    this.opts.log.warn(`Lost the broker connection${err ? `: ${redact(err.message)}` : ''}`);
    this.emit('disconnected', err);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    this.reconnectAttempt++;
    const initial = this.opts.reconnectInitialDelayMs ?? 250;
    const cap = this.opts.reconnectMaxDelayMs ?? 30_000;
    const base = Math.min(cap, initial * 2 ** (this.reconnectAttempt - 1));
    // ±20 % jitter: workers that lost the same broker do not come back in lock-step.
    const delayMs = Math.round(base * (0.8 + Math.random() * 0.4));
    this.emit('reconnect-scheduled', { attempt: this.reconnectAttempt, delayMs });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().then(
        () => {
          this.reconnects++;
          this.emit('reconnected', this.reconnects);
        },
        (err: Error) => {
          this.opts.log.warn(`Reconnect attempt ${this.reconnectAttempt} failed: ${redact(err.message)}`);
          this.scheduleReconnect();
        },
      );
    }, delayMs);
  }
}
