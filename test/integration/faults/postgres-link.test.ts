/**
 * Issue #11 item 2, end to end: a spawned `worker run` whose PostgreSQL store is reached
 * through a link that drops every packet for a while (an in-process TCP proxy this test
 * owns, to a throwaway database). Invocations published during the outage are handed
 * back and answered once the link heals, on new connections; none is lost or stuck.
 */
import { expect } from 'chai';
import { deleteDestination, WorkerProcess, writeConfig, type Caller, type TestConfig } from '../../support/harness.js';
import { openWatchedCaller, tempPostgresDatabase, waitForFinal } from '../../support/fault-checks.js';
import { TcpProxy } from '../../support/tcp-proxy.js';

const OUTAGE_MS = 5_000;
const INVOCATIONS = 20;

describe('worker run: a PostgreSQL store behind a link that drops packets (real RabbitMQ, PostgreSQL)', function () {
  this.timeout(120_000);
  let cfg: TestConfig | undefined;
  let worker: WorkerProcess | undefined;
  let caller: Caller | undefined;
  let proxy: TcpProxy | undefined;
  let db: { url: string; drop: () => Promise<void> } | undefined;

  afterEach(async () => {
    if (worker) await worker.stop('SIGKILL');
    await caller?.close();
    await proxy?.close();
    await db?.drop().catch(() => undefined);
    if (cfg) await deleteDestination(cfg.destination);
    worker = caller = proxy = db = cfg = undefined;
  });

  it(`answers all ${INVOCATIONS} invocations published during a ${OUTAGE_MS / 1000} s outage once the link heals, on new connections`, async () => {
    db = await tempPostgresDatabase('link');
    const target = new URL(db.url);
    proxy = await TcpProxy.start(target.hostname, Number(target.port || 5432));
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    cfg = writeConfig({ worker: { store: viaProxy.toString(), store_timeout: 1, max_attempts: 20 } });
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
    caller = await openWatchedCaller();

    proxy.blackhole();
    const ids = Array.from({ length: INVOCATIONS }, (_, i) =>
      caller!.publish(cfg!.destination, caller!.invocation('test_echo', { text: `during outage ${i}` })),
    );
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    expect(worker.output).to.match(/did not finish in time|Cannot reach the PostgreSQL store/);
    const openedBefore = proxy.connectionsOpened;
    proxy.heal();

    await waitForFinal(caller, ids, 45_000, () => worker!.output);
    for (const id of ids) {
      const finals = caller.finalReplies(id);
      expect(finals, id).to.have.length(1);
      expect(finals[0]!.message).to.equal('Completed');
    }
    expect(proxy.connectionsOpened, 'no new connection after the link healed').to.be.greaterThan(openedBefore);
    expect(worker.child.exitCode, 'the worker kept running').to.equal(null);
  });
});
