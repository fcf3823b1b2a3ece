/**
 * `worker customize` with `[worker] platform = soar`: the spawned CLI, the real broker
 * and SQLite store, and the SOAR emulator. Function definitions, the message destination
 * and the data table go into SOAR as a third target; a second run changes nothing in
 * SOAR; a dry run only reads; a bad API key exits 3 without showing the secret.
 */
import { expect } from 'chai';
import { deleteDestination, runCli, tempDir, writeConfig, type TestConfig } from '../../support/harness.js';
import { CUSTOMIZE_PLUGIN, CUSTOM_PACKAGE, writeCustomizations, type CustomizationNames } from '../../support/customizations-fixture.js';
import { SoarEmulator } from '../../support/soar-emulator.js';

/** The lines of the output that report items (`  kind name → target: result (…)`). */
function itemLines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l.startsWith('  '));
}

describe('worker customize with platform = soar (spawned CLI, SOAR emulator)', function () {
  this.timeout(120_000);
  let soar: SoarEmulator;
  let names: CustomizationNames;
  let cfg: TestConfig;
  let env: NodeJS.ProcessEnv;
  const destinations: string[] = [];

  beforeEach(async () => {
    soar = await SoarEmulator.start();
  });
  afterEach(async () => {
    await soar.close();
    for (const d of destinations.splice(0)) await deleteDestination(d);
  });

  /** A config whose [soar] secret comes from $SOAR_TEST_SECRET (set to `secret`). */
  function setup(secret = soar.apiKeySecret): void {
    names = writeCustomizations(tempDir('customizations-'));
    destinations.push(names.destination);
    cfg = writeConfig({
      destination: names.destination,
      withEchoPlugin: false,
      worker: { plugins: CUSTOMIZE_PLUGIN, platform: 'soar' },
      sections: {
        soar: {
          base_url: soar.baseUrl,
          org_id: soar.orgId,
          api_key_id: soar.apiKeyId,
          api_key_secret: '$SOAR_TEST_SECRET',
          retries: 0,
        },
      },
    });
    env = { CUSTOMIZE_TEST_DIR: names.dir, SOAR_TEST_SECRET: secret };
  }
  const customize = (args: string[], input?: string) => runCli(['customize', '--config-file', cfg.file, '-l', CUSTOM_PACKAGE, ...args], env, 60_000, input);
  const writes = () => soar.requests.filter((r) => r.method !== 'GET');
  const where = () => `SOAR org ${soar.orgId} at ${soar.baseUrl}`;

  it('--dry-run only reads SOAR; -y imports into SOAR; a second -y reports everything unchanged and writes nothing', async () => {
    setup();
    const dry = await customize(['--dry-run']);
    expect(dry.code, dry.stdout + dry.stderr).to.equal(0);
    expect(itemLines(dry.stdout).filter((l) => l.includes('→ SOAR'))).to.deep.equal([
      `  message destination ${names.destination} → SOAR: would create (not in ${where()})`,
      `  data table slack_conversations_db → SOAR: would create (not in ${where()})`,
      `  function ${names.functionName} → SOAR: would create (not in ${where()})`,
    ]);
    expect(soar.requests.length).to.be.greaterThan(0);
    expect(writes()).to.deep.equal([]);

    const first = await customize(['-y']);
    expect(first.code, first.stdout + first.stderr).to.equal(0);
    expect(itemLines(first.stdout).filter((l) => l.includes('→ SOAR'))).to.deep.equal([
      `  message destination ${names.destination} → SOAR: created (created in ${where()})`,
      `  data table slack_conversations_db → SOAR: created (created in ${where()})`,
      `  function ${names.functionName} → SOAR: created (created in ${where()})`,
    ]);
    expect(first.stdout).to.contain(`  workflow ${names.workflow}: example (SOAR: SOAR keeps a workflow as a BPMN diagram, which this file does not carry`);
    expect(first.stdout).to.contain(`  rule ${names.rule}: example (SOAR: a rule runs workflows this package ships only as examples`);
    expect(first.stdout).to.contain('customize: 6 created, 0 updated, 0 unchanged, 0 skipped; 2 example(s) not imported (see above)');
    // SOAR's state: the destination (usable by the importing key), the table, the function with its inputs.
    const destination = [...soar.messageDestinations.values()];
    expect(destination.map((d) => [d.programmatic_name, d.destination_type, d.expect_ack])).to.deep.equal([[names.destination, 0, true]]);
    expect(destination[0]!.api_keys).to.deep.equal([soar.keys.get(soar.apiKeyId)!.handle]);
    expect([...soar.dataTables.keys()]).to.deep.equal(['slack_conversations_db']);
    expect(Object.keys(soar.dataTables.get('slack_conversations_db')!.fields)).to.include('slack_db_channel');
    const fns = [...soar.functions.values()];
    expect(fns.map((f) => [f.name, f.display_name, f.destination_handle])).to.deep.equal([[names.functionName, 'Test: echo', names.destination]]);
    expect([...soar.functionFields.keys()].sort()).to.deep.equal(['text', 'times']);
    expect(fns[0]!.view_items.map((v: { content: string }) => v.content)).to.deep.equal(
      ['text', 'times'].map((n) => soar.functionFields.get(n)!.uuid),
    );

    const writesAfterFirst = writes().length;
    const second = await customize(['-y']);
    expect(second.code, second.stdout + second.stderr).to.equal(0);
    const lines = itemLines(second.stdout).filter((l) => !l.includes(': example ('));
    expect(lines).to.have.length(6);
    for (const l of lines) expect(l).to.match(/: unchanged \(/);
    expect(lines.filter((l) => l.includes('→ SOAR'))).to.have.length(3);
    expect(second.stdout).to.contain('customize: 0 created, 0 updated, 6 unchanged, 0 skipped');
    expect(writes().length).to.equal(writesAfterFirst);
  });

  it('asks before each SOAR item too: n to the SOAR data table skips only it', async () => {
    setup();
    // destination → broker, → SOAR; data table → store, → SOAR (n); function → store, → SOAR.
    const res = await customize([], 'y\ny\ny\nn\ny\ny\n');
    expect(res.code, res.stdout + res.stderr).to.equal(0);
    expect(res.stdout).to.contain(`OK to import message destination ${names.destination} into SOAR? (y/n) y\n`);
    expect(res.stdout).to.contain('OK to import data table slack_conversations_db into SOAR? (y/n) n\n');
    expect(res.stdout).to.contain('  data table slack_conversations_db → SOAR: skipped (not confirmed)');
    expect(res.stdout).to.contain('  data table slack_conversations_db → store: created');
    expect(res.stdout).to.contain(`  function ${names.functionName} → SOAR: created`);
    expect(res.stdout).to.contain('customize: 5 created, 0 updated, 0 unchanged, 1 skipped');
    expect(soar.dataTables.size).to.equal(0);
    expect([...soar.messageDestinations.values()].map((d) => d.programmatic_name)).to.deep.equal([names.destination]);
    expect([...soar.functions.values()].map((f) => f.name)).to.deep.equal([names.functionName]);
  });

  it('a bad API key exits 3 before anything is imported, naming the keys to fix and never the secret', async () => {
    setup('a-wrong-secret-9876');
    const res = await customize(['-y']);
    expect(res.code, res.stdout + res.stderr).to.equal(3);
    expect(res.stdout).to.contain(
      `worker customize: SOAR at ${soar.baseUrl}: SOAR rejected the API key (401) for the session of the API key: check [soar] api_key_id and api_key_secret`,
    );
    expect(res.stdout + res.stderr).not.to.contain('a-wrong-secret-9876');
    expect(itemLines(res.stdout)).to.deep.equal([]);
    expect(writes()).to.deep.equal([]);
  });
});
