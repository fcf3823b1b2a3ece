/**
 * `worker customize` and `worker functions` run as a person would: the spawned CLI,
 * the real broker, real SQLite and PostgreSQL stores. Each test imports a
 * customizations folder with its own queue and function names (customize-plugin.ts),
 * except the `-l fn_slack` test, which imports the real package.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { expect } from 'chai';
import pg from 'pg';
import { AMQP_URL, deleteDestination, runCli, tempDir, writeConfig, type TestConfig } from '../../support/harness.js';
import { CUSTOMIZE_PLUGIN, CUSTOM_PACKAGE, writeCustomizations, type CustomizationNames } from '../../support/customizations-fixture.js';
import { privateVhost } from '../../support/rabbitmq.js';
import { queueArguments } from '../../../src/core/runtime/amqp-transport.js';
import { openStore } from '../../../src/core/store/index.js';
import type { FunctionDefinitionRecord } from '../../../src/core/store/store.js';
import { SQLITE_MIGRATIONS } from '../../../src/core/store/sqlite-store.js';
import { POSTGRES_MIGRATIONS } from '../../../src/core/store/postgres-store.js';

const PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Which of a destination's queue, dead-letter exchange, dead-letter queue and retry queue exist. */
async function topology(
  destination: string,
  url = AMQP_URL,
): Promise<{ queue: boolean; dlx: boolean; dead: boolean; retry: boolean; argsMatch: boolean }> {
  const connection = await amqp.connect(url);
  connection.on('error', () => undefined);
  const probe = async (fn: (ch: amqp.Channel) => Promise<unknown>) => {
    const ch = await connection.createChannel();
    ch.on('error', () => undefined);
    try {
      await fn(ch);
      await ch.close().catch(() => undefined);
      return true;
    } catch {
      return false;
    }
  };
  try {
    const queue = await probe((ch) => ch.checkQueue(destination));
    return {
      queue,
      dlx: await probe((ch) => ch.checkExchange(`${destination}.dlx`)),
      dead: await probe((ch) => ch.checkQueue(`${destination}.dead`)),
      retry: await probe((ch) => ch.checkQueue(`${destination}.retry`)),
      // Redeclaring with the worker's arguments succeeds only if the queue has exactly them.
      argsMatch: queue && (await probe((ch) => ch.assertQueue(destination, queueArguments(destination)))),
    };
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** The lines of the output that report items (`  kind name → target: result (…)`). */
function itemLines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l.startsWith('  '));
}

async function definitions(storeLocation: string): Promise<FunctionDefinitionRecord[]> {
  const store = await openStore(storeLocation);
  try {
    return await store.definitions.list();
  } finally {
    await store.close();
  }
}

/** fn_slack's functions, sorted by name (as `worker functions` lists them). */
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
describe('worker customize (spawned CLI, real broker and stores)', function () {
  this.timeout(120_000);
  const destinations: string[] = [];
  let names: CustomizationNames;
  let cfg: TestConfig;
  let env: NodeJS.ProcessEnv;

  function setup(worker: Record<string, string> = {}): void {
    names = writeCustomizations(tempDir('customizations-'));
    destinations.push(names.destination);
    cfg = writeConfig({ destination: names.destination, withEchoPlugin: false, worker: { plugins: CUSTOMIZE_PLUGIN, ...worker } });
    env = { CUSTOMIZE_TEST_DIR: names.dir };
  }
  const customize = (args: string[], input?: string) => runCli(['customize', '--config-file', cfg.file, ...args], env, 60_000, input);
  const storeFile = () => path.join(cfg.dir, 'worker.db');

  afterEach(async () => {
    for (const d of destinations.splice(0)) await deleteDestination(d);
  });

  it('-y imports every item in order; a second run reports everything unchanged and changes nothing', async () => {
    setup();
    const first = await customize(['-y', '-l', CUSTOM_PACKAGE]);
    expect(first.code, first.stdout + first.stderr).to.equal(0);
    expect(itemLines(first.stdout)).to.deep.equal([
      `  message destination ${names.destination} → broker: created (queue ${names.destination}, exchange ${names.destination}.dlx, queue ${names.destination}.dead, queue ${names.destination}.retry)`,
      `  data table slack_conversations_db → store: created (sqlite ${storeFile()}, schema version ${SQLITE_MIGRATIONS.at(-1)!.version})`,
      `  function ${names.functionName} → store: created (recorded in sqlite ${storeFile()})`,
      `  workflow ${names.workflow}: example (imported into SOAR only when a SOAR platform is configured)`,
      `  rule ${names.rule}: example (imported into SOAR only when a SOAR platform is configured)`,
    ]);
    expect(first.stdout).to.contain('customize: 3 created, 0 updated, 0 unchanged, 0 skipped; 2 example(s) not imported');
    expect(await topology(names.destination)).to.deep.equal({ queue: true, dlx: true, dead: true, retry: true, argsMatch: true });
    const rows = await definitions(storeFile());
    expect(rows.map((r) => r.name)).to.deep.equal([names.functionName]);
    const file = JSON.parse(fs.readFileSync(path.join(names.dir, 'functions', `${names.functionName}.json`), 'utf8')) as Record<string, unknown>;
    expect(rows[0]).to.include({ packageName: CUSTOM_PACKAGE, displayName: 'Test: echo', destination: names.destination });
    expect(rows[0]!.inputSchema).to.deep.equal(file.input_schema);

    const second = await customize(['-y', '-l', CUSTOM_PACKAGE]);
    expect(second.code, second.stdout + second.stderr).to.equal(0);
    const lines = itemLines(second.stdout).filter((l) => !l.includes(': example ('));
    expect(lines).to.have.length(3);
    for (const l of lines) expect(l).to.match(/: unchanged \(/);
    expect(second.stdout).to.contain('customize: 0 created, 0 updated, 3 unchanged, 0 skipped');
    expect(await definitions(storeFile())).to.deep.equal(rows);
    expect(await topology(names.destination)).to.deep.equal({ queue: true, dlx: true, dead: true, retry: true, argsMatch: true });

    const listed = await runCli(['functions', '--config-file', cfg.file], env);
    expect(listed.code, listed.stderr).to.equal(0);
    expect(listed.stdout).to.contain(`Functions recorded in the store (sqlite ${storeFile()}) by \`worker customize\`:`);
    expect(listed.stdout).to.contain(`${CUSTOM_PACKAGE} (destination ${names.destination})\n  ${names.functionName}: Echoes its text\n`);
    expect(listed.stdout).to.contain('    text: string (required) — what to echo\n    times: integer — how often\n');
    // fn_slack is loaded but was left out with -l: said so, not listed as recorded.
    expect(listed.stdout).to.contain(`Loaded but not yet recorded: ${FN_SLACK_FUNCTIONS.join(', ')}`);
  });

  it('--dry-run shows the plan and changes nothing; worker functions says nothing is recorded yet', async () => {
    setup();
    const before = await runCli(['functions', '--config-file', cfg.file], env);
    expect(before.code, before.stderr).to.equal(0);
    expect(before.stdout).to.contain(`  ${names.functionName}: Echoes its text\n    text: string (required) — what to echo\n`);
    expect(before.stdout).to.contain('they are not yet recorded in the store: run `worker customize`');

    const res = await customize(['--dry-run', '-l', CUSTOM_PACKAGE]);
    expect(res.code, res.stdout + res.stderr).to.equal(0);
    expect(itemLines(res.stdout).slice(0, 3)).to.deep.equal([
      `  message destination ${names.destination} → broker: would create (queue ${names.destination}, exchange ${names.destination}.dlx, queue ${names.destination}.dead, queue ${names.destination}.retry)`,
      `  data table slack_conversations_db → store: would create (new store ${storeFile()})`,
      `  function ${names.functionName} → store: would create (not recorded yet)`,
    ]);
    expect(res.stdout).to.contain('nothing was changed');
    expect(res.stdout).not.to.contain('OK to import');
    expect(await topology(names.destination)).to.deep.equal({ queue: false, dlx: false, dead: false, retry: false, argsMatch: false });
    expect(fs.existsSync(storeFile())).to.equal(false);
  });

  it('asks before each item: n skips it, y imports it, end of input answers no', async () => {
    setup();
    const res = await customize(['-l', CUSTOM_PACKAGE], 'n\ny\n');
    expect(res.code, res.stdout + res.stderr).to.equal(0);
    expect(res.stdout).to.contain(`OK to import message destination ${names.destination} into broker? (y/n) n\n`);
    expect(res.stdout).to.contain(`  message destination ${names.destination} → broker: skipped (not confirmed)`);
    expect(res.stdout).to.contain('OK to import data table slack_conversations_db into store? (y/n) y\n');
    expect(res.stdout).to.contain('  data table slack_conversations_db → store: created');
    expect(res.stdout).to.contain(`OK to import function ${names.functionName} into store? (y/n) (no answer)\n`);
    expect(res.stdout).to.contain(`  function ${names.functionName} → store: skipped (not confirmed)`);
    expect(res.stdout).to.contain('customize: 1 created, 0 updated, 0 unchanged, 2 skipped');
    expect((await topology(names.destination)).queue).to.equal(false);
    const store = await openStore(storeFile());
    try {
      const status = await store.schemaStatus();
      expect(status.current).to.equal(status.expected);
      expect(await store.definitions.list()).to.deep.equal([]);
    } finally {
      await store.close();
    }
  });

  it('updates a definition whose file changed, and only that', async () => {
    setup();
    expect((await customize(['-y', '-l', CUSTOM_PACKAGE])).code).to.equal(0);
    const [before] = await definitions(storeFile());
    const fnFile = path.join(names.dir, 'functions', `${names.functionName}.json`);
    const def = JSON.parse(fs.readFileSync(fnFile, 'utf8')) as { description: string; input_schema: { properties: Record<string, unknown> } };
    def.description = 'Echoes its text, now documented better';
    def.input_schema.properties.loud = { type: 'boolean', description: 'shout it' };
    fs.writeFileSync(fnFile, JSON.stringify(def, null, 2));

    const listed = await runCli(['functions', '--config-file', cfg.file], env);
    expect(listed.stdout).to.contain(`  ${names.functionName}: Echoes its text [this worker has a newer definition: run \`worker customize\`]\n`);
    const dry = await customize(['--dry-run', '-l', CUSTOM_PACKAGE]);
    expect(dry.stdout).to.match(new RegExp(`function ${names.functionName} → store: would update \\(recorded .* differs\\)`));
    const res = await customize(['-y', '-l', CUSTOM_PACKAGE]);
    expect(res.code, res.stdout + res.stderr).to.equal(0);
    expect(res.stdout).to.contain(`  function ${names.functionName} → store: updated`);
    expect(res.stdout).to.contain('customize: 0 created, 1 updated, 2 unchanged');
    const [after] = await definitions(storeFile());
    expect(after!.description).to.equal('Echoes its text, now documented better');
    expect(after!.inputSchema).to.deep.equal(def.input_schema);
    expect(after!.hash).not.to.equal(before!.hash);
    // Once customize has recorded it, `worker functions` agrees that nothing is newer.
    const relisted = await runCli(['functions', '--config-file', cfg.file], env);
    expect(relisted.stdout).to.contain(`  ${names.functionName}: Echoes its text, now documented better\n`);
    expect(relisted.stdout).not.to.contain('newer definition');
  });

  it('-l with an unknown package exits 2 naming the loaded ones', async () => {
    setup();
    const res = await customize(['-y', '-l', 'fn_unknown']);
    expect(res.code).to.equal(2);
    expect(res.stdout).to.contain('Unknown package(s): fn_unknown; loaded packages are: fn_slack, fn_custom');
    expect((await topology(names.destination)).queue).to.equal(false);
  });

  it('a broken packaged file exits 2 naming the file and what is wrong', async () => {
    setup();
    const table = path.join(names.dir, 'data_tables', 'slack_conversations_db.json');
    const body = JSON.parse(fs.readFileSync(table, 'utf8')) as { fields: { input_type: string }[] };
    body.fields[0]!.input_type = 'checkbox';
    fs.writeFileSync(table, JSON.stringify(body));
    const res = await customize(['-y', '-l', CUSTOM_PACKAGE]);
    expect(res.code).to.equal(2);
    expect(res.stdout).to.contain(`${table}: not a valid data table definition: fields.0.input_type: must be one of`);
    expect((await topology(names.destination)).queue).to.equal(false);
  });

  it('exits 4 when the broker is unreachable and 6 when the store is', async () => {
    setup({ amqp_url: 'amqp://worker:brokerpw42@127.0.0.1:1' });
    const broker = await customize(['-y', '-l', CUSTOM_PACKAGE]);
    expect(broker.code, broker.stdout + broker.stderr).to.equal(4);
    expect(broker.stdout).to.contain(
      'worker customize: broker: [worker] amqp_url amqp://worker:***@127.0.0.1:1: connection refused by 127.0.0.1:1 (is RabbitMQ running and listening there?)',
    );
    expect(broker.stdout + broker.stderr).not.to.contain('brokerpw42');

    setup({ store: 'postgres://worker:hunter2secret@127.0.0.1:1/soar' });
    const store = await customize(['-y', '-l', CUSTOM_PACKAGE]);
    expect(store.code, store.stdout + store.stderr).to.equal(6);
    expect(store.stdout).to.contain('worker customize: store postgres://worker:***@127.0.0.1:1/soar');
    expect(store.stdout).not.to.contain('hunter2secret');
  });

  describe("fn_slack's own queue, in a RabbitMQ virtual host of this run's own", function () {
    // fn_slack's queue is a fixed name: on the shared default virtual host another run on
    // this machine may declare or delete it at any moment (it did, failing CI).
    let vhost: { url: string; drop: () => Promise<void> };
    before(async () => {
      vhost = await privateVhost('customize');
    });
    after(async () => {
      await vhost?.drop();
    });

    it('-l fn_slack imports the real package: its queue, its data table and its functions with their inputs', async () => {
      setup({ amqp_url: vhost.url });
      try {
        const res = await customize(['-y', '-l', 'fn_slack']);
        expect(res.code, res.stdout + res.stderr).to.equal(0);
        expect(res.stdout).not.to.contain(CUSTOM_PACKAGE);
        expect(res.stdout).to.match(/ {2}message destination fn_slack → broker: created /);
        expect(res.stdout).to.contain('  function slack_post_message → store: created');
        expect(res.stdout).to.contain('  workflow example_slack_post_message: example');
        expect(res.stdout).to.contain('  rule example_post_incident_to_slack: example');
        // The queue, the data table and the 15 functions.
        expect(res.stdout).to.match(/customize: 17 created, 0 updated, 0 unchanged/);
        const t = await topology('fn_slack', vhost.url);
        expect(t).to.deep.equal({ queue: true, dlx: true, dead: true, retry: true, argsMatch: true });
        expect((await definitions(storeFile())).map((r) => r.name)).to.deep.equal(FN_SLACK_FUNCTIONS);
        const listed = await runCli(['functions', '--config-file', cfg.file], env);
        expect(listed.stdout).to.contain('fn_slack (destination fn_slack)\n  slack_add_bookmark: ');
        expect(listed.stdout).to.contain('  slack_post_message: Posts incident or task data to a Slack channel');
        expect(listed.stdout).to.contain('    incident_id: integer (required) — SOAR incident id\n');
        expect(listed.stdout).to.contain('    slack_text: string (required)');
        expect(listed.stdout).to.contain(`Loaded but not yet recorded: ${names.functionName}`);
      } finally {
        await deleteDestination('fn_slack', vhost.url);
      }
    });

    it("declares fn_slack's inbound queue (single active consumer) when the config receives Slack events, on the broker only", async () => {
      setup();
      const inbound = `inbound_${randomBytes(4).toString('hex')}`;
      cfg = writeConfig({
        destination: names.destination,
        withEchoPlugin: false,
        worker: { plugins: CUSTOMIZE_PLUGIN, amqp_url: vhost.url },
        sections: { fn_slack: { api_token: 'xoxb-unused', api_url: 'http://127.0.0.1:9/api/', app_token: 'xapp-1-unused', inbound_queue: inbound } },
      });
      try {
        const res = await customize(['-y', '-l', 'fn_slack']);
        expect(res.code, res.stdout + res.stderr).to.equal(0);
        expect(res.stdout).to.contain(
          `  message destination ${inbound} → broker: created (queue ${inbound}, exchange ${inbound}.dlx, queue ${inbound}.dead, queue ${inbound}.retry)`,
        );
        const again = await customize(['-y', '-l', 'fn_slack']);
        expect(again.stdout).to.match(new RegExp(`  message destination ${inbound} → broker: unchanged`));
        // Declared as worker run declares it: redeclaring with single-active-consumer succeeds, without it fails.
        const connection = await amqp.connect(vhost.url);
        connection.on('error', () => undefined);
        try {
          const probe = async (sac: boolean) => {
            const ch = await connection.createChannel();
            ch.on('error', () => undefined);
            try {
              await ch.assertQueue(inbound, queueArguments(inbound, undefined, { singleActiveConsumer: sac }));
              return true;
            } catch {
              return false;
            }
          };
          expect(await probe(true)).to.equal(true);
          expect(await probe(false)).to.equal(false);
        } finally {
          await connection.close().catch(() => undefined);
        }
      } finally {
        await deleteDestination('fn_slack', vhost.url);
        await deleteDestination(inbound, vhost.url);
      }
    });
  });

  describe('against PostgreSQL', function () {
    const database = `customize_${process.pid}_${randomBytes(3).toString('hex')}`;
    const admin = () => new pg.Client({ connectionString: PG_URL });

    before(async () => {
      const c = admin();
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${database}"`);
      } finally {
        await c.end();
      }
    });
    after(async () => {
      const c = admin();
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    });

    it('customize -y twice: created, then unchanged with the rows untouched; worker functions reads them', async () => {
      const u = new URL(PG_URL);
      u.pathname = `/${database}`;
      const storeUrl = u.toString();
      setup({ store: storeUrl });
      const first = await customize(['-y', '-l', CUSTOM_PACKAGE]);
      expect(first.code, first.stdout + first.stderr).to.equal(0);
      expect(first.stdout).to.contain(`  data table slack_conversations_db → store: created (postgres ${storeUrl}, schema version ${POSTGRES_MIGRATIONS.at(-1)!.version})`);
      expect(first.stdout).to.contain(`  function ${names.functionName} → store: created (recorded in postgres ${storeUrl})`);

      const c = new pg.Client({ connectionString: storeUrl });
      await c.connect();
      try {
        const read = async () =>
          (await c.query('SELECT name, package, input_schema::text AS schema, definition_hash, imported_at FROM function_definitions ORDER BY name')).rows;
        const rows = await read();
        expect(rows.map((r) => r.name)).to.deep.equal([names.functionName]);
        expect(Object.keys((JSON.parse(rows[0].schema as string) as { properties: object }).properties)).to.deep.equal(['text', 'times']);

        const second = await customize(['-y', '-l', CUSTOM_PACKAGE]);
        expect(second.code, second.stdout + second.stderr).to.equal(0);
        expect(second.stdout).to.contain('customize: 0 created, 0 updated, 3 unchanged, 0 skipped');
        expect(await read()).to.deep.equal(rows);
      } finally {
        await c.end();
      }
      const listed = await runCli(['functions', '--config-file', cfg.file], env);
      expect(listed.stdout).to.contain(`Functions recorded in the store (postgres ${storeUrl})`);
      expect(listed.stdout).to.contain('    text: string (required) — what to echo\n');
    });
  });
});
