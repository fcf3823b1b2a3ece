/**
 * The health and metrics listener of a spawned `worker run` (real RabbitMQ, SQLite,
 * the echo test plugin): the metrics endpoint reflects invocations and reconnects.
 */
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { Caller, deleteDestination, WorkerProcess, writeConfig, type TestConfig } from '../../support/harness.js';
import { Bystander, closeConnectionsNamed, workerConnectionName } from '../../support/rabbitmq.js';
import { freePort, httpGet, sampleValue, scrapeUntil } from '../../support/prometheus.js';

describe('worker run: health and metrics listener (real RabbitMQ)', function () {
  this.timeout(90_000);
  let cfg: TestConfig | undefined;
  let worker: WorkerProcess | undefined;
  let caller: Caller | undefined;
  let bystander: Bystander | undefined;

  afterEach(async () => {
    await bystander?.close();
    bystander = undefined;
    if (worker) await worker.stop('SIGKILL');
    worker = undefined;
    await caller?.close();
    caller = undefined;
    if (cfg) await deleteDestination(cfg.destination);
    cfg = undefined;
  });

  it('reflects invocations by function and outcome, readiness, broker reconnects and a graceful stop', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    cfg = writeConfig({ worker: { metrics_port: port, max_attempts: 2 } });
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
    expect(worker.output).to.contain(`Health and metrics on ${base}`);
    caller = await Caller.open();
    bystander = await Bystander.open();

    expect(await httpGet(`${base}/healthz`)).to.include({ status: 200, body: 'ok\n' });
    const ready = await httpGet(`${base}/readyz`);
    expect(ready.status, ready.body).to.equal(200);
    expect(JSON.parse(ready.body)).to.deep.equal({ ready: true, checks: ['worker', 'broker', 'listeners', 'store'] });

    const replayedId = randomUUID();
    const ids = [
      caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'one' }), { messageId: replayedId }),
      caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'two', steps: 2 })),
      caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'three' })),
      caller.publish(cfg.destination, caller.invocation('test_fail', {})),
      caller.publish(cfg.destination, caller.invocation('test_fail', {})),
      caller.publish(cfg.destination, caller.invocation('test_echo', { wrong: 'input' })),
      caller.publish(cfg.destination, caller.invocation('no_such_function', {})),
    ];
    await caller.waitForFinal(ids);
    // The same invocation id again: answered from the ledger, not run a second time.
    const again = caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'one' }), { messageId: replayedId });
    await caller.waitForFinal([again]);
    expect(caller.finalReplies(again)[0]!.message).to.equal('Completed');

    const count = (text: string, fn: string, outcome: string) =>
      sampleValue(text, 'worker_invocations_total', { function: fn, outcome });
    // Each outcome is counted just after its reply is confirmed: wait for all of them, not only test_echo's.
    const text = await scrapeUntil(
      `${base}/metrics`,
      (t) =>
        sampleValue(t, 'worker_invocation_duration_seconds_count', { function: 'test_echo' }) >= 5 &&
        sampleValue(t, 'worker_invocation_duration_seconds_count', { function: 'test_fail' }) >= 2 &&
        count(t, '(unparsed)', 'rejected') >= 1,
    );
    expect(count(text, 'test_echo', 'succeeded')).to.equal(3);
    expect(count(text, 'test_echo', 'failed')).to.equal(1); // the invalid inputs
    expect(count(text, 'test_echo', 'replayed')).to.equal(1);
    expect(count(text, 'test_fail', 'failed')).to.equal(2);
    expect(count(text, '(unparsed)', 'rejected')).to.equal(1);
    expect(sampleValue(text, 'worker_invocation_duration_seconds_count', { function: 'test_echo' })).to.equal(5);
    expect(sampleValue(text, 'worker_invocation_duration_seconds_count', { function: 'test_fail' })).to.equal(2);
    expect(sampleValue(text, 'worker_ledger_replays_total')).to.equal(1);
    expect(sampleValue(text, 'worker_invocations_in_flight')).to.equal(0);
    expect(sampleValue(text, 'worker_broker_connected')).to.equal(1);
    expect(sampleValue(text, 'worker_broker_reconnects_total')).to.equal(0); // the first connect is no reconnect
    expect(sampleValue(text, 'process_resident_memory_bytes')).to.be.greaterThan(0);
    // Unknown function names never become label values.
    expect(text).not.to.contain('no_such_function');

    // Drop the worker's own broker connection (the broker is shared: nothing else): the
    // worker reconnects, says so, and counts exactly one reconnect.
    await closeConnectionsNamed(workerConnectionName(worker.child.pid!), 'test: closing on purpose');
    await worker.waitFor(/Connected to the broker[\s\S]*Connected to the broker/, 30_000);
    const after = await scrapeUntil(`${base}/metrics`, (t) => sampleValue(t, 'worker_broker_reconnects_total') >= 1);
    expect(sampleValue(after, 'worker_broker_reconnects_total')).to.equal(1);
    expect(sampleValue(after, 'worker_broker_connected')).to.equal(1);
    expect((await httpGet(`${base}/readyz`)).status).to.equal(200);

    // It still counts after the reconnect; the caller's connection was left alone.
    await bystander.expectOpen();
    const late = caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'late' }));
    await caller.waitForFinal([late]);
    await scrapeUntil(`${base}/metrics`, (t) => count(t, 'test_echo', 'succeeded') === 4);

    // While a stop waits for a running invocation: not ready (stopping), still alive,
    // and the running invocation is in flight.
    const slow = caller.publish(cfg.destination, caller.invocation('test_sleep', { ms: 3000 }));
    await worker.waitFor('test_sleep: sleeping');
    expect(sampleValue((await httpGet(`${base}/metrics`)).body, 'worker_invocations_in_flight')).to.equal(1);
    worker.child.kill('SIGTERM');
    await worker.waitFor('Stopping (SIGTERM)');
    const stopping = await httpGet(`${base}/readyz`);
    expect(stopping.status, stopping.body).to.equal(503);
    expect(JSON.parse(stopping.body)).to.deep.equal({ ready: false, failing: { worker: 'the worker is draining', broker: 'not consuming (stopping)' } });
    expect((await httpGet(`${base}/healthz`)).status).to.equal(200);
    // The stop then finishes the invocation and closes the listener.
    await caller.waitForFinal([slow]);
    const exit = await worker.exited;
    expect(exit.code).to.equal(0);
    worker = undefined;
    let refused = false;
    await fetch(`${base}/healthz`).catch(() => {
      refused = true;
    });
    expect(refused).to.equal(true);
  });

  it('refuses to start when metrics_port is taken, saying which key to change (exit 2)', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      cfg = writeConfig({ worker: { metrics_port: port } });
      worker = WorkerProcess.start(cfg.file);
      const exit = await worker.exited;
      expect(exit.code, worker.output).to.equal(2);
      expect(worker.output).to.contain(`[worker] metrics_port = ${port}: 127.0.0.1:${port} is already in use`);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
