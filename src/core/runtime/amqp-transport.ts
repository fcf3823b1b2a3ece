/**
 * The AMQP 0-9-1 transport (amqplib): consumes each destination's queue and publishes
 * replies on a confirm channel of a separate connection ({@link ReplyPublisher}), so
 * that a reply the broker punishes by closing its connection cannot close the consumers.
 *
 * Topology per destination: see amqp-topology.ts (declared idempotently, also by
 * `worker customize` and `worker selftest`).
 *
 * Delayed retries ({@link RetryLater}): the message's copy (amqp-retry.ts) is published
 * to the destination's retry queue on a confirm channel of the consuming connection,
 * and the original is acked only once the broker has confirmed the copy. The broker
 * dead-letters the copy back to the work queue when its delay runs out. Meanwhile the
 * message holds no prefetch slot. If the copy cannot be published, the original is
 * requeued at once instead (its attempts are still counted by the ledger); if the
 * connection is lost in between, the broker redelivers the original, and the copy,
 * should it exist too, is answered from the ledger.
 *
 * Heartbeat: the transport asks for `[worker] heartbeat` seconds; amqplib closes a
 * connection the broker has been silent on for two of them, which starts a reconnect.
 * {@link AmqpTransport.readinessProblem} lets `/readyz` fail after one.
 *
 * A SQLite store is for one worker: with `exclusive`, each queue is consumed with
 * AMQP's `exclusive` flag (RabbitMQ refuses a second consumer with ACCESS_REFUSED, with
 * no race) and the consumer count is checked before and after consuming (quorum queues
 * of RabbitMQ 3.x accept the flag but do not enforce it).
 *
 * Connection loss: the transport reconnects with capped exponential backoff (with
 * jitter, so several workers do not reconnect in lock-step), redeclares, and consumes
 * again. Deliveries from the lost channel cannot be acked any more; the broker
 * redelivers them and the ledger answers the ones that had finished.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { BACKOFF, backoffDelay } from '../backoff.js';
import { RequestConnectionLostError, TopologyError } from './errors.js';
import type { Logger } from '../logging.js';
import type { Reply } from './messages.js';
import { redact } from '../redact.js';
import { ReplyPublisher } from './reply-publisher.js';
import { isRetryCopy, RETRY_HEADER, retryCopyOptions } from './amqp-retry.js';
import {
  describeDisposition,
  isRetryLater,
  type Delivery,
  type DeliveryHandler,
  type Disposition,
  type RetryLater,
  type SubmitProps,
  type Transport,
} from './transport.js';
import {
  connectionName,
  connectTimeoutMs,
  DEFAULT_HEARTBEAT_SECONDS,
  openConnection,
  silentForMs,
  socketOptions,
  urlWithHeartbeat,
  type TransportTls,
} from './amqp-connection.js';
import { OrderedDispatch } from './ordered-dispatch.js';
import { CLASSIC_TOPOLOGY, declareDestination, retryQueueName, type QueueShape, type TopologyOptions } from './amqp-topology.js';

// Connection and topology live in their own modules; re-exported for existing imports.
export { connectionName, openConnection, socketOptions, type TransportTls } from './amqp-connection.js';
export { deadLetterNames, declareDestination, queueArguments, retryQueueName } from './amqp-topology.js';

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
  /** AMQP heartbeat asked of the broker, seconds (`[worker] heartbeat`). */
  heartbeatSeconds?: number;
  /** Queue type and delivery limit of the declared queues (`[worker] queue_type`, `max_attempts`). */
  topology?: TopologyOptions;
  /**
   * Consume each queue alone (a worker with a SQLite store): refuse to start when the
   * queue has another consumer. The text says why and what to do instead; it ends the
   * error message.
   */
  exclusive?: { why: string };
  /**
   * Queues of the plugins' own (fed by their listeners through {@link AmqpTransport.submit}),
   * declared and consumed like the destinations.
   */
  pluginQueues?: ({ name: string; reorderWindowMs?: number; prefetch?: number } & QueueShape)[];
}

/**
 * The AMQP header that names a message's ordering key (see SubmitOptions.orderingKey):
 * deliveries with one key are handled one after another, in delivery order.
 */
export const ORDERING_KEY_HEADER = 'x-worker-ordering-key';
/** The AMQP header of a message's sequence number within its ordering key (see OrderedDispatch). */
export const ORDERING_SEQ_HEADER = 'x-worker-ordering-seq';

interface Session {
  connection: ChannelModel;
  consumeChannel: Channel;
  /** Publishes retry copies, confirmed, on the consuming connection. */
  retryChannel: ConfirmChannel;
  /** Retry copies the broker returned as unroutable (their retry queue is gone), by token. */
  returned: Set<string>;
  consumerTags: string[];
  closed: boolean;
}

/**
 * Events: `connected` (after the first connect and after each reconnect), `reconnected`
 * (total reconnects so far; after the `connected` of a reconnect), `disconnected` (err).
 */
export class AmqpTransport extends EventEmitter implements Transport {
  private session: Session | undefined;
  private handler: DeliveryHandler | undefined;
  private stopped = false;
  private consuming = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempt = 0;
  private connecting: Promise<void> | undefined;
  private reconnects = 0;
  private readonly replies: ReplyPublisher;
  /** Publishes what listeners submit, on a confirm channel of its own connection. */
  private readonly submits: ReplyPublisher;
  /** Deliveries with an ordering key, handled in order per key (see ORDERING_KEY_HEADER). */
  private readonly ordered = new OrderedDispatch();

  constructor(private readonly opts: AmqpTransportOptions) {
    super();
    this.replies = new ReplyPublisher({
      // No 'error' logger here: the publisher reports its connection's failures, rate-limited.
      connect: () => {
        const heartbeat = opts.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS;
        return amqp.connect(urlWithHeartbeat(opts.url, heartbeat), {
          ...socketOptions(opts.tls, connectTimeoutMs(heartbeat)),
          clientProperties: { connection_name: connectionName('replies') },
        });
      },
      log: opts.log,
    });
    this.submits = new ReplyPublisher({
      connect: () => {
        const heartbeat = opts.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS;
        return amqp.connect(urlWithHeartbeat(opts.url, heartbeat), {
          ...socketOptions(opts.tls, connectTimeoutMs(heartbeat)),
          clientProperties: { connection_name: connectionName('submits') },
        });
      },
      log: opts.log,
    });
  }

  /** Every queue consumed: the destinations, then the plugins' own queues. */
  private queues(): ({ name: string; prefetch?: number } & QueueShape)[] {
    return [...this.opts.destinations.map((name) => ({ name })), ...(this.opts.pluginQueues ?? [])];
  }

  /**
   * Publishes a message a listener submits to one of the plugin queues, persistent, and
   * resolves once the broker has confirmed it (and a queue took it). `orderingKey`
   * travels in {@link ORDERING_KEY_HEADER}.
   */
  async submit(
    queue: string,
    body: Buffer,
    props: SubmitProps,
  ): Promise<void> {
    if (!(this.opts.pluginQueues ?? []).some((q) => q.name === queue)) {
      throw new Error(`${queue} is not a queue of a loaded plugin; submit only to the queues the plugin declares`);
    }
    const headers: Record<string, string> = {};
    if (props.orderingKey) headers[ORDERING_KEY_HEADER] = props.orderingKey;
    if (props.orderingKey && props.orderingSeq !== undefined && Number.isFinite(props.orderingSeq)) {
      headers[ORDERING_SEQ_HEADER] = String(props.orderingSeq);
    }
    await this.submits.publishToQueue(queue, body, { messageId: props.messageId, headers });
  }

  get connected(): boolean {
    return Boolean(this.session && !this.session.closed);
  }

  /** The heartbeat asked of the broker, seconds. */
  private get heartbeatSeconds(): number {
    return this.opts.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS;
  }

  /** Milliseconds since the broker last sent anything on the current connection; 0 when not connected. */
  private brokerSilentMs(now = Date.now()): number {
    const s = this.session;
    return s && !s.closed ? silentForMs(s.connection, now) : 0;
  }

  readinessProblem(): string | undefined {
    if (!this.connected) return 'not connected to the broker';
    if (!this.consuming) return 'not consuming (stopping)';
    // A blackholed connection looks connected until the heartbeat gives up on it (two
    // heartbeats); one heartbeat of silence is already a missed beat.
    const silentMs = this.brokerSilentMs();
    if (silentMs > this.heartbeatSeconds * 1000) {
      return `the broker has been silent for ${(silentMs / 1000).toFixed(1)} s (heartbeat ${this.heartbeatSeconds} s)`;
    }
    return undefined;
  }

  /**
   * Publishes a reply outside any delivery (a deferred invocation's final reply) on the
   * reply connection; resolves once the broker confirmed it.
   */
  publishDeferredReply(replyTo: string, correlationId: string | undefined, body: Buffer): Promise<void> {
    return this.replies.publish(replyTo, correlationId, body);
  }

  /** Connects, declares the topology and starts consuming. Rejects if the first connect fails. */
  async start(handler: DeliveryHandler): Promise<void> {
    this.handler = handler;
    this.consuming = true;
    await this.connect();
    // Listeners start next and submit at once: the first submits must not wait for a
    // connection to open (a receiver that lags behind another records out of order).
    if (this.opts.pluginQueues?.length) await this.submits.warm();
  }

  /** Cancels the consumers: no new deliveries; in-flight ones can still reply and ack. */
  async stopConsuming(): Promise<void> {
    this.consuming = false;
    // Held deliveries run now: a stopping runner hands them back to the broker.
    this.ordered.flush();
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
    await this.replies.close();
    await this.submits.close();
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
    const connection = await openConnection(this.opts.url, this.opts.tls, log, this.heartbeatSeconds);
    const session: Session = {
      connection,
      consumeChannel: undefined as unknown as Channel,
      retryChannel: undefined as unknown as ConfirmChannel,
      returned: new Set(),
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
      session.consumeChannel = consumeChannel;
      const retryChannel = await connection.createConfirmChannel();
      retryChannel.on('error', (err: Error) => log.warn(`Retry channel error: ${redact(err.message)}`));
      retryChannel.on('close', () => {
        if (!session.closed) void connection.close().catch(() => undefined);
      });
      retryChannel.on('return', (msg: ConsumeMessage) => {
        const token = msg.properties.headers?.[RETRY_HEADER];
        if (typeof token === 'string') session.returned.add(token);
      });
      session.retryChannel = retryChannel;
      await consumeChannel.prefetch(this.opts.prefetch);
      const topology = this.opts.topology ?? CLASSIC_TOPOLOGY;
      for (const q of this.queues()) await declareDestination(consumeChannel, q.name, topology, q);
      if (this.consuming) await this.consumeAll(session);
      // Only a session that consumes is current: a failure above (a refused consume closes
      // the channel, hence the connection) must not also schedule a reconnect of its own.
      this.session = session;
    } catch (err) {
      session.closed = true;
      await connection.close().catch(() => undefined);
      throw err;
    }
    this.reconnectAttempt = 0;
    const how = [
      `${(this.opts.topology ?? CLASSIC_TOPOLOGY).queueType} queues`,
      `heartbeat ${this.heartbeatSeconds} s`,
      ...(this.opts.exclusive ? ['alone (no other consumer: SQLite store)'] : []),
    ];
    log.info(`Connected to the broker ${redact(this.opts.url)}; consuming ${this.queues().map((q) => q.name).join(', ')} (${how.join(', ')})`);
    this.emit('connected');
  }

  private async consumeAll(session: Session): Promise<void> {
    const exclusive = this.opts.exclusive;
    for (const { name: destination, singleActiveConsumer, prefetch } of this.queues()) {
      if (exclusive) await this.ensureNoOtherConsumer(session, destination, 0);
      // Per consumer (amqplib's default): applies to the consumers created after it.
      await session.consumeChannel.prefetch(prefetch ?? this.opts.prefetch);
      let consumerTag: string;
      try {
        ({ consumerTag } = await session.consumeChannel.consume(
          destination,
          (msg) => {
            if (msg === null) {
              // The broker cancelled the consumer (queue deleted, node failover): rebuild.
              this.opts.log.warn(`The broker cancelled the consumer of ${destination}; reconnecting`);
              if (!session.closed) void session.connection.close().catch(() => undefined);
              return;
            }
            this.dispatchInOrder(session, destination, msg);
          },
          // RabbitMQ refuses an exclusive consumer on a single-active-consumer queue
          // ("in exclusive use"): there the consumer counts below stand guard alone.
          { noAck: false, exclusive: Boolean(exclusive) && !singleActiveConsumer },
        ));
      } catch (err) {
        // 403 ACCESS_REFUSED: another connection consumes the queue exclusively.
        if (exclusive && (err as { code?: unknown }).code === 403) throw this.queueInUse(destination, exclusive.why, err);
        throw err;
      }
      session.consumerTags.push(consumerTag);
      // Closes the window between the check above and the consume, for queue types
      // that do not enforce `exclusive`; two workers racing may then both refuse,
      // which loses nothing.
      if (exclusive) await this.ensureNoOtherConsumer(session, destination, 1);
    }
  }

  /** Refuses when `destination` has more consumers than `own`. */
  private async ensureNoOtherConsumer(session: Session, destination: string, own: number): Promise<void> {
    const { consumerCount } = await session.consumeChannel.checkQueue(destination);
    if (consumerCount > own) throw this.queueInUse(destination, this.opts.exclusive!.why);
  }

  private queueInUse(destination: string, why: string, cause?: unknown): TopologyError {
    // On a reconnect the other consumer may be this worker's own previous connection,
    // which the broker has not noticed is gone yet: scheduleReconnect keeps trying.
    const after =
      this.reconnectAttempt > 0
        ? ' If it is this worker\'s previous connection, the broker drops it within two heartbeats; retrying.'
        : '';
    return new TopologyError(`Queue ${destination} already has another consumer, and this worker must consume it alone: ${why}.${after}`, cause);
  }

  /**
   * Dispatches at once, unless the message carries an ordering key: then after the
   * previous delivery with that key has been handled (acked, requeued or dead-lettered),
   * so that deliveries of one key take effect in delivery order even with prefetch > 1.
   */
  private dispatchInOrder(session: Session, destination: string, msg: ConsumeMessage): void {
    const headers = msg.properties.headers as Record<string, unknown> | undefined;
    const raw = headers?.[ORDERING_KEY_HEADER];
    const key = raw === undefined || raw === null ? '' : String(raw);
    if (!key) {
      void this.dispatch(session, destination, msg);
      return;
    }
    const seqRaw = headers?.[ORDERING_SEQ_HEADER];
    const seq = seqRaw === undefined || seqRaw === null ? undefined : Number(String(seqRaw));
    const windowMs = this.opts.pluginQueues?.find((q) => q.name === destination)?.reorderWindowMs ?? 0;
    this.ordered.dispatch(`${destination}\u0000${key}`, () => this.dispatch(session, destination, msg), seq, windowMs);
  }

  private async dispatch(session: Session, destination: string, msg: ConsumeMessage): Promise<void> {
    const props = msg.properties;
    const delivery: Delivery = {
      body: msg.content,
      messageId: props.messageId ? String(props.messageId) : undefined,
      correlationId: props.correlationId ? String(props.correlationId) : undefined,
      replyTo: props.replyTo ? String(props.replyTo) : undefined,
      destination,
      // A retry copy may come back after its original was handled (see amqp-retry.ts).
      redelivered: msg.fields.redelivered || isRetryCopy(props.headers),
      reply: (payload) => this.publishReply(session, props.replyTo, props.correlationId, payload),
      progress: (payload) => this.publishProgress(session, props.replyTo, props.correlationId, payload),
      checkReplyTo: () => (props.replyTo ? this.replies.check(String(props.replyTo)) : Promise.resolve(undefined)),
    };
    let disposition: Disposition;
    try {
      disposition = this.handler ? await this.handler(delivery) : 'requeue';
    } catch (err) {
      this.opts.log.error(`Unexpected error handling a delivery: ${redact((err as Error).message)}`);
      disposition = 'requeue';
    }
    if (session.closed) return; // the broker redelivers it on the new connection
    if (isRetryLater(disposition)) disposition = await this.putInRetryQueue(session, destination, msg, disposition);
    if (session.closed) return;
    try {
      if (disposition === 'ack') session.consumeChannel.ack(msg);
      else if (disposition === 'requeue') session.consumeChannel.nack(msg, false, true);
      else session.consumeChannel.nack(msg, false, false);
    } catch (err) {
      this.opts.log.warn(`Could not ${describeDisposition(disposition)} a delivery: ${(err as Error).message}`);
    }
  }

  /**
   * Publishes the message's retry copy and waits for the broker's confirm: `ack` for the
   * original once the copy is safe, `requeue` when it could not be published (the
   * message must not be lost, and the ledger still bounds its attempts).
   */
  private async putInRetryQueue(session: Session, destination: string, msg: ConsumeMessage, retry: RetryLater): Promise<'ack' | 'requeue'> {
    const queue = retryQueueName(destination);
    const token = randomUUID();
    try {
      await new Promise<void>((resolve, reject) => {
        session.retryChannel.publish('', queue, msg.content, retryCopyOptions(msg.properties, retry.retryAfterMs, token), (err) =>
          err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
        );
      });
      // The broker returns an unroutable message before it confirms it.
      if (session.returned.delete(token)) throw new Error(`the broker has no queue ${queue} (run \`worker customize\` or restart the worker to declare it)`);
      return 'ack';
    } catch (err) {
      if (!session.closed) {
        this.opts.log.warn(`Could not put a message in ${queue} for a retry in ${retry.retryAfterMs} ms; requeued it now instead: ${redact((err as Error).message)}`);
      }
      return 'requeue';
    }
  }

  /**
   * Publishes a reply on the reply connection and resolves when the broker confirms it.
   * If the request's own session is gone, the reply is not sent: the request could not
   * be acked anyway, so the broker redelivers it and the ledger answers it then, which
   * keeps it to one final reply.
   */
  private async publishReply(session: Session, replyTo: unknown, correlationId: unknown, payload: Reply): Promise<void> {
    if (!replyTo) return;
    if (session.closed) throw new RequestConnectionLostError();
    const body = Buffer.from(JSON.stringify(payload));
    try {
      await this.replies.publish(String(replyTo), correlationId === undefined ? undefined : String(correlationId), body);
    } catch (err) {
      // The broker went away for both connections (a restart, close_all_connections): not
      // the reply's fault, so not counted against it. The reply connection may report the
      // loss a moment before the consuming one does, so a closure is given that moment.
      if (!/nack/i.test((err as Error).message)) await this.closedWithin(session, 250);
      if (session.closed) throw new RequestConnectionLostError(err);
      throw err;
    }
  }

  /**
   * Publishes a progress message on the reply connection without waiting for its
   * confirm (see {@link ReplyPublisher.publishUnconfirmed}): it resolves once the
   * message is on its way, so the next reply of the invocation follows it in order.
   */
  private async publishProgress(session: Session, replyTo: unknown, correlationId: unknown, payload: Reply): Promise<void> {
    if (!replyTo) return;
    if (session.closed) throw new RequestConnectionLostError();
    const body = Buffer.from(JSON.stringify(payload));
    await this.replies.publishUnconfirmed(String(replyTo), correlationId === undefined ? undefined : String(correlationId), body);
  }

  /** Resolves when the session has closed or `ms` have passed, whichever is first. */
  private async closedWithin(session: Session, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!session.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
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
    const delayMs = backoffDelay(
      {
        ...BACKOFF.reconnect,
        initialMs: this.opts.reconnectInitialDelayMs ?? BACKOFF.reconnect.initialMs,
        maxMs: this.opts.reconnectMaxDelayMs ?? BACKOFF.reconnect.maxMs,
      },
      this.reconnectAttempt,
    );
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
