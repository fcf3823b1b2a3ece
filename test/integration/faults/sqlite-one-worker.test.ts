/**
 * A SQLite store serves one worker (issue #11 item 4). Two `worker run` processes on two
 * SQLite files and one queue look like scale-out but each misses the other's ledger
 * (posts by association fail, a redelivery posts twice): the second must refuse to
 * start with the config code, naming the queue, SQLite and how to share PostgreSQL,
 * while the first keeps serving. Started at the same moment, exactly one of them runs.
 * A worker that finds its queue taken when it reconnects keeps retrying instead of
 * consuming next to the other, and takes over once the queue is free.
 */
import { expect } from 'chai';
import { Caller, deleteDestination, uniqueName, WorkerProcess, writeConfig } from '../../support/harness.js';
import { TcpProxy } from '../../support/tcp-proxy.js';

describe('two workers on two SQLite files and one queue', function () {
  this.timeout(120_000);
  let caller: Caller;
  const workers: WorkerProcess[] = [];
  const destinations: string[] = [];

  before(async () => {
    caller = await Caller.open();
  });

  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop('SIGKILL');
  });

  after(async () => {
    await caller?.close();
    for (const d of destinations) await deleteDestination(d);
  });

  function start(destination: string, worker: Record<string, string | number> = {}): WorkerProcess {
    const w = WorkerProcess.start(writeConfig({ destination, worker }).file);
    workers.push(w);
    return w;
  }

  async function expectServes(destination: string): Promise<void> {
    const id = caller.publish(destination, caller.invocation('test_echo', { text: 'still here' }));
    await caller.waitForFinal([id], 30_000);
    expect(caller.finalReplies(id)).to.have.length(1);
    expect(caller.finalReplies(id)[0]!.message_type).to.equal(0);
  }

  for (const queueType of ['classic', 'quorum'] as const) {
    it(`${queueType} queue: the second refuses to start (exit 2) saying why and what to do; the first keeps serving`, async () => {
      const destination = uniqueName(`sqlite_one_${queueType}`);
      destinations.push(destination);
      const first = start(destination, { queue_type: queueType });
      await first.waitFor();
      expect(first.output).to.contain(`consuming ${destination} (${queueType} queues, heartbeat 10 s, alone (no other consumer: SQLite store))`);
      const second = start(destination, { queue_type: queueType });
      const exit = await second.exited;
      expect(exit.code, second.output).to.equal(2);
      expect(second.output).to.contain(`Queue ${destination} already has another consumer, and this worker must consume it alone`);
      expect(second.output).to.contain('[worker] store is a SQLite file, which serves one worker');
      expect(second.output).to.contain('give every worker of this queue the same PostgreSQL store: store = postgres://');
      expect(second.output).not.to.contain('retrying');
      await expectServes(destination);
    });
  }

  it('on reconnect, a queue taken meanwhile by another SQLite worker is not shared: it retries, and takes over once free', async () => {
    const destination = uniqueName('sqlite_reconnect');
    destinations.push(destination);
    const proxy = await TcpProxy.start('127.0.0.1', 5672);
    try {
      const a = start(destination, { amqp_url: `amqp://guest:guest@127.0.0.1:${proxy.port}`, heartbeat: 1, reconnect_max_delay: 1 });
      await a.waitFor();
      proxy.blackhole();
      await a.waitFor('Lost the broker connection', 10_000);
      // The broker drops a's consumer after its own two silent heartbeats; then b may start.
      const deadline = Date.now() + 15_000;
      while ((await caller.channel.checkQueue(destination)).consumerCount > 0) {
        if (Date.now() > deadline) throw new Error('the broker kept the blackholed consumer');
        await new Promise((r) => setTimeout(r, 200));
      }
      const b = start(destination);
      await b.waitFor();
      const healedAt = a.output.length;
      proxy.heal();
      await a.waitFor(/Reconnect attempt \d+ failed: Queue \S+ already has another consumer[^\n]*retrying/, 15_000);
      expect(a.output.slice(healedAt)).not.to.contain('Connected to the broker');
      expect(a.child.exitCode).to.equal(null);
      await expectServes(destination);

      await b.stop('SIGTERM');
      const until = Date.now() + 15_000;
      while (!a.output.slice(healedAt).includes('Connected to the broker')) {
        if (Date.now() > until) throw new Error(`a did not take over the queue:\n${a.output.slice(healedAt)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await expectServes(destination);
    } finally {
      await proxy.close();
    }
  });

  it('started at the same moment: exactly one runs, the other exits 2', async () => {
    const destination = uniqueName('sqlite_race');
    destinations.push(destination);
    const pair = [start(destination), start(destination)];
    const outcomes = await Promise.all(
      pair.map((w) =>
        Promise.race([w.waitFor().then(() => 'ready' as const), w.exited.then((e) => e.code)]).catch(() => w.exited.then((e) => e.code)),
      ),
    );
    expect(outcomes.filter((o) => o === 'ready'), pair.map((w) => w.output).join('\n---\n')).to.have.length(1);
    expect(outcomes.filter((o) => o === 2)).to.have.length(1);
    await expectServes(destination);
  });
});
