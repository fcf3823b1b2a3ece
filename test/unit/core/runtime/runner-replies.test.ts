/**
 * The runner's final replies across redeliveries (issue #5): the ledger records the
 * broker's confirm of the final reply, a broker redelivery of an answered invocation is
 * acked without a second reply, and a caller publishing the same message_id again still
 * gets the stored reply. Real SQLite ledger, the echo test plugin, a fake delivery.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { silentLogger } from '../../../../src/core/logging.js';
import type { FinalReply, Reply } from '../../../../src/core/runtime/messages.js';
import { LocalPlatform } from '../../../../src/platforms/local/local-platform.js';
import { PluginRegistry } from '../../../../src/core/runtime/registry.js';
import { Runner } from '../../../../src/core/runtime/runner.js';
import type { Delivery } from '../../../../src/core/runtime/transport.js';
import { SqliteStore } from '../../../../src/core/store/sqlite-store.js';
import echoPlugin from '../../../support/echo-plugin.js';
import { tempDir } from '../../../support/harness.js';

describe('Runner: final replies across redeliveries', function () {
  let store: SqliteStore;
  let runner: Runner;
  let effectsDir: string;

  beforeEach(async () => {
    const dir = tempDir('runner-replies-');
    effectsDir = path.join(dir, 'effects');
    fs.mkdirSync(effectsDir);
    store = SqliteStore.open(':memory:');
    await store.migrate();
    const registry = new PluginRegistry();
    registry.add(echoPlugin);
    runner = new Runner({
      registry,
      pluginStates: new Map([['fn_test', { effectsDir }]]),
      store,
      platform: new LocalPlatform(path.join(dir, 'files')),
      log: silentLogger(),
      maxAttempts: 3,
      maxMessageBytes: 1_000_000,
      retryDelayMs: () => 0,
    });
  });

  afterEach(async () => {
    await store.close();
  });

  /** A delivery of one test_echo invocation; `failFinal` makes the broker refuse the final reply. */
  function delivery(id: string, redelivered: boolean, failFinal = false): Delivery & { sent: Reply[] } {
    const sent: Reply[] = [];
    return {
      body: Buffer.from(JSON.stringify({ function: { name: 'test_echo' }, inputs: { text: 'hi' } })),
      messageId: id,
      correlationId: id,
      replyTo: 'replies',
      destination: 'fn_test',
      redelivered,
      sent,
      async reply(payload: Reply) {
        if (failFinal && payload.complete) throw new Error('connection closed');
        sent.push(payload);
      },
    };
  }

  const finals = (d: { sent: Reply[] }) => d.sent.filter((r) => r.complete) as FinalReply[];
  const effects = (id: string) => fs.readFileSync(path.join(effectsDir, `${id}.effect`), 'utf8').length / 2;

  it('records the confirmed reply; a broker redelivery is acked without replying again', async () => {
    const id = randomUUID();
    const first = delivery(id, false);
    expect(await runner.handle(first)).to.equal('ack');
    expect(finals(first)).to.have.length(1);
    expect((await store.ledger.get(id))!.repliedAt).to.be.instanceOf(Date);

    const redelivery = delivery(id, true);
    expect(await runner.handle(redelivery)).to.equal('ack');
    expect(redelivery.sent).to.deep.equal([]);
    expect(effects(id)).to.equal(1);
  });

  it('a caller publishing the same message_id again gets the stored reply; the confirm recorded before is not written again', async () => {
    const id = randomUUID();
    const marked: string[] = [];
    const markReplied = store.ledger.markReplied.bind(store.ledger);
    store.ledger.markReplied = (invocationId) => {
      marked.push(invocationId);
      return markReplied(invocationId);
    };
    const first = delivery(id, false);
    await runner.handle(first);
    const repliedAt = (await store.ledger.get(id))!.repliedAt;
    expect(repliedAt).to.be.instanceOf(Date);
    const again = delivery(id, false);
    expect(await runner.handle(again)).to.equal('ack');
    expect(finals(again)).to.deep.equal(finals(first));
    expect(effects(id)).to.equal(1);
    expect(marked).to.deep.equal([id]);
    expect((await store.ledger.get(id))!.repliedAt).to.deep.equal(repliedAt);
  });

  it('a reply that was not confirmed is sent on redelivery, from the ledger, then recorded', async () => {
    const id = randomUUID();
    const lost = delivery(id, false, true);
    expect(await runner.handle(lost)).to.deep.equal({ retryAfterMs: 0 });
    const entry = (await store.ledger.get(id))!;
    expect(entry.state).to.equal('succeeded');
    expect(entry.repliedAt).to.equal(null);

    const redelivery = delivery(id, true);
    expect(await runner.handle(redelivery)).to.equal('ack');
    expect(finals(redelivery)).to.have.length(1);
    expect(finals(redelivery)[0]).to.deep.equal(entry.reply);
    expect((await store.ledger.get(id))!.repliedAt).to.be.instanceOf(Date);
    expect(effects(id)).to.equal(1);
  });

  it('a replay whose reply cannot be sent comes back later, not acked (the caller would get nothing), up to max_attempts', async () => {
    const id = randomUUID();
    expect(await runner.handle(delivery(id, false, true))).to.deep.equal({ retryAfterMs: 0 });
    expect(await runner.handle(delivery(id, true, true))).to.deep.equal({ retryAfterMs: 0 });
    expect((await store.ledger.get(id))!.replyFailures).to.equal(2);
    // The third failed reply (max_attempts = 3) gives it up: dead-lettered, recorded.
    expect(await runner.handle(delivery(id, false, true))).to.equal('dead-letter');
    const entry = (await store.ledger.get(id))!;
    expect(entry.repliedAt).to.equal(null);
    expect(entry.replyFailures).to.equal(3);
    expect(entry.replyAbandonedAt).to.be.instanceOf(Date);
    expect(effects(id)).to.equal(1);
  });
});
