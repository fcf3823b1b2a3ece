/**
 * Fixes found on the way (issue #18 item 4), each seen through the spawned CLI as a
 * person would meet it: commands that never call Slack, `worker invoke`'s messages and
 * inputs, unknown config sections.
 */
import fs from 'node:fs';
import { expect } from 'chai';
import amqp from 'amqplib';
import { spawn } from 'node:child_process';
import { AMQP_URL, CLI_TS, deleteDestination, REPO_ROOT, runCli, WorkerProcess, writeConfig } from '../support/harness.js';

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

  it('`functions`, `customize --dry-run` and `config -u` work without SLACK_BOT_TOKEN', async () => {
    const cfg = tokenFromEnvConfig();
    const functions = await runCli(['functions', '--config-file', cfg.file], NO_TOKEN);
    expect(functions.code, functions.stderr).to.equal(0);
    expect(functions.stdout).to.contain('slack_post_message');
    const customize = await runCli(['customize', '--dry-run', '--config-file', cfg.file], NO_TOKEN);
    expect(customize.code, customize.stdout + customize.stderr).to.equal(0);
    expect(customize.stdout).not.to.contain('SLACK_BOT_TOKEN');
    // fn_slack's inbound queue depends on its section, which needs the variable: left to run.
    expect(customize.stdout).to.contain('fn_slack: its own queues are left to `worker run` ([fn_slack] it refers to environment variables not set here)');
    const update = await runCli(['config', '-u', cfg.file], NO_TOKEN);
    expect(update.code, update.stderr).to.equal(0);
    expect(update.stdout).to.match(/^Added to \[fn_slack\]: /m);
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

describe('worker invoke (spawned CLI)', function () {
  this.timeout(90_000);
  const destinations: string[] = [];
  let worker: WorkerProcess | undefined;
  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
  });
  after(async () => {
    for (const d of destinations) await deleteDestination(d);
  });

  it('says when nobody consumes the queue, and on timeout that the worker may still be working, naming --timeout', async () => {
    const cfg = writeConfig();
    destinations.push(cfg.destination);
    await declareQueue(cfg.destination);
    const res = await runCli(['invoke', 'test_echo', '--config-file', cfg.file, '-i', 'text=x', '--timeout', '1']);
    expect(res.code).to.equal(8);
    expect(res.stderr).to.match(new RegExp(`^WARN .*no worker consumes ${cfg.destination}`, 'm'));
    expect(res.stderr).to.contain('may still be working');
    expect(res.stderr).to.contain('--timeout');
  });

  it('takes a JSON container as a text input (slack_text style) verbatim, and a JSON string as its text', async () => {
    const cfg = writeConfig();
    destinations.push(cfg.destination);
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
    const container = '{"title": "Phishing", "fields": [{"label": "Sender", "value": "a@b.example"}]}';
    const res = await runCli(['invoke', 'test_echo', '--config-file', cfg.file, '-i', `text=${container}`, '-i', 'steps=1', '--json']);
    expect(res.code, res.stdout + res.stderr).to.equal(0);
    const final = JSON.parse(res.stdout.trim().split('\n').pop()!) as { results: { content: { echoed: unknown } } };
    expect(final.results.content.echoed).to.equal(container);
    expect(res.stderr).not.to.contain('WARN');
    const quoted = await runCli(['invoke', 'test_echo', '--config-file', cfg.file, '-i', 'text="42"', '--json']);
    expect(quoted.code, quoted.stdout + quoted.stderr).to.equal(0);
    expect((JSON.parse(quoted.stdout.trim()) as { results: { content: { echoed: unknown } } }).results.content.echoed).to.equal('42');
  });

  it('piped into head, exits quietly when head closes the pipe (no EPIPE crash)', async () => {
    const cfg = writeConfig();
    destinations.push(cfg.destination);
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
    const cli = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(CLI_TS)}`;
    const script = `${cli} invoke test_echo --config-file ${JSON.stringify(cfg.file)} -i text=x -i steps=20 | head -n 1; echo "status=\${PIPESTATUS[0]}" >&2`;
    const result = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn('bash', ['-c', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('exit', () => resolve({ stdout, stderr }));
    });
    expect(result.stdout).to.equal('status: step 1 of 20\n');
    expect(result.stderr).not.to.contain('EPIPE');
    expect(result.stderr).to.contain('status=0');
  });
});

describe('[fn_slack] time_zone (spawned CLI)', function () {
  this.timeout(60_000);

  it('an unknown zone stops `run` and `selftest` at start with the config error format (exit 2)', async () => {
    const cfg = writeConfig({ withEchoPlugin: false, sections: { fn_slack: { api_token: 'xoxb-1-2-tz', time_zone: 'Mars/Olympus' } } });
    const expected = `${cfg.file}: [fn_slack] time_zone: "Mars/Olympus" is not an IANA time zone this Node.js knows (e.g. UTC, Europe/Berlin, America/New_York)`;
    const run = await runCli(['run', '--config-file', cfg.file], {}, 20_000);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.contain(expected);
    const selftest = await runCli(['selftest', '--config-file', cfg.file]);
    expect(selftest.code).to.equal(2);
    expect(selftest.stdout).to.contain(expected);
  });
});
