/**
 * `worker selftest` run as a person would: the spawned CLI, the real broker and store,
 * the Slack emulator.
 */
import path from 'node:path';
import { expect } from 'chai';
import amqp from 'amqplib';
import { AMQP_URL, deleteDestination, runCli, uniqueName, writeConfig, type TestConfig } from '../../support/harness.js';
import { SlackEmulator } from '../../support/slack-emulator.js';
import { openStore } from '../../../src/core/store/index.js';
import { builtinPlugins } from '../../../src/functions/index.js';
import { REQUIRED_SCOPES } from '../../../src/functions/slack/scopes.js';
import { declareDestination, type QueueShape } from '../../../src/core/runtime/amqp-topology.js';

describe('worker selftest', function () {
  this.timeout(60_000);
  let emulator: SlackEmulator;
  let cfg: TestConfig;
  const ownQueues: string[] = [];

  before(async () => {
    emulator = await SlackEmulator.start();
  });
  after(async () => {
    await emulator.close();
  });
  afterEach(async () => {
    if (cfg) await deleteDestination(cfg.destination);
    for (const q of ownQueues.splice(0)) await deleteDestination(q);
  });

  /** Runs `use` on a channel of its own connection (a failed broker call closes the channel). */
  async function onBroker<T>(use: (ch: amqp.Channel) => Promise<T>): Promise<T> {
    const connection = await amqp.connect(AMQP_URL);
    connection.on('error', () => undefined);
    try {
      const ch = await connection.createChannel();
      ch.on('error', () => undefined);
      return await use(ch);
    } finally {
      await connection.close().catch(() => undefined);
    }
  }

  const exists = (queue: string) =>
    onBroker((ch) => ch.checkQueue(queue)).then(
      () => true,
      () => false,
    );

  /** A unique inbound queue for this test (the default fn_slack.inbound is shared), declared with `shape` unless undefined. */
  async function inboundQueue(shape?: QueueShape): Promise<string> {
    const queue = uniqueName('selftest_inbound');
    ownQueues.push(queue);
    if (shape) await onBroker((ch) => declareDestination(ch, queue, { queueType: 'classic', maxAttempts: 5 }, shape));
    return queue;
  }

  async function configured(fnSlack: Record<string, string> = {}, worker: Record<string, string> = {}, migrate = true): Promise<TestConfig> {
    cfg = writeConfig({
      worker,
      sections: { fn_slack: { api_token: emulator.botToken, api_url: emulator.apiUrl, ...fnSlack } },
    });
    if (migrate) await (await openStore(path.join(cfg.dir, 'worker.db'), { migrate: true, tables: builtinPlugins.flatMap((p) => p.tables ?? []) })).close();
    return cfg;
  }

  it('reports each check in order and exits 0 when all pass', async () => {
    await configured();
    const res = await runCli(['selftest', '--config-file', cfg.file]);
    expect(res.code, res.stdout + res.stderr).to.equal(0);
    const heads = res.stdout.split('\n').filter((l) => /^\S+: (success|failure)$/.test(l));
    expect(heads).to.deep.equal(['config: success', 'store: success', 'broker: success', 'fn_slack: success', 'fn_test: success']);
    expect(res.stdout).to.match(/Connected to Slack workspace .* as /);
    expect(res.stdout).to.match(/Elapsed time: \d+\.\d{3} seconds/);
    expect(res.stdout.trim().split('\n').pop()).to.equal('selftest: success (5 checks)');
  });

  it('-l limits the package checks', async () => {
    await configured();
    const res = await runCli(['selftest', '--config-file', cfg.file, '-l', 'fn_slack']);
    expect(res.code).to.equal(0);
    expect(res.stdout).to.contain('fn_slack: success');
    expect(res.stdout).not.to.contain('fn_test:');
  });

  it('exits 2 and stops at the config check when -l names an unknown package', async () => {
    await configured();
    const res = await runCli(['selftest', '--config-file', cfg.file, '-l', 'fn_nope']);
    expect(res.code).to.equal(2);
    expect(res.stdout).to.contain('config: failure');
    expect(res.stdout).to.contain('Unknown package(s): fn_nope');
    expect(res.stdout).not.to.contain('store:');
  });

  it('exits 7 naming the problem when Slack rejects the token', async () => {
    await configured({ api_token: 'xoxb-not-a-real-token' });
    const res = await runCli(['selftest', '--config-file', cfg.file]);
    expect(res.code).to.equal(7);
    expect(res.stdout).to.contain('fn_slack: failure');
    expect(res.stdout).to.contain('Slack rejected the token in [fn_slack] api_token (invalid_auth)');
    expect(res.stdout).not.to.contain('xoxb-not-a-real-token');
  });

  it('exits 7 naming the missing scopes', async () => {
    const scopes = Object.keys(REQUIRED_SCOPES).filter((s) => s !== 'files:write' && s !== 'users:read.email');
    emulator.addToken('xoxb-few-scopes', { scopes });
    await configured({ api_token: 'xoxb-few-scopes' });
    const res = await runCli(['selftest', '--config-file', cfg.file]);
    expect(res.code).to.equal(7);
    expect(res.stdout).to.contain('The token lacks scope(s) files:write, users:read.email');
  });

  it('checks the app token with apps.connections.open and the inbound queue when app_token is set', async () => {
    // Declared as worker run and customize declare it: single active consumer.
    const inbound = await inboundQueue({ singleActiveConsumer: true });
    await configured({ app_token: emulator.appToken, inbound_queue: inbound });
    const res = await runCli(['selftest', '--config-file', cfg.file, '-l', 'fn_slack']);
    expect(res.code, res.stdout + res.stderr).to.equal(0);
    expect(res.stdout).to.contain('the app token opens Socket Mode connections (apps.connections.open)');
    const heads = res.stdout.split('\n').filter((l) => / (success|failure)$/.test(l));
    expect(heads).to.deep.equal(['config: success', 'store: success', 'broker: success', 'fn_slack: success', 'fn_slack queues: success']);
    expect(res.stdout).to.contain(`${inbound} (single active consumer, dead-letter exchange ${inbound}.dlx) with dead-letter and retry queues`);
  });

  it('exits 4 when the inbound queue is not on the broker, says to run customize, and declares nothing', async () => {
    const inbound = await inboundQueue();
    await configured({ app_token: emulator.appToken, inbound_queue: inbound });
    const res = await runCli(['selftest', '--config-file', cfg.file, '-l', 'fn_slack']);
    expect(res.code, res.stdout + res.stderr).to.equal(4);
    expect(res.stdout).to.contain('fn_slack: success');
    expect(res.stdout).to.contain('fn_slack queues: failure');
    expect(res.stdout).to.contain(`Not on the broker: queue ${inbound}, exchange ${inbound}.dlx, queue ${inbound}.dead, queue ${inbound}.retry`);
    expect(res.stdout).to.contain('run `worker customize -l fn_slack`');
    expect(res.stdout.trim().split('\n').pop()).to.equal('selftest: failure (fn_slack queues)');
    for (const q of [inbound, `${inbound}.dead`, `${inbound}.retry`]) expect(await exists(q), q).to.equal(false);
  });

  it('exits 4 naming what is missing when only the dead-letter queue is gone', async () => {
    const inbound = await inboundQueue({ singleActiveConsumer: true });
    await onBroker((ch) => ch.deleteQueue(`${inbound}.dead`));
    await configured({ app_token: emulator.appToken, inbound_queue: inbound });
    const res = await runCli(['selftest', '--config-file', cfg.file, '-l', 'fn_slack']);
    expect(res.code, res.stdout + res.stderr).to.equal(4);
    expect(res.stdout).to.contain(`Not on the broker: queue ${inbound}.dead; run \`worker customize -l fn_slack\``);
    expect(await exists(`${inbound}.dead`)).to.equal(false);
  });

  it('exits 4 naming the argument when the inbound queue exists without a single active consumer, and leaves it as it was', async () => {
    const inbound = await inboundQueue({});
    await configured({ app_token: emulator.appToken, inbound_queue: inbound });
    const res = await runCli(['selftest', '--config-file', cfg.file, '-l', 'fn_slack']);
    expect(res.code, res.stdout + res.stderr).to.equal(4);
    expect(res.stdout).to.contain('fn_slack queues: failure');
    expect(res.stdout).to.contain(`Queue ${inbound} (vhost /) exists with x-single-active-consumer = none, but this worker declares`);
    // Still declared without it: redeclaring so succeeds.
    const plain = await onBroker((ch) => declareDestination(ch, inbound, { queueType: 'classic', maxAttempts: 5 }, {})).then(
      () => true,
      () => false,
    );
    expect(plain).to.equal(true);
  });

  it('a failed package check keeps its exit code 7 when the queues check fails too', async () => {
    const inbound = await inboundQueue();
    await configured({ app_token: 'xapp-1-A0-revoked', inbound_queue: inbound });
    const res = await runCli(['selftest', '--config-file', cfg.file, '-l', 'fn_slack']);
    expect(res.code, res.stdout + res.stderr).to.equal(7);
    expect(res.stdout.trim().split('\n').pop()).to.equal('selftest: failure (fn_slack, fn_slack queues)');
  });

  it('exits 7 with distinct reasons for a bot token given as app token and an app token without connections:write', async () => {
    await configured({ app_token: emulator.botToken });
    const bot = await runCli(['selftest', '--config-file', cfg.file, '-l', 'fn_slack']);
    expect(bot.code).to.equal(7);
    expect(bot.stdout).to.contain('[fn_slack] app_token is a bot token');
    expect(bot.stdout).not.to.contain(emulator.botToken);
    await deleteDestination(cfg.destination);

    emulator.addAppToken('xapp-1-A0-no-connections', []);
    await configured({ app_token: 'xapp-1-A0-no-connections' });
    const noScope = await runCli(['selftest', '--config-file', cfg.file, '-l', 'fn_slack']);
    expect(noScope.code).to.equal(7);
    expect(noScope.stdout).to.contain('[fn_slack] app_token lacks the scope connections:write (Slack: missing_scope)');
    expect(noScope.stdout).not.to.contain('xapp-1-A0-no-connections');
  });

  it('exits 4 when the broker is down', async () => {
    await configured({}, { amqp_url: 'amqp://guest:guest@127.0.0.1:1' });
    const res = await runCli(['selftest', '--config-file', cfg.file]);
    expect(res.code).to.equal(4);
    expect(res.stdout).to.contain('broker: failure');
    expect(res.stdout).not.to.contain('fn_slack:');
  });

  it('exits 6 when the store schema is not current', async () => {
    await configured({}, {}, false);
    const res = await runCli(['selftest', '--config-file', cfg.file]);
    expect(res.code).to.equal(6);
    expect(res.stdout).to.contain('schema version 0, this worker needs');
  });

  it("exits 6 naming the table when only a plugin's table is behind", async () => {
    await configured({}, {}, false);
    await (await openStore(path.join(cfg.dir, 'worker.db'), { migrate: true })).close(); // core only
    const res = await runCli(['selftest', '--config-file', cfg.file]);
    expect(res.code).to.equal(6);
    expect(res.stdout).to.contain('table slack_conversations_db at version 0, this worker needs 1');
  });

  it('exits 2 on a bad config', async () => {
    await configured({ api_token: 'not-a-token' });
    const res = await runCli(['selftest', '--config-file', cfg.file]);
    expect(res.code).to.equal(2);
    expect(res.stdout).to.contain('config: failure');
    expect(res.stdout).to.contain('[fn_slack] api_token: must match pattern');
  });
});
