/**
 * Fault: the broker goes away mid-batch (issue #5).
 *
 * - The broker closing the worker's connection (`rabbitmqctl close_connection`) is
 *   covered by test/integration/core/worker-run.test.ts ("survives the broker closing
 *   its connection mid-batch"): the worker reconnects and every invocation has one effect.
 * - Here the broker application is stopped and started again (`rabbitmqctl stop_app` /
 *   `start_app`). The caller uses a durable reply queue, as a SOAR platform does, so
 *   replies survive the restart and no invocation needs to be published again: the
 *   worker must reconnect by itself and answer every invocation, each with one effect.
 *
 * The broker stopped is a throwaway node the test starts for itself (test/support/
 * rabbitmq.ts), never the shared one on 5672: a bystander connection to the shared
 * broker, opened before, must still be open after.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import amqp, { type ChannelModel } from 'amqplib';
import { expect } from 'chai';
import { queueDepth, uniqueName, WorkerProcess, writeConfig, type TestConfig } from '../../support/harness.js';
import { Bystander, ThrowawayRabbit } from '../../support/rabbitmq.js';

const INVOCATIONS = 80;
/** With 10 in flight, the batch takes about INVOCATIONS / 10 × SLEEP_MS: long enough to stop the broker in it. */
const SLEEP_MS = 800;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A caller's durable reply queue, consumed again after each reconnect. */
class DurableReplies {
  readonly finals = new Map<string, Record<string, unknown>[]>();
  private connection: ChannelModel | undefined;

  constructor(
    readonly url: string,
    readonly queue: string,
  ) {}

  async connect(): Promise<void> {
    const connection = await amqp.connect(this.url);
    connection.on('error', () => undefined);
    const ch = await connection.createChannel();
    ch.on('error', () => undefined);
    await ch.assertQueue(this.queue, { durable: true });
    await ch.consume(this.queue, (msg) => {
      if (!msg) return;
      const body = JSON.parse(msg.content.toString('utf8')) as Record<string, unknown>;
      // A reply this consumer had received but not yet acked when the broker stopped is
      // delivered to it again (redelivered): that is the caller's duplicate, not the worker's.
      if (body.complete === true && !(msg.fields.redelivered && this.finals.has(String(msg.properties.correlationId)))) {
        const id = String(msg.properties.correlationId);
        this.finals.set(id, [...(this.finals.get(id) ?? []), body]);
      }
      ch.ack(msg);
    });
    this.connection = connection;
  }

  async close(): Promise<void> {
    await this.connection?.close().catch(() => undefined);
  }
}

describe('fault: broker stopped and started again (rabbitmqctl stop_app / start_app on a throwaway node)', function () {
  this.timeout(240_000);
  let rabbit: ThrowawayRabbit | undefined;
  let bystander: Bystander | undefined;
  let cfg: TestConfig;
  let worker: WorkerProcess | undefined;
  let replies: DurableReplies;

  before(async () => {
    bystander = await Bystander.open();
    rabbit = await ThrowawayRabbit.start();
    cfg = writeConfig({ worker: { amqp_url: rabbit.url, num_workers: 10, reconnect_max_delay: 1 } });
    replies = new DurableReplies(rabbit.url, uniqueName('durable_replies'));
    await replies.connect();
  });

  after(async () => {
    await worker?.stop('SIGKILL');
    await replies?.close();
    await rabbit?.stop();
    await bystander?.close();
  });

  it('the worker reconnects by itself and every invocation is answered, each with one effect', async () => {
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
    const ids: string[] = [];
    const publisher = await amqp.connect(rabbit!.url);
    try {
      const ch = await publisher.createConfirmChannel();
      for (let i = 0; i < INVOCATIONS; i++) {
        const id = randomUUID();
        ids.push(id);
        const body = { function: { name: 'test_sleep' }, inputs: { ms: SLEEP_MS } };
        ch.sendToQueue(cfg.destination, Buffer.from(JSON.stringify(body)), {
          messageId: id,
          correlationId: id,
          replyTo: replies.queue,
          contentType: 'application/json',
          persistent: true,
        });
      }
      await ch.waitForConfirms();
    } finally {
      await publisher.close();
    }

    // Stop the broker once part of the batch is answered and more is in flight.
    const deadline = Date.now() + 60_000;
    while (replies.finals.size < INVOCATIONS / 4) {
      if (Date.now() > deadline) throw new Error(`only ${replies.finals.size} answered:\n${worker.output}`);
      await sleep(10);
    }
    let answeredAtStop: number;
    try {
      await rabbit!.stopApp();
      answeredAtStop = replies.finals.size;
      await worker.waitFor('Lost the broker connection', 30_000);
      await sleep(2000);
    } finally {
      await rabbit!.startApp();
    }
    await replies.close();
    await replies.connect();
    expect(answeredAtStop, 'the broker must stop in the middle of the batch').to.be.lessThan(INVOCATIONS);

    const answerDeadline = Date.now() + 90_000;
    while (ids.some((id) => !replies.finals.has(id))) {
      if (Date.now() > answerDeadline) {
        const missing = ids.filter((id) => !replies.finals.has(id)).length;
        throw new Error(`${missing} of ${INVOCATIONS} unanswered after the restart:\n${worker.output.slice(-4000)}`);
      }
      await sleep(100);
    }
    await sleep(500);

    expect(worker.child.exitCode, 'the worker kept running').to.equal(null);
    expect(worker.output).to.match(/Lost the broker connection[\s\S]*Connected to the broker/);
    let twice = 0;
    for (const id of ids) {
      const finals = replies.finals.get(id)!;
      expect(finals[0]!.message, JSON.stringify(finals[0])).to.equal('Completed');
      for (const f of finals.slice(1)) expect(f).to.deep.equal(finals[0]);
      if (finals.length > 1) twice++;
      const effect = path.join(cfg.effectsDir, `${id}.effect`);
      expect(fs.readFileSync(effect, 'utf8'), `effects of ${id}`).to.equal('x\n');
    }
    expect(await queueDepth(cfg.destination, rabbit!.url)).to.equal(0);
    expect(await queueDepth(`${cfg.destination}.dead`, rabbit!.url)).to.equal(0);
    await bystander!.expectOpen();
    const replayed = (worker.output.match(/answering from the ledger/g) ?? []).length;
    console.log(`      broker stopped after ${answeredAtStop}/${INVOCATIONS} answered; ${replayed} answered from the ledger after the restart; ${twice} answered twice`);
  });
});
