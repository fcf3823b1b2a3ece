/**
 * `worker selftest` with `platform = soar`: the spawned CLI, the real broker and store,
 * the Slack emulator and the SOAR emulator. The platform check comes after the broker;
 * its failures exit 3 and name the cause without showing the secret.
 */
import path from 'node:path';
import { expect } from 'chai';
import { deleteDestination, runCli, writeConfig, type TestConfig } from '../../support/harness.js';
import { SlackEmulator } from '../../support/slack-emulator.js';
import { SoarEmulator } from '../../support/soar-emulator.js';
import { openStore } from '../../../src/core/store/index.js';
import { builtinPlugins } from '../../../src/functions/index.js';

describe('worker selftest with platform = soar', function () {
  this.timeout(60_000);
  let slack: SlackEmulator;
  let soar: SoarEmulator;
  let cfg: TestConfig | undefined;

  before(async () => {
    slack = await SlackEmulator.start();
    soar = await SoarEmulator.start();
  });
  after(async () => {
    await slack.close();
    await soar.close();
  });
  afterEach(async () => {
    if (cfg) await deleteDestination(cfg.destination);
    cfg = undefined;
  });

  /** A config whose [soar] secret comes from $SOAR_TEST_SECRET; returns the env to run with. */
  async function configured(soarSection: Record<string, string | number> = {}, secret = soar.apiKeySecret): Promise<NodeJS.ProcessEnv> {
    cfg = writeConfig({
      worker: { platform: 'soar' },
      sections: {
        fn_slack: { api_token: slack.botToken, api_url: slack.apiUrl },
        soar: {
          base_url: soar.baseUrl,
          org_id: soar.orgId,
          api_key_id: soar.apiKeyId,
          api_key_secret: '$SOAR_TEST_SECRET',
          retries: 1,
          retry_max_delay: 0.1,
          ...soarSection,
        },
      },
    });
    await (await openStore(path.join(cfg.dir, 'worker.db'), { migrate: true, tables: builtinPlugins.flatMap((p) => p.tables ?? []) })).close();
    return { SOAR_TEST_SECRET: secret };
  }

  const heads = (stdout: string) => stdout.split('\n').filter((l) => /^\S+: (success|failure)$/.test(l));

  it('checks the SOAR connection after the broker and exits 0', async () => {
    const env = await configured();
    const res = await runCli(['selftest', '--config-file', cfg!.file], env);
    expect(res.code, res.stdout + res.stderr).to.equal(0);
    expect(heads(res.stdout)).to.deep.equal(['config: success', 'store: success', 'broker: success', 'platform: success', 'fn_slack: success', 'fn_test: success']);
    expect(res.stdout).to.contain(`SOAR at ${soar.baseUrl}, org 201 (Test Org): API key accepted`);
    expect(soar.requestsTo(/\/rest\/session$/).length).to.be.greaterThan(0);
  });

  it('exits 3 on a bad API key (401), naming the keys to check and hiding the secret', async () => {
    const env = await configured({}, 'a-wrong-secret-1234');
    const res = await runCli(['selftest', '--config-file', cfg!.file], env);
    expect(res.code, res.stdout + res.stderr).to.equal(3);
    expect(res.stdout).to.contain('platform: failure');
    expect(res.stdout).to.contain('SOAR rejected the API key (401) for the session of the API key: check [soar] api_key_id and api_key_secret');
    expect(res.stdout + res.stderr).not.to.contain('a-wrong-secret-1234');
    expect(res.stdout).not.to.contain('fn_slack:');
  });

  it('exits 3 naming the permission a key lacks (403)', async () => {
    const key = soar.addKey({ permissions: ['read_data'] });
    const env = await configured({ api_key_id: key.id }, key.secret);
    const res = await runCli(['selftest', '--config-file', cfg!.file], env);
    expect(res.code, res.stdout).to.equal(3);
    expect(res.stdout).to.contain('SOAR refused access (403) to the list of incidents: the API key needs the permission read_all_incidents');
  });

  it('exits 3 when SOAR is unreachable', async () => {
    const env = await configured({ base_url: 'http://127.0.0.1:1' });
    const res = await runCli(['selftest', '--config-file', cfg!.file], env);
    expect(res.code, res.stdout).to.equal(3);
    expect(res.stdout).to.contain('Cannot reach SOAR at http://127.0.0.1:1 for the session of the API key (ECONNREFUSED');
  });

  it('exits 2 when the [soar] section is missing or incomplete', async () => {
    cfg = writeConfig({ worker: { platform: 'soar' } });
    let res = await runCli(['selftest', '--config-file', cfg.file]);
    expect(res.code, res.stdout).to.equal(2);
    expect(res.stdout).to.contain('[worker] platform = soar needs a [soar] section with base_url, org_id, api_key_id and api_key_secret');

    const env = await configured({ org_id: 'two' });
    res = await runCli(['selftest', '--config-file', cfg!.file], env);
    expect(res.code, res.stdout).to.equal(2);
    expect(res.stdout).to.contain('[soar] org_id: must be integer (got "two")');
  });
});
