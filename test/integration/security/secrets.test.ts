/**
 * Secrets never reach what the worker writes: a distinctive Slack token, a RabbitMQ
 * user's password and a plugin secret are put in the config, the worker is driven
 * through success and failure paths (Slack invalid_auth, Slack down, bad input, broker
 * connection loss, selftest, invoke, a wrong broker password), and every line written
 * during the test — stdout/stderr of every spawned process, every app.log file, every
 * reply and progress message — is searched for each secret, raw, URL-encoded and
 * base64-encoded.
 *
 * Also: `worker run` warns when the config file is readable by other users.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { DEFAULT_BOT_SCOPES, SlackEmulator } from '../../support/slack-emulator.js';
import {
  Caller,
  deleteDestination,
  runCli,
  WorkerProcess,
  writeConfig,
  type CliResult,
  type TestConfig,
} from '../../support/harness.js';

/** Runs rabbitmqctl against the shared broker; this test touches only its own user and connections there. */
function rabbitmqctl(...args: string[]): string {
  return execFileSync('rabbitmqctl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Every file under `dir` (the worker's logdir: app.log and its rotations). */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)],
  );
}

describe('secrets never appear in logs, replies or output', function () {
  this.timeout(180_000);
  const hex = () => randomBytes(12).toString('hex');
  const brokerUser = `soar_sec_${randomBytes(4).toString('hex')}`;
  // A '/' so the URL-encoded form (%2F) differs from the raw one and both are checked.
  const brokerPassword = `Pw/${hex()}`;
  const wrongPassword = `Wrong/${hex()}`;
  const slackToken = `xoxb-${hex()}-${hex()}`;
  const pluginSecret = `plugin-${hex()}`;
  const brokerUrl = (password: string) => `amqp://${brokerUser}:${encodeURIComponent(password)}@127.0.0.1:5672`;

  /** Everything written during the test, by where it came from. */
  const written: { source: string; text: string }[] = [];
  let emu: SlackEmulator;
  let cfg: TestConfig;
  let worker: WorkerProcess | undefined;
  let caller: Caller;

  function forms(secret: string): string[] {
    return [
      secret,
      encodeURIComponent(secret),
      Buffer.from(secret).toString('base64'),
      Buffer.from(`${brokerUser}:${secret}`).toString('base64'),
    ];
  }

  function keep(source: string, res: CliResult): CliResult {
    written.push({ source: `${source} stdout`, text: res.stdout }, { source: `${source} stderr`, text: res.stderr });
    return res;
  }

  before(async () => {
    // rabbitmqctl must work here (it does for worker-run.test.ts); fail loudly if not.
    rabbitmqctl('add_user', brokerUser, brokerPassword);
    rabbitmqctl('set_permissions', '-p', '/', brokerUser, '.*', '.*', '.*');
    emu = await SlackEmulator.start();
    emu.addToken(slackToken, { scopes: DEFAULT_BOT_SCOPES, userType: 'bot', botUserId: emu.botUserId });
    cfg = writeConfig({
      worker: { amqp_url: brokerUrl(brokerPassword), max_attempts: 2 },
      sections: {
        fn_test: { effects_dir: tempEffects(), api_key: pluginSecret },
        fn_slack: { api_token: '$SECRET_TEST_SLACK_TOKEN', api_url: emu.apiUrl, retry_budget: 1 },
      },
    });
    fs.mkdirSync(path.join(cfg.dir, 'files', 'incidents', '2103'), { recursive: true });
    caller = await Caller.open();
  });

  function tempEffects(): string {
    return fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'secrets-effects-'));
  }

  const env = { SECRET_TEST_SLACK_TOKEN: slackToken };

  after(async () => {
    await caller?.close();
    if (worker) written.push({ source: 'worker run', text: worker.output });
    await worker?.stop('SIGKILL');
    if (cfg) await deleteDestination(cfg.destination);
    await emu?.close();
    try {
      rabbitmqctl('delete_user', brokerUser);
    } catch {
      // already gone
    }
  });

  async function startWorker(): Promise<WorkerProcess> {
    worker = WorkerProcess.start(cfg.file, env);
    await worker.waitFor();
    return worker;
  }

  /** Publishes through the raw caller and returns every reply once the final one is in. */
  async function call(fn: string, inputs: Record<string, unknown>): Promise<Record<string, any>[]> {
    const id = caller.publish(cfg.destination, caller.invocation(fn, inputs));
    await caller.waitForFinal([id], 60_000);
    return caller.replies.get(id)!;
  }

  it('drives success and failure paths, then finds no secret in anything written', async function () {
    // The broker is shared: another test run closing every connection takes the caller's
    // reply queue with it. Rerun then, from a fresh caller and worker.
    this.retries(2);
    await worker?.stop('SIGKILL');
    worker = undefined;
    await caller.close();
    caller = await Caller.open();
    emu.clearFaults();
    emu.setDown(false);
    await startWorker(); // first: it migrates the store selftest checks
    const ok = keep('selftest', await runCli(['selftest', '--config-file', cfg.file], env));
    expect(ok.code, ok.stdout + ok.stderr).to.equal(0);
    // invoke: success, and a secret passed as input is masked in the result.
    const inv = keep('invoke echo', await runCli(
      ['invoke', 'test_echo', '--config-file', cfg.file, '--destination', cfg.destination, '-i', `text=key ${pluginSecret} token ${slackToken}`, '--json'],
      env,
    ));
    expect(inv.code, inv.stderr).to.equal(0);
    expect(JSON.parse(inv.stdout.trim().split('\n').pop()!).results.content.echoed).to.equal('key *** token ***');

    // fn_slack success, then Slack refusing the token, then Slack down.
    const posted = await call('slack_post_message', { incident_id: 2103, slack_channel: 'inc-2103', slack_is_channel_private: false, slack_text: 'hello' });
    expect(posted[posted.length - 1]!.message, JSON.stringify(posted)).to.equal('Completed');
    emu.failNext('chat.postMessage', { error: 'invalid_auth' });
    const refused = await call('slack_post_message', { incident_id: 2103, slack_text: `leak ${slackToken}?` });
    expect(refused[refused.length - 1]!.message_type, JSON.stringify(refused)).to.equal(1);
    emu.setDown(true);
    const down = await call('slack_post_message', { incident_id: 2103, slack_text: 'while down' });
    emu.setDown(false);
    expect(down[down.length - 1]!.error.retryable, JSON.stringify(down)).to.equal(true);

    // Bad input of several kinds.
    const bad = [
      caller.publish(cfg.destination, `{"function": {"name": "test_echo"}, "inputs": {"text": "${slackToken}"`),
      caller.publish(cfg.destination, { function: { name: pluginSecret }, inputs: {} }),
      caller.publish(cfg.destination, { function: { name: 'test_echo' }, inputs: { [brokerPassword]: 1 } }),
    ];
    await caller.waitForFinal(bad);

    // Broker connection loss: close only this test's worker connections (its own user).
    const names = rabbitmqctl('list_connections', 'pid', 'user', '--quiet', '--no-table-headers')
      .split('\n')
      .map((l) => l.split('\t'))
      .filter(([, user]) => user?.trim() === brokerUser)
      .map(([pid]) => pid!.trim());
    expect(names.length, 'worker connections').to.be.greaterThan(0);
    for (const pid of names) rabbitmqctl('close_connection', pid, 'secrets test: closing on purpose');
    await worker!.waitFor('Lost the broker connection');
    await worker!.waitFor(/Connected to the broker[\s\S]*Connected to the broker/, 30_000);
    const after = await call('test_echo', { text: 'after reconnect' });
    expect(after[after.length - 1]!.message).to.equal('Completed');

    // A wrong broker password: selftest and run both fail, saying so without the password.
    const wrong = writeConfig({
      worker: { amqp_url: brokerUrl(wrongPassword) },
      sections: { fn_slack: { api_token: slackToken, api_url: emu.apiUrl }, fn_test: { effects_dir: tempEffects(), api_key: pluginSecret } },
    });
    const wrongSelftest = keep('selftest wrong password', await runCli(['selftest', '--config-file', wrong.file]));
    expect(wrongSelftest.code).to.not.equal(0);
    const wrongRun = keep('run wrong password', await runCli(['run', '--config-file', wrong.file]));
    expect(wrongRun.code).to.not.equal(0);
    expect(wrongRun.stderr + wrongRun.stdout).to.match(/ACCESS.REFUSED|refused|authentication/i);
    for (const f of filesUnder(path.join(wrong.dir, 'logs'))) written.push({ source: f, text: fs.readFileSync(f, 'utf8') });

    // Slack token revoked: selftest reports it.
    emu.revokeToken(slackToken);
    const revoked = keep('selftest revoked token', await runCli(['selftest', '--config-file', cfg.file], env));
    expect(revoked.code).to.not.equal(0);
    emu.tokenInfo(slackToken)!.revoked = false;

    await worker!.stop('SIGTERM');
    written.push({ source: 'worker run', text: worker!.output });
    worker = undefined;
    const logs = filesUnder(path.join(cfg.dir, 'logs'));
    expect(logs.length, 'app.log files').to.be.greaterThan(0);
    for (const f of logs) written.push({ source: f, text: fs.readFileSync(f, 'utf8') });
    for (const [id, replies] of caller.replies) written.push({ source: `replies to ${id}`, text: replies.map((r) => JSON.stringify(r)).join('\n') });

    // The capture is real: the logs saw the broker user, the Slack calls and the bad input.
    const all = written.map((w) => w.text).join('\n');
    expect(all).to.contain(brokerUser);
    expect(all).to.contain('invalid_auth');
    expect(all).to.contain('not valid JSON');
    expect(all).to.contain('Lost the broker connection');

    const secrets = { 'broker password': brokerPassword, 'wrong broker password': wrongPassword, 'Slack token': slackToken, 'plugin secret': pluginSecret };
    for (const { source, text } of written) {
      text.split('\n').forEach((line, n) => {
        for (const [what, secret] of Object.entries(secrets)) {
          for (const form of forms(secret)) {
            expect(line.includes(form), `${what} (as ${JSON.stringify(form)}) in ${source} line ${n + 1}: ${line.slice(0, 300)}`).to.equal(false);
          }
        }
      });
    }
  });

  describe('config file permissions', () => {
    const warning = /readable by (every user|its group) and may hold secrets; run: chmod 600/;

    it('warns at start when the config file is readable by other users, and not when it is 600', async () => {
      await worker?.stop('SIGKILL'); // the lock file is shared with the test above
      worker = undefined;
      for (const [mode, who] of [[0o644, 'every user'], [0o640, 'its group']] as const) {
        fs.chmodSync(cfg.file, mode);
        const open = WorkerProcess.start(cfg.file, env);
        await open.waitFor();
        await open.stop('SIGTERM');
        written.push({ source: `worker run ${mode.toString(8)}`, text: open.output });
        expect(open.output).to.contain(`WARN ${cfg.file} is readable by ${who} and may hold secrets; run: chmod 600 ${cfg.file}`);
      }

      fs.chmodSync(cfg.file, 0o600);
      const closed = WorkerProcess.start(cfg.file, env);
      await closed.waitFor();
      await closed.stop('SIGTERM');
      expect(closed.output).to.not.match(warning);
    });
  });
});
