/**
 * SoarTarget (the SOAR target of `worker customize`) against the SOAR emulator, with the
 * real fn_slack customizations: plans only read, applying twice leaves everything
 * unchanged, workflows and rules are reported as examples, and every SOAR failure is a
 * TargetError with exit code 3 (2 for a missing [soar]) that names what to fix and never
 * the secret.
 */
import { expect } from 'chai';
import { parseConfigText, type LoadedConfig } from '../../../../src/core/config.js';
import { loadCustomizations, type CustomizationItem } from '../../../../src/core/commands/customizations.js';
import { CUSTOMIZE_EXIT, TargetError } from '../../../../src/core/commands/customize.js';
import { SOAR_EXAMPLE_DETAIL, SoarTarget } from '../../../../src/platforms/soar/soar-target.js';
import { builtinPlugins } from '../../../../src/functions/index.js';
import { SoarEmulator } from '../../../support/soar-emulator.js';

const ITEMS: CustomizationItem[] = loadCustomizations(builtinPlugins.find((p) => p.packageName === 'fn_slack')!).items;
const IMPORTED = ITEMS.filter((i) => i.kind === 'function' || i.kind === 'message_destination' || i.kind === 'data_table');

/** fn_slack's functions, sorted by name. */
const FN_SLACK_FUNCTIONS = [
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
];

describe('SoarTarget (worker customize into SOAR)', function () {
  this.timeout(30_000);
  let soar: SoarEmulator;
  const open: SoarTarget[] = [];

  beforeEach(async () => {
    soar = await SoarEmulator.start();
  });
  afterEach(async () => {
    for (const t of open.splice(0)) await t.close();
    await soar.close();
  });

  function config(soarKeys: Record<string, string | number> = {}, secret = soar.apiKeySecret): LoadedConfig {
    const keys = { base_url: soar.baseUrl, org_id: soar.orgId, api_key_id: soar.apiKeyId, api_key_secret: secret, retries: 0, ...soarKeys };
    const text = `[worker]\nplatform = soar\n\n[soar]\n${Object.entries(keys)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n')}\n`;
    return parseConfigText(text, 'test.config', {});
  }

  async function connect(cfg: LoadedConfig = config()): Promise<SoarTarget> {
    const target = await SoarTarget.connect(cfg);
    open.push(target);
    return target;
  }

  async function failure(fn: () => Promise<unknown>): Promise<TargetError> {
    try {
      await fn();
    } catch (err) {
      expect(err).to.be.instanceOf(TargetError);
      return err as TargetError;
    }
    throw new Error('expected a TargetError');
  }

  it('plans with GETs only, creates functions, the destination and the data table, then finds them unchanged', async () => {
    expect(IMPORTED.map((i) => `${i.kind} ${i.name}`)).to.deep.equal([
      'message_destination fn_slack',
      'data_table slack_conversations_db',
      ...FN_SLACK_FUNCTIONS.map((f) => `function ${f}`),
    ]);
    const target = await connect();
    const where = `SOAR org ${soar.orgId} at ${soar.baseUrl}`;
    for (const item of IMPORTED) expect(await target.plan(item), item.name).to.deep.equal({ action: 'create', detail: `not in ${where}` });
    expect(soar.requests.filter((r) => r.method !== 'GET')).to.deep.equal([]);

    for (const item of IMPORTED) expect(await target.apply(item)).to.equal(`created in ${where}`);
    expect([...soar.functions.values()].map((f) => f.name).sort()).to.deep.equal(FN_SLACK_FUNCTIONS);
    const destinations = [...soar.messageDestinations.values()];
    expect(destinations.map((d) => d.programmatic_name)).to.deep.equal(['fn_slack']);
    expect(destinations[0]!.api_keys).to.deep.equal([soar.keys.get(soar.apiKeyId)!.handle]);
    expect([...soar.dataTables.keys()]).to.deep.equal(['slack_conversations_db']);
    const fn = [...soar.functions.values()].find((f) => f.name === 'slack_post_message')!;
    expect(fn.destination_handle).to.equal('fn_slack');

    const writes = soar.requests.filter((r) => r.method !== 'GET').length;
    for (const item of IMPORTED) expect(await target.plan(item), item.name).to.deep.equal({ action: 'unchanged', detail: where });
    expect(soar.requests.filter((r) => r.method !== 'GET').length).to.equal(writes);
  });

  it('plans an update when SOAR holds a different definition, and applies it', async () => {
    const target = await connect();
    const fn = IMPORTED.find((i) => i.name === 'slack_post_message')!;
    await target.apply(fn);
    const stored = [...soar.functions.values()].find((f) => f.name === 'slack_post_message')!;
    stored.display_name = 'Edited in SOAR';
    expect((await target.plan(fn)).action).to.equal('update');
    expect(await target.apply(fn)).to.match(/^updated in SOAR org 201/);
    expect((await target.plan(fn)).action).to.equal('unchanged');
  });

  it('answers not-applicable for workflows and rules, saying why', async () => {
    const target = await connect();
    const examples = ITEMS.filter((i) => i.kind === 'workflow' || i.kind === 'rule');
    expect(examples).to.have.length(11);
    for (const item of examples) {
      expect(await target.plan(item)).to.deep.equal({ action: 'not-applicable', detail: SOAR_EXAMPLE_DETAIL[item.kind as 'workflow' | 'rule'] });
    }
    expect(SOAR_EXAMPLE_DETAIL.workflow).to.contain('BPMN');
    expect(soar.requests.filter((r) => r.path.includes('workflow') || r.path.includes('rule'))).to.deep.equal([]);
  });

  it('a wrong secret fails at connect with exit 3, naming the keys to check and never the secret', async () => {
    const err = await failure(() => connect(config({}, 'a-wrong-secret-5678')));
    expect(err.exitCode).to.equal(CUSTOMIZE_EXIT.platform);
    expect(err.message).to.contain('SOAR rejected the API key (401)');
    expect(err.message).to.contain('check [soar] api_key_id and api_key_secret');
    expect(err.message).not.to.contain('a-wrong-secret-5678');
    expect(soar.requests.every((r) => r.method === 'GET')).to.equal(true);
  });

  it('a key of another org fails at connect naming [soar] org_id', async () => {
    const err = await failure(() => connect(config({ org_id: 999 })));
    expect(err.exitCode).to.equal(CUSTOMIZE_EXIT.platform);
    expect(err.message).to.contain('the API key is not a member of SOAR org 999: check [soar] org_id');
  });

  it('a key without a permission: the plan (read) and the import (write) name the permission it needs', async () => {
    const readOnly = soar.addKey({ permissions: ['read_data'] });
    let target = await connect(config({ api_key_id: readOnly.id }, readOnly.secret));
    const fn = IMPORTED.find((i) => i.kind === 'function')!;
    let err = await failure(() => target.plan(fn));
    expect(err.exitCode).to.equal(CUSTOMIZE_EXIT.platform);
    expect(err.message).to.contain('SOAR refused access (403) to the functions: the API key needs the permission read_function');

    const noCreate = soar.addKey({ permissions: ['read_data', 'edit_data', 'read_function'] });
    target = await connect(config({ api_key_id: noCreate.id }, noCreate.secret));
    expect((await target.plan(fn)).action).to.equal('create');
    err = await failure(() => target.apply(fn));
    expect(err.exitCode).to.equal(CUSTOMIZE_EXIT.platform);
    expect(err.message).to.contain('the API key needs the permission create_function');
    expect(err.message).not.to.contain(noCreate.secret);
  });

  it('an unreachable SOAR fails with exit 3; a missing [soar] with exit 2', async () => {
    let err = await failure(() => connect(config({ base_url: 'http://127.0.0.1:1' })));
    expect(err.exitCode).to.equal(CUSTOMIZE_EXIT.platform);
    expect(err.message).to.contain('Cannot reach SOAR at http://127.0.0.1:1 for the session of the API key (ECONNREFUSED');

    err = await failure(() => SoarTarget.connect(parseConfigText('[worker]\nplatform = soar\n', 'test.config', {})));
    expect(err.exitCode).to.equal(CUSTOMIZE_EXIT.config);
    expect(err.message).to.contain('[worker] platform = soar needs a [soar] section with base_url, org_id, api_key_id and api_key_secret');
  });
});
