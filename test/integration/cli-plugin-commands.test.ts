/**
 * Commands a plugin adds to `worker` (issue #12 item 7), run as a person would: from a
 * plugin loaded by path through `[worker] plugins`, and fn_slack's own `slack-manifest`
 * (test/integration/cli.test.ts) from the built-in plugin.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT, runCli, writeConfig } from '../support/harness.js';

const GREET_PLUGIN = path.join(REPO_ROOT, 'test', 'support', 'command-plugin.ts');

describe('plugin-contributed commands (spawned CLI)', function () {
  this.timeout(60_000);

  /** A config loading the greet plugin by a path relative to the config file. */
  function greetConfig(greet: Record<string, string> = {}) {
    const cfg = writeConfig({ withEchoPlugin: false, sections: { fn_greet: greet } });
    const relative = path.relative(cfg.dir, GREET_PLUGIN);
    fs.writeFileSync(cfg.file, fs.readFileSync(cfg.file, 'utf8').replace(/^plugins = .*$/m, `plugins = ${relative}`));
    return cfg;
  }

  it('runs a command of a plugin named in [worker] plugins, with its options, its config section and the config file', async () => {
    const cfg = greetConfig({ greeting: 'good evening' });
    const res = await runCli(['--config-file', cfg.file, 'greet', '--who', 'night shift']);
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.equal(`good evening, night shift (config ${cfg.file})\n`);
    const help = await runCli(['--config-file', cfg.file, '--help']);
    expect(help.stdout).to.match(/worker greet +Greet someone with \[fn_greet\] greeting/);
    expect(help.stdout).to.match(/worker slack-manifest /);
  });

  it("exits with the code the handler returns, and 2 with the config error when the plugin's section is invalid", async () => {
    const cfg = greetConfig();
    const sulk = await runCli(['greet', '--sulk'], { APP_CONFIG_FILE: cfg.file });
    expect(sulk.code).to.equal(7);
    expect(sulk.stdout).to.equal('');
    expect(sulk.stderr).to.contain('not greeting anyone today');

    const bad = greetConfig({ greting: 'hi' });
    const res = await runCli(['--config-file', bad.file, 'greet']);
    expect(res.code).to.equal(2);
    expect(res.stderr).to.contain(`${bad.file}: [fn_greet] greting`);
  });

  it('says why a plugin command is missing when [worker] plugins does not load, and the built-in commands still work', async () => {
    const cfg = writeConfig({ withEchoPlugin: false, worker: { plugins: './no-such-plugin.js' } });
    const res = await runCli(['--config-file', cfg.file, 'greet']);
    expect(res.code).to.equal(2);
    expect(res.stderr).to.contain('Unknown argument: greet');
    expect(res.stderr).to.contain('The commands of [worker] plugins are missing: Plugin "./no-such-plugin.js" (from [worker] plugins) failed to load');
    const manifest = await runCli(['--config-file', cfg.file, 'slack-manifest']);
    expect(manifest.code, manifest.stderr).to.equal(0);
    expect(manifest.stdout).to.contain('oauth_config:');
  });
});
