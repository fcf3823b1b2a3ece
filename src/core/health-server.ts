/**
 * The optional health and metrics listener (`[worker] metrics_port`), plain node:http.
 *
 * - `GET /healthz` → 200 `ok` while the process is up (a liveness probe: it answers
 *   even when the broker is down, so a supervisor does not restart a worker that is
 *   only waiting to reconnect);
 * - `GET /readyz`  → 200 when every readiness check passes (connected to the broker,
 *   consuming, and heard from it within one heartbeat; the store takes a write), else 503
 *   with a JSON body naming what is not ready;
 * - `GET /metrics` → the Prometheus text format;
 * - anything else → 404; another method on a known path → 405.
 *
 * It listens on loopback by default (`metrics_host = 127.0.0.1`) because it has no
 * authentication; the bodies hold only names, counts and check results, never config
 * values or secrets.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from './runtime/errors.js';
import type { Logger } from './logging.js';
import type { WorkerMetrics } from './metrics.js';
import { redact } from './redact.js';

/** One readiness check: resolves when ready; rejects (or throws) with the reason it is not. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void> | void;
}

export interface HealthServerOptions {
  host: string;
  /** 0 picks a free port (tests); {@link HealthServer.port} says which. */
  port: number;
  metrics: WorkerMetrics;
  checks: ReadinessCheck[];
  log: Logger;
  /** A check that has not answered by then fails; default {@link DEFAULT_CHECK_TIMEOUT_MS}. */
  checkTimeoutMs?: number;
}

/**
 * Kubernetes' default probe timeout is 1 s: answering a 503 that names the hung check
 * (a PostgreSQL that does not answer) before then is more useful than letting the probe
 * time out with no reason. A healthy store answers in a few milliseconds.
 */
export const DEFAULT_CHECK_TIMEOUT_MS = 800;

/** Runs one check against a deadline; resolves with undefined when it passed, else the reason. */
async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    return await Promise.race([
      Promise.resolve()
        .then(() => check.check())
        .then(
          () => undefined,
          (err: unknown) => redact(err instanceof Error ? err.message : String(err)),
        ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export class HealthServer {
  private constructor(
    private readonly server: http.Server,
    private readonly opts: HealthServerOptions,
  ) {}

  /**
   * Listens on `host:port`. Rejects with a {@link ConfigError} that says what to change
   * when the port is taken or the address cannot be used.
   */
  static async start(opts: HealthServerOptions): Promise<HealthServer> {
    const server = http.createServer();
    const health = new HealthServer(server, opts);
    server.on('request', (req, res) => {
      health.handle(req, res).catch((err: Error) => {
        opts.log.warn(`Health/metrics request ${req.method} ${req.url} failed: ${redact(err.message)}`);
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('internal error\n');
      });
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        server.off('listening', onListening);
        reject(listenError(err, opts.host, opts.port));
      };
      const onListening = () => {
        server.off('error', onError);
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen(opts.port, opts.host);
    });
    server.on('error', (err) => opts.log.warn(`Health/metrics listener error: ${err.message}`));
    opts.log.info(`Health and metrics on ${health.url} (/healthz, /readyz, /metrics)`);
    return health;
  }

  /** The port actually bound (differs from the option when it was 0). */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Base URL, e.g. `http://127.0.0.1:9464`. */
  get url(): string {
    const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    return `http://${host}:${this.port}`;
  }

  /** Stops listening and drops open (keep-alive) connections, so shutdown is not held up. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const route = ROUTES[path];
    if (!route) return send(res, 404, 'text/plain; charset=utf-8', 'not found: try /healthz, /readyz or /metrics\n');
    if (req.method !== 'GET') {
      res.setHeader('Allow', 'GET');
      return send(res, 405, 'text/plain; charset=utf-8', `${req.method ?? 'this method'} not allowed: use GET\n`);
    }
    if (route === 'healthz') return send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
    if (route === 'readyz') {
      const timeoutMs = this.opts.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
      const results = await Promise.all(this.opts.checks.map(async (c) => [c.name, await runCheck(c, timeoutMs)] as const));
      const failing = Object.fromEntries(results.filter(([, reason]) => reason !== undefined));
      const ready = Object.keys(failing).length === 0;
      const body = ready ? { ready, checks: results.map(([name]) => name) } : { ready, failing };
      return send(res, ready ? 200 : 503, 'application/json', `${JSON.stringify(body)}\n`);
    }
    const text = await this.opts.metrics.render();
    return send(res, 200, this.opts.metrics.contentType, text);
  }
}

const ROUTES: Record<string, 'healthz' | 'readyz' | 'metrics'> = {
  '/healthz': 'healthz',
  '/readyz': 'readyz',
  '/metrics': 'metrics',
};

function send(res: http.ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  res.end(body);
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): ConfigError {
  const where = `${host}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return new ConfigError(
        `[worker] metrics_port = ${port}: ${where} is already in use (another worker or program listens there); ` +
          'choose a free port, or leave metrics_port empty to turn the listener off',
        err,
      );
    case 'EACCES':
      return new ConfigError(`[worker] metrics_port = ${port}: not allowed to listen on ${where}; use a port above 1023`, err);
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ConfigError(
        `[worker] metrics_host = ${host}: not an address of this machine; use 127.0.0.1 (default), 0.0.0.0 or one of its own addresses`,
        err,
      );
    default:
      return new ConfigError(`[worker] metrics_port = ${port}: cannot listen on ${where}: ${err.message}`, err);
  }
}
