/**
 * The Transport contract (transport.ts) is all the runner needs: a source of work that
 * is not AMQP (here an in-memory list, as the Slack envelopes will be) feeds the same
 * runner, settles each message as told, and implements a delayed retry by holding the
 * message itself, outside the runner, until its delay is over.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { silentLogger } from '../../../../src/core/logging.js';
import type { FinalReply, Reply } from '../../../../src/core/runtime/messages.js';
import { PluginRegistry } from '../../../../src/core/runtime/registry.js';
import { Runner } from '../../../../src/core/runtime/runner.js';
import { describeDisposition, isRetryLater, type Delivery, type DeliveryHandler, type Transport } from '../../../../src/core/runtime/transport.js';
import { SqliteStore } from '../../../../src/core/store/sqlite-store.js';
import { LocalPlatform } from '../../../../src/platforms/local/local-platform.js';
import echoPlugin from '../../../support/echo-plugin.js';
import { tempDir } from '../../../support/harness.js';

interface Envelope {
  id: string;
  body: unknown;
  /** Set once it came back from a delayed retry. */
  retried?: boolean;
}

/** An in-memory source of work: one message at a time, retries held in a timer list. */
class ListTransport implements Transport {
  readonly settled: { id: string; disposition: string }[] = [];
  readonly replies = new Map<string, Reply[]>();
  private handler: DeliveryHandler | undefined;
  private waiting = 0;
  private idle: (() => void) | undefined;

  constructor(private readonly queue: Envelope[]) {}

  async start(handler: DeliveryHandler): Promise<void> {
    this.handler = handler;
    void this.pump();
  }
  async submit(_queue: string, body: Buffer, props: { messageId: string }): Promise<void> {
    this.queue.push({ id: props.messageId, body: JSON.parse(body.toString('utf8')) as unknown });
    void this.pump();
  }
  async stopConsuming(): Promise<void> {
    this.handler = undefined;
  }
  async close(): Promise<void> {
    this.handler = undefined;
  }
  readinessProblem(): string | undefined {
    return this.handler ? undefined : 'not consuming';
  }
  on(): this {
    return this;
  }

  /** Resolves when the list is empty and no retry is waiting. */
  drained(): Promise<void> {
    return new Promise((resolve) => (this.idle = resolve));
  }

  private async pump(): Promise<void> {
    while (this.handler && this.queue.length > 0) {
      const env = this.queue.shift()!;
      const sent: Reply[] = this.replies.get(env.id) ?? [];
      this.replies.set(env.id, sent);
      const delivery: Delivery = {
        body: Buffer.from(JSON.stringify(env.body)),
        messageId: env.id,
        correlationId: env.id,
        replyTo: 'memory',
        destination: 'list',
        redelivered: Boolean(env.retried),
        reply: async (payload) => void sent.push(payload),
      };
      const disposition = await this.handler(delivery);
      this.settled.push({ id: env.id, disposition: describeDisposition(disposition) });
      if (isRetryLater(disposition)) {
        // Held here, not in the runner: the next message is handled meanwhile.
        this.waiting++;
        const again = env;
        setTimeout(() => {
          this.waiting--;
          this.queue.push({ ...again, retried: true });
          void this.pump();
        }, disposition.retryAfterMs);
      }
    }
    if (this.queue.length === 0 && this.waiting === 0) this.idle?.();
  }
}

describe('Transport: a second source of work feeds the same runner', function () {
  let store: SqliteStore;

  afterEach(async () => {
    await store.close();
  });

  it('handles each message, answers it, and retries a failing one later while the next ones go on', async () => {
    const dir = tempDir('transport-');
    const effectsDir = path.join(dir, 'effects');
    fs.mkdirSync(effectsDir);
    store = SqliteStore.open(':memory:');
    await store.migrate();
    const registry = new PluginRegistry();
    registry.add(echoPlugin);
    const runner = new Runner({
      registry,
      pluginStates: new Map([['fn_test', { effectsDir }]]),
      store,
      platform: new LocalPlatform(path.join(dir, 'files')),
      log: silentLogger(),
      maxAttempts: 3,
      maxMessageBytes: 1_000_000,
      retryDelayMs: (attempt) => 20 * attempt,
    });
    const transport = new ListTransport([
      { id: 'flaky', body: { function: { name: 'test_flaky' }, inputs: { fail_times: 1 } } },
      { id: 'echo', body: { function: { name: 'test_echo' }, inputs: { text: 'hi' } } },
    ]);
    // What a listener hands over joins the same source.
    await transport.submit('list', Buffer.from(JSON.stringify('not an object')), { messageId: 'broken' });
    const drained = transport.drained();
    await transport.start((d) => runner.handle(d));
    await drained;

    expect(transport.settled).to.deep.equal([
      { id: 'flaky', disposition: 'retry-later (20 ms)' },
      { id: 'echo', disposition: 'ack' },
      { id: 'broken', disposition: 'dead-letter' },
      { id: 'flaky', disposition: 'ack' },
    ]);
    const final = (id: string) => transport.replies.get(id)!.filter((r) => r.complete) as FinalReply[];
    expect((final('flaky')[0] as { results: { content: unknown } }).results.content).to.deep.equal({ attempt: 2 });
    expect(final('echo')).to.have.length(1);
    expect(final('broken')).to.have.length(1);
  });
});
