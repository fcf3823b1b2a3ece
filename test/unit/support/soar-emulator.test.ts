/**
 * The SOAR REST emulator itself, over raw HTTP: auth and permissions, orgs, streamed
 * contents, handle_format, multipart parsing (split at awkward places), faults, the log.
 */
import http from 'node:http';
import { expect } from 'chai';
import { SoarEmulator } from '../../support/soar-emulator.js';

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One raw request; `pieces` are written one by one (a body split anywhere). */
function raw(
  base: string,
  method: string,
  path: string,
  opts: { auth?: string; headers?: http.OutgoingHttpHeaders; pieces?: Buffer[] } = {},
): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, base);
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers: { ...(opts.auth ? { authorization: opts.auth } : {}), ...opts.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    (async () => {
      for (const piece of opts.pieces ?? []) {
        req.write(piece);
        await new Promise((r) => setImmediate(r));
      }
      req.end();
    })().catch(reject);
  });
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

function multipart(boundary: string, name: string, content: Buffer, field = 'file'): Buffer {
  return Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="other"\r\n\r\nignored\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${name}"\r\nContent-Type: text/plain\r\n\r\n`),
    content,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
}

describe('SOAR emulator', function () {
  let soar: SoarEmulator;
  let auth: string;
  beforeEach(async () => {
    soar = await SoarEmulator.start();
    auth = basic(soar.apiKeyId, soar.apiKeySecret);
  });
  afterEach(async () => soar.close());

  it('answers 401 without a key or with a wrong secret, and logs each request', async () => {
    expect((await raw(soar.baseUrl, 'GET', '/rest/session')).status).to.equal(401);
    expect((await raw(soar.baseUrl, 'GET', '/rest/session', { auth: basic(soar.apiKeyId, 'x') })).status).to.equal(401);
    const ok = await raw(soar.baseUrl, 'GET', '/rest/session', { auth });
    expect(ok.status).to.equal(200);
    expect(JSON.parse(ok.body.toString())).to.deep.include({ orgs: [{ id: 201, name: 'Test Org', enabled: true }] });
    expect(soar.requests.map((r) => [r.status, r.keyId])).to.deep.equal([
      [401, undefined],
      [401, undefined],
      [200, soar.apiKeyId],
    ]);
  });

  it('answers 403 to a key without the permission an endpoint needs, 404 for another org', async () => {
    const id = soar.addAttachment({ incidentId: 1, name: 'a.txt', content: 'a' });
    const key = soar.addKey({ permissions: ['read_data'] });
    expect((await raw(soar.baseUrl, 'GET', `/rest/orgs/201/incidents/1/attachments/${id}`, { auth: basic(key.id, key.secret) })).status).to.equal(403);
    expect((await raw(soar.baseUrl, 'GET', '/rest/session', { auth: basic(key.id, key.secret) })).status).to.equal(200);
    const other = await raw(soar.baseUrl, 'GET', `/rest/orgs/999/incidents/1/attachments/${id}`, { auth });
    expect(other.status).to.equal(404);
    expect(JSON.parse(other.body.toString()).message).to.equal('Organization 999 not found');
  });

  it('streams contents from a generator with a Content-Length, and gives metadata', async () => {
    const id = soar.addAttachment({
      incidentId: 5,
      name: 'gen.bin',
      content: { size: 6, chunks: function* () { yield Buffer.from('abc'); yield Buffer.from('def'); } },
    });
    const meta = JSON.parse((await raw(soar.baseUrl, 'GET', `/rest/orgs/201/incidents/5/attachments/${id}`, { auth })).body.toString());
    expect(meta).to.deep.include({ id, name: 'gen.bin', size: 6, inc_id: 5, task_id: null });
    const res = await raw(soar.baseUrl, 'GET', `/rest/orgs/201/incidents/5/attachments/${id}/contents`, { auth });
    expect(res.headers['content-length']).to.equal('6');
    expect(res.body.toString()).to.equal('abcdef');
    expect((await raw(soar.baseUrl, 'GET', `/rest/orgs/201/incidents/6/attachments/${id}`, { auth })).status).to.equal(404);
  });

  it('gives artifact types as names with handle_format=names, else as ids', async () => {
    const id = soar.addArtifact({ incidentId: 7, type: 'Malware Sample', value: 'x.exe', file: { name: 'x.exe', content: 'MZ' } });
    const byName = JSON.parse((await raw(soar.baseUrl, 'GET', `/rest/orgs/201/incidents/7/artifacts/${id}?handle_format=names`, { auth })).body.toString());
    const byId = JSON.parse((await raw(soar.baseUrl, 'GET', `/rest/orgs/201/incidents/7/artifacts/${id}`, { auth })).body.toString());
    expect(byName.type).to.equal('Malware Sample');
    expect(byId.type).to.equal(12);
    expect(byId.attachment).to.deep.include({ name: 'x.exe', size: 2 });
    const type = JSON.parse((await raw(soar.baseUrl, 'GET', '/rest/orgs/201/artifact_types/12', { auth })).body.toString());
    expect(type.name).to.equal('Malware Sample');
  });

  it('parses a multipart upload streamed in odd pieces and keeps the bytes of the "file" part', async () => {
    soar.addIncident(9);
    const content = Buffer.concat([Buffer.from('line one\r\n--not-the-boundary\r\n'), Buffer.alloc(70_000, 0x41)]);
    const body = multipart('XyZ', 'export.txt', content);
    const pieces: Buffer[] = [];
    // Pieces of 1, 7 and 4099 bytes in turn: delimiters and headers land across pieces.
    const sizes = [1, 7, 4099];
    for (let i = 0, n = 0; i < body.length; n++) {
      const end = Math.min(body.length, i + sizes[n % sizes.length]!);
      pieces.push(body.subarray(i, end));
      i = end;
    }
    const res = await raw(soar.baseUrl, 'POST', '/rest/orgs/201/incidents/9/attachments', {
      auth,
      headers: { 'content-type': 'multipart/form-data; boundary=XyZ', 'content-length': body.length },
      pieces,
    });
    expect(res.status, res.body.toString()).to.equal(200);
    const dto = JSON.parse(res.body.toString());
    expect(dto).to.deep.include({ name: 'export.txt', content_type: 'text/plain', size: content.length, inc_id: 9 });
    expect(soar.uploads[0]!.bytes.equals(content)).to.equal(true);
    expect(soar.uploads[0]!.declaredLength).to.equal(body.length);
  });

  it('refuses an upload without a part named "file"', async () => {
    soar.addIncident(9);
    const noFile = multipart('b1', 'x.txt', Buffer.from('x'), 'notfile');
    const res = await raw(soar.baseUrl, 'POST', '/rest/orgs/201/incidents/9/attachments', {
      auth,
      headers: { 'content-type': 'multipart/form-data; boundary=b1' },
      pieces: [noFile],
    });
    expect(res.status).to.equal(400);
    expect(JSON.parse(res.body.toString()).message).to.equal('The upload has no complete part named "file"');
    expect(soar.uploads).to.have.length(0);
  });

  it('injects failures: a status n times, a reset, a delay', async () => {
    soar.fail({ path: /session$/, kind: 'status', status: 503, times: 2 });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await raw(soar.baseUrl, 'GET', '/rest/session', { auth })).status);
    expect(statuses).to.deep.equal([503, 503, 200]);

    soar.fail({ path: /session$/, kind: 'reset' });
    let error: unknown;
    try {
      await raw(soar.baseUrl, 'GET', '/rest/session', { auth });
    } catch (err) {
      error = err;
    }
    expect((error as NodeJS.ErrnoException).code).to.equal('ECONNRESET');

    soar.fail({ path: /session$/, kind: 'delay', delayMs: 150 });
    const started = Date.now();
    expect((await raw(soar.baseUrl, 'GET', '/rest/session', { auth })).status).to.equal(200);
    expect(Date.now() - started).to.be.at.least(140);
  });

  it('keeps functions and message destinations in {entities}, refusing duplicates', async () => {
    const post = (path: string, value: unknown) =>
      raw(soar.baseUrl, 'POST', path, { auth, headers: { 'content-type': 'application/json' }, pieces: [Buffer.from(JSON.stringify(value))] });
    expect((await post('/rest/orgs/201/functions', { name: 'f1', display_name: 'F1' })).status).to.equal(200);
    expect((await post('/rest/orgs/201/functions', { name: 'f1' })).status).to.equal(409);
    const list = JSON.parse((await raw(soar.baseUrl, 'GET', '/rest/orgs/201/functions', { auth })).body.toString());
    expect(list.entities.map((f: { name: string }) => f.name)).to.deep.equal(['f1']);
    expect((await post('/rest/orgs/201/types', { type_name: 't', type_id: 6 })).status).to.equal(400);
  });

  it('lists and creates comments of incidents and tasks, with replies, 404 for unknown owners, 400 without text', async () => {
    soar.addTask(12, 2103);
    const post = (path: string, value: unknown) =>
      raw(soar.baseUrl, 'POST', path, { auth, headers: { 'content-type': 'application/json' }, pieces: [Buffer.from(JSON.stringify(value))] });
    const list = async (path: string) => JSON.parse((await raw(soar.baseUrl, 'GET', path, { auth })).body.toString());
    const created = await post('/rest/orgs/201/incidents/2103/comments', { text: { format: 'html', content: '<p>hi</p>' } });
    expect(created.status).to.equal(200);
    const top = JSON.parse(created.body.toString());
    expect(top).to.deep.include({ parent_id: null, inc_id: 2103, task_id: null, text: '<p>hi</p>', children: [] });
    expect((await post('/rest/orgs/201/incidents/2103/comments', { text: { format: 'text', content: 'a <b>' }, parent_id: top.id })).status).to.equal(200);
    expect((await post('/rest/orgs/201/tasks/12/comments', { text: { format: 'text', content: 'on the task' } })).status).to.equal(200);
    const incident = await list('/rest/orgs/201/incidents/2103/comments');
    expect(incident).to.have.length(1);
    expect(incident[0].children.map((c: { text: string }) => c.text)).to.deep.equal(['a &#60;b&#62;']);
    expect((await list('/rest/orgs/201/tasks/12/comments')).map((c: { text: string }) => c.text)).to.deep.equal(['on the task']);
    expect((await raw(soar.baseUrl, 'GET', '/rest/orgs/201/incidents/9/comments', { auth })).status).to.equal(404);
    expect((await post('/rest/orgs/201/tasks/99/comments', { text: { content: 'x' } })).status).to.equal(404);
    expect((await post('/rest/orgs/201/incidents/2103/comments', { text: { format: 'html' } })).status).to.equal(400);
    expect((await post('/rest/orgs/201/incidents/2103/comments', { text: { content: 'x' }, parent_id: 424242 })).status).to.equal(404);
    expect(soar.comments).to.have.length(3);
  });
});
