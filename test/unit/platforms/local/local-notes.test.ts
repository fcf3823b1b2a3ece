/**
 * LocalPlatform.addNote: one private JSON file per note key, named in channel order,
 * under the incident's or task's notes/ folder.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { LocalPlatform } from '../../../../src/platforms/local/local-platform.js';
import { noteFileName } from '../../../../src/platforms/local/local-notes.js';
import type { NewNote } from '../../../../src/platforms/platform.js';
import { functionError } from '../../../support/platform-checks.js';

function note(over: Partial<NewNote> = {}): NewNote {
  return {
    incidentId: 2103,
    text: 'Seeing it on web-3 too',
    author: { id: 'U1', name: 'Alice Analyst', email: 'alice@example.com' },
    created: new Date('2026-12-07T10:00:00.000Z'),
    source: 'slack',
    slack: { channel_id: 'C1', ts: '1796637600.000100', permalink: 'https://emulated.slack.com/archives/C1/p1796637600000100' },
    key: 'C1:1796637600.000100',
    ...over,
  };
}

/** The visible files of a folder, in name order (what a reader lists). */
async function visible(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
}

describe('LocalPlatform notes', function () {
  let base: string;
  let root: string;
  let platform: LocalPlatform;
  const notesDir = () => join(root, 'incidents/2103/notes');

  beforeEach(async function () {
    base = await mkdtemp(join(tmpdir(), 'local-notes-'));
    root = join(base, 'root');
    await mkdir(join(root, 'incidents/2103/tasks/12'), { recursive: true });
    platform = new LocalPlatform(root);
  });

  afterEach(async function () {
    await rm(base, { recursive: true, force: true });
  });

  it('writes one JSON object per note with the fields DESIGN.md gives, private, with no temporary file left', async function () {
    const added = await platform.addNote(note({ slack: { channel_id: 'C1', ts: '1796637600.000100', thread_ts: '1796637500.000001' } }));
    expect(added.created).to.equal(true);
    expect(await visible(notesDir())).to.deep.equal([added.id]);
    const body = JSON.parse(await readFile(join(notesDir(), added.id), 'utf8'));
    expect(body).to.deep.equal({
      text: 'Seeing it on web-3 too',
      author: { id: 'U1', name: 'Alice Analyst', email: 'alice@example.com' },
      created: '2026-12-07T10:00:00.000Z',
      source: 'slack',
      slack: { channel_id: 'C1', ts: '1796637600.000100', thread_ts: '1796637500.000001', permalink: null },
      key: 'C1:1796637600.000100',
    });
    expect((await stat(join(notesDir(), added.id))).mode & 0o777).to.equal(0o600);
    expect((await stat(notesDir())).mode & 0o777).to.equal(0o700);
    expect((await stat(join(notesDir(), '.keys'))).mode & 0o777).to.equal(0o700);
    expect((await readdir(notesDir())).filter((n) => n.startsWith('.partial'))).to.deep.equal([]);
    expect((await readdir(join(notesDir(), '.keys'))).filter((n) => n.startsWith('.partial'))).to.deep.equal([]);
  });

  it('adds nothing for a key it holds, even when the retry brings another time and text', async function () {
    const first = await platform.addNote(note());
    const again = await platform.addNote(note({ created: new Date('2026-12-07T11:00:00Z'), text: 'changed' }));
    expect(again).to.deep.equal({ id: first.id, created: false });
    expect(await visible(notesDir())).to.deep.equal([first.id]);
    expect(JSON.parse(await readFile(join(notesDir(), first.id), 'utf8')).text).to.equal('Seeing it on web-3 too');
  });

  it('names notes so that name order is the order they happened in, whatever order they were added in', async function () {
    const at = (s: number) => new Date(Date.UTC(2026, 11, 7, 10, 0, s));
    await platform.addNote(note({ key: 'C1:3', created: at(30), text: 'third' }));
    await platform.addNote(note({ key: 'C1:1', created: at(5), text: 'first' }));
    await platform.addNote(note({ key: 'C1:2', created: at(9), text: 'second' }));
    // Same millisecond: the key (channel, then ts) decides.
    await platform.addNote(note({ key: 'C1:1796637630.000200', created: at(31), text: 'fifth' }));
    await platform.addNote(note({ key: 'C1:1796637630.000100', created: at(31), text: 'fourth' }));
    const texts = [];
    for (const name of await visible(notesDir())) texts.push(JSON.parse(await readFile(join(notesDir(), name), 'utf8')).text);
    expect(texts).to.deep.equal(['first', 'second', 'third', 'fourth', 'fifth']);
  });

  it("puts a task's notes under the task", async function () {
    const added = await platform.addNote(note({ taskId: 12 }));
    expect(await visible(join(root, 'incidents/2103/tasks/12/notes'))).to.deep.equal([added.id]);
    await stat(notesDir()).then(
      () => expect.fail('the incident got a notes folder'),
      (err: NodeJS.ErrnoException) => expect(err.code).to.equal('ENOENT'),
    );
  });

  it('refuses an unknown incident or task, and a note without a key, saying what to fix', async function () {
    await functionError(platform.addNote(note({ incidentId: 9999 })), 'not_found', 'Incident 9999 not found');
    await functionError(platform.addNote(note({ taskId: 77 })), 'not_found', 'Task 77 of incident 2103 not found');
    await functionError(platform.addNote(note({ key: ' ' })), 'invalid_note', /key must be a non-empty string/);
    await functionError(platform.addNote(note({ incidentId: 0 })), 'invalid_id', 'incident_id must be a positive integer');
    await functionError(platform.addNote(note({ created: new Date('nope') })), 'invalid_note', 'created must be a valid Date');
  });

  it('writes one file when two writers add the same key at once with different times', async function () {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => platform.addNote(note({ created: new Date(Date.UTC(2026, 11, 7, 10, 0, i)) }))),
    );
    expect(new Set(results.map((r) => r.id)).size).to.equal(1);
    expect(await visible(notesDir())).to.have.length(1);
  });

  it('completes a note whose writer stopped after claiming its key', async function () {
    // The state a crash between claim and rename leaves: the claim, no note.
    const name = noteFileName(note());
    await mkdir(join(notesDir(), '.keys'), { recursive: true });
    const hash = createHash('sha256').update(note().key).digest('hex');
    await writeFile(join(notesDir(), '.keys', hash), `${name}\n`);
    const added = await platform.addNote(note({ created: new Date('2026-12-07T12:00:00Z') }));
    expect(added).to.deep.equal({ id: name, created: true });
    expect(await visible(notesDir())).to.deep.equal([name]);
  });

  it('refuses a notes folder that is a symlink out of the root', async function () {
    const outside = join(base, 'outside');
    await mkdir(outside, { mode: 0o755 });
    await chmod(outside, 0o755);
    await symlink(outside, notesDir());
    await functionError(platform.addNote(note()), 'forbidden_path', /outside the local platform directory/);
    expect(await readdir(outside)).to.deep.equal([]);
    expect((await stat(outside)).mode & 0o777).to.equal(0o755);
  });
});
