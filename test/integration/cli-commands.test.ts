/**
 * Fixes found on the way (issue #18 item 4), each seen through the spawned CLI as a
 * person would meet it: commands that never call Slack, `worker invoke`'s messages and
 * inputs, unknown config sections.
 */
import fs from 'node:fs';
import { expect } from 'chai';
import amqp from 'amqplib';
import { AMQP_URL, deleteDestination, runCli, writeConfig } from '../support/harness.js';

/** The environment of a shell where SLACK_BOT_TOKEN was never exported. */
const NO_TOKEN = { SLACK_BOT_TOKEN: undefined };

/** Declares a plain queue nobody consumes, as `worker customize` would leave it. */
async function declareQueue(name: string): Promise<void> {
  const connection = await amqp.connect(AMQP_URL);
  try {
    const ch = await connection.createChannel();
    await ch.assertQueue(name, { durable: true });
  } finally {
    await connection.close();
  }
}

describe('commands that never call Slack (spawned CLI)', function () {
  this.timeout(60_000);
  const destinations: string[] = [];
  after(async () => {
    for (const d of destinations) await deleteDestination(d);
  });

  /** A config whose [fn_slack] api_token refers to $SLACK_BOT_TOKEN, as `config -c` writes it. */
  function tokenFromEnvConfig() {
    return writeConfig({ withEchoPlugin: false, sections: { fn_slack: { api_token: '$SLACK_BOT_TOKEN' } } });
  }

  it('`functions` and `customize --dry-run` work without SLACK_BOT_TOKEN', async () => {
    const cfg = tokenFromEnvConfig();
    const functions = await runCli(['functions', '--config-file', cfg.file], NO_TOKEN);
    expect(functions.code, functions.stderr).to.equal(0);
    expect(functions.stdout).to.contain('slack_post_message');
    const customize = await runCli(['customize', '--dry-run', '--config-file', cfg.file], NO_TOKEN);
    expect(customize.code, customize.stdout + customize.stderr).to.equal(0);
    expect(customize.stdout).not.to.contain('SLACK_BOT_TOKEN');
  });

  it('`invoke` works without SLACK_BOT_TOKEN (it only publishes)', async () => {
    const cfg = tokenFromEnvConfig();
    destinations.push(cfg.destination);
    await declareQueue(cfg.destination);
    const res = await runCli(['invoke', 'slack_post_message', '--config-file', cfg.file, '--timeout', '1', '-i', 'incident_id=1'], NO_TOKEN);
    expect(res.stderr).not.to.contain('SLACK_BOT_TOKEN');
    expect(res.stderr).to.contain('No final reply within 1s');
    expect(res.code).to.equal(8);
  });

  it('`run` and `selftest` still stop on the unset variable, naming it (exit 2)', async () => {
    const cfg = tokenFromEnvConfig();
    destinations.push(cfg.destination);
    const run = await runCli(['run', '--config-file', cfg.file], NO_TOKEN);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.contain(`${cfg.file}: [fn_slack] api_token: environment variable SLACK_BOT_TOKEN is not set`);
    const selftest = await runCli(['selftest', '--config-file', cfg.file], NO_TOKEN);
    expect(selftest.code).to.equal(2);
    expect(selftest.stdout).to.contain(`${cfg.file}: [fn_slack] api_token: environment variable SLACK_BOT_TOKEN is not set`);
  });

  it('`invoke` still stops on an unset variable it needs ([worker] amqp_url), naming it (exit 2)', async () => {
    const cfg = writeConfig({ withEchoPlugin: false, worker: { amqp_url: 'amqp://guest:$NO_SUCH_AMQP_PASSWORD@127.0.0.1:5672' } });
    const res = await runCli(['invoke', 'slack_post_message', '--config-file', cfg.file, '--timeout', '1'], NO_TOKEN);
    expect(res.code).to.equal(2);
    expect(res.stderr).to.contain('[worker] amqp_url: environment variable NO_SUCH_AMQP_PASSWORD is not set');
    expect(fs.existsSync(cfg.file)).to.equal(true);
  });
});
