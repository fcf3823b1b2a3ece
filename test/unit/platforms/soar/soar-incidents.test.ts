/**
 * SoarPlatform's incidents against the SOAR emulator: look-up with labels from the
 * incident type's field values, PATCH with the version (a stale one retried with the
 * fresh version), two changes at once, users matched by email and cached.
 */
import { expect } from 'chai';
import { SoarClient } from '../../../../src/platforms/soar/soar-client.js';
import { SoarIncidents } from '../../../../src/platforms/soar/soar-incidents.js';
import { SoarPlatform } from '../../../../src/platforms/soar/soar-platform.js';
import type { PlatformUser } from '../../../../src/platforms/platform.js';
import { functionError } from '../../../support/platform-checks.js';
import { SoarEmulator } from '../../../support/soar-emulator.js';

describe('SoarPlatform incidents', function () {
  this.timeout(20_000);
  let soar: SoarEmulator;
  let client: SoarClient;
  let platform: SoarPlatform;
  let aliceId: number;
  let bobId: number;

  const user = async (email: string): Promise<PlatformUser> => {
    const found = await platform.findUserByEmail(email);
    if (!found) throw new Error(`no user ${email}`);
    return found;
  };

  beforeEach(async () => {
    soar = await SoarEmulator.start();
    aliceId = soar.addUser({ email: 'alice@example.com', fname: 'Alice', lname: 'Analyst' });
    bobId = soar.addUser({ email: 'Bob@Example.com', fname: 'Bob', lname: 'Builder' });
    soar.addUser({ email: 'gone@example.com', fname: 'Gone', status: 'D' });
    soar.addIncident(2103, 'Phishing <!here> wave', { severity_code: 5, description: '<p>Mails</p>' });
    client = new SoarClient({
      baseUrl: soar.baseUrl,
      orgId: soar.orgId,
      apiKeyId: soar.apiKeyId,
      apiKeySecret: soar.apiKeySecret,
      retryBaseMs: 10,
      retryMaxMs: 20,
    });
    platform = new SoarPlatform(client);
  });

  afterEach(async () => {
    client.close();
    await soar.close();
  });

  it('reads the incident with severity, status and owner as labels and a user', async function () {
    soar.incidents.get(2103)!.owner_id = aliceId;
    const inc = await platform.getIncident(2103);
    expect(inc).to.deep.equal({
      id: 2103,
      name: 'Phishing <!here> wave',
      description: '<p>Mails</p>',
      severity: 'Medium',
      status: 'Active',
      owner: { id: aliceId, email: 'alice@example.com', name: 'Alice Analyst' },
      resolution: null,
      resolution_summary: null,
    });
    expect(soar.requestsTo(/\/types\/incident\/fields\/severity_code$/)).to.have.length(1);
  });

  it('says not_found for an unknown incident and invalid_id for a bad id', async function () {
    await functionError(platform.getIncident(9999), 'not_found', 'Incident 9999');
    await functionError(platform.getIncident(0), 'invalid_id');
  });

  it('assigns, re-rates and closes with PATCHes carrying the version and the ids SOAR gives', async function () {
    const alice = await user('alice@example.com');
    let inc = await platform.updateIncident(2103, { owner: alice }, alice);
    expect(inc.owner).to.deep.equal(alice);
    inc = await platform.updateIncident(2103, { severity: 'High' }, alice);
    expect(inc.severity).to.equal('High');
    inc = await platform.updateIncident(
      2103,
      { status: 'Closed', resolution: 'Duplicate', resolution_summary: 'duplicate of 2099' },
      alice,
    );
    expect(inc).to.include({ status: 'Closed', resolution: 'Duplicate', resolution_summary: 'duplicate of 2099' });
    const stored = soar.incidents.get(2103)!;
    expect(stored).to.include({
      owner_id: aliceId,
      severity_code: 6,
      plan_status: 'C',
      resolution_id: 8,
      resolution_summary: 'duplicate of 2099',
      vers: 4,
    });
    expect(soar.requestsTo(/\/incidents\/2103$/, 'PATCH').map((r) => r.status)).to.deep.equal([200, 200, 200]);
  });

  it('sends nothing when the incident is already as asked', async function () {
    const inc = await platform.updateIncident(2103, { severity: 'Medium' }, await user('alice@example.com'));
    expect(inc.severity).to.equal('Medium');
    expect(soar.requestsTo(/\/incidents\/2103$/, 'PATCH')).to.have.length(0);
  });

  it('retries a stale version (409) with the fresh one, keeping the other change', async function () {
    soar.interfereBeforeNextPatch(2103, (inc) => {
      inc.owner_id = bobId;
    });
    const inc = await platform.updateIncident(2103, { severity: 'Low' }, await user('alice@example.com'));
    expect(inc.severity).to.equal('Low');
    expect(inc.owner?.email).to.equal('Bob@Example.com');
    expect(soar.requestsTo(/\/incidents\/2103$/, 'PATCH').map((r) => r.status)).to.deep.equal([409, 200]);
  });

  it('applies two changes made at once, both of them', async function () {
    const [alice, bob] = [await user('alice@example.com'), await user('bob@example.com')];
    await Promise.all([platform.updateIncident(2103, { owner: bob }, bob), platform.updateIncident(2103, { severity: 'High' }, alice)]);
    const final = await platform.getIncident(2103);
    expect(final.owner?.id).to.equal(bobId);
    expect(final.severity).to.equal('High');
  });

  it('gives up with soar_conflict when the incident keeps changing', async function () {
    const busy = new SoarPlatform(client);
    const alice = await user('alice@example.com');
    // Every PATCH meets a fresh change by someone else.
    const keepInterfering = () =>
      soar.interfereBeforeNextPatch(2103, (inc) => {
        inc.name = `${inc.name}!`;
        setImmediate(keepInterfering);
      });
    keepInterfering();
    await functionError(busy.updateIncident(2103, { severity: 'Low' }, alice), 'soar_conflict', 'changed meanwhile');
    expect(soar.incidents.get(2103)!.severity_code).to.equal(5);
  });

  it('refuses closing without a resolution, and an owner who is not a SOAR user', async function () {
    const alice = await user('alice@example.com');
    await functionError(platform.updateIncident(2103, { status: 'Closed' }, alice), 'invalid_change', 'resolution');
    expect(soar.requestsTo(/\/incidents\/2103$/, 'PATCH')).to.have.length(0);
    await functionError(
      platform.updateIncident(2103, { owner: { id: 'x@example.com', email: 'x@example.com', name: 'x' } }, alice),
      'invalid_change',
      'not a SOAR user',
    );
  });

  it('finds users by email case-insensitively, not disabled ones, and caches the list', async function () {
    expect(await platform.findUserByEmail('ALICE@example.com')).to.deep.equal({
      id: aliceId,
      email: 'alice@example.com',
      name: 'Alice Analyst',
    });
    expect((await platform.findUserByEmail('bob@example.com'))?.id).to.equal(bobId);
    expect(await platform.findUserByEmail('gone@example.com')).to.equal(undefined);
    expect(await platform.findUserByEmail('nobody@example.com')).to.equal(undefined);
    expect(soar.requestsTo(/\/users$/, 'GET')).to.have.length(1);
  });

  it('finds a user added since, once the list is older than the refresh interval', async function () {
    let now = 0;
    const incidents = new SoarIncidents(client, { now: () => now, userRefreshMs: 60_000 });
    expect(await incidents.findUser('new@example.com')).to.equal(undefined);
    soar.addUser({ email: 'new@example.com', fname: 'New' });
    now = 30_000;
    expect(await incidents.findUser('new@example.com')).to.equal(undefined);
    now = 61_000;
    expect((await incidents.findUser('new@example.com'))?.name).to.equal('New');
    expect(soar.requestsTo(/\/users$/, 'GET')).to.have.length(2);
  });
});
