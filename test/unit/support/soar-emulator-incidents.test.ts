/**
 * The SOAR emulator's incidents as SOAR answers them: IncidentDTO with `vers`, PATCH
 * with a version (stale → 409), an old_value that no longer holds (→ success false with
 * field_failures), closing without a resolution (→ 400), the org's users and the
 * incident type's field values.
 */
import { expect } from 'chai';
import { SoarClient } from '../../../src/platforms/soar/soar-client.js';
import { rejection } from '../../support/platform-checks.js';
import { SoarEmulator } from '../../support/soar-emulator.js';

type Json = Record<string, any>;

describe('SOAR emulator: incidents, PATCH, users, field values', function () {
  let soar: SoarEmulator;
  let client: SoarClient;

  beforeEach(async () => {
    soar = await SoarEmulator.start();
    soar.addIncident(2103, 'Phishing', { severity_code: 5 });
    client = new SoarClient({
      baseUrl: soar.baseUrl,
      orgId: soar.orgId,
      apiKeyId: soar.apiKeyId,
      apiKeySecret: soar.apiKeySecret,
      retries: 0,
    });
  });

  afterEach(async () => {
    client.close();
    await soar.close();
  });

  const patch = (body: Json) => client.patchJson<Json>('/incidents/2103', body, { what: 'incident 2103' });
  const severity = (from: number | null, to: number) => ({ field: 'severity_code', old_value: { id: from }, new_value: { id: to } });

  it('gives the IncidentDTO with its version, and bumps the version on each change', async () => {
    const dto = await client.getJson<Json>('/incidents/2103', { what: 'incident 2103' });
    expect(dto).to.deep.include({ id: 2103, name: 'Phishing', severity_code: 5, plan_status: 'A', owner_id: null, vers: 1 });
    expect(await patch({ version: 1, changes: [severity(5, 6)] })).to.include({ success: true });
    expect(soar.incidents.get(2103)).to.include({ severity_code: 6, vers: 2 });
  });

  it('answers 409 to a stale version and success false to an old value that no longer holds', async () => {
    await patch({ version: 1, changes: [severity(5, 6)] });
    const err = await rejection(patch({ version: 1, changes: [severity(6, 4)] }));
    expect(err.details?.status).to.equal(409);
    const answer = await patch({ version: 2, changes: [severity(5, 4)] });
    expect(answer.success).to.equal(false);
    expect(answer.field_failures[0].field.name).to.equal('severity_code');
    expect(soar.incidents.get(2103)).to.include({ severity_code: 6, vers: 2 });
  });

  it('refuses closing without a resolution, unknown values and inactive owners (400)', async () => {
    const gone = soar.addUser({ email: 'gone@example.com', status: 'D' });
    for (const body of [
      { version: 1, changes: [{ field: 'plan_status', old_value: { text: 'A' }, new_value: { text: 'C' } }] },
      { version: 1, changes: [severity(5, 99)] },
      { version: 1, changes: [{ field: 'owner_id', old_value: { id: null }, new_value: { id: gone } }] },
    ]) {
      expect((await rejection(patch(body))).details?.status).to.equal(400);
    }
    expect(soar.incidents.get(2103)).to.include({ plan_status: 'A', severity_code: 5, owner_id: null, vers: 1 });
  });

  it("lists the org's users and the incident type's field values", async () => {
    const id = soar.addUser({ email: 'alice@example.com', fname: 'Alice', lname: 'Analyst' });
    expect(await client.getJson('/users', { what: 'users' })).to.deep.equal([
      { id, fname: 'Alice', lname: 'Analyst', email: 'alice@example.com', status: 'A' },
    ]);
    const field = await client.getJson<Json>('/types/incident/fields/resolution_id', { what: 'resolution_id' });
    expect(field.values.map((v: Json) => [v.value, v.label])).to.deep.equal([
      [7, 'Unresolved'],
      [8, 'Duplicate'],
      [9, 'Not an Issue'],
      [10, 'Resolved'],
    ]);
    expect((await rejection(client.getJson('/types/incident/fields/nope', { what: 'nope' }))).code).to.equal('not_found');
  });
});
