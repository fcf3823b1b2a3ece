/**
 * SoarPlatform against the SOAR emulator: the cases of local-platform.test.ts where
 * they apply, plus what only a remote platform has (permissions, malware refused before
 * any byte is read, a 50 MB attachment streamed with flat memory, streamed uploads).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { expect } from 'chai';
import { SoarClient } from '../../../../src/platforms/soar/soar-client.js';
import { SoarPlatform } from '../../../../src/platforms/soar/soar-platform.js';
import type { AttachmentRef } from '../../../../src/platforms/platform.js';
import { functionError, readAll, rejection } from '../../../support/platform-checks.js';
import { ALL_PERMISSIONS, SoarEmulator } from '../../../support/soar-emulator.js';

/** 50 MB in 64 KB chunks, each made fresh (nothing here holds the whole file). */
const BIG_SIZE = 50 * 1024 * 1024;
const BIG_CHUNK = 64 * 1024;
function* bigChunks(): Generator<Buffer> {
  for (let i = 0; i < BIG_SIZE / BIG_CHUNK; i++) {
    const chunk = Buffer.allocUnsafe(BIG_CHUNK);
    chunk.fill(i % 251);
    chunk.writeUInt32BE(i, 0);
    yield chunk;
  }
}

/** node:vm gives access to gc() once --expose-gc is set at run time. */
function gcFunction(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

describe('SoarPlatform', function () {
  this.timeout(60_000);
  let soar: SoarEmulator;
  let client: SoarClient;
  let platform: SoarPlatform;
  let ids: { report: number; taskCsv: number; malware: number; log: number; ip: number };

  const clientFor = (key: { id: string; secret: string }) =>
    new SoarClient({ baseUrl: soar.baseUrl, orgId: soar.orgId, apiKeyId: key.id, apiKeySecret: key.secret, retryBaseMs: 10, retryMaxMs: 20 });

  beforeEach(async () => {
    soar = await SoarEmulator.start();
    soar.addIncident(2103);
    soar.addIncident(2104);
    soar.addTask(12, 2103);
    soar.addTask(13, 2104);
    ids = {
      report: soar.addAttachment({ incidentId: 2103, name: 'report.pdf', contentType: 'application/pdf', content: '%PDF-1.4 report' }),
      taskCsv: soar.addAttachment({ incidentId: 2103, taskId: 12, name: 'task-list.csv', contentType: 'text/csv', content: 'a,b\n1,2\n' }),
      malware: soar.addArtifact({
        incidentId: 2103,
        type: 'Malware Sample',
        value: 'evil.exe',
        file: { name: 'evil.exe', content: Buffer.from([0x4d, 0x5a, 0x90, 0x00]) },
      }),
      log: soar.addArtifact({
        incidentId: 2103,
        type: 'Log File',
        value: 'app.log',
        file: { name: 'app.log', contentType: 'text/x-log', content: 'line 1\n' },
      }),
      ip: soar.addArtifact({ incidentId: 2103, type: 'IP Address', value: '10.0.0.1' }),
    };
    client = clientFor({ id: soar.apiKeyId, secret: soar.apiKeySecret });
    platform = new SoarPlatform(client);
  });

  afterEach(async () => {
    client.close();
    await soar.close();
  });

  describe('getAttachment', function () {
    it('fetches an incident attachment: name, type and size from its metadata, content streamed', async () => {
      const info = await platform.getAttachment({ incidentId: 2103, attachmentId: ids.report });
      expect(info).to.deep.include({ name: 'report.pdf', contentType: 'application/pdf', size: 15 });
      expect(info.artifactType).to.equal(undefined);
      expect(soar.requestsTo(/\/contents$/)).to.have.length(0); // nothing read until open()
      expect((await readAll(await info.open())).toString()).to.equal('%PDF-1.4 report');
      expect(soar.requestsTo(/\/contents$/).map((r) => r.path)).to.deep.equal([
        `/rest/orgs/201/incidents/2103/attachments/${ids.report}/contents`,
      ]);
    });

    it('fetches a task attachment through /tasks/{task}, kept apart from the incident attachments', async () => {
      const info = await platform.getAttachment({ incidentId: 2103, taskId: 12, attachmentId: ids.taskCsv });
      expect(info).to.deep.include({ name: 'task-list.csv', contentType: 'text/csv', size: 8 });
      expect((await readAll(await info.open())).toString()).to.equal('a,b\n1,2\n');
      expect(soar.requestsTo(/\/tasks\/12\/attachments\//).length).to.equal(2);
      await functionError(
        platform.getAttachment({ incidentId: 2103, attachmentId: ids.taskCsv }),
        'not_found',
        `Attachment ${ids.taskCsv} of incident 2103 not found in SOAR org 201 (404)`,
      );
    });

    it("refuses a task of another incident", async () => {
      const other = soar.addAttachment({ incidentId: 2104, taskId: 13, name: 'x.txt', content: 'x' });
      await functionError(
        platform.getAttachment({ incidentId: 2103, taskId: 13, attachmentId: other }),
        'not_found',
        'Task 13 belongs to incident 2104, not incident 2103',
      );
    });

    it('fetches an artifact file with its type name (handle_format=names)', async () => {
      const info = await platform.getAttachment({ incidentId: 2103, taskId: 12, artifactId: ids.log });
      expect(info).to.deep.include({ name: 'app.log', contentType: 'text/x-log', size: 7, artifactType: 'Log File' });
      expect((await readAll(await info.open())).toString()).to.equal('line 1\n');
      expect(soar.requestsTo(new RegExp(`/artifacts/${ids.log}$`))[0]!.query).to.equal('?handle_format=names');
    });

    it('resolves a numeric artifact type through /artifact_types when the server gives ids', async () => {
      soar.ignoreHandleFormat = true;
      const info = await platform.getAttachment({ incidentId: 2103, artifactId: ids.log });
      expect(info.artifactType).to.equal('Log File');
      expect(soar.requestsTo(/\/artifact_types\/15$/)).to.have.length(1);
      await functionError(platform.getAttachment({ incidentId: 2103, artifactId: ids.malware }), 'malware_refused');
    });

    it('refuses a Malware Sample artifact before reading any of its bytes', async () => {
      await functionError(
        platform.getAttachment({ incidentId: 2103, artifactId: ids.malware }),
        'malware_refused',
        `Artifact ${ids.malware} of incident 2103 (Malware Sample "evil.exe") is a Malware Sample; its file is never read or sent`,
      );
      expect(soar.requestsTo(/\/contents$/)).to.have.length(0);
    });

    it('says when an artifact has no file', async () => {
      await functionError(platform.getAttachment({ incidentId: 2103, artifactId: ids.ip }), 'not_found', /IP Address "10\.0\.0\.1"\) has no file/);
    });

    it('names what is missing: incident, task, attachment, artifact', async () => {
      await functionError(platform.getAttachment({ incidentId: 9999, attachmentId: ids.report }), 'not_found', `Attachment ${ids.report} of incident 9999 not found`);
      await functionError(platform.getAttachment({ incidentId: 9999, attachmentId: ids.report }), 'not_found', 'SOAR said: Incident 9999 not found');
      await functionError(platform.getAttachment({ incidentId: 2103, taskId: 99, attachmentId: 1 }), 'not_found', 'Attachment 1 of task 99 of incident 2103 not found');
      await functionError(platform.getAttachment({ incidentId: 2103, artifactId: 70 }), 'not_found', 'Artifact 70 of incident 2103 not found');
    });

    it('names the permission a key lacks', async () => {
      const weak = soar.addKey({ permissions: ALL_PERMISSIONS.filter((p) => p !== 'read_all_incidents') });
      const weakClient = clientFor(weak);
      try {
        await functionError(
          new SoarPlatform(weakClient).getAttachment({ incidentId: 2103, attachmentId: ids.report }),
          'soar_forbidden',
          `SOAR refused access (403) to attachment ${ids.report} of incident 2103: the API key needs the permission read_all_incidents`,
        );
      } finally {
        weakClient.close();
      }
    });

    it('refuses both or neither of attachment_id and artifact_id, and bad ids, without asking SOAR', async () => {
      await functionError(platform.getAttachment({ incidentId: 2103, attachmentId: 7, artifactId: 3 }), 'invalid_reference', /not both/);
      await functionError(platform.getAttachment({ incidentId: 2103, taskId: 12 }), 'invalid_reference', /attachment_id .*artifact_id/);
      const cases: [AttachmentRef, string][] = [
        [{ incidentId: 0, attachmentId: 1 }, 'incident_id'],
        [{ incidentId: 2103, taskId: 1.5, attachmentId: 1 }, 'task_id'],
        [{ incidentId: 2103, attachmentId: '../7' as unknown as number }, 'attachment_id'],
        [{ incidentId: 2103, artifactId: -3 }, 'artifact_id'],
      ];
      for (const [ref, field] of cases) {
        const err = await functionError(platform.getAttachment(ref), 'invalid_id', `${field} must be a positive integer`);
        expect(err.details).to.deep.equal({ field });
      }
      expect(soar.requests).to.have.length(0);
    });

    it('streams a 50 MB attachment with flat memory', async function () {
      // What is measured: heap + ArrayBuffer memory still reachable (after a forced GC)
      // every ~5 MB while the stream is consumed; emulator and client share this process.
      // A client that buffered the body would hold >= 50 MB at the first sample (open()
      // would return only after the whole body arrived). The bound (30 MB) leaves room
      // for socket and stream buffers and GC timing, and is far below 50 MB.
      const gc = gcFunction();
      const id = soar.addAttachment({ incidentId: 2103, name: 'big.bin', content: { size: BIG_SIZE, chunks: bigChunks } });
      const expected = createHash('sha256');
      for (const chunk of bigChunks()) expected.update(chunk);
      const expectedHash = expected.digest('hex');

      gc();
      const used = () => {
        const m = process.memoryUsage();
        return m.heapUsed + m.arrayBuffers;
      };
      const baseline = used();
      const info = await platform.getAttachment({ incidentId: 2103, attachmentId: id });
      expect(info.size).to.equal(BIG_SIZE);
      const stream = await info.open();
      const hash = createHash('sha256');
      let received = 0;
      let nextSample = 0;
      let peak = 0;
      for await (const chunk of stream) {
        hash.update(chunk as Buffer);
        received += (chunk as Buffer).length;
        if (received >= nextSample) {
          gc();
          peak = Math.max(peak, used() - baseline);
          nextSample += 5 * 1024 * 1024;
        }
      }
      expect(received).to.equal(BIG_SIZE);
      expect(hash.digest('hex')).to.equal(expectedHash);
      console.log(`      50 MB streamed: peak retained growth ${(peak / 1048576).toFixed(1)} MB`);
      expect(peak).to.be.below(30 * 1024 * 1024);
    });
  });

  describe('saveExport', function () {
    let dir: string;
    let source: string;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'soar-export-'));
      source = join(dir, 'export.txt');
      await writeFile(source, 'Slack channel #inc-2103 conversation history\n1 - alice POSTED ON …\n');
    });
    afterEach(async () => rm(dir, { recursive: true, force: true }));

    it('uploads the file as an incident attachment: multipart part "file", streamed with a Content-Length', async () => {
      const saved = await platform.saveExport({ incidentId: 2103 }, 'slack_msg_export_channel_inc-2103.txt', source);
      const [upload] = soar.uploads;
      expect(upload).to.deep.include({ incidentId: 2103, name: 'slack_msg_export_channel_inc-2103.txt', contentType: 'text/plain' });
      expect(upload!.taskId).to.equal(undefined);
      expect(upload!.bytes.toString()).to.equal('Slack channel #inc-2103 conversation history\n1 - alice POSTED ON …\n');
      expect(upload!.declaredLength).to.be.a('number');
      expect(saved.attachmentId).to.equal(upload!.attachmentId);
      expect(saved.location).to.include(`${soar.baseUrl}/#incidents/2103`);
      const info = await platform.getAttachment({ incidentId: 2103, attachmentId: saved.attachmentId! });
      expect((await readAll(await info.open())).toString()).to.equal(upload!.bytes.toString());
    });

    it('uploads to a task through /tasks/{task}/attachments', async () => {
      const saved = await platform.saveExport({ incidentId: 2103, taskId: 12 }, 'task_export.txt', source);
      expect(soar.requestsTo(/\/tasks\/12\/attachments$/, 'POST')).to.have.length(1);
      expect(soar.uploads[0]).to.deep.include({ incidentId: 2103, taskId: 12, name: 'task_export.txt' });
      expect(saved.location).to.include('task 12 of incident 2103');
    });

    it('uploads a large export completely', async () => {
      const big = Buffer.alloc(6 * 1024 * 1024 + 17, 7);
      await writeFile(source, big);
      await platform.saveExport({ incidentId: 2104 }, 'big.bin', source);
      expect(soar.uploads[0]!.bytes.equals(big)).to.equal(true);
    });

    it('keeps names with quotes and non-ASCII intact', async () => {
      await platform.saveExport({ incidentId: 2103 }, 'rapport "final" é.txt', source);
      expect(soar.uploads[0]!.name).to.equal('rapport "final" é.txt');
    });

    it('refuses unsafe names without calling SOAR', async () => {
      for (const name of ['a/b.txt', '..', '.hidden', '', 'tab\there']) {
        await functionError(platform.saveExport({ incidentId: 2103 }, name, source), 'invalid_name');
      }
      expect(soar.requests).to.have.length(0);
    });

    it('names a missing incident or task', async () => {
      await functionError(platform.saveExport({ incidentId: 4242 }, 'e.txt', source), 'not_found', 'A new attachment "e.txt" on incident 4242 not found');
      await functionError(platform.saveExport({ incidentId: 2103, taskId: 77 }, 'e.txt', source), 'not_found', 'task 77 of incident 2103');
      expect(soar.uploads).to.have.length(0);
    });

    it('does not retry an upload after a 5xx (no duplicate attachment) and reports it as retryable', async () => {
      soar.fail({ path: /\/incidents\/2103\/attachments$/, method: 'POST', kind: 'status', status: 503, times: 3 });
      const err = await rejection(platform.saveExport({ incidentId: 2103 }, 'e.txt', source));
      expect(err.code).to.equal('soar_unavailable');
      expect(err.retryable).to.equal(true);
      expect(soar.requestsTo(/\/attachments$/, 'POST')).to.have.length(1);
    });

    it('names the permission needed to upload', async () => {
      const readOnly = soar.addKey({ permissions: ['read_all_incidents'] });
      const c = clientFor(readOnly);
      try {
        await functionError(
          new SoarPlatform(c).saveExport({ incidentId: 2103 }, 'e.txt', source),
          'soar_forbidden',
          'the API key needs the permission edit_all_incidents_fields',
        );
      } finally {
        c.close();
      }
    });
  });

  describe('checkExportTarget', function () {
    it('passes for an incident and for its own task; names an unknown incident, an unknown task and a task of another incident', async () => {
      await platform.checkExportTarget({ incidentId: 2103 });
      await platform.checkExportTarget({ incidentId: 2103, taskId: 12 });
      await functionError(platform.checkExportTarget({ incidentId: 9999 }), 'not_found', 'Incident 9999 not found in SOAR org');
      await functionError(platform.checkExportTarget({ incidentId: 2103, taskId: 99 }), 'not_found', 'Task 99 of incident 2103 not found in SOAR org');
      await functionError(platform.checkExportTarget({ incidentId: 2103, taskId: 13 }), 'not_found', 'Task 13 belongs to incident 2104, not incident 2103');
      expect(soar.uploads).to.have.length(0);
    });
  });

  describe('check', function () {
    it('describes the connection: org, key accepted, incidents readable', async () => {
      expect(await platform.check()).to.equal(`SOAR at ${soar.baseUrl}, org 201 (Test Org): API key accepted; 2 incident(s) visible`);
      expect(platform.kind).to.equal('soar');
    });

    it('fails on a bad key (401), a key without read access (403), another org', async () => {
      const bad = clientFor({ id: soar.apiKeyId, secret: 'nope' });
      const weak = soar.addKey({ permissions: ['read_data'] });
      const weakClient = clientFor(weak);
      const otherOrg = new SoarClient({ baseUrl: soar.baseUrl, orgId: 999, apiKeyId: soar.apiKeyId, apiKeySecret: soar.apiKeySecret });
      try {
        await functionError(new SoarPlatform(bad).check(), 'soar_unauthorized', 'check [soar] api_key_id and api_key_secret');
        await functionError(new SoarPlatform(weakClient).check(), 'soar_forbidden', 'needs the permission read_all_incidents');
        await functionError(new SoarPlatform(otherOrg).check(), 'soar_org_not_found', 'not a member of SOAR org 999: check [soar] org_id');
      } finally {
        bad.close();
        weakClient.close();
        otherOrg.close();
      }
    });
  });
});
