/**
 * Delayed retries through the destination's retry queue (issue #12 item 3), against the
 * real RabbitMQ with `worker run` and the echo test plugin's `test_flaky` (fails
 * retryably on its first `fail_times` attempts). The delays are the `retry` policy's
 * (1 s, 2 s, 4 s…).
 *
 * - With num_workers = 1, invocations published while another one backs off are
 *   answered before it: its retry waits in `D.retry`, not in the only prefetch slot.
 * - The attempt count lives in the ledger, so it carries over a worker restart in the
 *   middle of the backoff, to a success or to the dead-letter queue; the copy that comes
 *   back keeps the caller's message_id, correlation_id, reply_to and headers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { expect } from 'chai';
import { AMQP_URL, Caller, deleteDestination, queueDepth, WorkerProcess, writeConfig, type TestConfig } from '../../support/harness.js';

function effects(cfg: TestConfig, id: string): number {
  const file = path.join(cfg.effectsDir, `${id}.effect`);
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('delayed retries through the retry queue (real RabbitMQ)', function () {
  this.timeout(90_000);
  let cfg: TestConfig;
  let workers: WorkerProcess[];
  let caller: Caller;

  beforeEach(async () => {
    workers = [];
    caller = await Caller.open();
  });

  afterEach(async () => {
    for (const w of workers) await w.stop('SIGKILL');
    await caller.close();
    await deleteDestination(cfg.destination);
  });

  async function startWorker(): Promise<WorkerProcess> {
    const worker = WorkerProcess.start(cfg.file);
    workers.push(worker);
    await worker.waitFor();
    return worker;
  }

  /** The progress messages of one invocation, in order. */
  const progress = (id: string) => (caller.replies.get(id) ?? []).filter((r) => r.complete === false).map((r) => r.message);

  async function waitForProgress(id: string, message: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!progress(id).includes(message)) {
      if (Date.now() > deadline) throw new Error(`no progress "${message}" for ${id}; got ${JSON.stringify(progress(id))}`);
      await sleep(25);
    }
  }

  it('with num_workers = 1, answers other invocations while one backs off, then the retried one on its 4th attempt', async () => {
    cfg = writeConfig({ worker: { num_workers: 1, max_attempts: 5 } });
    const worker = await startWorker();
    const finals: string[] = [];
    caller.onReply = (id, body) => {
      if (body.complete === true) finals.push(id);
    };
    const messageId = randomUUID();
    const flaky = caller.publish(cfg.destination, caller.invocation('test_flaky', { fail_times: 3 }), { messageId });
    await waitForProgress(flaky, 'Attempt 1 failed (flaky: attempt 1 fails); retrying');
    const others = Array.from({ length: 5 }, (_, i) => caller.publish(cfg.destination, caller.invocation('test_echo', { text: `other ${i}` })));
    await caller.waitForFinal(others);
    await caller.waitForFinal([flaky]);

    // Every other invocation was answered before the one that was backing off.
    expect(finals.indexOf(flaky)).to.equal(others.length);
    const [reply, ...more] = caller.finalReplies(flaky) as { results: { content: unknown } }[];
    expect(more).to.have.length(0);
    expect(reply!.results.content).to.deep.equal({ attempt: 4 });
    expect(progress(flaky)).to.deep.equal([1, 2, 3].map((n) => `Attempt ${n} failed (flaky: attempt ${n} fails); retrying`));
    expect(effects(cfg, messageId)).to.equal(1);
    for (const queue of [cfg.destination, `${cfg.destination}.retry`, `${cfg.destination}.dead`]) expect(await queueDepth(queue)).to.equal(0);
    expect(worker.output).not.to.contain('requeued it now instead');
  });

  it('loses nothing when the retry queue is gone: the broker returns the copy and the message is requeued at once', async () => {
    cfg = writeConfig({ worker: { num_workers: 1, max_attempts: 5 } });
    const worker = await startWorker();
    const connection = await amqp.connect(AMQP_URL);
    try {
      const ch = await connection.createChannel();
      await ch.deleteQueue(`${cfg.destination}.retry`);
    } finally {
      await connection.close().catch(() => undefined);
    }
    const messageId = randomUUID();
    const flaky = caller.publish(cfg.destination, caller.invocation('test_flaky', { fail_times: 1 }), { messageId });
    await caller.waitForFinal([flaky]);
    const [reply] = caller.finalReplies(flaky) as { results: { content: unknown } }[];
    expect(reply!.results.content).to.deep.equal({ attempt: 2 });
    // The reply comes over AMQP and the log line over the worker's stdout pipe: on a loaded
    // machine the reply can be read first, so wait for the line rather than expect it already.
    await worker.waitFor(`Could not put a message in ${cfg.destination}.retry for a retry in 1000 ms; requeued it now instead`);
    expect(worker.output).to.contain(`the broker has no queue ${cfg.destination}.retry`);
    expect(effects(cfg, messageId)).to.equal(1);
  });

  it('quorum queues: a worker restart during the backoff loses nothing, and the attempt count carries on to a success', async () => {
    cfg = writeConfig({ worker: { num_workers: 1, max_attempts: 5, queue_type: 'quorum' } });
    const first = await startWorker();
    const messageId = randomUUID();
    const flaky = caller.publish(cfg.destination, caller.invocation('test_flaky', { fail_times: 2 }), { messageId });
    await waitForProgress(flaky, 'Attempt 1 failed (flaky: attempt 1 fails); retrying');
    expect(await first.stop('SIGTERM')).to.deep.include({ code: 0 });
    // Waiting in the retry queue, or already back in the work queue: in one of them.
    expect((await queueDepth(`${cfg.destination}.retry`)) + (await queueDepth(cfg.destination))).to.equal(1);

    await startWorker();
    await caller.waitForFinal([flaky]);
    const [reply] = caller.finalReplies(flaky) as { results: { content: unknown } }[];
    expect(reply!.results.content).to.deep.equal({ attempt: 3 });
    expect(caller.finalReplies(flaky)).to.have.length(1);
    expect(effects(cfg, messageId)).to.equal(1);
  });

  it("dead-letters after max_attempts across a restart, with the caller's message_id, correlation_id, reply_to and headers", async () => {
    cfg = writeConfig({ worker: { num_workers: 1, max_attempts: 3 } });
    const first = await startWorker();
    const messageId = randomUUID();
    const flaky = caller.publish(cfg.destination, caller.invocation('test_flaky', { fail_times: 10 }), {
      messageId,
      headers: { 'x-caller-tag': 'keep-me' },
    });
    await waitForProgress(flaky, 'Attempt 1 failed (flaky: attempt 1 fails); retrying');
    await first.stop('SIGTERM');

    const second = await startWorker();
    await caller.waitForFinal([flaky]);
    const [reply, ...more] = caller.finalReplies(flaky) as { message: string; error: unknown }[];
    expect(more).to.have.length(0);
    expect(reply!.message).to.equal('flaky: attempt 3 fails (gave up after attempt 3 of 3; max_attempts = 3)');
    expect(reply!.error).to.deep.equal({ code: 'test_flaky', retryable: true });
    expect(progress(flaky)).to.deep.equal([1, 2].map((n) => `Attempt ${n} failed (flaky: attempt ${n} fails); retrying`));

    const deadline = Date.now() + 5000;
    while ((await queueDepth(`${cfg.destination}.dead`)) < 1 && Date.now() < deadline) await sleep(100);
    const connection = await amqp.connect(AMQP_URL);
    try {
      const ch = await connection.createChannel();
      const dead = await ch.get(`${cfg.destination}.dead`, { noAck: true });
      expect(dead, 'a message in the dead-letter queue').not.to.equal(false);
      const props = (dead as amqp.GetMessage).properties;
      expect([props.messageId, props.correlationId, props.replyTo]).to.deep.equal([messageId, flaky, caller.replyQueue]);
      expect(props.headers?.['x-caller-tag']).to.equal('keep-me');
      expect(await ch.get(`${cfg.destination}.dead`, { noAck: true })).to.equal(false);
    } finally {
      await connection.close().catch(() => undefined);
    }
    expect(await queueDepth(`${cfg.destination}.retry`)).to.equal(0);
    expect(second.output).to.contain('Attempt 2 of 3 failed, will retry');
  });
});
