/**
 * Progress messages without a broker round trip each (issue #17 item 2): the reply
 * publisher writes them to its confirm channel and goes on without waiting for the
 * confirm, in order with the final reply, which still waits for its confirm. A progress
 * message the broker refuses is logged, and the replies after it still go out.
 *
 * Real RabbitMQ; a TcpProxy the test owns sits between the publisher and the broker, so
 * the broker's answers (the confirms) can be held back.
 */
import amqp from 'amqplib';
import type { Channel, ChannelModel } from 'amqplib';
import { expect } from 'chai';
import type { Logger } from '../../../src/core/logging.js';
import { ReplyPublisher } from '../../../src/core/runtime/reply-publisher.js';
import { AMQP_URL, uniqueName } from '../../support/harness.js';
import { TcpProxy } from '../../support/tcp-proxy.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recordingLogger(lines: string[]): Logger {
  const log: Logger = {
    error: (m) => lines.push(`ERROR ${m}`),
    warn: (m) => lines.push(`WARN ${m}`),
    info: (m) => lines.push(`INFO ${m}`),
    debug: () => undefined,
    child: () => log,
  };
  return log;
}

/** Resolves with `promise`'s value, or rejects naming `what` when it takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('reply publisher: progress without waiting for confirms', function () {
  this.timeout(30_000);
  let proxy: TcpProxy;
  let owner: ChannelModel;
  let channel: Channel;
  let publisher: ReplyPublisher;
  let lines: string[];
  const queues: string[] = [];

  beforeEach(async () => {
    proxy = await TcpProxy.start('127.0.0.1', 5672);
    owner = await amqp.connect(AMQP_URL);
    channel = await owner.createChannel();
    lines = [];
    publisher = new ReplyPublisher({
      connect: () => amqp.connect(`amqp://guest:guest@127.0.0.1:${proxy.port}`),
      log: recordingLogger(lines),
    });
  });

  afterEach(async () => {
    await publisher.close();
    await proxy.close();
    for (const q of queues.splice(0)) await channel.deleteQueue(q).catch(() => undefined);
    await owner.close().catch(() => undefined);
  });

  async function replyQueue(args: Record<string, unknown> = {}): Promise<string> {
    const name = uniqueName('test_progress_replies');
    await channel.assertQueue(name, { durable: false, arguments: args });
    queues.push(name);
    return name;
  }

  async function drain(queue: string, count: number): Promise<string[]> {
    const bodies: string[] = [];
    const deadline = Date.now() + 10_000;
    while (bodies.length < count && Date.now() < deadline) {
      const msg = await channel.get(queue, { noAck: true });
      if (msg) bodies.push(msg.content.toString('utf8'));
      else await sleep(20);
    }
    return bodies;
  }

  it('hands progress messages over while the confirms are held back; they arrive in order, ahead of the confirmed final reply', async () => {
    const queue = await replyQueue();
    await publisher.publish(queue, 'c1', Buffer.from('opened')); // the reply connection is up
    proxy.blackhole(); // from here on the broker's confirms do not come back

    const progress = Array.from({ length: 20 }, (_, i) => `progress ${i + 1}`);
    for (const body of progress) {
      // Waiting for a confirm here would wait until the link heals.
      await within(publisher.publishUnconfirmed(queue, 'c1', Buffer.from(body)), 5_000, `progress "${body}"`);
    }
    let finalConfirmed = false;
    const final = publisher.publish(queue, 'c1', Buffer.from('final')).then(() => {
      finalConfirmed = true;
    });
    await sleep(300);
    expect(finalConfirmed, 'the final reply waits for its confirm').to.equal(false);

    proxy.heal('resume');
    await within(final, 10_000, 'the final reply');
    expect(await drain(queue, 22)).to.deep.equal(['opened', ...progress, 'final']);
    expect(lines).to.deep.equal([]);
  });

  it('logs a progress message the broker refuses, and the replies after it still go out', async () => {
    const refusing = await replyQueue({ 'x-overflow': 'reject-publish', 'x-max-length': 0 });
    const queue = await replyQueue();
    await publisher.publishUnconfirmed(refusing, 'c2', Buffer.from('refused progress'));
    await publisher.publishUnconfirmed(queue, 'c2', Buffer.from('progress'));
    await publisher.publish(queue, 'c2', Buffer.from('final'));
    const deadline = Date.now() + 5_000;
    while (lines.length === 0 && Date.now() < deadline) await sleep(20);
    expect(lines).to.deep.equal([`WARN A progress message to ${refusing} was not confirmed by the broker: message nacked`]);
    expect(await drain(queue, 2)).to.deep.equal(['progress', 'final']);
  });
});
