/**
 * The node:http transport under SlackClient (http-transport.ts) against real HTTP(S)
 * servers: it replaces the global fetch, keeps its connections, and behaves as fetch did
 * where the SDK and network-failure.ts rely on it: compressed answers, answers cut off or
 * stalled midway, redirects, certificates (made with openssl).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { expect } from 'chai';
import { silentLogger } from '../../../../src/core/logging.js';
import { SlackClient } from '../../../../src/functions/slack/slack-client.js';
import { SlackUnavailableError } from '../../../../src/functions/slack/slack-errors.js';
import { REPO_ROOT, tempDir } from '../../../support/harness.js';
import { rejection } from '../../../support/platform-checks.js';
import { makeCert } from '../../../support/tls-cert.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

interface TestServer {
  apiUrl: string;
  /** TCP connections the server accepted. */
  connections: number;
  /** Form bodies received, by path. */
  bodies: Array<{ path: string; body: string }>;
}

describe('Slack HTTP transport (node:http under the WebClient)', function () {
  this.timeout(30_000);
  const servers: http.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  async function serve(handler: Handler, tls?: { key: string; cert: string }): Promise<TestServer> {
    const state: TestServer = { apiUrl: '', connections: 0, bodies: [] };
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        state.bodies.push({ path: req.url ?? '', body });
        handler(req, res, body);
      });
    };
    const server = tls ? https.createServer(tls, onRequest) : http.createServer(onRequest);
    server.on(tls ? 'secureConnection' : 'connection', () => state.connections++);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    state.apiUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as net.AddressInfo).port}/api/`;
    return state;
  }

  function client(apiUrl: string, timeoutMs = 5000): SlackClient {
    return new SlackClient({ token: 'xoxb-1-2-transport', apiUrl, log: silentLogger(), timeoutMs, retryBudgetMs: 0, sleep: async () => undefined });
  }

  const okAnswer = (res: http.ServerResponse, fields: Record<string, unknown> = {}): void => {
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.end(JSON.stringify({ ok: true, ...fields }));
  };

  it('does not call Slack through the global fetch (its per-call cost, README: Benchmarks 2a)', async () => {
    const server = await serve((_req, res) => okAnswer(res, { user_id: 'U1' }));
    const original = globalThis.fetch;
    let fetchCalls = 0;
    globalThis.fetch = ((...args: Parameters<typeof fetch>) => {
      fetchCalls++;
      return original(...args);
    }) as typeof fetch;
    try {
      const res = await client(server.apiUrl).call('auth.test', {});
      expect(res.user_id).to.equal('U1');
    } finally {
      globalThis.fetch = original;
    }
    expect(fetchCalls).to.equal(0);
    expect(server.bodies).to.have.length(1);
  });

  it('sends the form and token as the SDK builds them, and keeps one connection for calls one after another', async () => {
    const seen: Array<{ auth?: string; type?: string; method?: string }> = [];
    const server = await serve((req, res) => {
      seen.push({ auth: req.headers.authorization, type: req.headers['content-type'], method: req.method });
      okAnswer(res, { ts: '1.000100' });
    });
    const slack = client(server.apiUrl);
    for (let i = 0; i < 5; i++) await slack.call('chat.postMessage', { channel: 'C1', text: `héllo & ${i}`, blocks: [{ type: 'divider' }] });
    expect(server.connections, 'TCP connections for 5 calls').to.equal(1);
    expect(seen[0]).to.deep.equal({ auth: 'Bearer xoxb-1-2-transport', type: 'application/x-www-form-urlencoded', method: 'POST' });
    const form = new URLSearchParams(server.bodies[4]!.body);
    expect(server.bodies[4]!.path).to.equal('/api/chat.postMessage');
    expect(form.get('text')).to.equal('héllo & 4');
    expect(JSON.parse(form.get('blocks')!)).to.deep.equal([{ type: 'divider' }]);
  });

  for (const coding of ['gzip', 'deflate', 'br'] as const) {
    it(`reads an answer compressed with ${coding}`, async () => {
      const compress = { gzip: zlib.gzipSync, deflate: zlib.deflateSync, br: zlib.brotliCompressSync }[coding];
      const server = await serve((req, res) => {
        expect(String(req.headers['accept-encoding'])).to.include(coding);
        res.setHeader('content-type', 'application/json');
        res.setHeader('content-encoding', coding);
        res.end(compress(Buffer.from(JSON.stringify({ ok: true, channel: { id: 'C9', name: 'é'.repeat(5000) } }))));
      });
      const res = await client(server.apiUrl).call('conversations.info', { channel: 'C9' });
      expect(res.channel.id).to.equal('C9');
      expect(res.channel.name).to.equal('é'.repeat(5000));
    });
  }

  it('a Slack error answer and a 429 keep their meaning (Slack error code; Retry-After)', async () => {
    let n = 0;
    const server = await serve((_req, res) => {
      if (n++ === 0) {
        res.statusCode = 429;
        res.setHeader('retry-after', '7');
        return res.end();
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: false, error: 'channel_not_found' }));
    });
    const err = await rejection(client(server.apiUrl).call('chat.postMessage', { channel: 'C404', text: 'x' }));
    expect(err).to.be.instanceOf(SlackUnavailableError);
    expect(err.message).to.match(/rate-limiting chat\.postMessage/);
    const notFound = await rejection(client(server.apiUrl).call('chat.postMessage', { channel: 'C404', text: 'x' }));
    expect((notFound as Error & { slackError?: string }).slackError).to.equal('channel_not_found');
  });

  it('an answer that stops midway is ended by the timeout, named as one', async () => {
    const server = await serve((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.write('{"ok":true,"us'); // and nothing more
    });
    const err = await rejection(client(server.apiUrl, 500).call('auth.test', {}));
    expect(err).to.be.instanceOf(SlackUnavailableError);
    expect(err.message).to.match(/timeout: no answer within 0\.5s/);
  });

  it('a connection closed midway through the answer is a network failure, not a Slack answer, and a post is not repeated', async () => {
    const server = await serve((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.setHeader('content-length', '100');
      res.write('{"ok":true,"ts":"1.0');
      setTimeout(() => req.socket.destroy(), 20);
    });
    const err = await rejection(client(server.apiUrl).call('chat.postMessage', { channel: 'C1', text: 'x' }));
    expect(err).to.be.instanceOf(SlackUnavailableError);
    expect(err.message).to.match(/ECONNRESET.*not repeated here because it may have taken effect/);
    expect(server.bodies).to.have.length(1);
  });

  it('does not follow a redirect (the SDK asks fetch for redirect: error): the call fails with the HTTP status', async () => {
    const target = await serve((_req, res) => okAnswer(res));
    const server = await serve((_req, res) => {
      res.statusCode = 307;
      res.setHeader('location', `${target.apiUrl}auth.test`);
      res.end();
    });
    const err = await rejection(client(server.apiUrl).call('auth.test', {}));
    expect(err).to.be.instanceOf(SlackUnavailableError);
    expect(err.message).to.equal('Slack auth.test failed: HTTP 307');
    expect(target.bodies).to.have.length(0);
  });

  it('https: refuses a certificate nobody vouches for, naming it', async () => {
    const tls = makeCert(tempDir(), 'slack-test');
    const server = await serve((_req, res) => okAnswer(res), tls);
    const err = await rejection(client(server.apiUrl).call('auth.test', {}));
    expect(err).to.be.instanceOf(SlackUnavailableError);
    expect(err.message).to.match(/TLS: .*\(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
    expect(server.bodies, 'nothing sent before the handshake').to.have.length(0);
  });

  it('https: a certificate trusted through NODE_EXTRA_CA_CERTS is accepted, and the connection is kept', async () => {
    const dir = tempDir();
    const tls = makeCert(dir, 'slack-test');
    const server = await serve((_req, res) => okAnswer(res, { user_id: 'U7' }), tls);
    // NODE_EXTRA_CA_CERTS is read when node starts: the calls run in a node of their own.
    const script = path.join(dir, 'calls.mts');
    fs.writeFileSync(
      script,
      `import { SlackClient } from ${JSON.stringify(path.join(REPO_ROOT, 'src/functions/slack/slack-client.ts'))};
       import { silentLogger } from ${JSON.stringify(path.join(REPO_ROOT, 'src/core/logging.ts'))};
       const slack = new SlackClient({ token: 'xoxb-1-2-tls', apiUrl: process.argv[2], log: silentLogger(), timeoutMs: 5000, retryBudgetMs: 0 });
       const ids = [];
       for (let i = 0; i < 3; i++) ids.push((await slack.call('auth.test', {})).user_id);
       console.log(JSON.stringify(ids));`,
    );
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', script, server.apiUrl], { cwd: REPO_ROOT, env: { ...process.env, NODE_EXTRA_CA_CERTS: tls.certFile } }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    expect(JSON.parse(out.trim().split('\n').pop()!)).to.deep.equal(['U7', 'U7', 'U7']);
    expect(server.connections, 'TLS connections for 3 calls').to.equal(1);
  });
});
