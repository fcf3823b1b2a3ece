/**
 * Behaviour every Store implementation must have. Each spec file calls
 * `storeConformance(name, open, cleanup, reopen)` with a factory that returns a fresh,
 * empty, NOT yet migrated store per call (with the plugin tables given, if any);
 * `cleanup` runs once after the suite; `reopen` (stores that outlive their connection)
 * opens the same database again, for the upgrade tests.
 */
import { expect } from 'chai';
import type { FunctionDefinitionRecord, Store } from '../../src/core/store/store.js';
import { pluginTableConformance, type OpenWithTables, type ReopenWithTables } from './plugin-table-conformance.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function functionDefinition(
  name: string,
  overrides: Partial<Omit<FunctionDefinitionRecord, 'importedAt'>> = {},
): Omit<FunctionDefinitionRecord, 'importedAt'> {
  return {
    name,
    packageName: 'fn_test',
    displayName: `Test: ${name}`,
    description: 'A function «ünïcödé» for the conformance suite',
    destination: 'fn_test',
    // Key order matters: `worker functions` lists inputs in schema order, so the store
    // must give back the properties in the order they were recorded (not sorted).
    inputSchema: {
      type: 'object',
      required: ['zeta'],
      properties: { zeta: { type: 'integer', description: 'first' }, alpha: { type: ['string', 'null'] }, mid: { type: 'boolean' } },
    },
    hash: 'hash-1',
    ...overrides,
  };
}

/** Resolves when `n` parties have arrived; rejects after `ms` (used to prove parallelism). */
function barrier(n: number, ms: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return () => {
    arrived++;
    if (arrived === n) open();
    return Promise.race([
      opened,
      sleep(ms).then(() => {
        throw new Error(`barrier: only ${arrived} of ${n} parties arrived within ${ms} ms`);
      }),
    ]);
  };
}

export function storeConformance(
  name: string,
  open: OpenWithTables,
  cleanup?: () => Promise<void>,
  reopen?: ReopenWithTables,
): void {
  describe(`Store conformance: ${name}`, function () {
    pluginTableConformance(open, reopen);

    let store: Store;

    beforeEach(async function () {
      store = await open();
    });

    afterEach(async function () {
      await store?.close();
    });

    if (cleanup) after(cleanup);

    describe('schema', function () {
      it('reports version 0 before migrate and the expected version after', async function () {
        const before = await store.schemaStatus();
        expect(before.current).to.equal(0);
        expect(before.expected).to.be.greaterThan(0);
        const applied = await store.migrate();
        expect(applied).to.have.length.greaterThan(0);
        expect(applied[applied.length - 1]).to.equal(before.expected);
        expect(applied).to.deep.equal([...applied].sort((a, b) => a - b));
        expect(await store.schemaStatus()).to.deep.equal({ current: before.expected, expected: before.expected, tables: [] });
      });

      it('migrate is idempotent: a second run applies nothing and keeps the data', async function () {
        await store.migrate();
        await store.ledger.finish('inv-kept', 'succeeded', { ok: true });
        expect(await store.migrate()).to.deep.equal([]);
        expect(await store.migrate()).to.deep.equal([]);
        expect((await store.ledger.get('inv-kept'))?.reply).to.deep.equal({ ok: true });
        const status = await store.schemaStatus();
        expect(status.current).to.equal(status.expected);
      });

      it('refuses to use the tables before migrate with a message saying so', async function () {
        let error: unknown;
        try {
          await store.ledger.get('x');
        } catch (err) {
          error = err;
        }
        expect(error).to.be.instanceOf(Error);
        expect((error as Error).message).to.match(/migrat/i);
      });

      it('has kind and location', function () {
        expect(store.kind).to.be.a('string').and.not.equal('');
        expect(store.location).to.be.a('string').and.not.equal('');
      });
    });

    describe('with the schema migrated', function () {
      beforeEach(async function () {
        await store.migrate();
      });

      describe('invocation ledger', function () {
        it('begin of a new invocation records attempt 1, running', async function () {
          const t0 = Date.now();
          const b = await store.ledger.begin('inv-1', 'slack_post_message');
          expect(b.finished).to.equal(false);
          expect(b.interrupted).to.equal(false);
          expect(b.entry).to.include({
            invocationId: 'inv-1',
            functionName: 'slack_post_message',
            state: 'running',
            attempts: 1,
            reply: null,
            repliedAt: null,
            inFlight: true,
          });
          expect(b.entry.createdAt).to.be.instanceOf(Date);
          expect(b.entry.createdAt.getTime()).to.be.within(t0 - 5000, Date.now() + 5000);
          const got = await store.ledger.get('inv-1');
          expect(got).to.deep.equal(b.entry);
        });

        it('begin of a running invocation (redelivery) reports interrupted and counts attempt 2', async function () {
          await store.ledger.begin('inv-2', 'fn');
          const again = await store.ledger.begin('inv-2', 'fn');
          expect(again.interrupted).to.equal(true);
          expect(again.finished).to.equal(false);
          expect(again.entry.attempts).to.equal(2);
          expect(again.entry.state).to.equal('running');
          expect((await store.ledger.get('inv-2'))?.attempts).to.equal(2);
          const third = await store.ledger.begin('inv-2', 'fn');
          expect(third.entry.attempts).to.equal(3);
        });

        it('begin of a finished invocation returns the stored reply and leaves attempts unchanged', async function () {
          await store.ledger.begin('inv-3', 'fn');
          const reply = { success: true, content: { channel: 'C1', ts: '1.2' } };
          await store.ledger.finish('inv-3', 'succeeded', reply);
          for (let i = 0; i < 2; i++) {
            const b = await store.ledger.begin('inv-3', 'fn');
            expect(b.finished).to.equal(true);
            expect(b.interrupted).to.equal(false);
            expect(b.entry.state).to.equal('succeeded');
            expect(b.entry.attempts).to.equal(1);
            expect(b.entry.reply).to.deep.equal(reply);
          }
          expect((await store.ledger.get('inv-3'))?.attempts).to.equal(1);
        });

        it('finish records state, reply and time; get returns them', async function () {
          const started = await store.ledger.begin('inv-4', 'slack_archive_channel');
          await sleep(5);
          const reply = {
            success: false,
            reason: 'channel_not_found — «ünïcödé» 🚀',
            nested: { list: [1, 'two', null, true, { x: 1.5 }] },
          };
          await store.ledger.finish('inv-4', 'failed', reply);
          const got = await store.ledger.get('inv-4');
          expect(got).to.not.equal(undefined);
          expect(got!.state).to.equal('failed');
          expect(got!.reply).to.deep.equal(reply);
          expect(got!.functionName).to.equal('slack_archive_channel');
          expect(got!.createdAt.getTime()).to.equal(started.entry.createdAt.getTime());
          expect(got!.updatedAt.getTime()).to.be.greaterThan(started.entry.updatedAt.getTime());
        });

        it('inFlight: set by begin, cleared by release and finish; a release of a finished entry changes nothing', async function () {
          await store.ledger.begin('inv-f', 'fn');
          expect((await store.ledger.get('inv-f'))?.inFlight).to.equal(true);
          await store.ledger.release('inv-f');
          const released = (await store.ledger.get('inv-f'))!;
          expect(released.inFlight).to.equal(false);
          expect(released.state).to.equal('running');
          expect(released.attempts).to.equal(1);
          const again = await store.ledger.begin('inv-f', 'fn');
          expect(again.entry.inFlight).to.equal(true);
          expect(again.entry.attempts).to.equal(2);
          await store.ledger.finish('inv-f', 'succeeded', { ok: true });
          expect((await store.ledger.get('inv-f'))?.inFlight).to.equal(false);
          await store.ledger.begin('inv-f', 'fn');
          await store.ledger.release('inv-f');
          const done = (await store.ledger.get('inv-f'))!;
          expect(done).to.include({ state: 'succeeded', attempts: 2, inFlight: false });
          await store.ledger.release('unknown');
          expect(await store.ledger.get('unknown')).to.equal(undefined);
        });

        it('markReplied marks a finished entry once, keeps the first time, and ignores running or unknown ones', async function () {
          await store.ledger.begin('inv-r', 'fn');
          expect((await store.ledger.get('inv-r'))?.repliedAt).to.equal(null);
          expect(await store.ledger.markReplied('inv-r')).to.equal(false);
          expect((await store.ledger.get('inv-r'))?.repliedAt).to.equal(null);
          await store.ledger.finish('inv-r', 'succeeded', { ok: true });
          expect((await store.ledger.get('inv-r'))?.repliedAt).to.equal(null);
          const t0 = Date.now();
          expect(await store.ledger.markReplied('inv-r')).to.equal(true);
          const first = (await store.ledger.get('inv-r'))!.repliedAt;
          expect(first).to.be.instanceOf(Date);
          expect(first!.getTime()).to.be.within(t0 - 5000, Date.now() + 5000);
          await sleep(5);
          expect(await store.ledger.markReplied('inv-r')).to.equal(true);
          expect((await store.ledger.get('inv-r'))!.repliedAt!.getTime()).to.equal(first!.getTime());
          const again = await store.ledger.begin('inv-r', 'fn');
          expect(again.finished).to.equal(true);
          expect(again.entry.repliedAt!.getTime()).to.equal(first!.getTime());
          expect(await store.ledger.markReplied('nope')).to.equal(false);
        });

        it('replyFailed counts failed final replies of a finished entry only; abandonReply records the first give-up', async function () {
          await store.ledger.begin('inv-f', 'fn');
          expect(await store.ledger.replyFailed('inv-f')).to.equal(0);
          expect(await store.ledger.abandonReply('inv-f')).to.equal(false);
          let entry = (await store.ledger.get('inv-f'))!;
          expect([entry.replyFailures, entry.replyAbandonedAt]).to.deep.equal([0, null]);
          await store.ledger.finish('inv-f', 'succeeded', { ok: true });
          expect(await store.ledger.replyFailed('inv-f')).to.equal(1);
          const counts = await Promise.all([store.ledger.replyFailed('inv-f'), store.ledger.replyFailed('inv-f')]);
          expect(counts.sort()).to.deep.equal([2, 3]);
          expect((await store.ledger.get('inv-f'))!.replyFailures).to.equal(3);
          const t0 = Date.now();
          expect(await store.ledger.abandonReply('inv-f')).to.equal(true);
          entry = (await store.ledger.get('inv-f'))!;
          expect(entry.replyAbandonedAt).to.be.instanceOf(Date);
          expect(entry.replyAbandonedAt!.getTime()).to.be.within(t0 - 5000, Date.now() + 5000);
          await sleep(5);
          expect(await store.ledger.abandonReply('inv-f')).to.equal(true);
          expect((await store.ledger.get('inv-f'))!.replyAbandonedAt!.getTime()).to.equal(entry.replyAbandonedAt!.getTime());
          const again = await store.ledger.begin('inv-f', 'fn');
          expect([again.finished, again.entry.replyFailures]).to.deep.equal([true, 3]);
          expect(await store.ledger.replyFailed('nope')).to.equal(0);
          expect(await store.ledger.abandonReply('nope')).to.equal(false);
          expect(await store.ledger.get('nope')).to.equal(undefined);
        });

        it('steps: recorded durably per invocation, merged by name, returned by begin and get, kept after finish', async function () {
          const first = await store.ledger.begin('inv-s', 'fn');
          expect(first.entry.steps).to.deep.equal({});
          await store.ledger.recordStep('inv-s', 'export', { attachmentId: 7, name: 'a «b».txt' });
          await store.ledger.recordStep('inv-s', 'notice', '1700000000.000100');
          await store.ledger.recordStep('inv-s', 'notice', '1700000000.000200');
          await store.ledger.begin('other', 'fn');
          await store.ledger.recordStep('other', 'export', { attachmentId: 8 });
          const again = await store.ledger.begin('inv-s', 'fn');
          expect(again.interrupted).to.equal(true);
          expect(again.entry.steps).to.deep.equal({ export: { attachmentId: 7, name: 'a «b».txt' }, notice: '1700000000.000200' });
          await store.ledger.finish('inv-s', 'succeeded', { ok: true });
          expect((await store.ledger.get('inv-s'))!.steps).to.deep.equal(again.entry.steps);
          expect((await store.ledger.get('other'))!.steps).to.deep.equal({ export: { attachmentId: 8 } });
        });

        it('steps: 10 concurrent records of one invocation are all kept', async function () {
          await store.ledger.begin('inv-sc', 'fn');
          await Promise.all(Array.from({ length: 10 }, (_, i) => store.ledger.recordStep('inv-sc', `step-${i}`, i)));
          const steps = (await store.ledger.get('inv-sc'))!.steps;
          expect(steps).to.deep.equal(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`step-${i}`, i])));
        });

        it('steps: refused for an unknown or finished invocation and for an empty name, saying why', async function () {
          const refused = async (run: () => Promise<void>): Promise<string> => {
            try {
              await run();
            } catch (err) {
              return (err as Error).message;
            }
            return expect.fail('expected recordStep to be refused') as never;
          };
          expect(await refused(() => store.ledger.recordStep('nope', 'x', 1))).to.match(/nope has no running ledger entry/);
          await store.ledger.begin('inv-sf', 'fn');
          await store.ledger.finish('inv-sf', 'failed', { ok: false });
          expect(await refused(() => store.ledger.recordStep('inv-sf', 'x', 1))).to.match(/no running ledger entry/);
          await store.ledger.begin('inv-se', 'fn');
          expect(await refused(() => store.ledger.recordStep('inv-se', ' ', 1))).to.match(/non-empty/);
          expect((await store.ledger.get('inv-se'))!.steps).to.deep.equal({});
        });

        it('get of an unknown invocation is undefined', async function () {
          expect(await store.ledger.get('nope')).to.equal(undefined);
        });

        it('20 concurrent begins of one invocation get attempts 1..20, each once', async function () {
          const results = await Promise.all(
            Array.from({ length: 20 }, () => store.ledger.begin('inv-race', 'fn')),
          );
          const attempts = results.map((r) => r.entry.attempts).sort((a, b) => a - b);
          expect(attempts).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
          expect(results.filter((r) => !r.interrupted)).to.have.length(1);
          expect(results.filter((r) => !r.interrupted)[0]!.entry.attempts).to.equal(1);
          expect(results.every((r) => !r.finished)).to.equal(true);
          expect((await store.ledger.get('inv-race'))?.attempts).to.equal(20);
        });

        it('invocations are independent of each other', async function () {
          await Promise.all([store.ledger.begin('a', 'fn'), store.ledger.begin('b', 'fn'), store.ledger.begin('a', 'fn')]);
          expect((await store.ledger.get('a'))?.attempts).to.equal(2);
          expect((await store.ledger.get('b'))?.attempts).to.equal(1);
        });

        it('prune deletes finished entries older than the cut-off and keeps running ones', async function () {
          await store.ledger.begin('done-1', 'fn');
          await store.ledger.finish('done-1', 'succeeded', { ok: 1 });
          await store.ledger.begin('done-2', 'fn');
          await store.ledger.finish('done-2', 'failed', { ok: 0 });
          await store.ledger.begin('still-running', 'fn');

          expect(await store.ledger.prune(new Date(Date.now() - 60_000))).to.equal(0);
          expect(await store.ledger.get('done-1')).to.not.equal(undefined);

          expect(await store.ledger.prune(new Date(Date.now() + 60_000))).to.equal(2);
          expect(await store.ledger.get('done-1')).to.equal(undefined);
          expect(await store.ledger.get('done-2')).to.equal(undefined);
          expect((await store.ledger.get('still-running'))?.state).to.equal('running');
          expect(await store.ledger.prune(new Date(Date.now() + 60_000))).to.equal(0);
        });
      });

      describe('function definitions', function () {
        it('upsert creates, then reports unchanged for the same hash without rewriting', async function () {
          const def = functionDefinition('fn_b');
          expect(await store.definitions.upsert(def)).to.equal('created');
          const first = await store.definitions.get('fn_b');
          expect(first).to.not.equal(undefined);
          const { importedAt, ...rest } = first!;
          expect(rest).to.deep.equal(def);
          expect(importedAt).to.be.instanceOf(Date);
          expect(Object.keys((rest.inputSchema as { properties: object }).properties)).to.deep.equal(['zeta', 'alpha', 'mid']);
          await sleep(5);
          expect(await store.definitions.upsert(def)).to.equal('unchanged');
          expect(await store.definitions.get('fn_b')).to.deep.equal(first);
        });

        it('upsert with another hash updates every column and the import time', async function () {
          await store.definitions.upsert(functionDefinition('fn_c'));
          const before = (await store.definitions.get('fn_c'))!;
          await sleep(5);
          const changed = functionDefinition('fn_c', {
            packageName: 'fn_other',
            displayName: 'Changed',
            description: 'changed',
            destination: 'q2',
            inputSchema: { type: 'object', properties: {} },
            hash: 'hash-2',
          });
          expect(await store.definitions.upsert(changed)).to.equal('updated');
          const after = (await store.definitions.get('fn_c'))!;
          const { importedAt, ...rest } = after;
          expect(rest).to.deep.equal(changed);
          expect(importedAt.getTime()).to.be.greaterThan(before.importedAt.getTime());
        });

        it('list returns every definition sorted by name; get of an unknown name is undefined', async function () {
          expect(await store.definitions.list()).to.deep.equal([]);
          for (const n of ['fn_z', 'fn_a', 'fn_m']) await store.definitions.upsert(functionDefinition(n));
          expect((await store.definitions.list()).map((d) => d.name)).to.deep.equal(['fn_a', 'fn_m', 'fn_z']);
          expect(await store.definitions.get('fn_nope')).to.equal(undefined);
        });
      });

      describe('withLock', function () {
        it("returns fn's value", async function () {
          expect(await store.withLock('k', async () => 42)).to.equal(42);
        });

        it('never lets two critical sections on one key overlap', async function () {
          let active = 0;
          let maxActive = 0;
          const entered: number[] = [];
          await Promise.all(
            Array.from({ length: 8 }, (_, i) =>
              store.withLock('incident:1', async () => {
                active++;
                maxActive = Math.max(maxActive, active);
                entered.push(i);
                await sleep(10);
                active--;
              }),
            ),
          );
          expect(maxActive).to.equal(1);
          expect([...entered].sort((a, b) => a - b)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7]);
        });

        it('runs critical sections on different keys in parallel', async function () {
          const arrive = barrier(2, 3000);
          const results = await Promise.all([
            store.withLock('incident:A', async () => {
              await arrive();
              return 'A';
            }),
            store.withLock('incident:B', async () => {
              await arrive();
              return 'B';
            }),
          ]);
          expect(results).to.deep.equal(['A', 'B']);
        });

        it('releases the lock when fn throws', async function () {
          const boom = new Error('boom');
          let caught: unknown;
          try {
            await store.withLock('incident:2', async () => {
              throw boom;
            });
          } catch (err) {
            caught = err;
          }
          expect(caught).to.equal(boom);
          const value = await Promise.race([
            store.withLock('incident:2', async () => 'again'),
            sleep(3000).then(() => 'still locked'),
          ]);
          expect(value).to.equal('again');
        });

        it('makes check-then-create safe: 10 racing "ensure channel" sections create it once', async function () {
          let created = 0;
          await Promise.all(
            Array.from({ length: 10 }, (_, i) =>
              store.withLock('RES-77', async () => {
                const existing = await store.ledger.get('RES-77');
                if (existing) return existing;
                await sleep(5); // the Slack call creating the channel
                created++;
                await store.ledger.finish('RES-77', 'succeeded', { channel: `ch-${i}` });
                return store.ledger.get('RES-77');
              }),
            ),
          );
          expect(created).to.equal(1);
        });
      });

      describe('close', function () {
        it('closes; later calls reject; closing twice is fine', async function () {
          await store.ledger.begin('x', 'fn');
          await store.close();
          let error: unknown;
          try {
            await store.ledger.get('x');
          } catch (err) {
            error = err;
          }
          expect(error).to.be.instanceOf(Error);
          await store.close();
        });
      });
    });
  });
}
