import http from 'node:http';
import { expect } from 'chai';
import { ConfigError } from '../../../src/core/runtime/errors.js';
import { HealthServer, type ReadinessCheck } from '../../../src/core/health-server.js';
import { silentLogger, type Logger } from '../../../src/core/logging.js';
import { WorkerMetrics } from '../../../src/core/metrics.js';
import { httpGet, sampleValue } from '../../support/prometheus.js';

/** A logger that keeps its info lines, to check what start logs. */
function recordingLogger(lines: string[]): Logger {
  const log: Logger = {
    error: (m) => lines.push(m),
    warn: (m) => lines.push(m),
    info: (m) => lines.push(m),
    debug: () => undefined,
    child: () => log,
  };
  return log;
}

describe('HealthServer (real HTTP on a free port)', () => {
  let server: HealthServer | undefined;
  let metrics: WorkerMetrics;
  let checks: ReadinessCheck[];
  let logLines: string[];

  async function start(extra: { checkTimeoutMs?: number } = {}): Promise<HealthServer> {
    server = await HealthServer.start({
      host: '127.0.0.1',
      port: 0,
      metrics,
      log: recordingLogger(logLines),
      // The server reads the array on each request, so tests may change it after start.
      checks,
      ...extra,
    });
    return server;
  }

  beforeEach(() => {
    metrics = new WorkerMetrics({ processMetrics: false });
    checks = [];
    logLines = [];
  });

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('answers /healthz with 200 ok and logs its URL at start', async () => {
    const s = await start();
    expect(s.port).to.be.greaterThan(0);
    const res = await httpGet(`${s.url}/healthz`);
    expect(res.status).to.equal(200);
    expect(res.body).to.equal('ok\n');
    expect(logLines.some((l) => l.includes(`http://127.0.0.1:${s.port}`) && l.includes('/metrics'))).to.equal(true);
  });

  it('answers /readyz with 200 when every check passes', async () => {
    checks.push({ name: 'broker', check: () => undefined }, { name: 'store', check: async () => undefined });
    const s = await start();
    const res = await httpGet(`${s.url}/readyz`);
    expect(res.status).to.equal(200);
    expect(res.contentType).to.match(/^application\/json/);
    expect(JSON.parse(res.body)).to.deep.equal({ ready: true, checks: ['broker', 'store'] });
  });

  it('answers /readyz with 503 naming each failing check, with secrets masked', async () => {
    checks.push(
      { name: 'broker', check: () => { throw new Error('not connected to the broker'); } },
      { name: 'store', check: async () => { throw new Error('connect to postgres://worker:s3cretpw@db/x refused'); } },
      { name: 'other', check: async () => undefined },
    );
    const s = await start();
    const res = await httpGet(`${s.url}/readyz`);
    expect(res.status).to.equal(503);
    const body = JSON.parse(res.body) as { ready: boolean; failing: Record<string, string> };
    expect(body.ready).to.equal(false);
    expect(Object.keys(body.failing)).to.deep.equal(['broker', 'store']);
    expect(body.failing.broker).to.equal('not connected to the broker');
    expect(res.body).not.to.contain('s3cretpw');
  });

  it('fails a check that does not answer in time instead of hanging the probe', async () => {
    checks.push({ name: 'store', check: () => new Promise<void>(() => undefined) });
    const s = await start({ checkTimeoutMs: 50 });
    const res = await httpGet(`${s.url}/readyz`);
    expect(res.status).to.equal(503);
    expect(JSON.parse(res.body).failing.store).to.equal('no answer within 50 ms');
  });

  it('serves /metrics in the Prometheus text format (query strings ignored)', async () => {
    metrics.observeOutcome({ functionName: 'test_echo', outcome: 'succeeded', durationMs: 12 });
    const s = await start();
    const res = await httpGet(`${s.url}/metrics?x=1`);
    expect(res.status).to.equal(200);
    expect(res.contentType).to.equal(metrics.contentType);
    expect(sampleValue(res.body, 'worker_invocations_total', { function: 'test_echo', outcome: 'succeeded' })).to.equal(1);
  });

  it('answers 404 for other paths and 405 (Allow: GET) for other methods', async () => {
    const s = await start();
    expect((await httpGet(`${s.url}/`)).status).to.equal(404);
    expect((await httpGet(`${s.url}/metricsx`)).status).to.equal(404);
    const post = await fetch(`${s.url}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).to.equal(405);
    expect(post.headers.get('allow')).to.equal('GET');
    await post.text();
    expect((await httpGet(`${s.url}/healthz`, 'DELETE')).status).to.equal(405);
  });

  it('refuses a port in use with a ConfigError that says what to change', async () => {
    const first = await start();
    let error: unknown;
    try {
      const second = await HealthServer.start({ host: '127.0.0.1', port: first.port, metrics, log: silentLogger(), checks });
      await second.close();
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as ConfigError).code).to.equal('config_invalid');
    expect((error as Error).message).to.contain(`[worker] metrics_port = ${first.port}`);
    expect((error as Error).message).to.contain('already in use');
  });

  it('refuses a host that is not an address of this machine', async () => {
    let error: unknown;
    try {
      // 192.0.2.0/24 is TEST-NET-1: never assigned to a real interface.
      server = await HealthServer.start({ host: '192.0.2.1', port: 0, metrics, log: silentLogger(), checks });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as Error).message).to.contain('[worker] metrics_host = 192.0.2.1');
  });

  it('closes promptly even with a keep-alive connection open, and stops listening', async () => {
    const s = await start();
    const url = s.url;
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http.get(`${url}/healthz`, { agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject);
    });
    await s.close();
    server = undefined;
    agent.destroy();
    let refused = false;
    await fetch(`${url}/healthz`).catch(() => {
      refused = true;
    });
    expect(refused).to.equal(true);
  });
});
