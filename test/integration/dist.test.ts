/**
 * The built output under plain Node (no tsx): `npm test` builds before mocha runs.
 * This catches CommonJS interop mistakes that type-check but fail at run time (named
 * imports from @slack/web-api, amqplib, ini) and a broken `bin` entry.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { REPO_ROOT, writeConfig } from '../support/harness.js';
import { SlackEmulator } from '../support/slack-emulator.js';

const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli.js');

describe('built dist/ under plain Node', function () {
  this.timeout(30_000);

  it('exists (run `npm run build` first; `npm test` does)', () => {
    expect(fs.existsSync(CLI), CLI).to.equal(true);
  });

  it('`worker --help` lists every command', () => {
    const res = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
    expect(res.status, res.stderr).to.equal(0);
    // slack-manifest is fn_slack's own command, registered through the plugin contract.
    for (const cmd of ['worker run', 'worker invoke <function>', 'worker selftest', 'worker customize', 'worker functions', 'worker slack-manifest']) {
      expect(res.stdout).to.contain(cmd);
    }
  });

  it('`worker functions` loads fn_slack and prints its inputs', () => {
    const cfg = writeConfig({ withEchoPlugin: false });
    const res = spawnSync(process.execPath, [CLI, 'functions', '--config-file', cfg.file], { encoding: 'utf8' });
    expect(res.status, res.stderr).to.equal(0);
    expect(res.stdout).to.contain('fn_slack 0.1.0 (destination fn_slack)');
    expect(res.stdout).to.contain('  slack_post_message: ');
    expect(res.stdout).to.contain('    incident_id: integer (required)');
  });

  it("the built Slack client talks to Slack through @slack/web-api's runtime exports", async () => {
    const emulator = await SlackEmulator.start();
    try {
      const mod = (await import(pathToFileURL(path.join(REPO_ROOT, 'dist', 'src', 'functions', 'slack', 'slack-client.js')).href)) as typeof import('../../src/functions/slack/slack-client.js');
      const logging = (await import(pathToFileURL(path.join(REPO_ROOT, 'dist', 'src', 'core', 'logging.js')).href)) as typeof import('../../src/core/logging.js');
      const client = new mod.SlackClient({ token: emulator.botToken, apiUrl: emulator.apiUrl, log: logging.silentLogger(), timeoutMs: 5000, retryBudgetMs: 5000 });
      const res = await client.call('auth.test');
      expect(res.user_id).to.equal(emulator.botUserId);
      emulator.failNext('auth.test', { retryAfter: 1 });
      const waits: number[] = [];
      await client.call('auth.test', {}, { onWait: (w) => void waits.push(w.seconds) });
      expect(waits).to.deep.equal([1]);
      let code: string | undefined;
      try {
        await client.call('conversations.info', { channel: 'C404' });
      } catch (err) {
        code = (err as { code?: string }).code;
      }
      expect(code).to.equal('slack_channel_not_found');
    } finally {
      await emulator.close();
    }
  });
});
