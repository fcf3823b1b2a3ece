/**
 * `worker config` and `worker slack-manifest` run as a person would (spawned CLI).
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { runCli, tempDir } from '../support/harness.js';
import { parseConfigText, validateSection } from '../../src/core/config.js';
import { WORKER_SECTION_SCHEMA } from '../../src/core/worker-config.js';
import { readSoarSection, SOAR_SECTION_SCHEMA } from '../../src/platforms/soar/soar-config.js';
import { SLACK_CONFIG_SCHEMA } from '../../src/functions/slack/config.js';
import { INBOUND_SCOPES, REQUIRED_SCOPES } from '../../src/functions/slack/scopes.js';

const TOKEN = { SLACK_BOT_TOKEN: 'xoxb-1-2-cli-test' };

/** A config as an earlier version wrote it: fewer keys, a person's values and comments. */
const OLDER_CONFIG = [
  '; Production worker, edited by hand',
  '[worker]',
  'amqp_url = amqp://worker:$AMQP_PASSWORD@mq.example.com:5672  ; the shared broker',
  '# seven, measured',
  'num_workers = 7',
  'store = /srv/worker/worker.db',
  '',
  '[fn_slack]',
  'api_token = $SLACK_BOT_TOKEN',
  'username = Night Shift',
  '',
].join('\n');

describe('worker config (spawned CLI)', function () {
  this.timeout(60_000);

  it('-c writes a complete commented config, private to its owner, that validates once the token is set', async () => {
    const file = path.join(tempDir(), 'etc', 'app.config');
    const res = await runCli(['config', '-c', file]);
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.contain(`Wrote ${file}`);
    expect(fs.statSync(file).mode & 0o777).to.equal(0o600);
    const cfg = parseConfigText(fs.readFileSync(file, 'utf8'), file, TOKEN);
    expect(validateSection<Record<string, unknown>>(cfg, 'worker', WORKER_SECTION_SCHEMA).num_workers).to.equal(25);
    expect(validateSection<Record<string, unknown>>(cfg, 'fn_slack', SLACK_CONFIG_SCHEMA).api_token).to.equal(TOKEN.SLACK_BOT_TOKEN);
    // [soar] is there to fill in, commented out: the local config loads without SOAR variables.
    const written = fs.readFileSync(file, 'utf8');
    expect(written).to.contain('\n;[soar]\n');
    expect(written).to.contain('\n;base_url =\n');
    expect(Object.keys(cfg.sections)).to.deep.equal(['worker', 'fn_slack']);
  });

  it('-c --platform soar writes platform = soar and an active [soar] whose API key comes from the environment', async () => {
    const file = path.join(tempDir(), 'app.config');
    const res = await runCli(['config', '-c', '--platform', 'soar', file]);
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.contain('SOAR_API_KEY_ID and SOAR_API_KEY_SECRET in the environment and [soar] base_url and org_id in the file');
    const text = fs
      .readFileSync(file, 'utf8')
      .replace(/^base_url =$/m, 'base_url = https://soar.example.com')
      .replace(/^org_id =$/m, 'org_id = 201');
    const cfg = parseConfigText(text, file, { ...TOKEN, SOAR_API_KEY_ID: 'id-1', SOAR_API_KEY_SECRET: 'secret-2' });
    expect(validateSection<Record<string, unknown>>(cfg, 'worker', WORKER_SECTION_SCHEMA).platform).to.equal('soar');
    expect(Object.keys(cfg.sections.soar!)).to.deep.equal(Object.keys(SOAR_SECTION_SCHEMA.properties as object));
    expect(readSoarSection(cfg)).to.include({ org_id: 201, api_key_id: 'id-1', api_key_secret: 'secret-2' });

    const before = fs.readFileSync(file, 'utf8');
    const wrong = await runCli(['config', '-u', '--platform', 'soar', file]);
    // A usage error found by the command's own check (as "Give -c or -u"): exit 1, nothing written.
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr).to.contain('--platform goes with -c only');
    expect(fs.readFileSync(file, 'utf8')).to.equal(before);
  });

  it('-c refuses to overwrite an existing file (exit 2) unless -f', async () => {
    const file = path.join(tempDir(), 'app.config');
    fs.writeFileSync(file, OLDER_CONFIG);
    const res = await runCli(['config', '-c', file]);
    expect(res.code).to.equal(2);
    expect(res.stderr).to.contain(file);
    expect(fs.readFileSync(file, 'utf8')).to.equal(OLDER_CONFIG);
    const forced = await runCli(['config', '-c', '-f', file]);
    expect(forced.code, forced.stderr).to.equal(0);
    expect(fs.readFileSync(file, 'utf8')).not.to.equal(OLDER_CONFIG);
  });

  it('-u on an older file adds only the missing keys, keeps its values and comments, and a second -u changes nothing', async () => {
    const file = path.join(tempDir(), 'app.config');
    fs.writeFileSync(file, OLDER_CONFIG);
    const res = await runCli(['config', '-u', file]);
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.match(/^Added to \[worker\]: ca_file, cert_file, key_file, destinations, platform, platform_dir, /m);
    expect(res.stdout).to.match(/^Added to \[fn_slack\]: api_url, /m);
    expect(res.stdout).to.match(/^Added section \[soar\] \(commented out: \[worker\] platform is not soar\)$/m);
    expect(res.stdout).not.to.match(/\b(amqp_url|num_workers|store|api_token|username)\b/);
    const updated = fs.readFileSync(file, 'utf8');
    // Every original line is still there, in order.
    const lines = updated.split('\n');
    let at = -1;
    for (const original of OLDER_CONFIG.split('\n').filter(Boolean)) {
      const next = lines.indexOf(original, at + 1);
      expect(next, `kept: ${original}`).to.be.greaterThan(at);
      at = next;
    }
    const cfg = parseConfigText(updated, file, { ...TOKEN, AMQP_PASSWORD: 'pw' });
    const worker = validateSection<Record<string, unknown>>(cfg, 'worker', WORKER_SECTION_SCHEMA);
    expect(worker).to.include({ num_workers: 7, store: '/srv/worker/worker.db', amqp_url: 'amqp://worker:pw@mq.example.com:5672', destinations: 'fn_slack' });
    expect(validateSection<Record<string, unknown>>(cfg, 'fn_slack', SLACK_CONFIG_SCHEMA)).to.include({ username: 'Night Shift' });
    expect(Object.keys(cfg.sections.worker!).sort()).to.deep.equal(Object.keys(WORKER_SECTION_SCHEMA.properties as object).sort());

    const again = await runCli(['config', '-u', file]);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.equal(`${file} already has every section and key\n`);
    expect(fs.readFileSync(file, 'utf8')).to.equal(updated);
  });

  it('-u on a file that does not exist exits 2 and says to create it', async () => {
    const file = path.join(tempDir(), 'missing.config');
    const res = await runCli(['config', '-u', file]);
    expect(res.code).to.equal(2);
    expect(res.stderr).to.contain('worker config -c');
    expect(fs.existsSync(file)).to.equal(false);
  });
});

describe('worker slack-manifest (spawned CLI)', function () {
  this.timeout(60_000);

  it('lists exactly the bot scopes the functions need, each once', async () => {
    const res = await runCli(['slack-manifest', '--name', 'SOAR Night Shift']);
    expect(res.code, res.stderr).to.equal(0);
    const lines = res.stdout.split('\n');
    const start = lines.indexOf('    bot:');
    expect(start).to.be.greaterThan(0);
    const scopes: string[] = [];
    for (const line of lines.slice(start + 1)) {
      const m = /^ {6}- "([^"]+)"/.exec(line);
      if (!m) break;
      scopes.push(m[1]!);
    }
    expect(scopes).to.deep.equal([...Object.keys(REQUIRED_SCOPES), ...Object.keys(INBOUND_SCOPES)].sort());
    expect(res.stdout).to.contain('  name: "SOAR Night Shift"');
    expect(res.stdout).to.contain('  token_rotation_enabled: false');
    expect(res.stdout).to.contain('  socket_mode_enabled: true');
  });

  it('takes --inbound http with --request-url, and --inbound off for an outbound-only app', async () => {
    const http = await runCli(['slack-manifest', '--inbound', 'http', '--request-url', 'https://worker.example.com/slack', '--command', '/secops']);
    expect(http.code, http.stderr).to.equal(0);
    expect(http.stdout).to.contain('    request_url: "https://worker.example.com/slack"');
    expect(http.stdout).to.contain('    - command: "/secops"');
    expect(http.stdout).to.contain('  socket_mode_enabled: false');
    const off = await runCli(['slack-manifest', '--inbound', 'off']);
    expect(off.code, off.stderr).to.equal(0);
    expect(off.stdout).not.to.contain('event_subscriptions');
    expect(off.stdout).not.to.contain('"commands"');
  });
});
