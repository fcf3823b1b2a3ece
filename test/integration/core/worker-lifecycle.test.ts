/**
 * The worker's lifecycle state (issue #12 item 7), in process against the real RabbitMQ
 * and a SQLite store: created → starting → running → draining → stopped, or → failed;
 * `/readyz` fails unless running; a stop that cannot close a part is a ShutdownError of
 * its own, after which the worker is stopped all the same.
 */
import { expect } from 'chai';
import { builtinPlugins } from '../../../src/functions/index.js';
import { silentLogger } from '../../../src/core/logging.js';
import { ShutdownError } from '../../../src/core/runtime/errors.js';
import { definePlugin } from '../../../src/core/runtime/plugin.js';
import { Worker } from '../../../src/core/runtime/worker.js';
import { deleteDestination, writeConfig, type TestConfig } from '../../support/harness.js';
import { freePort, httpGet } from '../../support/prometheus.js';

/** A plugin without functions whose teardown fails: the part a stop cannot close. */
const brokenTeardown = definePlugin<Record<string, unknown>, undefined>({
  packageName: 'fn_broken_teardown',
  packageVersion: '1.0.0',
  configSection: 'fn_broken_teardown',
  configSchema: { type: 'object', properties: {} },
  destination: 'fn_broken_teardown',
  functions: [],
  async setup() {
    return undefined;
  },
  async selftest() {
    return { state: 'success' };
  },
  async teardown() {
    throw new Error('the test plugin will not let go');
  },
});

/** A plugin without functions that keeps what its setup was given (the retention it prunes its own tables by). */
const setupSeen: { retentionDays?: number | undefined } = {};
const retentionReader = definePlugin<Record<string, unknown>, undefined>({
  packageName: 'fn_retention_reader',
  packageVersion: '1.0.0',
  configSection: 'fn_retention_reader',
  configSchema: { type: 'object', properties: {} },
  destination: 'fn_retention_reader',
  functions: [],
  async setup(ctx) {
    setupSeen.retentionDays = ctx.retentionDays;
    return undefined;
  },
  async selftest() {
    return { state: 'success' };
  },
});

describe('worker lifecycle (real RabbitMQ)', function () {
  this.timeout(60_000);
  let cfg: TestConfig | undefined;
  let worker: Worker | undefined;

  afterEach(async () => {
    await worker?.stop('test over').catch(() => undefined);
    worker = undefined;
    if (cfg) await deleteDestination(cfg.destination);
    cfg = undefined;
  });

  it('goes created → starting → running → draining → stopped; /readyz is ready only while running', async () => {
    const port = await freePort();
    cfg = writeConfig({ worker: { metrics_port: port } });
    worker = await Worker.create({ configFile: cfg.file, builtins: builtinPlugins, log: silentLogger() });
    expect(worker.state).to.equal('created');
    const starting = worker.start();
    expect(worker.state).to.equal('starting');
    await starting;
    expect(worker.state).to.equal('running');
    const ready = await httpGet(`http://127.0.0.1:${port}/readyz`);
    expect(JSON.parse(ready.body)).to.deep.equal({ ready: true, checks: ['worker', 'broker', 'listeners', 'store'] });
    expect(
      await worker.start().then(
        () => 'started again',
        (err: Error) => err.message,
      ),
    ).to.equal('Worker.start: the worker is running; a worker starts once');

    const stopping = worker.stop('test');
    expect(worker.state).to.equal('draining');
    await stopping;
    expect(worker.state).to.equal('stopped');
    await worker.waitUntilStopped();
  });

  it('a worker whose start fails is failed; stopping it then only resolves', async () => {
    cfg = writeConfig({ worker: { amqp_url: 'amqp://guest:guest@127.0.0.1:1' } });
    worker = await Worker.create({ configFile: cfg.file, builtins: builtinPlugins, log: silentLogger() });
    const err = await worker.start().then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.contain('connection refused by 127.0.0.1:1');
    expect(worker.state).to.equal('failed');
    await worker.stop('test');
    expect(worker.state).to.equal('failed');
  });

  it('a worker stopped before it started is stopped, and does not start afterwards', async () => {
    cfg = writeConfig();
    worker = await Worker.create({ configFile: cfg.file, builtins: builtinPlugins, log: silentLogger() });
    await worker.stop('never mind');
    expect(worker.state).to.equal('stopped');
    expect(
      await worker.start().then(
        () => 'started',
        (e: Error) => e.message,
      ),
    ).to.equal('Worker.start: the worker is stopped; a worker starts once');
  });

  it('a stop that cannot close a part rejects with a ShutdownError naming it; the worker is stopped all the same', async () => {
    cfg = writeConfig({ sections: { fn_broken_teardown: {} } });
    worker = await Worker.create({ configFile: cfg.file, builtins: [...builtinPlugins, brokenTeardown], log: silentLogger() });
    await worker.start();
    const err = await worker.stop('test').then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).to.be.instanceOf(ShutdownError);
    expect((err as ShutdownError).code).to.equal('shutdown_incomplete');
    expect(err!.message).to.equal('Stopped, but could not close teardown of fn_broken_teardown: the test plugin will not let go');
    expect(worker.state).to.equal('stopped');
  });

  it("gives plugins the worker's retention ([worker] ledger_retention_days) to prune their own tables by", async () => {
    cfg = writeConfig({ worker: { ledger_retention_days: 7 }, sections: { fn_retention_reader: {} } });
    worker = await Worker.create({ configFile: cfg.file, builtins: [...builtinPlugins, retentionReader], log: silentLogger() });
    await worker.start();
    expect(setupSeen.retentionDays).to.equal(7);
  });
});
