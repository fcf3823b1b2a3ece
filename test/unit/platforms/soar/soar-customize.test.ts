/**
 * planSoarImport / applySoarImport against the SOAR emulator: the packaged fn_slack
 * function definitions plus a message destination and a data table (inline, in the
 * shapes of customizations/fn_slack/message_destinations and data_tables), imported
 * twice: the second run changes nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { WorkerError } from '../../../../src/core/runtime/errors.js';
import { SoarClient } from '../../../../src/platforms/soar/soar-client.js';
import { applySoarImport, planSoarImport, type SoarImportItem } from '../../../../src/platforms/soar/soar-customize.js';
import { REPO_ROOT } from '../../../support/harness.js';
import { ALL_PERMISSIONS, SoarEmulator } from '../../../support/soar-emulator.js';

const FUNCTIONS_DIR = path.join(REPO_ROOT, 'customizations', 'fn_slack', 'functions');

function functionItems(): SoarImportItem[] {
  return fs
    .readdirSync(FUNCTIONS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const definition = JSON.parse(fs.readFileSync(path.join(FUNCTIONS_DIR, f), 'utf8')) as Record<string, unknown>;
      return { kind: 'function' as const, name: String(definition.name), definition };
    });
}

const DESTINATION: SoarImportItem = {
  kind: 'message_destination',
  name: 'fn_slack',
  definition: {
    programmatic_name: 'fn_slack',
    name: 'fn_slack',
    destination_type: 0,
    expect_ack: true,
    description: 'Invocations of the fn_slack functions, consumed by soar-slack-worker',
  },
};

const TABLE: SoarImportItem = {
  kind: 'data_table',
  name: 'slack_conversations_db',
  definition: {
    type_name: 'slack_conversations_db',
    display_name: 'Slack Conversations',
    description: 'Which Slack channel belongs to which incident or task',
    fields: [
      { name: 'slack_db_time', text: 'Time', input_type: 'datetimepicker' },
      { name: 'slack_db_res_id', text: 'Incident/Task', input_type: 'text', required: true },
      { name: 'slack_db_channel', text: 'Channel', input_type: 'text' },
      { name: 'slack_db_channel_type', text: 'Channel type', input_type: 'text' },
      { name: 'slack_db_permalink', text: 'Link', input_type: 'textarea' },
    ],
  },
};

describe('SOAR customize (planSoarImport / applySoarImport)', function () {
  this.timeout(20_000);
  let soar: SoarEmulator;
  let client: SoarClient;
  let items: SoarImportItem[];

  beforeEach(async () => {
    soar = await SoarEmulator.start();
    client = new SoarClient({ baseUrl: soar.baseUrl, orgId: soar.orgId, apiKeyId: soar.apiKeyId, apiKeySecret: soar.apiKeySecret });
    items = [...functionItems(), DESTINATION, TABLE];
  });
  afterEach(async () => {
    client.close();
    await soar.close();
  });

  const item = (name: string): SoarImportItem => items.find((i) => i.name === name)!;
  const writes = () => soar.requests.filter((r) => r.method !== 'GET' && !r.path.endsWith('/query_paged'));

  it('plans create for everything on an empty org, creates it, then finds it unchanged (twice = idempotent)', async () => {
    expect(items.map((i) => i.name)).to.deep.equal([
      'slack_add_bookmark',
      'slack_add_reaction',
      'slack_archive_channel',
      'slack_ask',
      'slack_get_conversation',
      'slack_invite_users',
      'slack_lookup_user',
      'slack_pin_message',
      'slack_post_attachment',
      'slack_post_message',
      'slack_remove_users',
      'slack_rename_channel',
      'slack_send_direct_message',
      'slack_set_channel_topic',
      'slack_update_message',
      'fn_slack',
      'slack_conversations_db',
    ]);
    for (const item of items) expect(await planSoarImport(client, item), item.name).to.equal('create');
    expect(writes()).to.have.length(0); // planning changes nothing

    for (const item of items) expect(await applySoarImport(client, item), item.name).to.equal('create');
    const firstWrites = writes().length;
    expect(firstWrites).to.be.greaterThan(0);

    for (const item of items) expect(await planSoarImport(client, item), item.name).to.equal('unchanged');
    for (const item of items) expect(await applySoarImport(client, item), item.name).to.equal('unchanged');
    expect(writes()).to.have.length(firstWrites); // the second run wrote nothing

    expect(soar.functions.size).to.equal(15);
    expect(soar.messageDestinations.size).to.equal(1);
    expect(soar.dataTables.size).to.equal(1);
  });

  it('creates shared input fields once and lists them on each function in schema order', async () => {
    for (const item of items) await applySoarImport(client, item);
    const fields = soar.functionFields;
    const uuid = (name: string) => fields.get(name)!.uuid as string;
    expect(fields.get('incident_id')).to.deep.include({ input_type: 'number', required: 'always', type_id: 11 });
    expect(fields.get('slack_is_channel_private')!.input_type).to.equal('boolean');
    expect(fields.get('slack_channel')!.input_type).to.equal('text');
    expect(soar.requestsTo(/\/types\/__function\/fields$/, 'POST').length).to.equal(fields.size);

    const post = [...soar.functions.values()].find((f) => f.name === 'slack_post_message')!;
    const postItem = item('slack_post_message');
    const schema = postItem.definition.input_schema as { properties: object };
    expect(post).to.deep.include({ display_name: postItem.definition.display_name, destination_handle: 'fn_slack' });
    expect(post.description).to.deep.equal({ format: 'text', content: postItem.definition.description });
    expect(post.view_items.map((v: { content: string }) => v.content)).to.deep.equal(Object.keys(schema.properties).map(uuid));
    expect(post.view_items[0]).to.deep.include({ element: 'field_uuid', field_type: '__function' });
  });

  it('updates a function whose definition changed, then finds it unchanged', async () => {
    for (const item of items) await applySoarImport(client, item);
    const archive = item('slack_archive_channel');
    const changed: SoarImportItem = { ...archive, definition: { ...archive.definition, display_name: 'Slack: Archive (v2)' } };
    expect(await planSoarImport(client, changed)).to.equal('update');
    expect(await applySoarImport(client, changed)).to.equal('update');
    expect([...soar.functions.values()].find((f) => f.name === changed.name)!.display_name).to.equal('Slack: Archive (v2)');
    expect(soar.functions.size).to.equal(15);
    expect(await planSoarImport(client, changed)).to.equal('unchanged');
  });

  it("adds the importing API key to an existing destination's api_keys, keeping the others", async () => {
    const created = await client.postJson<{ id: number }>(
      '/message_destinations',
      { programmatic_name: 'fn_slack', name: 'fn_slack', destination_type: 0, expect_ack: true, description: DESTINATION.definition.description, api_keys: [7], users: [] },
      { what: 'setup' },
    );
    expect(await planSoarImport(client, DESTINATION)).to.equal('update');
    expect(await applySoarImport(client, DESTINATION)).to.equal('update');
    const handle = soar.keys.get(soar.apiKeyId)!.handle;
    expect(soar.messageDestinations.get(created.id)!.api_keys).to.deep.equal([7, handle]);
    expect(await planSoarImport(client, DESTINATION)).to.equal('unchanged');
  });

  it('adds a missing data table field to an existing table', async () => {
    const older = { ...TABLE, definition: { ...TABLE.definition, fields: (TABLE.definition.fields as object[]).slice(0, 3) } };
    await applySoarImport(client, older);
    expect(await planSoarImport(client, TABLE)).to.equal('update');
    expect(await applySoarImport(client, TABLE)).to.equal('update');
    const table = soar.dataTables.get('slack_conversations_db')!;
    expect(Object.keys(table.fields)).to.have.members(['slack_db_time', 'slack_db_res_id', 'slack_db_channel', 'slack_db_channel_type', 'slack_db_permalink']);
    expect(table).to.deep.include({ type_id: 8, parent_types: ['incident'], display_name: 'Slack Conversations' });
    expect(table.fields.slack_db_res_id.required).to.equal('always');
    expect(await planSoarImport(client, TABLE)).to.equal('unchanged');
  });

  it('names the permission an API key lacks', async () => {
    const key = soar.addKey({ permissions: ALL_PERMISSIONS.filter((p) => p !== 'create_function') });
    const weak = new SoarClient({ baseUrl: soar.baseUrl, orgId: soar.orgId, apiKeyId: key.id, apiKeySecret: key.secret });
    try {
      await applySoarImport(weak, item('slack_archive_channel'));
      expect.fail('expected a rejection');
    } catch (err) {
      expect(err).to.be.instanceOf(WorkerError);
      expect((err as WorkerError).code).to.equal('soar_forbidden');
      expect((err as Error).message).to.include('the function slack_archive_channel: the API key needs the permission create_function');
    } finally {
      weak.close();
    }
  });

  it('refuses a malformed definition with a clear message', async () => {
    const bad: SoarImportItem = { kind: 'function', name: 'x', definition: { name: 'x', display_name: 'X', destination: 'fn_slack' } };
    try {
      await planSoarImport(client, bad);
      expect.fail('expected a rejection');
    } catch (err) {
      expect((err as WorkerError).code).to.equal('invalid_customization');
      expect((err as Error).message).to.equal('The function definition "x" needs "input_schema" with "properties"');
    }
  });
});
