/**
 * Publishes replies on a broker connection of their own.
 *
 * Why a separate connection: a reply can make RabbitMQ close the connection it is
 * published on (a malformed direct reply-to name gives 541 INTERNAL_ERROR, which closes
 * the whole connection). On the consuming connection that took every in-flight delivery
 * with it, and the redelivered invocation did it again, forever (issue #11). Here such a
 * failure costs only the replies in flight on this connection; it is rebuilt on the next
 * reply, and the consumers never notice.
 *
 * It also checks a `reply_to` before the function runs ({@link ReplyPublisher.check}),
 * on a third connection: a name that can never work is refused up front instead of
 * after the function's effect.
 */
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { LogThrottle } from '../log-throttle.js';
import type { Logger } from '../logging.js';
import { redact } from '../redact.js';

export interface ReplyPublisherOptions {
  /** Opens a new broker connection (the transport's URL, TLS and socket options). */
  connect: () => Promise<ChannelModel>;
  log: Logger;
  /** How long a `reply_to` found to exist is trusted without checking again. Default 5 s. */
  checkCacheMs?: number;
}

/** RabbitMQ refuses names (queue names, routing keys) longer than this many bytes. */
const MAX_NAME_BYTES = 255;
const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
/**
 * `amq.rabbitmq.reply-to.` and the broker's suffix for the caller's channel. The suffix is
 * opaque (its encoding differs between RabbitMQ versions), so only its presence and the
 * absence of blanks are checked here; the passive declare judges the rest.
 */
const DIRECT_REPLY_TO_NAME = /^amq\.rabbitmq\.reply-to\.\S+$/;

/**
 * Why `replyTo` can never be published to, judged from the name alone; undefined when
 * it may work. The broker has the last word ({@link ReplyPublisher.check}).
 */
export function replyToSyntaxProblem(replyTo: string): string | undefined {
  if (Buffer.byteLength(replyTo, 'utf8') > MAX_NAME_BYTES) {
    return `reply_to is ${Buffer.byteLength(replyTo, 'utf8')} bytes long; RabbitMQ accepts at most ${MAX_NAME_BYTES}`;
  }
  // Control characters never occur in a name a caller got from the broker.
  if (/[\u0000-\u001f\u007f]/.test(replyTo)) return 'reply_to contains control characters';
  if (replyTo === DIRECT_REPLY_TO) {
    return `reply_to is the bare "${DIRECT_REPLY_TO}"; a caller's message carries the name the broker gave its channel (${DIRECT_REPLY_TO}.…)`;
  }
  if (replyTo.startsWith(`${DIRECT_REPLY_TO}.`) && !DIRECT_REPLY_TO_NAME.test(replyTo)) {
    return `reply_to "${replyTo}" is not a direct reply-to name the broker hands out`;
  }
  return undefined;
}

interface Link {
  connection: ChannelModel;
  channel: ConfirmChannel;
  closed: boolean;
  /** message_ids of mandatory messages the broker returned as unroutable, until their confirm arrives. */
  returned: Set<string>;
}

export class ReplyPublisher {
  private link: Link | undefined;
  private opening: Promise<Link> | undefined;
  private stopped = false;
  /** reply_to names the broker said exist, and when (see checkCacheMs). */
  private readonly known = new Map<string, number>();
  private readonly checking = new Map<string, Promise<string | undefined>>();
  private readonly throttle = new LogThrottle();
  /** The connection `reply_to` checks run on (see checkOnBroker). */
  private checkConn: { connection: ChannelModel; closed: boolean } | undefined;
  private checkOpening: Promise<ChannelModel> | undefined;

  constructor(private readonly opts: ReplyPublisherOptions) {}

  /**
   * Publishes `body` to the queue `replyTo` (default exchange) and resolves when the
   * broker confirms it. Rejects when the broker refuses it (a nack: a full queue with
   * `x-overflow: reject-publish`) or the reply connection fails before the confirm.
   */
  async publish(replyTo: string, correlationId: string | undefined, body: Buffer): Promise<void> {
    const link = await this.currentLink();
    await new Promise<void>((resolve, reject) => {
      try {
        this.write(link, replyTo, correlationId, body, (err) => (err ? reject(err) : resolve()));
      } catch (err) {
        reject(err as Error);
      }
    });
  }

  /**
   * Publishes a progress message without waiting for its confirm: resolves as soon as
   * it is written to the reply channel. Replies travel on one channel, which keeps
   * their order, so a caller that awaits this before sending its next message (the
   * final reply included) gets them to the broker in the order sent, without a broker
   * round trip each. Rejects only when it cannot be written (no reply connection). A
   * refusal or a lost connection afterwards is logged (rate-limited), nothing more: a
   * lost progress message does not change the invocation's outcome.
   */
  async publishUnconfirmed(replyTo: string, correlationId: string | undefined, body: Buffer): Promise<void> {
    const link = await this.currentLink();
    this.write(link, replyTo, correlationId, body, (err) => {
      if (!err) return;
      const line = this.throttle.pass(
        `progress:${replyTo}`,
        `A progress message to ${replyTo} was not confirmed by the broker: ${redact(err.message)}`,
      );
      if (line) this.opts.log.warn(line);
    });
  }

  /**
   * Publishes `body` to the existing queue `queue` (default exchange, persistent,
   * `mandatory`) with `messageId` and `headers`, and resolves when the broker confirms
   * it. A message no queue took (the queue is missing) comes back as a basic.return
   * before its confirm and rejects: a confirm alone would not prove it was kept.
   */
  async publishToQueue(queue: string, body: Buffer, props: { messageId: string; headers?: Record<string, string> }): Promise<void> {
    const link = await this.currentLink();
    await new Promise<void>((resolve, reject) => {
      try {
        link.channel.publish(
          '',
          queue,
          body,
          { messageId: props.messageId, contentType: 'application/json', persistent: true, mandatory: true, headers: props.headers ?? {} },
          (err) => {
            if (err) return reject(err instanceof Error ? err : new Error(String(err)));
            if (link.returned.delete(props.messageId)) return reject(new Error(`the broker has no queue named "${queue}"; the message was not kept`));
            resolve();
          },
        );
      } catch (err) {
        reject(err as Error);
      }
    });
  }

  /**
   * Why replies to `replyTo` can never be delivered: a name RabbitMQ refuses, or a queue
   * (or direct reply-to consumer) that does not exist. Undefined when it exists or when
   * the broker could not be asked (the reply itself then finds out). The existence check
   * is a passive declare on a throwaway channel, since a missing queue closes the channel.
   */
  async check(replyTo: string): Promise<string | undefined> {
    const syntax = replyToSyntaxProblem(replyTo);
    if (syntax) return syntax;
    const seen = this.known.get(replyTo);
    if (seen !== undefined && Date.now() - seen < (this.opts.checkCacheMs ?? 5000)) return undefined;
    const pending = this.checking.get(replyTo);
    if (pending) return pending;
    const check = this.checkOnBroker(replyTo).finally(() => this.checking.delete(replyTo));
    this.checking.set(replyTo, check);
    return check;
  }

  /** Opens the connection now rather than on the first publish (which then goes out at once). */
  async warm(): Promise<void> {
    await this.currentLink();
  }

  /** Closes the reply connection; later publishes reject. */
  async close(): Promise<void> {
    this.stopped = true;
    const link = this.link;
    this.link = undefined;
    if (link && !link.closed) {
      link.closed = true;
      await link.connection.close().catch(() => undefined);
    }
    const check = this.checkConn;
    this.checkConn = undefined;
    if (check && !check.closed) {
      check.closed = true;
      await check.connection.close().catch(() => undefined);
    }
  }

  /**
   * The passive declare runs on a connection of its own: for a malformed direct reply-to
   * name RabbitMQ answers even a passive declare by closing the whole connection (541),
   * which must not take replies in flight with it. A check whose shared connection was
   * closed under it (by its own name or by another check's) is asked again on a private
   * connection, so that each name gets its own verdict.
   */
  private async checkOnBroker(replyTo: string): Promise<string | undefined> {
    let shared: ChannelModel;
    try {
      shared = await this.checkConnection();
    } catch {
      return undefined; // could not ask; the reply itself will find out
    }
    const first = await this.declarePassively(shared, replyTo);
    if (first !== 'connection-closed') return first;
    if (this.checkConn?.connection === shared) this.checkConn = undefined;
    let own: ChannelModel;
    try {
      own = await this.opts.connect();
    } catch {
      return undefined;
    }
    own.on('error', () => undefined);
    try {
      const second = await this.declarePassively(own, replyTo);
      if (second !== 'connection-closed') return second;
      // Only malformed direct reply-to names are known to make the broker do that; for
      // anything else the connection may have failed for its own reasons.
      if (!replyTo.startsWith(`${DIRECT_REPLY_TO}.`)) return undefined;
      return `the broker closes the connection when asked about "${replyTo}" (a malformed direct reply-to name)`;
    } finally {
      await own.close().catch(() => undefined);
    }
  }

  /** A passive declare of `replyTo`: its problem, undefined if it exists, or 'connection-closed'. */
  private async declarePassively(connection: ChannelModel, replyTo: string): Promise<string | undefined | 'connection-closed'> {
    let channel;
    try {
      channel = await connection.createChannel();
    } catch {
      return 'connection-closed';
    }
    channel.on('error', () => undefined); // a 404 closes the channel; that is the answer, not a fault
    try {
      await channel.checkQueue(replyTo);
      this.remember(replyTo);
      await channel.close().catch(() => undefined);
      return undefined;
    } catch (err) {
      const message = (err as Error).message;
      if (/\b404\b|NOT_FOUND/.test(message)) {
        return `no queue named "${replyTo}" exists on the broker (the caller has gone away, or the name is wrong)`;
      }
      // 405: an exclusive queue of the caller's own connection (the usual reply queue). It exists.
      if (/\b405\b|RESOURCE_LOCKED/.test(message)) {
        this.remember(replyTo);
        return undefined;
      }
      // Another channel-level refusal (403 permissions…) is not proof it can never work.
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'number' && code >= 400 && code < 500) return undefined;
      return 'connection-closed';
    }
  }

  private remember(replyTo: string): void {
    if (this.known.size >= 1000) this.known.clear();
    this.known.set(replyTo, Date.now());
  }

  private async checkConnection(): Promise<ChannelModel> {
    if (this.stopped) throw new Error('the reply publisher is closed');
    const current = this.checkConn;
    if (current && !current.closed) return current.connection;
    if (!this.checkOpening) {
      this.checkOpening = (async () => {
        const connection = await this.opts.connect();
        const state = { connection, closed: false };
        connection.on('error', () => undefined); // expected: see checkOnBroker
        connection.on('close', () => {
          state.closed = true;
          if (this.checkConn === state) this.checkConn = undefined;
        });
        this.checkConn = state;
        return connection;
      })().finally(() => {
        this.checkOpening = undefined;
      });
    }
    return this.checkOpening;
  }

  /** Publishes on the link's confirm channel; `confirmed` gets the broker's answer. Throws when the channel is closed. */
  private write(link: Link, replyTo: string, correlationId: string | undefined, body: Buffer, confirmed: (err: Error | undefined) => void): void {
    link.channel.publish('', replyTo, body, { correlationId, contentType: 'application/json', persistent: true }, (err) =>
      confirmed(err ? (err instanceof Error ? err : new Error(String(err))) : undefined),
    );
  }

  private currentLink(): Promise<Link> {
    if (this.stopped) return Promise.reject(new Error('the reply publisher is closed'));
    if (this.link && !this.link.closed) return Promise.resolve(this.link);
    if (!this.opening) {
      this.opening = this.open().finally(() => {
        this.opening = undefined;
      });
    }
    return this.opening;
  }

  private async open(): Promise<Link> {
    const { log } = this.opts;
    const connection = await this.opts.connect();
    const link: Link = { connection, channel: undefined as unknown as ConfirmChannel, closed: false, returned: new Set() };
    const lost = (what: string, err?: Error) => {
      if (link.closed) return;
      link.closed = true;
      if (this.link === link) this.link = undefined;
      void connection.close().catch(() => undefined);
      if (this.stopped) return;
      const line = this.throttle.pass('lost', `Reply connection ${what}${err ? `: ${redact(err.message)}` : ''}; it is reopened for the next reply`);
      if (line) log.warn(line);
    };
    connection.on('error', () => undefined); // reported by 'close' below, rate-limited
    connection.on('close', (err?: Error) => lost('closed', err));
    try {
      link.channel = await connection.createConfirmChannel();
    } catch (err) {
      lost('failed', err as Error);
      throw err;
    }
    link.channel.on('error', () => undefined);
    link.channel.on('return', (msg: { properties: { messageId?: unknown } }) => {
      if (msg.properties.messageId !== undefined) link.returned.add(String(msg.properties.messageId));
    });
    // A channel-level error closes only the channel: drop the whole link, so the next
    // reply starts on a fresh connection and channel.
    link.channel.on('close', () => lost('channel closed'));
    this.link = link;
    return link;
  }
}
