/**
 * Fault: an invocation whose reply cannot be delivered (issue #11 item 1).
 *
 * - A bogus direct reply-to name (`amq.rabbitmq.reply-to.<garbage>`, what a caller that
 *   timed out leaves behind, or a broken one) makes RabbitMQ close the connection it is
 *   published on (541 INTERNAL_ERROR); a `reply_to` naming a queue that does not exist
 *   silently drops the reply. Both can never work: they are refused before the function
 *   runs, recorded in the ledger and dead-lettered.
 * - A reply queue that refuses publishes (`x-overflow: reject-publish`, `x-max-length: 0`)
 *   exists but nacks every reply: the reply is retried with backoff a bounded number of
 *   times, then given up (ledger) and dead-lettered.
 *
 * Each time with 20 innocent invocations alongside, which must all be answered once, and
 * the worker's consuming connection must stay up. Real broker, spawned `worker run`.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import amqp from 'amqplib';
import { expect } from 'chai';
import { AmqpTransport } from '../../../src/core/runtime/amqp-transport.js';
import { silentLogger } from '../../../src/core/logging.js';
import { progressReply } from '../../../src/core/runtime/messages.js';
import { ReplyPublisher } from '../../../src/core/runtime/reply-publisher.js';
import { SqliteStore } from '../../../src/core/store/sqlite-store.js';
import type { LedgerEntry } from '../../../src/core/store/store.js';
import { expectAnsweredSuccessfully, openWatchedCaller, waitForFinal } from '../../support/fault-checks.js';
import {
  AMQP_URL,
  type Caller,
  deleteDestination,
  queueDepth,
  uniqueName,
  WorkerProcess,
  writeConfig,
  type TestConfig,
} from '../../support/harness.js';

const MAX_ATTEMPTS = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fault: a reply_to the worker cannot reply to', function () {
  this.timeout(90_000);
  let cfg: TestConfig;
  let caller: Caller;
  let worker: WorkerProcess | undefined;
  let rejecting: string;

  before(async () => {
    caller = await openWatchedCaller();
    rejecting = uniqueName('test_rejecting_replies');
    await caller.channel.assertQueue(rejecting, {
      durable: false,
      autoDelete: false,
      arguments: { 'x-overflow': 'reject-publish', 'x-max-length': 0 },
    });
  });

  // A destination of its own per case: what one case leaves in its queue (on unfixed code,
  // everything) must not be what the next case measures.
  beforeEach(async () => {
    cfg = writeConfig({ worker: { num_workers: 25, max_attempts: MAX_ATTEMPTS } });
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
  });

  afterEach(async () => {
    await worker?.stop('SIGTERM');
    worker = undefined;
    if (cfg) await deleteDestination(cfg.destination);
  });

  after(async () => {
    await caller?.channel.deleteQueue(rejecting).catch(() => undefined);
    await caller?.close();
  });

  function publishInnocents(n: number): string[] {
    return Array.from({ length: n }, () => {
      const id = randomUUID();
      return caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'innocent' }), { messageId: id, correlationId: id });
    });
  }

  async function ledgerEntry(id: string): Promise<LedgerEntry | undefined> {
    const store = SqliteStore.open(path.join(cfg.dir, 'worker.db'));
    try {
      return await store.ledger.get(id);
    } finally {
      await store.close();
    }
  }

  async function waitForDeadLetters(n: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let depth = await queueDepth(`${cfg.destination}.dead`);
    while (depth < n && Date.now() < deadline) {
      await sleep(200);
      depth = await queueDepth(`${cfg.destination}.dead`);
    }
    return depth;
  }

  /** Takes the dead-lettered messages off the dead-letter queue (so the next case counts from 0). */
  async function drainDeadLetters(): Promise<string[]> {
    const connection = await amqp.connect(AMQP_URL);
    try {
      const ch = await connection.createChannel();
      const ids: string[] = [];
      for (;;) {
        const msg = await ch.get(`${cfg.destination}.dead`, { noAck: true });
        if (!msg) return ids;
        ids.push(String(msg.properties.messageId));
      }
    } finally {
      await connection.close();
    }
  }

  const effects = (id: string) => {
    const file = path.join(cfg.effectsDir, `${id}.effect`);
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').length / 2 : 0;
  };

  it('refuses a bogus direct reply-to name and a missing reply queue before running; the others are answered', async () => {
    const bogus = randomUUID();
    const missing = randomUUID();
    const innocents = publishInnocents(10);
    caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'bogus' }), {
      messageId: bogus,
      correlationId: bogus,
      replyTo: 'amq.rabbitmq.reply-to.abc.def',
    });
    caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'missing' }), {
      messageId: missing,
      correlationId: missing,
      replyTo: uniqueName('test_no_such_reply_queue'),
    });
    innocents.push(...publishInnocents(10));

    await waitForFinal(caller, innocents, 20_000, () => worker?.output ?? '');
    expect(expectAnsweredSuccessfully(caller, innocents), 'answered twice').to.deep.equal([]);
    expect(await waitForDeadLetters(2, 10_000)).to.equal(2);
    expect((await drainDeadLetters()).sort()).to.deep.equal([bogus, missing].sort());

    for (const id of [bogus, missing]) {
      expect(effects(id), `effects of ${id}`).to.equal(0);
      const entry = await ledgerEntry(id);
      expect(entry?.state, `ledger state of ${id}`).to.equal('failed');
      expect(entry?.replyAbandonedAt, `reply given up of ${id}`).to.be.instanceOf(Date);
      expect(entry?.reply?.error).to.deep.equal({ code: 'reply_to_invalid', retryable: false });
    }
    expect(worker!.output).to.match(/WARN.*amq\.rabbitmq\.reply-to\.abc\.def/);
    expect(worker!.output).not.to.contain('Lost the broker connection');
  });

  it('gives up a reply that a reject-publish queue refuses after max_attempts tries, with backoff, and dead-letters it', async () => {
    const refused = randomUUID();
    const started = Date.now();
    const innocents = publishInnocents(10);
    caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'refused' }), {
      messageId: refused,
      correlationId: refused,
      replyTo: rejecting,
    });
    innocents.push(...publishInnocents(10));

    await waitForFinal(caller, innocents, 20_000, () => worker?.output ?? '');
    expect(expectAnsweredSuccessfully(caller, innocents), 'answered twice').to.deep.equal([]);
    expect(await waitForDeadLetters(1, 20_000), worker!.output.slice(-3000)).to.equal(1);
    expect(await drainDeadLetters()).to.deep.equal([refused]);
    // Backoff: 1 s and 2 s in the retry queue between the three tries (BACKOFF.retry), not a hot loop.
    expect(Date.now() - started).to.be.greaterThan(2500);

    expect(effects(refused), 'the function ran once').to.equal(1);
    const entry = await ledgerEntry(refused);
    expect(entry?.state).to.equal('succeeded');
    expect(entry?.replyFailures).to.equal(MAX_ATTEMPTS);
    expect(entry?.replyAbandonedAt).to.be.instanceOf(Date);
    expect(entry?.repliedAt).to.equal(null);
    const lines = worker!.output.split('\n');
    expect(lines.filter((l) => l.includes('Could not send the final reply')).length).to.be.at.most(MAX_ATTEMPTS);
    expect(lines.some((l) => /WARN.*gave up/i.test(l) && l.includes(rejecting)), 'a WARN saying it gave up').to.equal(true);
    expect(worker!.output).not.to.contain('Lost the broker connection');
  });

  it('a reply the broker answers by closing its connection does not close the consumers (transport alone, no check)', async () => {
    const destination = uniqueName('test_q_transport');
    const transport = new AmqpTransport({ url: AMQP_URL, destinations: [destination], prefetch: 10, log: silentLogger() });
    const results = new Map<string, string>();
    let disconnects = 0;
    transport.on('disconnected', () => disconnects++);
    try {
      await transport.start(async (d) => {
        try {
          await d.reply(progressReply('hello'));
          results.set(d.messageId!, 'confirmed');
        } catch (err) {
          results.set(d.messageId!, `failed: ${(err as Error).message}`);
        }
        return 'ack';
      });
      const until = async (id: string) => {
        const deadline = Date.now() + 10_000;
        while (!results.has(id) && Date.now() < deadline) await sleep(20);
        return results.get(id);
      };
      caller.publish(destination, {}, { messageId: 'bogus', replyTo: 'amq.rabbitmq.reply-to.abc.def' });
      expect(await until('bogus')).to.match(/^failed: /);
      await sleep(300); // the broker has closed the reply connection by now
      const good = caller.publish(destination, {}, { messageId: 'good' });
      expect(await until('good')).to.equal('confirmed');
      const deadline = Date.now() + 5000;
      while (!caller.replies.has(good) && Date.now() < deadline) await sleep(20);
      expect(caller.replies.get(good)?.[0]?.message).to.equal('hello');
      expect(disconnects, 'consumer connection losses').to.equal(0);
      expect(transport.connected).to.equal(true);
    } finally {
      await transport.close();
      await deleteDestination(destination);
    }
  });
});

describe('ReplyPublisher.check against the broker', function () {
  this.timeout(30_000);

  it('gives each name its own verdict, even when checked together with names that make the broker close the connection', async () => {
    const owner = await amqp.connect(AMQP_URL);
    const publisher = new ReplyPublisher({ connect: () => amqp.connect(AMQP_URL), log: silentLogger() });
    try {
      const ch = await owner.createChannel();
      // A caller's usual reply queue: exclusive to the caller's connection (405 to anyone else).
      const { queue: exclusive } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
      const missing = uniqueName('test_no_such_reply_queue');
      const verdicts = await Promise.all(
        [
          'amq.rabbitmq.reply-to.abc.def',
          missing,
          exclusive,
          'amq.rabbitmq.reply-to.xyz.uvw',
        ].map((name) => publisher.check(name)),
      );
      expect(verdicts[0]).to.contain('closes the connection');
      expect(verdicts[1]).to.equal(`no queue named "${missing}" exists on the broker (the caller has gone away, or the name is wrong)`);
      expect(verdicts[2]).to.equal(undefined);
      expect(verdicts[3]).to.contain('closes the connection');
      // Replies still go out after all that.
      await publisher.publish(exclusive, 'c-1', Buffer.from('{}'));
      const msg = await ch.get(exclusive, { noAck: true });
      expect(msg && msg.properties.correlationId).to.equal('c-1');
    } finally {
      await publisher.close();
      await owner.close().catch(() => undefined);
    }
  });
});
