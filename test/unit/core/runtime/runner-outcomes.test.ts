/**
 * The runner's disposition of each kind of delivery, through decideOutcome (issue #12
 * item 2), and the undeliverable-reply rules (issue #11 items 1 and 6): a reply_to that
 * can never work is refused before the function runs; failed final replies are counted,
 * backed off and given up after max_attempts; the repeated warning is rate-limited; the
 * last attempt's error does not promise a retry.
 *
 * Real SQLite ledger and the echo test plugin; the Delivery is the runner's own contract,
 * so a fake one stands in for the broker.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { RequestConnectionLostError } from '../../../../src/core/runtime/errors.js';
import type { Logger } from '../../../../src/core/logging.js';
import type { ErrorReply, FinalReply, Reply } from '../../../../src/core/runtime/messages.js';
import { LocalPlatform } from '../../../../src/platforms/local/local-platform.js';
import { PluginRegistry } from '../../../../src/core/runtime/registry.js';
import { Runner, type RunnerOptions } from '../../../../src/core/runtime/runner.js';
import type { Delivery } from '../../../../src/core/runtime/transport.js';
import { SqliteStore } from '../../../../src/core/store/sqlite-store.js';
import echoPlugin from '../../../support/echo-plugin.js';
import { tempDir } from '../../../support/harness.js';

/** A logger that keeps every line (level and message). */
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

interface FakeDelivery extends Delivery {
  sent: Reply[];
}

describe('Runner: one disposition per outcome', function () {
  let dir: string;
  let effectsDir: string;
  let store: SqliteStore;
  let lines: string[];
  let delays: number[];

  beforeEach(async () => {
    dir = tempDir('runner-outcomes-');
    effectsDir = path.join(dir, 'effects');
    fs.mkdirSync(effectsDir);
    store = SqliteStore.open(':memory:');
    await store.migrate();
    lines = [];
    delays = [];
  });

  afterEach(async () => {
    await store.close().catch(() => undefined);
  });

  function runner(opts: Partial<RunnerOptions> = {}): Runner {
    const registry = new PluginRegistry();
    registry.add(echoPlugin);
    return new Runner({
      registry,
      pluginStates: new Map([['fn_test', { effectsDir }]]),
      store,
      platform: new LocalPlatform(path.join(dir, 'files')),
      log: recordingLogger(lines),
      maxAttempts: 3,
      maxMessageBytes: 1_000_000,
      retryDelayMs: (n) => {
        delays.push(n);
        return n * 100;
      },
      ...opts,
    });
  }

  function delivery(
    id: string,
    opts: {
      body?: unknown;
      redelivered?: boolean;
      replyTo?: string;
      problem?: string;
      failFinal?: Error;
    } = {},
  ): FakeDelivery {
    const sent: Reply[] = [];
    const body = opts.body ?? { function: { name: 'test_echo' }, inputs: { text: 'hi' } };
    return {
      body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
      messageId: id,
      correlationId: id,
      replyTo: opts.replyTo ?? 'replies',
      destination: 'fn_test',
      redelivered: opts.redelivered ?? false,
      sent,
      async reply(payload: Reply) {
        if (opts.failFinal && payload.complete) throw opts.failFinal;
        sent.push(payload);
      },
      async checkReplyTo() {
        return opts.problem;
      },
    };
  }

  const finals = (d: FakeDelivery) => d.sent.filter((r) => r.complete) as FinalReply[];
  const effects = (id: string) => {
    const file = path.join(effectsDir, `${id}.effect`);
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').length / 2 : 0;
  };

  it('acks a success whose reply is confirmed', async () => {
    const id = randomUUID();
    const d = delivery(id);
    expect(await runner().handle(d)).to.equal('ack');
    expect(finals(d)).to.have.length(1);
  });

  it('requeues without starting when shutting down', async () => {
    const r = runner();
    r.stopAccepting();
    const d = delivery(randomUUID());
    expect(await r.handle(d)).to.equal('requeue');
    expect(d.sent).to.deep.equal([]);
  });

  it('dead-letters an unusable message with an error reply, and without one when its reply_to can never work', async () => {
    const d = delivery(randomUUID(), { body: 'not json' });
    expect(await runner().handle(d)).to.equal('dead-letter');
    expect(finals(d)).to.have.length(1);
    const bad = delivery(randomUUID(), { body: 'not json', problem: 'no queue named "gone" exists' });
    expect(await runner().handle(bad)).to.equal('dead-letter');
    expect(bad.sent).to.deep.equal([]);
    expect(lines.some((l) => l.startsWith('WARN Rejected message') && l.includes('no queue named "gone" exists'))).to.equal(true);
  });

  it('acks invalid inputs once the error reply is confirmed; dead-letters them when it cannot be sent', async () => {
    const body = { function: { name: 'test_echo' }, inputs: { nope: 1 } };
    const d = delivery(randomUUID(), { body });
    expect(await runner().handle(d)).to.equal('ack');
    expect((finals(d)[0] as ErrorReply).error!.code).to.equal('invalid_inputs');
    const refused = delivery(randomUUID(), { body, failFinal: new Error('message nacked') });
    expect(await runner().handle(refused)).to.equal('dead-letter');
  });

  it('refuses a reply_to that can never work before the function runs: recorded, given up, dead-lettered', async () => {
    const id = randomUUID();
    const d = delivery(id, { replyTo: 'amq.rabbitmq.reply-to.abc.def', problem: 'no queue named "amq.rabbitmq.reply-to.abc.def" exists' });
    expect(await runner().handle(d)).to.equal('dead-letter');
    expect(d.sent).to.deep.equal([]);
    expect(effects(id)).to.equal(0);
    const entry = (await store.ledger.get(id))!;
    expect(entry.state).to.equal('failed');
    expect(entry.replyAbandonedAt).to.be.instanceOf(Date);
    expect((entry.reply as unknown as ErrorReply).error).to.deep.equal({ code: 'reply_to_invalid', retryable: false });
    const warn = lines.find((l) => l.startsWith('WARN Cannot reply to amq.rabbitmq.reply-to.abc.def'));
    expect(warn, lines.join('\n')).to.match(/function was not run.*Dead-lettered/);
  });

  it('acks a broker redelivery of an answered invocation whose caller has left since (its reply queue is gone)', async () => {
    const id = randomUUID();
    const r = runner();
    expect(await r.handle(delivery(id))).to.equal('ack');
    const again = delivery(id, { redelivered: true, problem: 'no queue named "replies" exists' });
    expect(await r.handle(again)).to.equal('ack');
    expect(again.sent).to.deep.equal([]);
    expect((await store.ledger.get(id))!.replyAbandonedAt).to.equal(null);
    expect(effects(id)).to.equal(1);
  });

  it('retries later when the ledger is unavailable', async () => {
    const r = runner();
    await store.close();
    expect(await r.handle(delivery(randomUUID()))).to.deep.equal({ retryAfterMs: 100 });
    expect(lines.some((l) => l.startsWith('ERROR Invocation ledger unavailable'))).to.equal(true);
  });

  it('counts failed final replies with backoff, gives up at max_attempts (recorded, WARN), dead-letters', async () => {
    const id = randomUUID();
    const r = runner();
    const nacked = () => delivery(id, { failFinal: new Error('message nacked'), redelivered: true });
    expect(await r.handle(delivery(id, { failFinal: new Error('message nacked') }))).to.deep.equal({ retryAfterMs: 100 });
    expect(await r.handle(nacked())).to.deep.equal({ retryAfterMs: 200 }); // backoff grows with the failed replies
    expect(delays).to.deep.equal([1, 2]);
    expect(await r.handle(nacked())).to.equal('dead-letter');
    expect(effects(id)).to.equal(1);
    const entry = (await store.ledger.get(id))!;
    expect([entry.state, entry.replyFailures, entry.repliedAt]).to.deep.equal(['succeeded', 3, null]);
    expect(entry.replyAbandonedAt).to.be.instanceOf(Date);
    expect(lines.filter((l) => l.startsWith('WARN Gave up the final reply to replies after 3 failed attempts'))).to.have.length(1);
    // A broker redelivery (the worker stopped before the dead-letter) is dead-lettered again, unanswered.
    const again = delivery(id, { redelivered: true });
    expect(await r.handle(again)).to.equal('dead-letter');
    expect(again.sent).to.deep.equal([]);
  });

  it("requeues without counting when the request's own connection is gone", async () => {
    const id = randomUUID();
    const r = runner();
    expect(await r.handle(delivery(id, { failFinal: new RequestConnectionLostError() }))).to.equal('requeue');
    expect((await store.ledger.get(id))!.replyFailures).to.equal(0);
    expect(delays).to.deep.equal([]);
    const redelivery = delivery(id, { redelivered: true });
    expect(await r.handle(redelivery)).to.equal('ack');
    expect(finals(redelivery)).to.have.length(1);
  });

  it('acks a broker redelivery whose reply was confirmed, without a second reply', async () => {
    const id = randomUUID();
    const r = runner();
    await r.handle(delivery(id));
    const again = delivery(id, { redelivered: true });
    expect(await r.handle(again)).to.equal('ack');
    expect(again.sent).to.deep.equal([]);
  });

  it('rate-limits the repeated "could not send the final reply" warning', async () => {
    const r = runner({ maxAttempts: 100 });
    for (let i = 0; i < 30; i++) {
      expect(await r.handle(delivery(randomUUID(), { failFinal: new Error('message nacked') }))).to.deep.equal({ retryAfterMs: 100 });
    }
    expect(lines.filter((l) => l.includes('Could not send the final reply to replies: message nacked'))).to.have.length(1);
  });

  it('retries a retryable failure later (delay by attempt) with a "retrying" progress message; the last attempt does not promise a retry', async () => {
    const id = randomUUID();
    const r = runner();
    const body = { function: { name: 'test_fail' }, inputs: { retryable: true } };
    const attempts = [delivery(id, { body }), delivery(id, { body, redelivered: true }), delivery(id, { body, redelivered: true })];
    expect(await r.handle(attempts[0]!)).to.deep.equal({ retryAfterMs: 100 });
    expect(await r.handle(attempts[1]!)).to.deep.equal({ retryAfterMs: 200 });
    expect(attempts[1]!.sent.map((m) => m.message)).to.deep.equal(['Attempt 2 failed (the test service is down); retrying']);
    expect(await r.handle(attempts[2]!)).to.equal('dead-letter');
    const last = attempts[2]!.sent;
    expect(last.filter((m) => !m.complete)).to.deep.equal([]);
    const [final] = finals(attempts[2]!);
    expect(final!.message).to.equal('the test service is down (gave up after attempt 3 of 3; max_attempts = 3)');
    expect(final!.message).not.to.match(/will be retried|will retry|retrying/i);
    expect((final as ErrorReply).error).to.deep.equal({ code: 'test_down', retryable: true });
    expect(lines.some((l) => /^WARN test_fail failed: .*gave up after attempt 3 of 3/.test(l))).to.equal(true);
  });

  it('sends progress through the transport\'s unconfirmed path; a progress message that fails is logged and the invocation still succeeds', async () => {
    const id = randomUUID();
    const d = delivery(id, { body: { function: { name: 'test_echo' }, inputs: { text: 'hi', steps: 3 } } });
    const progress: string[] = [];
    d.progress = async (payload: Reply) => {
      if (payload.message === 'step 2 of 3') throw new Error('reply connection closed');
      progress.push(payload.message);
    };
    expect(await runner().handle(d)).to.equal('ack');
    expect(progress).to.deep.equal(['step 1 of 3', 'step 3 of 3']);
    // Only the final reply went the confirmed way.
    expect(d.sent.map((r) => r.complete)).to.deep.equal([true]);
    expect(finals(d)[0]!.message).to.equal('Completed');
    expect(lines).to.include('WARN Could not send a progress message to replies: reply connection closed');
    expect(effects(id)).to.equal(1);
  });

  it('does not wait out a retry delay itself: the delivery is settled at once and the runner is idle', async () => {
    // An hour: were the runner to sleep it away with the message in hand, this test would time out.
    const r = runner({ retryDelayMs: () => 3_600_000 });
    const d = delivery(randomUUID(), { body: { function: { name: 'test_fail' }, inputs: { retryable: true } } });
    expect(await r.handle(d)).to.deep.equal({ retryAfterMs: 3_600_000 });
    expect(r.activeCount).to.equal(0);
    await r.whenIdle();
  });

  it('answers a final (not retryable) failure and acks it', async () => {
    const d = delivery(randomUUID(), { body: { function: { name: 'test_fail' }, inputs: {} } });
    expect(await runner().handle(d)).to.equal('ack');
    expect((finals(d)[0] as ErrorReply).error).to.deep.equal({ code: 'test_refused', retryable: false });
  });
});
