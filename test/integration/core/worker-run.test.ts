/**
 * `worker run` and `worker invoke` against the real RabbitMQ, with the echo test plugin.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import {
  Caller,
  deleteDestination,
  queueDepth,
  runCli,
  WorkerProcess,
  writeConfig,
  type TestConfig,
} from '../../support/harness.js';
import { Bystander, closeConnectionsNamed, workerConnectionName } from '../../support/rabbitmq.js';

function effects(cfg: TestConfig, id: string): number {
  const file = path.join(cfg.effectsDir, `${id}.effect`);
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
}

describe('worker run (real RabbitMQ)', function () {
  this.timeout(90_000);
  let cfg: TestConfig;
  let worker: WorkerProcess | undefined;
  let caller: Caller;

  beforeEach(async () => {
    cfg = writeConfig({ worker: { max_attempts: 2 } });
    caller = await Caller.open();
  });

  afterEach(async () => {
    if (worker) await worker.stop('SIGKILL');
    worker = undefined;
    await caller.close();
    await deleteDestination(cfg.destination);
  });

  async function startWorker(): Promise<WorkerProcess> {
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
    return worker;
  }

  it('round-trips through `worker invoke`: progress in order, then the ResultPayload v2', async () => {
    await startWorker();
    const res = await runCli([
      'invoke', 'test_echo', '--config-file', cfg.file, '--destination', cfg.destination,
      '-i', 'text=hello there', '-i', 'steps=3', '--json',
    ]);
    expect(res.code, res.stderr).to.equal(0);
    const lines = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(lines.map((l) => l.message)).to.deep.equal(['step 1 of 3', 'step 2 of 3', 'step 3 of 3', 'Completed']);
    expect(lines.slice(0, 3).every((l) => l.complete === false && l.message_type === 0)).to.equal(true);
    const final = lines[3]!;
    expect(final.complete).to.equal(true);
    expect(final.results.version).to.equal(2);
    expect(final.results.success).to.equal(true);
    expect(final.results.content).to.deep.equal({ echoed: 'hello there', attempt: 1 });
    expect(final.results.inputs).to.deep.equal({ text: 'hello there', steps: 3 });
    expect(final.results.metrics.package).to.equal('fn_test');
    expect(final.results.metrics.package_version).to.equal('1.0.0');
    expect(final.results.metrics.execution_time_ms).to.be.a('number');
    expect(final.results.metrics.timestamp).to.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  });

  it('`worker invoke` prints a readable error and exits 1 on an error reply', async () => {
    await startWorker();
    const res = await runCli(['invoke', 'test_fail', '--config-file', cfg.file, '--destination', cfg.destination]);
    expect(res.code).to.equal(1);
    expect(res.stdout).to.contain('error (test_refused): the test function refused');
  });

  it('`worker invoke` exits 8 (timeout) when no reply comes in time', async () => {
    // No worker is consuming the queue: declare it so the publish is accepted.
    await startWorker();
    await worker!.stop('SIGTERM');
    worker = undefined;
    const res = await runCli(['invoke', 'test_echo', '--config-file', cfg.file, '--destination', cfg.destination, '-i', 'text=x', '--timeout', '1']);
    expect(res.code).to.equal(8);
    expect(res.stderr).to.contain('No final reply within 1s');
  });

  it('answers every bad-input class with a clear error and keeps serving', async () => {
    await startWorker();
    const cases: { body: unknown; code: string; text: RegExp }[] = [
      { body: '{"function": {"name": "test_echo"', code: 'invalid_json', text: /not valid JSON/ },
      { body: '[1,2,3]', code: 'invalid_message', text: /must be a JSON object/ },
      { body: { inputs: { text: 'x' } }, code: 'missing_function', text: /names no function/ },
      { body: { function: { name: 'no_such_fn' }, inputs: {} }, code: 'unknown_function', text: /Unknown function "no_such_fn".*test_echo/ },
      {
        body: { function: { name: 'test_echo' }, inputs: { steps: 'many', colour: 'red' } },
        code: 'invalid_inputs',
        text: /^Invalid inputs for test_echo: (?=.*text: is required)(?=.*steps: must be integer)(?=.*colour: is not an input of this function)/,
      },
      { body: { function: { name: 'test_echo' }, inputs: 'text' }, code: 'invalid_message', text: /"inputs" must be a JSON object/ },
    ];
    const ids = cases.map((c) => caller.publish(cfg.destination, c.body));
    await caller.waitForFinal(ids);
    cases.forEach((c, i) => {
      const [reply, ...more] = caller.finalReplies(ids[i]!);
      expect(more, c.code).to.have.length(0);
      expect(reply!.message_type, c.code).to.equal(1);
      expect((reply!.error as { code: string }).code).to.equal(c.code);
      expect(reply!.message as string).to.match(c.text);
    });
    // Unusable messages wait in the dead-letter queue; the invalid-inputs one was answered and acked.
    const deadline = Date.now() + 5000;
    while ((await queueDepth(`${cfg.destination}.dead`)) < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await queueDepth(`${cfg.destination}.dead`)).to.equal(5);
    const ok = caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'still alive' }));
    await caller.waitForFinal([ok]);
    expect((caller.finalReplies(ok)[0]!.results as any).content.echoed).to.equal('still alive');
  });

  it('answers a message without reply_to by dead-lettering it, and never requeues bad input', async () => {
    await startWorker();
    caller.publish(cfg.destination, 'not json', { replyTo: null });
    const ok = caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'after' }));
    await caller.waitForFinal([ok]);
    const deadline = Date.now() + 5000;
    while ((await queueDepth(`${cfg.destination}.dead`)) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await queueDepth(`${cfg.destination}.dead`)).to.equal(1);
    expect(worker!.output).to.contain('Message body is not valid JSON');
  });

  it('answers a redelivered finished invocation from the ledger without running it again', async () => {
    await startWorker();
    const messageId = randomUUID();
    const first = caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'once' }), { messageId });
    await caller.waitForFinal([first]);
    const second = caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'once' }), { messageId });
    await caller.waitForFinal([second]);
    expect(caller.finalReplies(second)[0]).to.deep.equal(caller.finalReplies(first)[0]);
    expect(effects(cfg, messageId)).to.equal(1);
    expect(worker!.output).to.contain('answering from the ledger');
  });

  it('dead-letters a handler that crashes every time after max_attempts, with an error reply', async () => {
    await startWorker();
    const id = caller.publish(cfg.destination, caller.invocation('test_crash', {}));
    const ok = caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'others go on' }));
    await caller.waitForFinal([id, ok]);
    const [reply, ...more] = caller.finalReplies(id);
    expect(more).to.have.length(0);
    expect(reply!.message).to.equal('Internal error: boom (gave up after attempt 2 of 2; max_attempts = 2)');
    expect(reply!.error).to.deep.equal({ code: 'internal_error', retryable: true });
    const progress = (caller.replies.get(id) ?? []).filter((r) => r.complete === false);
    expect(progress.map((p) => p.message)).to.deep.equal(['Attempt 1 failed (Internal error: boom); retrying']);
    const deadline = Date.now() + 5000;
    while ((await queueDepth(`${cfg.destination}.dead`)) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await queueDepth(`${cfg.destination}.dead`)).to.equal(1);
  });

  it('acks a final function error at once (no retry) with its code', async () => {
    await startWorker();
    const id = caller.publish(cfg.destination, caller.invocation('test_fail', { retryable: false }));
    await caller.waitForFinal([id]);
    expect(caller.replies.get(id)).to.have.length(1);
    expect(caller.finalReplies(id)[0]!.error).to.deep.equal({ code: 'test_refused', retryable: false });
    expect(await queueDepth(`${cfg.destination}.dead`)).to.equal(0);
  });

  it('survives the broker closing its connection mid-batch and answers every invocation once', async () => {
    // The broker is shared: close the worker's own connection only (found by the name it
    // gives it), and check that a bystander connection and the caller's stay open.
    const bystander = await Bystander.open();
    let callerLost = '';
    caller.connection.on('close', (err?: Error) => (callerLost = err?.message ?? 'closed'));
    try {
      await startWorker();
      const ids: string[] = [];
      const messageIds: string[] = [];
      for (let i = 0; i < 60; i++) {
        const messageId = randomUUID();
        messageIds.push(messageId);
        ids.push(caller.publish(cfg.destination, caller.invocation('test_sleep', { ms: 50 }), { messageId }));
      }
      await worker!.waitFor('test_sleep: sleeping');
      const closed = await closeConnectionsNamed(workerConnectionName(worker!.child.pid!), 'test: closing on purpose');
      expect(closed, 'the worker opens one broker connection').to.equal(1);
      await worker!.waitFor('Lost the broker connection');
      await worker!.waitFor(/Connected to the broker[\s\S]*Connected to the broker/, 30_000);
      // Deliveries in flight when the connection went are redelivered: the ledger
      // answers the finished ones, the others run (once) on the new connection.
      await caller.waitForFinal(ids, 60_000);
      for (const id of ids) expect(caller.finalReplies(id)[0]!.message, id).to.equal('Completed');
      for (const messageId of messageIds) expect(effects(cfg, messageId), messageId).to.equal(1);
      expect(callerLost, "the caller's connection").to.equal('');
      await bystander.expectOpen();
    } finally {
      await bystander.close();
    }
  });

  it('handles a consumer cancelled by the broker (queue deleted): redeclares and serves again', async () => {
    await startWorker();
    await deleteDestination(cfg.destination);
    await worker!.waitFor(`The broker cancelled the consumer of ${cfg.destination}`);
    await worker!.waitFor(/Connected to the broker[\s\S]*Connected to the broker/, 30_000);
    const id = caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'back' }));
    await caller.waitForFinal([id]);
    expect((caller.finalReplies(id)[0]!.results as any).content.echoed).to.equal('back');
  });

  it('on SIGTERM finishes in-flight invocations, then exits 0', async () => {
    await startWorker();
    const ids = Array.from({ length: 5 }, () => caller.publish(cfg.destination, caller.invocation('test_sleep', { ms: 1500 })));
    await worker!.waitFor(/(test_sleep: sleeping[\s\S]*){5}/);
    const exit = await worker!.stop('SIGTERM');
    worker = undefined;
    expect(exit.code).to.equal(0);
    await caller.waitForFinal(ids, 5000);
    for (const id of ids) expect(caller.finalReplies(id)[0]!.message).to.equal('Completed');
  });

  it('refuses a second worker on the same lock file, naming the file', async () => {
    await startWorker();
    const res = await runCli(['run', '--config-file', cfg.file]);
    expect(res.code).to.equal(5);
    expect(res.stderr).to.contain(path.join(cfg.dir, 'worker.lock'));
    expect(res.stderr).to.match(/Another worker \(pid \d+\) holds the lock file/);
  });
});

describe('worker run: bad config', function () {
  this.timeout(30_000);

  it('stops with a message naming the file, section, key and problem', async () => {
    const cfg = writeConfig({ worker: { num_workers: 'lots', loglevel: 'LOUD' } });
    const res = await runCli(['run', '--config-file', cfg.file]);
    expect(res.code).to.equal(2);
    expect(res.stderr).to.contain(`${cfg.file}: [worker] num_workers: must be integer (got "lots")`);
    expect(res.stderr).to.contain(`${cfg.file}: [worker] loglevel: must be one of`);
  });

  it('names a missing plugin section key', async () => {
    const cfg = writeConfig({ sections: { fn_test: {} } });
    // writeConfig always sets effects_dir; rewrite the file without it.
    fs.writeFileSync(cfg.file, fs.readFileSync(cfg.file, 'utf8').replace(/\[fn_test\][^[]*/, '[fn_test]\n'));
    const res = await runCli(['run', '--config-file', cfg.file]);
    expect(res.code).to.equal(2);
    expect(res.stderr).to.contain(`${cfg.file}: [fn_test] effects_dir: is required but missing`);
  });

  it('says how to create a config when the file does not exist', async () => {
    const res = await runCli(['run'], { APP_CONFIG_FILE: '/nonexistent/app.config' });
    expect(res.code).to.equal(2);
    expect(res.stderr).to.contain('/nonexistent/app.config: not found; create one with `worker config -c`');
  });

  it('refuses an unset environment variable by name', async () => {
    const cfg = writeConfig({ worker: { amqp_url: 'amqp://guest:$NO_SUCH_VAR_XYZ@127.0.0.1:5672' } });
    const res = await runCli(['run', '--config-file', cfg.file]);
    expect(res.code).to.equal(2);
    expect(res.stderr).to.contain('[worker] amqp_url: environment variable NO_SUCH_VAR_XYZ is not set');
  });
});
