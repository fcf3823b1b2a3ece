/**
 * The local platform's incidents: incident.json read and written atomically with a
 * private mode, changes validated, concurrent changes both applied, users by email.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { LocalPlatform } from '../../../../src/platforms/local/local-platform.js';
import type { PlatformUser } from '../../../../src/platforms/platform.js';
import { functionError } from '../../../support/platform-checks.js';

describe('LocalPlatform incidents', function () {
  let base: string;
  let root: string;
  let platform: LocalPlatform;
  const alice: PlatformUser = { id: 'alice@example.com', email: 'alice@example.com', name: 'alice@example.com' };
  const bob: PlatformUser = { id: 'bob@example.com', email: 'bob@example.com', name: 'bob@example.com' };

  const incidentFile = (id: number) => join(root, 'incidents', String(id), 'incident.json');
  const writeIncident = async (id: number, record: Record<string, unknown>) => {
    await mkdir(join(root, 'incidents', String(id)), { recursive: true });
    await writeFile(incidentFile(id), JSON.stringify(record));
  };

  beforeEach(async function () {
    base = await mkdtemp(join(tmpdir(), 'local-incidents-'));
    root = join(base, 'root');
    await writeIncident(2103, {
      id: 2103,
      name: 'Phishing <!here> wave',
      description: 'Mails from a lookalike domain',
      severity: 'Medium',
      status: 'Active',
      owner: null,
    });
    await mkdir(join(root, 'incidents', '2104'), { recursive: true });
    platform = new LocalPlatform(root);
  });

  afterEach(async function () {
    await rm(base, { recursive: true, force: true });
  });

  it('reads incident.json as the summary, owner as a user by email', async function () {
    await writeIncident(2105, { name: 'Owned', severity: 'High', status: 'Active', owner: 'carol@example.com' });
    const inc = await platform.getIncident(2103);
    expect(inc).to.deep.equal({
      id: 2103,
      name: 'Phishing <!here> wave',
      description: 'Mails from a lookalike domain',
      severity: 'Medium',
      status: 'Active',
      owner: null,
      resolution: null,
      resolution_summary: null,
    });
    const owned = await platform.getIncident(2105);
    expect(owned.owner).to.deep.equal({ id: 'carol@example.com', email: 'carol@example.com', name: 'carol@example.com' });
  });

  it('treats an incident folder without incident.json as an Active incident with nothing set', async function () {
    const inc = await platform.getIncident(2104);
    expect(inc).to.include({ id: 2104, name: 'Incident 2104', status: 'Active', severity: null, owner: null });
  });

  it('says not_found for an unknown incident and invalid_id for a bad id', async function () {
    await functionError(platform.getIncident(9999), 'not_found', 'Incident 9999');
    await functionError(platform.getIncident(-1), 'invalid_id', 'incident_id');
    await functionError(platform.updateIncident(9999, { severity: 'High' }, alice), 'not_found');
  });

  it('refuses a malformed incident.json with the file and the field to fix', async function () {
    await writeIncident(2106, { severity: 'Critical' });
    await functionError(platform.getIncident(2106), 'invalid_incident', /"severity" must be one of Low, Medium, High/);
    await mkdir(join(root, 'incidents', '2107'), { recursive: true });
    await writeFile(incidentFile(2107), '{not json');
    await functionError(platform.getIncident(2107), 'invalid_incident', 'not valid JSON');
  });

  it('refuses an incident.json that is a symlink (it could point outside the root)', async function () {
    await writeFile(join(base, 'elsewhere.json'), JSON.stringify({ name: 'outside' }));
    await mkdir(join(root, 'incidents', '2108'), { recursive: true });
    await symlink(join(base, 'elsewhere.json'), incidentFile(2108));
    await functionError(platform.getIncident(2108), 'forbidden_path', 'symlink');
  });

  it('assigns, re-rates and closes, writing a private file atomically (no temp file left)', async function () {
    let inc = await platform.updateIncident(2103, { owner: alice }, alice);
    expect(inc.owner?.email).to.equal('alice@example.com');
    inc = await platform.updateIncident(2103, { severity: 'High' }, alice);
    expect(inc.severity).to.equal('High');
    inc = await platform.updateIncident(2103, { status: 'Closed', resolution: 'Duplicate', resolution_summary: 'duplicate of 2099' }, bob);
    expect(inc).to.include({ status: 'Closed', resolution: 'Duplicate', resolution_summary: 'duplicate of 2099', severity: 'High' });
    const stored = JSON.parse(await readFile(incidentFile(2103), 'utf8'));
    expect(stored).to.include({
      owner: 'alice@example.com',
      severity: 'High',
      status: 'Closed',
      resolution: 'Duplicate',
      name: 'Phishing <!here> wave',
    });
    expect((await stat(incidentFile(2103))).mode & 0o777).to.equal(0o600);
    expect(await readdir(join(root, 'incidents', '2103'))).to.deep.equal(['incident.json']);
    expect(await platform.getIncident(2103)).to.deep.equal(inc);
  });

  it('creates incident.json for a folder that had none', async function () {
    await platform.updateIncident(2104, { severity: 'Low' }, alice);
    expect(JSON.parse(await readFile(incidentFile(2104), 'utf8'))).to.include({ id: 2104, severity: 'Low', status: 'Active' });
  });

  it('refuses bad changes before writing anything', async function () {
    const before = await readFile(incidentFile(2103), 'utf8');
    await functionError(platform.updateIncident(2103, { status: 'Closed' }, alice), 'invalid_change', 'needs a resolution');
    await functionError(platform.updateIncident(2103, { severity: 'Critical' as never }, alice), 'invalid_change', 'Low, Medium, High');
    await functionError(platform.updateIncident(2103, {}, alice), 'invalid_change', 'must change something');
    expect(await readFile(incidentFile(2103), 'utf8')).to.equal(before);
  });

  it('applies two changes made at once, both of them', async function () {
    const [a, b] = await Promise.all([
      platform.updateIncident(2103, { owner: bob }, bob),
      platform.updateIncident(2103, { severity: 'Low' }, alice),
    ]);
    const final = await platform.getIncident(2103);
    expect(final.owner?.email).to.equal('bob@example.com');
    expect(final.severity).to.equal('Low');
    // The later of the two saw the earlier one's change.
    expect([a.severity, b.owner?.email]).to.satisfy(
      ([sev, owner]: [string | null, string | undefined]) => sev === 'Low' || owner === 'bob@example.com',
    );
  });

  it('applies changes made at once by separate processes sharing the folder: no update lost', async function () {
    this.timeout(60_000);
    const rounds = 12;
    for (let r = 1; r <= rounds; r++) await mkdir(join(root, 'incidents', String(3000 + r)), { recursive: true });
    const moduleUrl = pathToFileURL(fileURLToPath(new URL('../../../../src/platforms/local/local-platform.ts', import.meta.url))).href;
    const changes = {
      owner: `{ owner: { id: 'carol@example.com', email: 'carol@example.com', name: 'carol' } }`,
      severity: `{ severity: 'High' }`,
      resolution: `{ resolution: 'Duplicate' }`,
      summary: `{ resolution_summary: 'seen before' }`,
    };
    // Every process changes incident 3000+r at the same moment (busy for the last 10 ms, for
    // precision), each its own field: a read-change-write that overlaps another loses that
    // one's field. The moment is sent once all of them have started (start-up takes seconds).
    const code = (change: string) => `
      const { LocalPlatform } = await import(${JSON.stringify(moduleUrl)});
      const platform = new LocalPlatform(${JSON.stringify(root)});
      const actor = { id: 'x@example.com', email: 'x@example.com', name: 'x' };
      process.stdout.write('ready\\n');
      const startAt = await new Promise((r) => process.stdin.once('data', (d) => r(Number(String(d)))));
      for (let r = 1; r <= ${rounds}; r++) {
        const at = startAt + r * 100;
        while (Date.now() < at - 10) await new Promise((r) => setTimeout(r, 5));
        while (Date.now() < at) {}
        await platform.updateIncident(3000 + r, ${change}, actor);
      }
      process.exit(0);
    `;
    const children = Object.values(changes).map((change) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code(change)], { stdio: ['pipe', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const ready = new Promise<void>((res, rej) => {
        child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && res());
        child.on('error', rej);
        child.on('close', (status) => rej(new Error(`child exited ${status} before it was ready: ${err}`)));
      });
      const done = new Promise<void>((res, rej) => {
        child.on('error', rej);
        child.on('close', (status) => (status === 0 ? res() : rej(new Error(`child exited ${status}: ${err}`))));
      });
      return { child, ready, done };
    });
    await Promise.all(children.map((c) => c.ready));
    const startAt = Date.now() + 200;
    for (const c of children) c.child.stdin.write(`${startAt}\n`);
    await Promise.all(children.map((c) => c.done));
    const lost: string[] = [];
    for (let r = 1; r <= rounds; r++) {
      const inc = await platform.getIncident(3000 + r);
      const got = { owner: inc.owner?.email, severity: inc.severity, resolution: inc.resolution, summary: inc.resolution_summary };
      const want = { owner: 'carol@example.com', severity: 'High', resolution: 'Duplicate', summary: 'seen before' };
      for (const k of Object.keys(want) as (keyof typeof want)[]) if (got[k] !== want[k]) lost.push(`${3000 + r}.${k}`);
      expect(await readdir(join(root, 'incidents', String(3000 + r)))).to.deep.equal(['incident.json']); // no lock or temp file left
    }
    expect(lost).to.deep.equal([]);
  });

  it('finds anyone with an email as a user (lower-cased), and nobody without one', async function () {
    expect(await platform.findUserByEmail('Alice@Example.com')).to.deep.equal(alice);
    expect(await platform.findUserByEmail('')).to.equal(undefined);
    expect(await platform.findUserByEmail('not an email')).to.equal(undefined);
  });
});
