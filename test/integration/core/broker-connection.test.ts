/**
 * Broker connection failures say `[worker] amqp_url` and the reason in words, never the
 * password; a malformed broker or PostgreSQL URL exits with the config code (2), a
 * broker that cannot be reached with the broker code (4).
 */
import net from 'node:net';
import { expect } from 'chai';
import { openConnection } from '../../../src/core/runtime/amqp-transport.js';
import { BrokerUnavailableError } from '../../../src/core/runtime/errors.js';
import { silentLogger } from '../../../src/core/logging.js';
import { clearSecrets } from '../../../src/core/redact.js';
import { runCli, writeConfig } from '../../support/harness.js';

const PASSWORD = 'pw-s3cret-77';

/** A TCP server that accepts and then does `onSocket` (say nothing, or hang up). */
async function fakeServer(onSocket: (s: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    onSocket(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function connectError(url: string, heartbeat = 10): Promise<Error> {
  return openConnection(url, undefined, silentLogger(), heartbeat).then(
    async (c) => {
      await c.close();
      return new Error('connected');
    },
    (err: Error) => err,
  );
}

describe('broker connection errors', function () {
  this.timeout(60_000);
  // Other tests in this process register secrets (a password "guest" masks the user too).
  beforeEach(() => clearSecrets());

  it('names [worker] amqp_url and the reason in words, never the password', async () => {
    const silent = await fakeServer(() => undefined);
    const hangup = await fakeServer((s) => s.once('data', () => s.destroy()));
    try {
      const cases: [string, number, RegExp][] = [
        [`amqp://worker:${PASSWORD}@127.0.0.1:1`, 10, /: connection refused by 127\.0\.0\.1:1 \(is RabbitMQ running and listening there\?\)$/],
        [`amqp://worker:${PASSWORD}@no-such-broker.invalid:5672`, 10, /: host name not found \(DNS\) for no-such-broker\.invalid:5672$/],
        [`amqp://worker:${PASSWORD}@127.0.0.1:5672`, 10, /: authentication refused by 127\.0\.0\.1:5672: check the user name and password in the URL/],
        // heartbeat 1 → the handshake may take 2 s
        [`amqp://worker:${PASSWORD}@127.0.0.1:${silent.port}`, 1, new RegExp(`: timed out connecting to 127\\.0\\.0\\.1:${silent.port} `)],
        [`amqp://worker:${PASSWORD}@127.0.0.1:${hangup.port}`, 10, new RegExp(`: 127\\.0\\.0\\.1:${hangup.port} closed the connection during the handshake \\(not an AMQP port`)],
      ];
      for (const [url, heartbeat, reason] of cases) {
        const started = Date.now();
        const err = await connectError(url, heartbeat);
        expect(err, url).to.be.instanceOf(BrokerUnavailableError);
        expect(err.message, url).to.match(/^\[worker\] amqp_url amqp:\/\/worker:\*\*\*@/);
        expect(err.message, url).to.match(reason);
        expect(err.message, url).not.to.contain(PASSWORD);
        expect(Date.now() - started, url).to.be.below(8_000);
      }
    } finally {
      await silent.close();
      await hangup.close();
    }
  });

  it('worker run: a malformed amqp_url or store URL exits 2 (config), an unreachable broker 4, neither shows the password', async () => {
    for (const [worker, code, text] of [
      [{ amqp_url: `amqp://worker:${PASSWORD}@rabbit:56x72` }, 2, '[worker] amqp_url: not a valid URL'],
      [{ store: `postgres://worker:${PASSWORD}%@db/soar` }, 2, '[worker] store: the password holds a % that is not a percent-escape'],
      [{ amqp_url: `amqp://worker:${PASSWORD}@127.0.0.1:1` }, 4, '[worker] amqp_url amqp://worker:***@127.0.0.1:1: connection refused by 127.0.0.1:1'],
    ] as const) {
      const cfg = writeConfig({ worker: worker as Record<string, string> });
      const res = await runCli(['run', '--config-file', cfg.file], {}, 30_000);
      expect(res.code, res.stderr).to.equal(code);
      expect(res.stderr).to.contain(text);
      expect(res.stdout + res.stderr).not.to.contain(PASSWORD);
    }
  });
});
