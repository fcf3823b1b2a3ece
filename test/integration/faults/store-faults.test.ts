/**
 * A spawned `worker run` (real RabbitMQ, the echo test plugin) whose SQLite store stops
 * being usable: read-only at start, deleted while it runs, lost between two runs. The
 * worker must stop with the config exit code and a message naming the file, leave the
 * invocation in the queue (nothing lost), and never silently start on an empty store.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { openStore } from '../../../src/core/store/index.js';
import { Caller, deleteDestination, queueDepth, runCli, WorkerProcess, writeConfig, type TestConfig } from '../../support/harness.js';
import { freePort, httpGet } from '../../support/prometheus.js';
import { makeReadOnly, makeWritable } from '../../support/read-only.js';

const EXIT_CONFIG = 2;

async function exitWithin(worker: WorkerProcess, ms: number): Promise<{ code: number | null } | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const running = new Promise<'still running'>((resolve) => {
    timer = setTimeout(() => resolve('still running'), ms);
  });
  try {
    return await Promise.race([worker.exited, running]);
  } finally {
    clearTimeout(timer);
  }
}

function deleteStore(file: string): void {
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
}

describe('worker run: an unusable SQLite store (real RabbitMQ)', function () {
  this.timeout(90_000);
  let cfg: TestConfig | undefined;
  let worker: WorkerProcess | undefined;
  let caller: Caller | undefined;
  const readOnly: string[] = [];

  afterEach(async () => {
    if (worker) await worker.stop('SIGKILL');
    worker = undefined;
    await caller?.close();
    caller = undefined;
    for (const p of readOnly.splice(0)) makeWritable(p);
    if (cfg) {
      await deleteDestination(cfg.destination);
      fs.rmSync(cfg.dir, { recursive: true, force: true });
    }
    cfg = undefined;
  });

  const storeFile = (c: TestConfig) => path.join(c.dir, 'worker.db');

  it('a read-only store: exits with the config exit code naming the file, instead of saying ready and retrying forever', async () => {
    cfg = writeConfig();
    const file = storeFile(cfg);
    await (await openStore(file, { migrate: true })).close();
    makeReadOnly(file);
    readOnly.push(file);
    const result = await runCli(['run', '--config-file', cfg.file], {}, 30_000);
    expect(result.code, result.stderr).to.equal(EXIT_CONFIG);
    expect(result.stderr).to.include(file);
    expect(result.stderr).to.include('read-only');
    expect(result.stdout + result.stderr).to.not.include('Worker ready');
  });

  it('the store file deleted under a running worker: /readyz names the store check, and the worker stops with the config exit code', async () => {
    const port = await freePort();
    cfg = writeConfig({ worker: { metrics_port: port } });
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
    const base = `http://127.0.0.1:${port}`;
    expect((await httpGet(`${base}/readyz`)).status).to.equal(200);

    deleteStore(storeFile(cfg));
    const res = await httpGet(`${base}/readyz`);
    expect(res.status, res.body).to.equal(503);
    const failing = (JSON.parse(res.body) as { failing: Record<string, string> }).failing;
    expect(Object.keys(failing)).to.deep.equal(['store']);
    expect(failing.store).to.include(storeFile(cfg));
    expect(failing.store).to.include('deleted');

    const exit = await exitWithin(worker, 30_000);
    expect(exit, worker.output).to.deep.include({ code: EXIT_CONFIG });
    expect(worker.output).to.include(`worker: The SQLite store ${storeFile(cfg)} was deleted`);
  });

  it('deleted before an invocation: it is handed back (still queued), the worker stops, and a restart refuses an empty store until told', async () => {
    cfg = writeConfig();
    const file = storeFile(cfg);
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
    caller = await Caller.open();

    deleteStore(file);
    const id = caller.publish(cfg.destination, caller.invocation('test_echo', { text: 'kept' }));
    const exit = await exitWithin(worker, 30_000);
    expect(exit, worker.output).to.deep.include({ code: EXIT_CONFIG });
    expect(worker.output).to.include('was deleted');
    expect(caller.finalReplies(id)).to.have.length(0);
    expect(await queueDepth(cfg.destination)).to.equal(1);
    worker = undefined;

    // A restart would create an empty store: the ledger and the channel associations would be gone.
    const restart = await runCli(['run', '--config-file', cfg.file], {}, 30_000);
    expect(restart.code, restart.stderr).to.equal(EXIT_CONFIG);
    expect(restart.stderr).to.include(`${file}.created`);
    expect(fs.existsSync(file), 'the refused restart created a store').to.equal(false);

    // The operator says "start empty" by deleting the marker: a loud WARN, then the invocation is served.
    fs.unlinkSync(`${file}.created`);
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
    expect(worker.output).to.match(new RegExp(`WARN.*Created a new, empty store at ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    await caller.waitForFinal([id]);
    expect(caller.finalReplies(id)[0]!.message).to.equal('Completed');
  });
});
