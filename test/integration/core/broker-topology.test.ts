/**
 * `[worker] queue_type` on the local RabbitMQ node: quorum work and dead-letter queues,
 * RabbitMQ's own delivery limit doing the poison count, a clear error for a queue that
 * exists with another type or limit (from declareDestination, `worker customize` and
 * `worker run`, which exits with the config code). Every queue is this test's own and
 * deleted after.
 */
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { expect } from 'chai';
import { declareDestination } from '../../../src/core/runtime/amqp-transport.js';
import type { TopologyOptions } from '../../../src/core/runtime/amqp-topology.js';
import { BrokerTarget, TargetError } from '../../../src/core/commands/customize.js';
import type { CustomizationItem } from '../../../src/core/commands/customizations.js';
import { TopologyError } from '../../../src/core/runtime/errors.js';
import { AMQP_URL, deleteDestination, runCli, uniqueName, writeConfig } from '../../support/harness.js';

const QUORUM: TopologyOptions = { queueType: 'quorum', maxAttempts: 2 };
const CLASSIC: TopologyOptions = { queueType: 'classic', maxAttempts: 2 };

describe('broker topology: classic and quorum queues', function () {
  this.timeout(60_000);
  let connection: ChannelModel;
  const created: string[] = [];

  before(async () => {
    connection = await amqp.connect(AMQP_URL);
    connection.on('error', () => undefined);
  });

  after(async () => {
    for (const d of created) await deleteDestination(d);
    await connection.close().catch(() => undefined);
  });

  function destination(prefix: string): string {
    const d = uniqueName(prefix);
    created.push(d);
    return d;
  }

  /** Runs `fn` on a fresh channel; resolves with its error, or undefined. */
  async function onChannel(fn: (ch: Channel) => Promise<unknown>): Promise<Error | undefined> {
    const ch = await connection.createChannel();
    ch.on('error', () => undefined);
    try {
      await fn(ch);
      await ch.close().catch(() => undefined);
      return undefined;
    } catch (err) {
      return err as Error;
    }
  }

  /**
   * The broker's view of a queue's type: a redeclare naming x-queue-type T and every
   * other argument the queue has passes only when its type is T.
   */
  async function queueType(queue: string, args: Record<string, unknown>): Promise<string> {
    const candidates: [string, Record<string, unknown>][] = [
      ['quorum', { ...args, 'x-queue-type': 'quorum' }],
      ['classic', { ...args, 'x-queue-type': 'classic' }],
    ];
    for (const [type, a] of candidates) {
      const err = await onChannel((ch) => ch.checkQueue(queue).then(() => ch.assertQueue(queue, { durable: true, arguments: a })));
      if (!err) return type;
    }
    return 'unknown';
  }
  const work = (d: string, limit?: number) => ({ 'x-dead-letter-exchange': `${d}.dlx`, ...(limit ? { 'x-delivery-limit': limit } : {}) });

  it('quorum: the work and dead-letter queues are quorum queues; a second declare changes nothing', async () => {
    const d = destination('quorum_decl');
    expect(await onChannel((ch) => declareDestination(ch, d, QUORUM))).to.equal(undefined);
    expect(await onChannel((ch) => declareDestination(ch, d, QUORUM))).to.equal(undefined);
    expect(await queueType(d, work(d, 2))).to.equal('quorum');
    expect(await queueType(`${d}.dead`, {})).to.equal('quorum');
  });

  it('quorum: RabbitMQ dead-letters a message after max_attempts + 1 deliveries (x-delivery-limit)', async () => {
    const d = destination('quorum_limit');
    expect(await onChannel((ch) => declareDestination(ch, d, QUORUM))).to.equal(undefined);
    const ch = await connection.createChannel();
    try {
      ch.sendToQueue(d, Buffer.from('poison'), { persistent: true });
      let deliveries = 0;
      const { consumerTag } = await ch.consume(d, (msg) => {
        if (!msg) return;
        deliveries++;
        ch.nack(msg, false, true); // as a worker that can never finish it (requeue every time)
      });
      const deadline = Date.now() + 10_000;
      let dead: amqp.GetMessage | false = false;
      while (!dead && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        dead = await ch.get(`${d}.dead`, { noAck: true });
      }
      await ch.cancel(consumerTag);
      expect(dead, 'the message reached the dead-letter queue').not.to.equal(false);
      expect(deliveries).to.equal(QUORUM.maxAttempts + 1);
      expect((dead as amqp.GetMessage).content.toString()).to.equal('poison');
      expect((dead as amqp.GetMessage).properties.headers?.['x-first-death-reason']).to.equal('delivery_limit');
    } finally {
      await ch.close().catch(() => undefined);
    }
  });

  it('classic stays as earlier versions declared it (no x-queue-type), so existing queues keep working', async () => {
    const d = destination('classic_decl');
    // Declared as before queue_type existed.
    expect(
      await onChannel(async (ch) => {
        await ch.assertExchange(`${d}.dlx`, 'fanout', { durable: true });
        await ch.assertQueue(`${d}.dead`, { durable: true });
        await ch.assertQueue(d, { durable: true, arguments: { 'x-dead-letter-exchange': `${d}.dlx` } });
      }),
    ).to.equal(undefined);
    expect(await onChannel((ch) => declareDestination(ch, d, CLASSIC))).to.equal(undefined);
    expect(await queueType(d, work(d))).to.equal('classic');
    expect(await queueType(`${d}.dead`, {})).to.equal('classic');
  });

  it('a queue of the other type: a TopologyError naming the queue, both types and how to migrate', async () => {
    const d = destination('type_clash');
    expect(await onChannel((ch) => declareDestination(ch, d, CLASSIC))).to.equal(undefined);
    const toQuorum = await onChannel((ch) => declareDestination(ch, d, QUORUM));
    expect(toQuorum).to.be.instanceOf(TopologyError);
    expect(toQuorum!.message).to.match(
      new RegExp(`^Queue ${d}(\\.dead)? \\(vhost /\\) exists as a classic queue, but \\[worker\\] queue_type = quorum declares it quorum; RabbitMQ cannot change the type`),
    );
    expect(toQuorum!.message).to.contain('Either set queue_type = classic, or migrate the queue. To migrate: stop the workers');
    expect(toQuorum!.message).to.match(/rabbitmqctl delete_queue /);

    const q = destination('type_clash_q');
    expect(await onChannel((ch) => declareDestination(ch, q, QUORUM))).to.equal(undefined);
    const toClassic = await onChannel((ch) => declareDestination(ch, q, CLASSIC));
    expect(toClassic).to.be.instanceOf(TopologyError);
    expect(toClassic!.message).to.match(new RegExp(`^Queue ${q}(\\.dead)? \\(vhost /\\) exists as a quorum queue, but \\[worker\\] queue_type = classic declares it classic`));
  });

  it('a quorum queue declared with another max_attempts: says which value it keeps and what to do', async () => {
    const d = destination('limit_clash');
    expect(await onChannel((ch) => declareDestination(ch, d, QUORUM))).to.equal(undefined);
    const err = await onChannel((ch) => declareDestination(ch, d, { queueType: 'quorum', maxAttempts: 7 }));
    expect(err).to.be.instanceOf(TopologyError);
    expect(err!.message).to.contain(
      `Queue ${d} (vhost /) was declared with x-delivery-limit 2 ([worker] max_attempts then), but max_attempts is now 7; ` +
        'RabbitMQ keeps a queue\'s arguments. Either set max_attempts = 2 again, or migrate the queue.',
    );
  });

  it('worker customize declares the same topology: quorum queues, then unchanged; a type clash is reported at plan time', async () => {
    const d = destination('customize_quorum');
    const item = { kind: 'message_destination', name: d, definition: { destination_type: 0 } } as unknown as CustomizationItem;
    const quorumTarget = new BrokerTarget(connection, QUORUM);
    expect((await quorumTarget.plan(item)).action).to.equal('create');
    expect(await quorumTarget.apply(item)).to.equal(`queue ${d}, exchange ${d}.dlx, queue ${d}.dead, queue ${d}.retry (quorum queues)`);
    expect((await quorumTarget.plan(item)).action).to.equal('unchanged');
    expect(await queueType(d, work(d, 2))).to.equal('quorum');
    const retryArgs = { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': d, 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' };
    expect(await queueType(`${d}.retry`, retryArgs)).to.equal('quorum');

    const classicTarget = new BrokerTarget(connection, CLASSIC);
    const err = await classicTarget.plan(item).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).to.be.instanceOf(TargetError);
    expect(err!.message).to.match(new RegExp(`^broker: Queue ${d} \\(vhost /\\) exists as a quorum queue, but \\[worker\\] queue_type = classic`));
  });

  it('a destination declared before retry queues existed: customize plans to add the retry queue, and adds only it', async () => {
    const d = destination('customize_add_retry');
    // What earlier versions declared: the work queue, its dead-letter exchange and queue.
    expect(
      await onChannel(async (ch) => {
        await ch.assertExchange(`${d}.dlx`, 'fanout', { durable: true });
        await ch.assertQueue(`${d}.dead`, { durable: true });
        await ch.bindQueue(`${d}.dead`, `${d}.dlx`, '');
        await ch.assertQueue(d, { durable: true, arguments: { 'x-dead-letter-exchange': `${d}.dlx` } });
      }),
    ).to.equal(undefined);
    const item = { kind: 'message_destination', name: d, definition: { destination_type: 0 } } as unknown as CustomizationItem;
    const target = new BrokerTarget(connection, CLASSIC);
    expect(await target.plan(item)).to.deep.equal({ action: 'update', detail: `add queue ${d}.retry` });
    await target.apply(item);
    expect((await target.plan(item)).action).to.equal('unchanged');
    // Its expired messages go back to the work queue.
    expect(
      await onChannel((ch) => ch.assertQueue(`${d}.retry`, { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': d } })),
    ).to.equal(undefined);
  });

  it('worker run on a queue of the other type exits with the config code (2) and says what to do', async () => {
    const d = destination('run_clash');
    expect(await onChannel((ch) => declareDestination(ch, d, CLASSIC))).to.equal(undefined);
    const cfg = writeConfig({ destination: d, worker: { queue_type: 'quorum' } });
    const res = await runCli(['run', '--config-file', cfg.file], {}, 30_000);
    expect(res.code, res.stderr).to.equal(2);
    expect(res.stderr).to.match(/exists as a classic queue, but \[worker\] queue_type = quorum declares it quorum/);
  });
});
