/**
 * SoarClient against the SOAR emulator over real HTTP(S): auth, permission and lookup
 * errors, retries, timeouts, TLS (certificates made with openssl) and proxies.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { FunctionError, RetryableError } from '../../../../src/core/runtime/errors.js';
import { clearSecrets, registerSecret } from '../../../../src/core/redact.js';
import { SoarClient, type SoarClientOptions } from '../../../../src/platforms/soar/soar-client.js';
import { rejection } from '../../../support/platform-checks.js';
import { ALL_PERMISSIONS, SoarEmulator } from '../../../support/soar-emulator.js';
import { makeCert } from '../../../support/tls-cert.js';

describe('SoarClient', function () {
  this.timeout(20_000);
  let soar: SoarEmulator;

  const options = (extra: Partial<SoarClientOptions> = {}): SoarClientOptions => ({
    baseUrl: soar.baseUrl,
    orgId: soar.orgId,
    apiKeyId: soar.apiKeyId,
    apiKeySecret: soar.apiKeySecret,
    retryBaseMs: 10,
    retryMaxMs: 40,
    timeoutMs: 2000,
    ...extra,
  });
  const clients: SoarClient[] = [];
  const client = (extra: Partial<SoarClientOptions> = {}) => {
    const c = new SoarClient(options(extra));
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    soar = await SoarEmulator.start();
    soar.addAttachment({ incidentId: 2103, name: 'report.pdf', contentType: 'application/pdf', content: '%PDF-1.4' });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await soar.close();
    clearSecrets();
  });

  it('authenticates with HTTP Basic (key id : secret) and parses JSON', async () => {
    const session = await client().getJson<{ orgs: { id: number }[] }>('/rest/session', { what: 'the session' });
    expect(session.orgs[0]!.id).to.equal(soar.orgId);
    const [att] = [...soar.attachments.keys()];
    const meta = await client().getJson<{ name: string }>(`/incidents/2103/attachments/${att}`, { what: 'x' });
    expect(meta.name).to.equal('report.pdf');
    expect(soar.requests.every((r) => r.keyId === soar.apiKeyId)).to.equal(true);
  });

  it('401: names the keys to check and never the secret', async () => {
    registerSecret('wrong-secret-value');
    const err = await rejection(client({ apiKeySecret: 'wrong-secret-value' }).getJson('/rest/session', { what: 'the session' }));
    expect(err).to.be.instanceOf(FunctionError);
    expect(err.code).to.equal('soar_unauthorized');
    expect(err.retryable).to.equal(false);
    expect(err.message).to.include('[soar] api_key_id and api_key_secret');
    expect(err.message).not.to.include('wrong-secret-value');
    expect(err.message).not.to.include(soar.apiKeySecret);
    expect(soar.requests).to.have.length(1); // not retried
  });

  it('403: names the permission the key lacks', async () => {
    const weak = soar.addKey({ permissions: ALL_PERMISSIONS.filter((p) => p !== 'read_all_incidents') });
    const err = await rejection(
      client({ apiKeyId: weak.id, apiKeySecret: weak.secret }).getJson('/incidents/2103/attachments/100', {
        what: 'attachment 100 of incident 2103',
        permission: 'read_all_incidents',
      }),
    );
    expect(err.code).to.equal('soar_forbidden');
    expect(err.message).to.equal(
      'SOAR refused access (403) to attachment 100 of incident 2103: the API key needs the permission read_all_incidents; SOAR said: Forbidden',
    );
    expect(err.details).to.deep.include({ status: 403, permission: 'read_all_incidents' });
  });

  it('404: names the object', async () => {
    const err = await rejection(client().getJson('/incidents/2103/attachments/999', { what: 'attachment 999 of incident 2103' }));
    expect(err.code).to.equal('not_found');
    expect(err.retryable).to.equal(false);
    expect(err.message).to.match(/^Attachment 999 of incident 2103 not found in SOAR org 201 \(404\)/);
  });

  it('retries a GET after 5xx answers, with backoff, and succeeds', async () => {
    soar.fail({ path: /\/rest\/session$/, kind: 'status', status: 503, times: 2 });
    const session = await client().getJson<{ orgs: unknown[] }>('/rest/session', { what: 'the session' });
    expect(session.orgs).to.have.length(1);
    expect(soar.requestsTo(/\/rest\/session$/).map((r) => r.status)).to.deep.equal([503, 503, 200]);
  });

  it('gives up after the configured retries with a retryable error', async () => {
    soar.fail({ path: /\/rest\/session$/, kind: 'status', status: 502, times: 10 });
    const err = await rejection(client({ retries: 2 }).getJson('/rest/session', { what: 'the session' }));
    expect(err).to.be.instanceOf(RetryableError);
    expect(err.code).to.equal('soar_unavailable');
    expect(err.message).to.include('SOAR answered 502 for the session after 3 attempts');
    expect(soar.requestsTo(/\/rest\/session$/)).to.have.length(3);
  });

  it('does not retry a POST after a 5xx (it may have been applied)', async () => {
    soar.fail({ path: /query_paged$/, kind: 'status', status: 500, times: 5 });
    const err = await rejection(
      client().postJson('/incidents/query_paged', { filters: [] }, { what: 'the list of incidents' }, { return_level: 'partial' }),
    );
    expect(err.code).to.equal('soar_unavailable');
    expect(err.retryable).to.equal(true);
    expect(soar.requestsTo(/query_paged$/)).to.have.length(1);
  });

  it('retries a GET after a connection reset', async () => {
    soar.fail({ path: /\/rest\/session$/, kind: 'reset' });
    await client().getJson('/rest/session', { what: 'the session' });
    expect(soar.requestsTo(/\/rest\/session$/).map((r) => r.status)).to.deep.equal([-1, 200]);
  });

  it('retries a GET that timed out, then reports a timeout when SOAR stays silent', async () => {
    soar.fail({ path: /\/rest\/session$/, kind: 'delay', delayMs: 600 });
    await client({ timeoutMs: 200 }).getJson('/rest/session', { what: 'the session' });
    expect(soar.requestsTo(/\/rest\/session$/)).to.have.length(2);

    soar.fail({ path: /\/rest\/session$/, kind: 'delay', delayMs: 600, times: 3 });
    const err = await rejection(client({ timeoutMs: 200, retries: 1 }).getJson('/rest/session', { what: 'the session' }));
    expect(err.code).to.equal('soar_timeout');
    expect(err.retryable).to.equal(true);
  });

  it('reports an unreachable SOAR as retryable, naming the address', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const err = await rejection(client({ baseUrl: `http://127.0.0.1:${port}`, retries: 1 }).getJson('/rest/session', { what: 'the session' }));
    expect(err).to.be.instanceOf(RetryableError);
    expect(err.code).to.equal('soar_unreachable');
    expect(err.message).to.include(`Cannot reach SOAR at http://127.0.0.1:${port} for the session (ECONNREFUSED`);
  });

  describe('TLS', function () {
    let dir: string;
    let good: ReturnType<typeof makeCert>;
    let other: ReturnType<typeof makeCert>;
    let secure: SoarEmulator;

    before(function () {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'soar-tls-'));
      good = makeCert(dir, 'soar-test-ca');
      other = makeCert(dir, 'unrelated-ca');
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    beforeEach(async () => {
      secure = await SoarEmulator.start({ tls: { key: good.key, cert: good.cert } });
    });
    afterEach(async () => secure.close());

    const tlsOptions = (extra: Partial<SoarClientOptions>): Partial<SoarClientOptions> => ({
      baseUrl: secure.baseUrl,
      apiKeyId: secure.apiKeyId,
      apiKeySecret: secure.apiKeySecret,
      ...extra,
    });

    it('connects when cafile is the CA that signed the certificate', async () => {
      const s = await client(tlsOptions({ caFile: good.certFile })).getJson<{ orgs: unknown[] }>('/rest/session', { what: 'the session' });
      expect(s.orgs).to.have.length(1);
    });

    it('names the CA file when the certificate does not verify against it (not retried)', async () => {
      const err = await rejection(client(tlsOptions({ caFile: other.certFile })).getJson('/rest/session', { what: 'the session' }));
      expect(err.code).to.equal('soar_tls');
      expect(err.retryable).to.equal(false);
      expect(err.message).to.include(`TLS failure talking to SOAR at ${secure.baseUrl}`);
      expect(err.message).to.include(`checked against the CA in [soar] cafile = ${other.certFile}`);
      expect(secure.requests).to.have.length(0);
    });

    it('says the system CAs were used when no cafile is set', async () => {
      const err = await rejection(client(tlsOptions({})).getJson('/rest/session', { what: 'the session' }));
      expect(err.code).to.equal('soar_tls');
      expect(err.message).to.include('checked against the system CAs; set [soar] cafile');
    });

    it('connects with verification off (cafile = false)', async () => {
      await client(tlsOptions({ verify: false })).getJson('/rest/session', { what: 'the session' });
      expect(secure.requests).to.have.length(1);
    });

    it('says which cafile cannot be read', () => {
      expect(() => client(tlsOptions({ caFile: path.join(dir, 'missing.pem') }))).to.throw(/\[soar\] cafile = .*missing\.pem cannot be read \(ENOENT\)/);
    });

    it('tunnels https through a proxy with CONNECT (with proxy credentials)', async () => {
      const proxy = await startProxy();
      try {
        const s = await client(tlsOptions({ caFile: good.certFile, proxy: `http://user:pa%40ss@127.0.0.1:${proxy.port}` })).getJson<{
          orgs: unknown[];
        }>('/rest/session', { what: 'the session' });
        expect(s.orgs).to.have.length(1);
        expect(proxy.connects).to.deep.equal([`127.0.0.1:${new URL(secure.baseUrl).port}`]);
        expect(proxy.auth).to.deep.equal([`Basic ${Buffer.from('user:pa@ss').toString('base64')}`]);
      } finally {
        await proxy.close();
      }
    });
    it('gives up on a proxy that never answers the CONNECT, within timeoutMs', async () => {
      const sockets: net.Socket[] = [];
      const silent = net.createServer((socket) => void sockets.push(socket)); // accepts, never answers
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      try {
        const port = (silent.address() as net.AddressInfo).port;
        const err = await rejection(
          client(tlsOptions({ caFile: good.certFile, proxy: `http://127.0.0.1:${port}`, timeoutMs: 200, retries: 0 })).getJson('/rest/session', {
            what: 'the session',
          }),
        );
        expect(err.code).to.equal('soar_timeout');
        expect(err.message).to.include('did not answer the tunnel request');
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise<void>((r) => silent.close(() => r()));
      }
    });
  });

  it('sends plain http through a proxy as absolute-URI requests', async () => {
    const proxy = await startProxy();
    try {
      await client({ proxy: `http://127.0.0.1:${proxy.port}` }).getJson('/rest/session', { what: 'the session' });
      expect(proxy.forwarded).to.deep.equal([`${soar.baseUrl}/rest/session`]);
    } finally {
      await proxy.close();
    }
  });
});

/** A minimal forward proxy: CONNECT tunnels and absolute-URI forwarding, recording both. */
async function startProxy(): Promise<{ port: number; connects: string[]; forwarded: string[]; auth: string[]; close: () => Promise<void> }> {
  const connects: string[] = [];
  const forwarded: string[] = [];
  const auth: string[] = [];
  const server = http.createServer((req, res) => {
    forwarded.push(req.url ?? '');
    const target = new URL(req.url ?? '');
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const upstream = http.request(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    connects.push(req.url ?? '');
    if (req.headers['proxy-authorization']) auth.push(req.headers['proxy-authorization']);
    const [host, port] = (req.url ?? '').split(':');
    const upstream = net.connect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    connects,
    forwarded,
    auth,
    close: () =>
      new Promise<void>((r) => {
        // Tunnels are no longer HTTP connections: end them by hand, or close() waits for them.
        for (const socket of sockets) socket.destroy();
        server.close(() => r());
      }),
  };
}
