/**
 * Deferred results through the real runner, a real SQLite ledger and a real RabbitMQ
 * reply queue: a handler that returns DEFERRED is acked with no final reply and its ledger
 * entry stays running (not in flight); the final reply sent later reaches the caller's
 * reply_to with its correlation_id, once; a redelivery after that is answered from the
 * ledger, and one before it resumes the handler.
 */
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { DEFERRED, LateBoundPublish, LedgerDeferredReplies, type DeferredTicket } from '../../../../src/core/runtime/deferred.js';
import { silentLogger } from '../../../../src/core/logging.js';
import type { FinalReply, Reply, ResultReply } from '../../../../src/core/runtime/messages.js';
import { LocalPlatform } from '../../../../src/platforms/local/local-platform.js';
import { definePlugin } from '../../../../src/core/runtime/plugin.js';
import { PluginRegistry } from '../../../../src/core/runtime/registry.js';
import { ReplyPublisher } from '../../../../src/core/runtime/reply-publisher.js';
import { Runner } from '../../../../src/core/runtime/runner.js';
import type { Delivery } from '../../../../src/core/runtime/transport.js';
import { SqliteStore } from '../../../../src/core/store/sqlite-store.js';
import { AMQP_URL, tempDir, uniqueName } from '../../../support/harness.js';

const tickets = new Map<string, DeferredTicket>();
const runs = new Map<string, number>();

const deferPlugin = definePlugin<Record<string, unknown>, undefined>({
  packageName: 'fn_defer',
  packageVersion: '2.3.4',
  configSection: 'fn_defer',
  destination: 'fn_defer',
  configSchema: { type: 'object' },
  async setup() {
    return undefined;
  },
  async selftest() {
    return { state: 'success' };
  },
  functions: [
    {
      name: 'test_wait',
      displayName: 'Test: wait for an answer',
      description: 'Records a question once (a step), then defers its result',
      inputSchema: { type: 'object', properties: { q: { type: 'string' } } },
      async handler(ctx) {
        runs.set(ctx.invocationId, (runs.get(ctx.invocationId) ?? 0) + 1);
        if (!ctx.steps.get('asked')) await ctx.steps.record('asked', { at: Date.now() });
        tickets.set(ctx.invocationId, ctx.deferral!);
        await ctx.status('Waiting for an answer');
        return DEFERRED;
      },
    },
  ],
});

describe('Deferred results', function () {
  this.timeout(20_000);
  let store: SqliteStore;
  let runner: Runner;
  let conn: ChannelModel;
  let ch: Channel;
  let replyQueue: string;
  let publisher: ReplyPublisher;
  let received: { body: FinalReply | Reply; correlationId: string | undefined }[];

  beforeEach(async () => {
    const file = path.join(tempDir('deferred-'), 'worker.db');
    store = SqliteStore.open(file);
    await store.migrate();
    const registry = new PluginRegistry();
    registry.add(deferPlugin);
    runner = new Runner({
      registry,
      pluginStates: new Map([['fn_defer', undefined]]),
      store,
      platform: new LocalPlatform(path.join(path.dirname(file), 'files')),
      log: silentLogger(),
      maxAttempts: 3,
      maxMessageBytes: 1_000_000,
      retryDelayMs: () => 0,
    });
    conn = await amqp.connect(AMQP_URL);
    ch = await conn.createChannel();
    replyQueue = uniqueName('deferred-replies');
    await ch.assertQueue(replyQueue, { exclusive: true });
    received = [];
    await ch.consume(
      replyQueue,
      (m) => {
        if (m)
          received.push({ body: JSON.parse(m.content.toString()) as FinalReply, correlationId: m.properties.correlationId as string | undefined });
      },
      { noAck: true },
    );
    publisher = new ReplyPublisher({ connect: () => amqp.connect(AMQP_URL), log: silentLogger() });
  });

  afterEach(async () => {
    await publisher.close();
    await conn.close().catch(() => undefined);
    await store.close();
  });

  function delivery(id: string, redelivered: boolean): Delivery & { sent: Reply[] } {
    const sent: Reply[] = [];
    return {
      body: Buffer.from(JSON.stringify({ function: { name: 'test_wait' }, inputs: { q: 'Isolate?' } })),
      messageId: id,
      correlationId: `corr-${id}`,
      replyTo: replyQueue,
      destination: 'fn_defer',
      redelivered,
      sent,
      async reply(payload: Reply) {
        sent.push(payload);
      },
    };
  }

  const waitFor = async (ok: () => boolean) => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(ok(), 'waited 2 s').to.equal(true);
  };

  function replies(): LedgerDeferredReplies {
    return new LedgerDeferredReplies({ ledger: store.ledger, publish: (q, c, b) => publisher.publish(q, c, b), log: silentLogger(), host: 'h1' });
  }

  it('a deferred invocation is acked with progress only; its ledger entry stays running, not in flight', async () => {
    const id = randomUUID();
    const d = delivery(id, false);
    expect(await runner.handle(d)).to.equal('ack');
    expect(d.sent.map((r) => r.complete)).to.deep.equal([false]);
    const entry = (await store.ledger.get(id))!;
    expect(entry).to.include({ state: 'running', inFlight: false, reply: null, repliedAt: null });
    expect(tickets.get(id)).to.deep.include({
      invocationId: id,
      functionName: 'test_wait',
      replyTo: replyQueue,
      correlationId: `corr-${id}`,
      packageName: 'fn_defer',
      packageVersion: '2.3.4',
      inputs: { q: 'Isolate?' },
    });
  });

  it('the ledger keeps a deferred entry however old: pruning takes only finished ones', async () => {
    const id = randomUUID();
    await runner.handle(delivery(id, false));
    expect(await store.ledger.prune(new Date(Date.now() + 365 * 86_400_000))).to.equal(0);
    expect((await store.ledger.get(id))!.state).to.equal('running');
  });

  it('the final reply sent later reaches reply_to with the correlation_id, once, and is recorded in the ledger', async () => {
    const id = randomUUID();
    await runner.handle(delivery(id, false));
    const ticket = JSON.parse(JSON.stringify(tickets.get(id))) as DeferredTicket; // as stored elsewhere
    const r = replies();
    const reply = r.finalReply(ticket, { content: { answer: 'Approve' } });
    expect(await r.send(ticket, reply)).to.equal('sent');
    await waitFor(() => received.length === 1);
    expect(received[0]!.correlationId).to.equal(`corr-${id}`);
    const body = received[0]!.body as ResultReply;
    expect(body).to.include({ message_type: 0, complete: true });
    expect(body.results).to.deep.include({ version: 2, success: true, content: { answer: 'Approve' }, inputs: { q: 'Isolate?' } });
    expect(body.results.metrics).to.include({ package: 'fn_defer', package_version: '2.3.4', host: 'h1' });
    const entry = (await store.ledger.get(id))!;
    expect(entry.state).to.equal('succeeded');
    expect(entry.repliedAt).to.be.instanceOf(Date);
    // A second send (a sweeper that raced the answer) publishes nothing.
    expect(await r.send(ticket, r.finalReply(ticket, { content: { answer: 'Reject' } }))).to.equal('already-sent');
    await new Promise((res) => setTimeout(res, 200));
    expect(received).to.have.length(1);
  });

  it('a redelivery after the final reply is acked without another; one before it resumes the handler and defers again', async () => {
    const id = randomUUID();
    await runner.handle(delivery(id, false));
    const again = delivery(id, true);
    expect(await runner.handle(again)).to.equal('ack');
    expect(runs.get(id)).to.equal(2);
    expect(again.sent.filter((s) => s.complete)).to.have.length(0);
    expect((await store.ledger.get(id))!.steps.asked).to.not.equal(undefined);
    const r = replies();
    await r.send(tickets.get(id)!, r.finalReply(tickets.get(id)!, { content: { answer: 'Approve' } }));
    const late = delivery(id, true);
    expect(await runner.handle(late)).to.equal('ack');
    expect(late.sent).to.have.length(0);
    expect(runs.get(id)).to.equal(2);
    // A caller publishing the same message_id again gets the stored reply.
    const dup = delivery(id, false);
    await runner.handle(dup);
    expect((dup.sent[0] as ResultReply).results.content).to.deep.equal({ answer: 'Approve' });
  });

  it('an unconfirmed send is retried with the reply the ledger stored; a send before the publisher exists waits for it', async () => {
    const id = randomUUID();
    await runner.handle(delivery(id, false));
    const late = new LateBoundPublish();
    const r = new LedgerDeferredReplies({ ledger: store.ledger, publish: late.publish, log: silentLogger() });
    const ticket = tickets.get(id)!;
    const failing = new LedgerDeferredReplies({ ledger: store.ledger, publish: () => Promise.reject(new Error('nack')), log: silentLogger() });
    const first = failing.finalReply(ticket, { content: { answer: 'Approve' } });
    const err = await failing.send(ticket, first).catch((e: { code: string; retryable: boolean }) => e);
    expect(err).to.include({ code: 'reply_failed', retryable: true });
    const pending = r.send(ticket, r.finalReply(ticket, { content: { answer: 'Reject' } }));
    await new Promise((res) => setTimeout(res, 50));
    expect(received).to.have.length(0);
    late.attach((q, c, b) => publisher.publish(q, c, b));
    expect(await pending).to.equal('sent');
    await waitFor(() => received.length === 1);
    expect((received[0]!.body as ResultReply).results.content).to.deep.equal({ answer: 'Approve' });
  });
});
