import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { LocalPlatform, guessContentType } from '../../../../src/platforms/local/local-platform.js';
import type { AttachmentRef } from '../../../../src/platforms/platform.js';
import { functionError, readAll } from '../../../support/platform-checks.js';

async function put(root: string, rel: string, content: string | Buffer): Promise<string> {
  const path = join(root, rel);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
  return path;
}

describe('LocalPlatform', function () {
  let base: string;
  let root: string;
  let outside: string;
  let platform: LocalPlatform;

  beforeEach(async function () {
    base = await mkdtemp(join(tmpdir(), 'local-platform-'));
    root = join(base, 'root');
    outside = join(base, 'outside');
    await put(outside, 'secret/passwd', 'root:x:0:0');
    await put(root, 'incidents/2103/attachments/7/report.pdf', '%PDF-1.4 report');
    await put(root, 'incidents/2103/attachments/8/Notes.TXT', 'notes');
    await put(root, 'incidents/2103/attachments/9/blob.weird', 'blob');
    await put(root, 'incidents/2103/artifacts/3/artifact.json', JSON.stringify({ type: 'Malware Sample', value: 'evil.exe' }));
    await put(root, 'incidents/2103/artifacts/3/evil.exe', Buffer.from([0x4d, 0x5a, 0x90, 0x00]));
    await put(
      root,
      'incidents/2103/artifacts/4/artifact.json',
      JSON.stringify({ type: 'Log File', value: 'app.log', content_type: 'text/x-log' }),
    );
    await put(root, 'incidents/2103/artifacts/4/app.log', 'line 1\n');
    await put(root, 'incidents/2103/artifacts/5/artifact.json', JSON.stringify({ type: 'IP Address', value: '10.0.0.1' }));
    await put(root, 'incidents/2103/tasks/12/attachments/1/task-list.csv', 'a,b\n1,2\n');
    await mkdir(join(root, 'incidents/2104'), { recursive: true });
    platform = new LocalPlatform(root);
  });

  afterEach(async function () {
    await chmod(root, 0o755).catch(() => undefined);
    await rm(base, { recursive: true, force: true });
  });

  describe('getAttachment: layout lookups', function () {
    it('finds an incident attachment with name, type, size and a stream of its content', async function () {
      const info = await platform.getAttachment({ incidentId: 2103, attachmentId: 7 });
      expect(info.name).to.equal('report.pdf');
      expect(info.contentType).to.equal('application/pdf');
      expect(info.size).to.equal('%PDF-1.4 report'.length);
      expect(info.artifactType).to.equal(undefined);
      const stream = await info.open();
      expect((await readAll(stream)).toString()).to.equal('%PDF-1.4 report');
    });

    it('guesses content types case-insensitively and defaults to application/octet-stream', async function () {
      expect((await platform.getAttachment({ incidentId: 2103, attachmentId: 8 })).contentType).to.equal('text/plain');
      expect((await platform.getAttachment({ incidentId: 2103, attachmentId: 9 })).contentType).to.equal(
        'application/octet-stream',
      );
      expect(guessContentType('a.JSON')).to.equal('application/json');
      expect(guessContentType('noext')).to.equal('application/octet-stream');
    });

    it('finds a task attachment, kept apart from the incident attachments', async function () {
      const info = await platform.getAttachment({ incidentId: 2103, taskId: 12, attachmentId: 1 });
      expect(info.name).to.equal('task-list.csv');
      expect(info.contentType).to.equal('text/csv');
      expect((await readAll(await info.open())).toString()).to.equal('a,b\n1,2\n');
      await functionError(
        platform.getAttachment({ incidentId: 2103, attachmentId: 1 }),
        'not_found',
        `Attachment 1 of incident 2103 not found under ${root}`,
      );
    });

    it('exposes a malware sample artifact with its type and file', async function () {
      const info = await platform.getAttachment({ incidentId: 2103, artifactId: 3 });
      expect(info.artifactType).to.equal('Malware Sample');
      expect(info.name).to.equal('evil.exe');
      expect(info.size).to.equal(4);
      expect(info.contentType).to.equal('application/octet-stream');
      expect([...(await readAll(await info.open()))]).to.deep.equal([0x4d, 0x5a, 0x90, 0x00]);
    });

    it("uses the artifact's content_type when given; a task id does not matter for artifacts", async function () {
      const info = await platform.getAttachment({ incidentId: 2103, taskId: 12, artifactId: 4 });
      expect(info.artifactType).to.equal('Log File');
      expect(info.contentType).to.equal('text/x-log');
      expect(info.name).to.equal('app.log');
    });

    it('says when an artifact has no file', async function () {
      await functionError(platform.getAttachment({ incidentId: 2103, artifactId: 5 }), 'not_found', /IP Address.*has no file/);
    });

    it('refuses an artifact without a valid artifact.json', async function () {
      await put(root, 'incidents/2103/artifacts/6/artifact.json', '{not json');
      await put(root, 'incidents/2103/artifacts/6/x.bin', 'x');
      await functionError(platform.getAttachment({ incidentId: 2103, artifactId: 6 }), 'invalid_artifact', 'artifact.json');
      await put(root, 'incidents/2103/artifacts/7/x.bin', 'x');
      await functionError(platform.getAttachment({ incidentId: 2103, artifactId: 7 }), 'invalid_artifact', 'artifact.json');
      await put(root, 'incidents/2103/artifacts/8/artifact.json', JSON.stringify({ value: 'no type' }));
      await put(root, 'incidents/2103/artifacts/8/x.bin', 'x');
      await functionError(platform.getAttachment({ incidentId: 2103, artifactId: 8 }), 'invalid_artifact', '"type"');
    });

    it('names what is missing: incident, task, attachment, artifact', async function () {
      await functionError(platform.getAttachment({ incidentId: 9999, attachmentId: 7 }), 'not_found', `Incident 9999 not found under ${root}`);
      await functionError(
        platform.getAttachment({ incidentId: 2103, taskId: 99, attachmentId: 1 }),
        'not_found',
        `Task 99 of incident 2103 not found under ${root}`,
      );
      await functionError(
        platform.getAttachment({ incidentId: 2103, taskId: 12, attachmentId: 5 }),
        'not_found',
        `Attachment 5 of task 12 of incident 2103 not found under ${root}`,
      );
      await functionError(
        platform.getAttachment({ incidentId: 2103, attachmentId: 70 }),
        'not_found',
        `Attachment 70 of incident 2103 not found under ${root}`,
      );
      await functionError(
        platform.getAttachment({ incidentId: 2103, artifactId: 70 }),
        'not_found',
        `Artifact 70 of incident 2103 not found under ${root}`,
      );
    });

    it('needs exactly one file per attachment folder (hidden files ignored)', async function () {
      await mkdir(join(root, 'incidents/2103/attachments/20'), { recursive: true });
      await put(root, 'incidents/2103/attachments/20/.DS_Store', 'x');
      await functionError(platform.getAttachment({ incidentId: 2103, attachmentId: 20 }), 'not_found', 'has no file');
      await put(root, 'incidents/2103/attachments/21/a.txt', 'a');
      await put(root, 'incidents/2103/attachments/21/b.txt', 'b');
      await functionError(platform.getAttachment({ incidentId: 2103, attachmentId: 21 }), 'ambiguous_attachment', 'a.txt, b.txt');
      await put(root, 'incidents/2103/attachments/22/.partial-abc', 'half');
      await put(root, 'incidents/2103/attachments/22/real.txt', 'whole');
      expect((await platform.getAttachment({ incidentId: 2103, attachmentId: 22 })).name).to.equal('real.txt');
    });

    it('reports a missing root as not found', async function () {
      const missing = new LocalPlatform(join(base, 'nope'));
      await functionError(missing.getAttachment({ incidentId: 1, attachmentId: 1 }), 'not_found', 'does not exist');
    });
  });

  describe('getAttachment: which file', function () {
    it('refuses both attachment_id and artifact_id', async function () {
      await functionError(
        platform.getAttachment({ incidentId: 2103, attachmentId: 7, artifactId: 3 }),
        'invalid_reference',
        /either attachment_id or artifact_id, not both/,
      );
    });

    it('refuses neither attachment_id nor artifact_id, saying which to give', async function () {
      await functionError(
        platform.getAttachment({ incidentId: 2103, taskId: 12 }),
        'invalid_reference',
        /attachment_id .*artifact_id/,
      );
    });
  });

  describe('getAttachment: id validation', function () {
    const bad: unknown[] = [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '7', '../1', '2103/../1', null, {}];
    const label = (v: unknown) => (typeof v === 'string' || (typeof v === 'object' && v !== null) ? JSON.stringify(v) : String(v));
    for (const value of bad) {
      it(`refuses incident_id ${label(value)}`, async function () {
        await functionError(
          platform.getAttachment({ incidentId: value as number, attachmentId: 7 }),
          'invalid_id',
          'incident_id must be a positive integer',
        );
      });
    }

    it('validates task, attachment and artifact ids too', async function () {
      const cases: [AttachmentRef, string][] = [
        [{ incidentId: 2103, taskId: 0, attachmentId: 1 }, 'task_id'],
        [{ incidentId: 2103, attachmentId: '../7' as unknown as number }, 'attachment_id'],
        [{ incidentId: 2103, attachmentId: -7 }, 'attachment_id'],
        [{ incidentId: 2103, artifactId: 3.5 }, 'artifact_id'],
        [{ incidentId: 2103, artifactId: '3' as unknown as number }, 'artifact_id'],
      ];
      for (const [ref, field] of cases) {
        const err = await functionError(platform.getAttachment(ref), 'invalid_id', `${field} must be a positive integer`);
        expect(err.details).to.deep.equal({ field });
      }
    });

    it('treats null optional ids as absent', async function () {
      const ref = { incidentId: 2103, taskId: null, attachmentId: 7, artifactId: null } as unknown as AttachmentRef;
      expect((await platform.getAttachment(ref)).name).to.equal('report.pdf');
    });
  });

  describe('getAttachment: staying inside the root', function () {
    it('refuses an attachment folder that is a symlink out of the root', async function () {
      await symlink(join(outside, 'secret'), join(root, 'incidents/2103/attachments/50'));
      await functionError(platform.getAttachment({ incidentId: 2103, attachmentId: 50 }), 'forbidden_path', 'outside');
    });

    it('refuses an attachment file that is a symlink out of the root', async function () {
      await mkdir(join(root, 'incidents/2103/attachments/51'));
      await symlink(join(outside, 'secret/passwd'), join(root, 'incidents/2103/attachments/51/passwd'));
      await functionError(platform.getAttachment({ incidentId: 2103, attachmentId: 51 }), 'forbidden_path', 'outside');
    });

    it('refuses an incident folder that is a symlink out of the root', async function () {
      await put(outside, 'fake/attachments/1/f.txt', 'x');
      await symlink(join(outside, 'fake'), join(root, 'incidents/3000'));
      await functionError(platform.getAttachment({ incidentId: 3000, attachmentId: 1 }), 'forbidden_path', 'outside');
    });

    it('accepts a symlink that stays inside the root', async function () {
      await mkdir(join(root, 'incidents/2103/attachments/52'));
      await symlink(join(root, 'incidents/2103/attachments/7/report.pdf'), join(root, 'incidents/2103/attachments/52/link.pdf'));
      const info = await platform.getAttachment({ incidentId: 2103, attachmentId: 52 });
      expect(info.name).to.equal('link.pdf');
      expect((await readAll(await info.open())).toString()).to.equal('%PDF-1.4 report');
    });

    it('works when the root itself is reached through a symlink', async function () {
      await symlink(root, join(base, 'root-link'));
      const viaLink = new LocalPlatform(join(base, 'root-link'));
      expect((await viaLink.getAttachment({ incidentId: 2103, attachmentId: 7 })).name).to.equal('report.pdf');
    });
  });

  describe('saveExport', function () {
    let source: string;
    beforeEach(async function () {
      source = await put(base, 'src/export.html', '<html>export</html>');
    });

    it('saves as the next attachment id (max + 1) and returns where', async function () {
      const saved = await platform.saveExport({ incidentId: 2103 }, 'slack_export.html', source);
      expect(saved.attachmentId).to.equal(10);
      expect(saved.location).to.equal(join(root, 'incidents/2103/attachments/10/slack_export.html'));
      expect(await readFile(saved.location, 'utf8')).to.equal('<html>export</html>');
      expect(await readdir(join(root, 'incidents/2103/attachments/10'))).to.deep.equal(['slack_export.html']);
      const again = await platform.saveExport({ incidentId: 2103 }, 'slack_export.html', source);
      expect(again.attachmentId).to.equal(11);
      const info = await platform.getAttachment({ incidentId: 2103, attachmentId: 11 });
      expect(info.name).to.equal('slack_export.html');
      expect(info.contentType).to.equal('text/html');
    });

    it('starts at 1 when the incident has no attachments folder yet', async function () {
      const saved = await platform.saveExport({ incidentId: 2104 }, 'e.txt', source);
      expect(saved.attachmentId).to.equal(1);
      expect(await readFile(join(root, 'incidents/2104/attachments/1/e.txt'), 'utf8')).to.equal('<html>export</html>');
    });

    it('saves on a task', async function () {
      const saved = await platform.saveExport({ incidentId: 2103, taskId: 12 }, 'task_export.html', source);
      expect(saved.attachmentId).to.equal(2);
      expect(saved.location).to.equal(join(root, 'incidents/2103/tasks/12/attachments/2/task_export.html'));
    });

    it('refuses a missing incident or task without creating it', async function () {
      await functionError(platform.saveExport({ incidentId: 4242 }, 'e.txt', source), 'not_found', 'Incident 4242 not found');
      expect(await readdir(join(root, 'incidents'))).to.not.include('4242');
      await functionError(
        platform.saveExport({ incidentId: 2103, taskId: 77 }, 'e.txt', source),
        'not_found',
        'Task 77 of incident 2103 not found',
      );
      await functionError(platform.saveExport({ incidentId: 0 }, 'e.txt', source), 'invalid_id');
    });

    it('refuses unsafe names and writes nothing', async function () {
      const names = ['a/b.txt', '../x.txt', '..', '.', '/etc/passwd', 'a\\b.txt', 'nul\0.txt', '.hidden', '', 'é'.repeat(128), 'tab\there'];
      for (const name of names) {
        await functionError(platform.saveExport({ incidentId: 2103 }, name, source), 'invalid_name');
      }
      expect((await readdir(join(root, 'incidents/2103/attachments'))).sort()).to.deep.equal(['7', '8', '9']);
      expect((await readdir(base)).sort()).to.deep.equal(['outside', 'root', 'src']);
      const longest = await platform.saveExport({ incidentId: 2103 }, 'a'.repeat(250) + '.html', source);
      expect(longest.attachmentId).to.equal(10);
    });

    it('gives concurrent saves distinct ids, each with its own complete file', async function () {
      const sources = await Promise.all(
        Array.from({ length: 20 }, (_, i) => put(base, `src/part-${i}.txt`, `content ${i} `.repeat(1000))),
      );
      const saved = await Promise.all(
        sources.map((s, i) => platform.saveExport({ incidentId: 2104 }, `export-${i}.txt`, s)),
      );
      expect(saved.map((s) => s.attachmentId).sort((a, b) => a! - b!)).to.deep.equal(
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      for (const [i, s] of saved.entries()) {
        const dir = join(root, 'incidents/2104/attachments', String(s.attachmentId));
        expect(await readdir(dir)).to.deep.equal([`export-${i}.txt`]);
        expect(await readFile(s.location, 'utf8')).to.equal(`content ${i} `.repeat(1000));
      }
    });

    it('copies a large file completely', async function () {
      const big = Buffer.alloc(6 * 1024 * 1024 + 17, 7);
      const bigSource = await put(base, 'src/big.bin', big);
      const saved = await platform.saveExport({ incidentId: 2104 }, 'big.bin', bigSource);
      expect((await readFile(saved.location)).equals(big)).to.equal(true);
      expect((await platform.getAttachment({ incidentId: 2104, attachmentId: saved.attachmentId! })).size).to.equal(big.length);
    });

    it('leaves no folder behind when the source cannot be read', async function () {
      let error: unknown;
      try {
        await platform.saveExport({ incidentId: 2104 }, 'e.txt', join(base, 'src/missing.txt'));
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(Error);
      expect(await readdir(join(root, 'incidents/2104/attachments'))).to.deep.equal([]);
    });

    it('refuses an attachments folder that is a symlink out of the root', async function () {
      await mkdir(join(outside, 'atts'));
      await symlink(join(outside, 'atts'), join(root, 'incidents/2104/attachments'));
      await functionError(platform.saveExport({ incidentId: 2104 }, 'e.txt', source), 'forbidden_path');
      expect(await readdir(join(outside, 'atts'))).to.deep.equal([]);
    });
  });

  describe('check', function () {
    it('describes a usable root', async function () {
      const description = await platform.check();
      expect(description).to.include(root);
      expect(description).to.include('2 incidents');
      expect(platform.kind).to.equal('local');
    });

    it('says when the root does not exist', async function () {
      const missing = join(base, 'nope');
      let error: unknown;
      try {
        await new LocalPlatform(missing).check();
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(Error);
      expect((error as Error).message).to.include(missing).and.to.include('does not exist');
    });

    it('says when the root is not a directory', async function () {
      const file = await put(base, 'a-file', 'x');
      let error: unknown;
      try {
        await new LocalPlatform(file).check();
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(Error);
      expect((error as Error).message).to.include('not a directory');
    });
  });
});
