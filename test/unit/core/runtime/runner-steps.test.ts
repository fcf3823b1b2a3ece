/**
 * ctx.steps through the real runner and a real SQLite ledger: a step recorded by one
 * delivery is seen by the redelivery (after a retryable failure and after a crash that
 * left the entry in flight), durably, and never by another invocation.
 */
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { RetryableError } from '../../../../src/core/runtime/errors.js';
import { silentLogger } from '../../../../src/core/logging.js';
import type { FinalReply, Reply } from '../../../../src/core/runtime/messages.js';
import { LocalPlatform } from '../../../../src/platforms/local/local-platform.js';
import { definePlugin, ledgerSteps } from '../../../../src/core/runtime/plugin.js';
import { PluginRegistry } from '../../../../src/core/runtime/registry.js';
import { Runner } from '../../../../src/core/runtime/runner.js';
import type { Delivery } from '../../../../src/core/runtime/transport.js';
import { SqliteStore } from '../../../../src/core/store/sqlite-store.js';
import { tempDir } from '../../../support/harness.js';

/** Counts the effects it makes, so that a repeated effect shows. */
const effects = new Map<string, number>();

const stepsPlugin = definePlugin<Record<string, unknown>, undefined>({
  packageName: 'fn_steps',
  packageVersion: '1.0.0',
  configSection: 'fn_steps',
  destination: 'fn_steps',
  configSchema: { type: 'object' },
  async setup() {
    return undefined;
  },
  async selftest() {
    return { state: 'success' };
  },
  functions: [
    {
      name: 'test_two_effects',
      displayName: 'Test: two effects',
      description: 'Makes effect A (recorded as a step), then fails on its first delivery before effect B',
      inputSchema: { type: 'object', properties: { crash: { type: 'boolean', default: false } } },
      async handler(ctx) {
        let a = ctx.steps.get<{ serial: number }>('effect-a');
        if (!a) {
          const serial = (effects.get(`${ctx.invocationId}:a`) ?? 0) + 1;
          effects.set(`${ctx.invocationId}:a`, serial);
          a = { serial };
          await ctx.steps.record('effect-a', a);
        }
        if (ctx.attempt === 1) {
          // A crash: the delivery never ends (the runner neither finishes nor releases it).
          if (ctx.inputs.crash) return new Promise<never>(() => undefined);
          throw new RetryableError('upstream blip', 'blip');
        }
        effects.set(`${ctx.invocationId}:b`, (effects.get(`${ctx.invocationId}:b`) ?? 0) + 1);
        return { content: { a, attempt: ctx.attempt } };
      },
    },
  ],
});

describe('Runner: ctx.steps across redeliveries', function () {
  let store: SqliteStore;
  let file: string;

  function runnerOn(s: SqliteStore): Runner {
    const registry = new PluginRegistry();
    registry.add(stepsPlugin);
    return new Runner({
      registry,
      pluginStates: new Map([['fn_steps', undefined]]),
      store: s,
      platform: new LocalPlatform(path.join(path.dirname(file), 'files')),
      log: silentLogger(),
      maxAttempts: 3,
      maxMessageBytes: 1_000_000,
      retryDelayMs: () => 0,
    });
  }

  beforeEach(async () => {
    file = path.join(tempDir('runner-steps-'), 'worker.db');
    store = SqliteStore.open(file);
    await store.migrate();
  });

  afterEach(async () => {
    await store.close();
  });

  function delivery(id: string, redelivered: boolean, inputs: Record<string, unknown> = {}): Delivery & { sent: Reply[] } {
    const sent: Reply[] = [];
    return {
      body: Buffer.from(JSON.stringify({ function: { name: 'test_two_effects' }, inputs })),
      messageId: id,
      correlationId: id,
      replyTo: 'replies',
      destination: 'fn_steps',
      redelivered,
      sent,
      async reply(payload: Reply) {
        sent.push(payload);
      },
    };
  }

  const final = (d: { sent: Reply[] }) => d.sent.filter((r) => r.complete) as FinalReply[];

  it('a redelivery after a retryable failure resumes after the recorded step', async () => {
    const runner = runnerOn(store);
    const id = randomUUID();
    expect(await runner.handle(delivery(id, false))).to.deep.equal({ retryAfterMs: 0 });
    expect((await store.ledger.get(id))!.steps).to.deep.equal({ 'effect-a': { serial: 1 } });
    const second = delivery(id, true);
    expect(await runner.handle(second)).to.equal('ack');
    expect(final(second)).to.have.length(1);
    expect((final(second)[0] as unknown as { results: { content: unknown } }).results.content).to.deep.equal({ a: { serial: 1 }, attempt: 2 });
    expect(effects.get(`${id}:a`)).to.equal(1);
    expect(effects.get(`${id}:b`)).to.equal(1);
  });

  it('a step survives the worker: a new process on the same store resumes after it', async () => {
    const id = randomUUID();
    const crashed = runnerOn(store);
    void crashed.handle(delivery(id, false, { crash: true }));
    // Wait until the step is durable, as a dying process would have left it.
    const durable = async () => (await store.ledger.get(id))?.steps['effect-a'] !== undefined;
    for (const deadline = Date.now() + 10_000; !(await durable()) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    expect(await durable(), 'the step was recorded').to.equal(true);
    const reopened = SqliteStore.open(file);
    try {
      const second = delivery(id, true, { crash: true });
      expect(await runnerOn(reopened).handle(second)).to.equal('ack');
      expect((final(second)[0] as unknown as { results: { content: unknown } }).results.content).to.deep.equal({ a: { serial: 1 }, attempt: 2 });
    } finally {
      await reopened.close();
    }
    expect(effects.get(`${id}:a`)).to.equal(1);
  });

  it('steps belong to one invocation: another invocation starts from none', async () => {
    const runner = runnerOn(store);
    const one = randomUUID();
    const two = randomUUID();
    await runner.handle(delivery(one, false));
    await runner.handle(delivery(two, false));
    expect(effects.get(`${one}:a`)).to.equal(1);
    expect(effects.get(`${two}:a`)).to.equal(1);
    expect((await store.ledger.get(two))!.steps).to.deep.equal({ 'effect-a': { serial: 1 } });
  });
});

describe('ledgerSteps: writes only what the ledger does not hold', function () {
  it('recording the value a step has already writes nothing; a new value or a new step is written', async () => {
    const store = SqliteStore.open(':memory:');
    await store.migrate();
    try {
      const id = randomUUID();
      const begun = await store.ledger.begin(id, 'fn');
      await store.ledger.recordStep(id, 'posted', { ts: '1.1' });
      const writes: string[] = [];
      const counting = {
        recordStep: (invocationId: string, name: string, value: unknown) => {
          writes.push(`${name}=${JSON.stringify(value)}`);
          return store.ledger.recordStep(invocationId, name, value);
        },
      };
      // As a redelivery sees it: the step recorded by the earlier delivery.
      const steps = ledgerSteps(counting, id, { ...begun.entry.steps, posted: { ts: '1.1' } });
      await steps.record('posted', { ts: '1.1' });
      expect(writes).to.deep.equal([]);
      await steps.record('posted', { ts: '2.2' });
      await steps.record('posted', { ts: '2.2' });
      await steps.record('archived', undefined);
      await steps.record('archived', null);
      expect(writes).to.deep.equal(['posted={"ts":"2.2"}', 'archived=undefined']);
      expect((await store.ledger.get(id))!.steps).to.deep.equal({ posted: { ts: '2.2' }, archived: null });
      expect(steps.get('posted')).to.deep.equal({ ts: '2.2' });
    } finally {
      await store.close();
    }
  });
});
