import { expect } from 'chai';
import { ConfigError } from '../../../src/core/runtime/errors.js';
import { parseConfigText, resolveConfigPath, substituteEnv, validateSection } from '../../../src/core/config.js';
import { pluginDestinations, readWorkerSection, WORKER_SECTION_SCHEMA } from '../../../src/core/worker-config.js';
import { clearSecrets, redact } from '../../../src/core/redact.js';

describe('config', () => {
  afterEach(() => clearSecrets());

  it('strips inline comments only after white space, keeping URL fragments', () => {
    const cfg = parseConfigText(
      '[fn_slack]\nsoar_url = https://soar.example.com/#incidents/{incident_id}   ; link template\nusername = SOAR # the bot name\n',
      '/etc/app.config',
      {},
    );
    expect(cfg.sections.fn_slack).to.deep.equal({ soar_url: 'https://soar.example.com/#incidents/{incident_id}', username: 'SOAR' });
  });

  it('keeps values as strings (no booleans) and unquotes quoted ones', () => {
    const cfg = parseConfigText('[a]\nx = true\ny = "a ; b"\nz =\n', 'f', {});
    expect(cfg.sections.a).to.deep.equal({ x: 'true', y: 'a ; b', z: '' });
  });

  it('substitutes $VAR and ${VAR}, keeps $$ as $, names an unset variable', () => {
    expect(substituteEnv('a-$X-${Y}-$$', { X: '1', Y: '2' }, 'w')).to.equal('a-1-2-$');
    expect(() => substituteEnv('$MISSING_ONE', {}, 'f: [s] k')).to.throw(ConfigError, 'f: [s] k: environment variable MISSING_ONE is not set');
  });

  it('registers secret values so that logs mask them', () => {
    parseConfigText('[fn_slack]\napi_token = $TOK\n', 'f', { TOK: 'xoxb-111-222-abcdef' });
    parseConfigText('[soar]\napi_key_secret = s3cr3t-value\n', 'f', {});
    expect(redact('token is xoxb-111-222-abcdef')).to.equal('token is ***');
    expect(redact('secret s3cr3t-value')).to.equal('secret ***');
  });

  it('resolves --config-file, then APP_CONFIG_FILE, then the default', () => {
    expect(resolveConfigPath('/x/a.config', { APP_CONFIG_FILE: '/y/b.config' })).to.equal('/x/a.config');
    expect(resolveConfigPath(undefined, { APP_CONFIG_FILE: '/y/b.config' })).to.equal('/y/b.config');
    expect(resolveConfigPath(undefined, {})).to.match(/\.worker\/app\.config$/);
  });

  it('applies [worker] defaults and coerces numbers', () => {
    const section = readWorkerSection(parseConfigText('[worker]\nnum_workers = 7\n', '/c', {}));
    expect(section.num_workers).to.equal(7);
    // Left out: filled in from the loaded plugins by loadEnvironment (core names no package).
    expect(section.destinations).to.equal('');
    expect(section.amqp_url).to.equal('amqp://guest:guest@localhost:5672');
    expect(section.lock_file).to.match(/^\/.*\.worker\/worker\.lock$/);
    expect(section.metrics_port).to.equal(undefined);
  });

  it('the default destinations are the plugins\' own, in load order, once each', () => {
    expect(pluginDestinations([{ destination: 'fn_a' }, { destination: 'fn_b' }, { destination: 'fn_a' }])).to.equal('fn_a, fn_b');
    expect(pluginDestinations([])).to.equal('');
  });

  it('reports every problem with file, section, key and what is wrong', () => {
    const cfg = parseConfigText('[worker]\nnum_workers = 0\nplatform = cloud\nnum_wrokers = 3\namqp_url = http://x\n', '/etc/w.config', {});
    let err: ConfigError | undefined;
    try {
      validateSection(cfg, 'worker', WORKER_SECTION_SCHEMA);
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).to.be.instanceOf(ConfigError);
    const lines = err!.message.split('\n');
    expect(lines).to.include('/etc/w.config: [worker] num_workers: must be >= 1 (got "0")');
    expect(lines).to.include('/etc/w.config: [worker] platform: must be one of local, soar (got "cloud")');
    expect(lines).to.include('/etc/w.config: [worker] num_wrokers: is not a known key; check its spelling');
    expect(lines.some((l) => l.startsWith('/etc/w.config: [worker] amqp_url: must match pattern'))).to.equal(true);
  });

  it('app.config.example is valid for [worker] and [fn_slack]', async () => {
    const fs = await import('node:fs');
    const { SLACK_CONFIG_SCHEMA } = await import('../../../src/functions/slack/config.js');
    const text = fs.readFileSync(new URL('../../../app.config.example', import.meta.url), 'utf8');
    const cfg = parseConfigText(text, 'app.config.example', { SLACK_BOT_TOKEN: 'xoxb-1-2-3' });
    expect(readWorkerSection(cfg).destinations).to.equal('fn_slack');
    const slack = validateSection<Record<string, unknown>>(cfg, 'fn_slack', SLACK_CONFIG_SCHEMA);
    expect(slack.soar_url).to.equal('https://soar.example.com/#incidents/{incident_id}');
    expect(slack.api_token).to.equal('xoxb-1-2-3');
  });

  it('reports a required key of a missing section by name', () => {
    const schema = { type: 'object', required: ['api_token'], properties: { api_token: { type: 'string' } } };
    expect(() => validateSection(parseConfigText('', '/c', {}), 'fn_slack', schema)).to.throw(
      ConfigError,
      '/c: [fn_slack] api_token: is required but missing',
    );
  });
});
