/**
 * TLS for the broker connection (`amqps://` with ca_file, cert_file, key_file).
 *
 * No TLS-enabled RabbitMQ is available to the tests, so the last two cases stand a
 * local TLS server (certificates made with openssl) in for the broker: it checks the
 * worker's client certificate and records the AMQP protocol header the worker sends
 * over the encrypted connection. That proves the options reach the TLS handshake; the
 * AMQP session itself over TLS is amqplib's and the broker's.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { openConnection, socketOptions } from '../../../../src/core/runtime/amqp-transport.js';
import { ConfigError } from '../../../../src/core/runtime/errors.js';
import { silentLogger } from '../../../../src/core/logging.js';
import { parseConfigText } from '../../../../src/core/config.js';
import { readWorkerSection } from '../../../../src/core/worker-config.js';

const openssl = (dir: string, ...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });

/** A CA, a server certificate for localhost signed by it, and a client certificate. */
function makeCertificates(dir: string): void {
  openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Test CA');
  for (const [name, cn, ext] of [
    ['server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    ['client', 'soar-worker', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    fs.writeFileSync(path.join(dir, `${name}.ext`), `${ext}\n`);
    openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  }
}

describe('amqp transport: TLS options', function () {
  this.timeout(30_000);
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqps-test-'));
    makeCertificates(dir);
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function section(extra: string) {
    const text = `[worker]\namqp_url = amqps://guest:guest@localhost:5671\n${extra}`;
    return readWorkerSection(parseConfigText(text, path.join(dir, 'app.config'), {}));
  }

  it('builds the socket options from ca_file, cert_file and key_file in the config', () => {
    const s = section(`ca_file = ${dir}/ca.pem\ncert_file = ${dir}/client.pem\nkey_file = ${dir}/client.key\n`);
    const opts = socketOptions({ caFile: s.ca_file, certFile: s.cert_file, keyFile: s.key_file });
    expect((opts.ca as Buffer[]).map((b) => b.toString())).to.deep.equal([fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8')]);
    expect((opts.cert as Buffer).toString()).to.equal(fs.readFileSync(path.join(dir, 'client.pem'), 'utf8'));
    expect((opts.key as Buffer).toString()).to.equal(fs.readFileSync(path.join(dir, 'client.key'), 'utf8'));
    expect(opts.noDelay).to.equal(true);
  });

  it('sets no TLS material when the config names none, and only a CA when only ca_file is set', () => {
    expect(socketOptions(undefined)).to.have.keys('noDelay', 'timeout');
    const s = section(`ca_file = ${dir}/ca.pem\n`);
    expect(socketOptions({ caFile: s.ca_file, certFile: s.cert_file, keyFile: s.key_file })).to.have.keys('noDelay', 'timeout', 'ca');
  });

  it('names the key and the file when a TLS file cannot be read', () => {
    for (const [key, tlsOpts] of [
      ['ca_file', { caFile: `${dir}/missing-ca.pem` }],
      ['cert_file', { certFile: `${dir}/missing.pem` }],
      ['key_file', { keyFile: dir }],
    ] as const) {
      let err: unknown;
      try {
        socketOptions(tlsOpts);
      } catch (e) {
        err = e;
      }
      expect(err, key).to.be.instanceOf(ConfigError);
      expect((err as Error).message).to.match(new RegExp(`^\\[worker\\] ${key}: cannot read ${dir}\\S* \\((ENOENT|EISDIR)\\)$`));
    }
  });

  /** A TLS server standing in for the broker: requires a client certificate signed by the CA. */
  async function tlsBroker(): Promise<{ port: number; seen: Promise<{ authorized: boolean; cn: string; header: string }>; close(): void }> {
    let resolveSeen!: (v: { authorized: boolean; cn: string; header: string }) => void;
    const seen = new Promise<{ authorized: boolean; cn: string; header: string }>((r) => (resolveSeen = r));
    const server = tls.createServer(
      {
        key: fs.readFileSync(path.join(dir, 'server.key')),
        cert: fs.readFileSync(path.join(dir, 'server.pem')),
        ca: [fs.readFileSync(path.join(dir, 'ca.pem'))],
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => {
        socket.once('data', (d: Buffer) => {
          const peer = socket.getPeerCertificate();
          resolveSeen({ authorized: socket.authorized, cn: String(peer.subject?.CN), header: d.subarray(0, 8).toString('latin1') });
          socket.destroy();
        });
      },
    );
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { port: (server.address() as AddressInfo).port, seen, close: () => server.close() };
  }

  it('connects to an amqps:// URL trusting ca_file and presenting the client certificate', async () => {
    const broker = await tlsBroker();
    try {
      const s = section(`ca_file = ${dir}/ca.pem\ncert_file = ${dir}/client.pem\nkey_file = ${dir}/client.key\n`);
      const attempt = openConnection(
        `amqps://guest:guest@localhost:${broker.port}`,
        { caFile: s.ca_file, certFile: s.cert_file, keyFile: s.key_file },
        silentLogger(),
      ).catch((err: Error) => err);
      const seen = await broker.seen;
      expect(seen).to.deep.equal({ authorized: true, cn: 'soar-worker', header: 'AMQP\u0000\u0000\u0009\u0001' });
      // The stand-in closes instead of speaking AMQP: the connection attempt fails after the handshake.
      expect(await attempt).to.be.instanceOf(Error);
    } finally {
      broker.close();
    }
  });

  it('refuses a broker whose certificate is not signed by ca_file', async () => {
    const broker = await tlsBroker();
    try {
      const err = await openConnection(`amqps://guest:guest@localhost:${broker.port}`, { certFile: `${dir}/client.pem`, keyFile: `${dir}/client.key` }, silentLogger()).then(
        () => new Error('connected'),
        (e: Error) => e,
      );
      expect(err.message).to.match(/certificate|self.signed|unable to verify/i);
    } finally {
      broker.close();
    }
  });
});
