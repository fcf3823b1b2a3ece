import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigError } from '../../../../src/core/runtime/errors.js';
import { parseConfigText, validateSection } from '../../../../src/core/config.js';
import {
  configSectionsFor,
  configTodo,
  configuredPlatform,
  createConfig,
  renderConfig,
  secretEnvName,
  updateConfig,
  type ConfigSectionSpec,
} from '../../../../src/core/commands/config-writer.js';
import { WORKER_SECTION_SCHEMA } from '../../../../src/core/worker-config.js';
import { clearSecrets } from '../../../../src/core/redact.js';
import { readSoarSection, SOAR_SECTION_SCHEMA } from '../../../../src/platforms/soar/soar-config.js';
import { SLACK_CONFIG_SCHEMA } from '../../../../src/functions/slack/config.js';
import { builtinPlugins } from '../../../../src/functions/index.js';
import { PLATFORM_CONFIG_SECTIONS } from '../../../../src/platforms/index.js';

const TOKEN_ENV = { SLACK_BOT_TOKEN: 'xoxb-111-222-abcdef' };
const SOAR_ENV = { ...TOKEN_ENV, SOAR_API_KEY_ID: 'key-id-1', SOAR_API_KEY_SECRET: 'key-secret-2' };
const SOAR_KEYS = Object.keys(SOAR_SECTION_SCHEMA.properties as object);

/** The text with `;[soar]` and its `;key = value` lines uncommented (what a person does to use it). */
function uncommentSoar(text: string): string {
  let inSoar = false;
  return text
    .split('\n')
    .map((line) => {
      if (/^;?\[/.test(line)) inSoar = line === ';[soar]';
      return inSoar && /^;(\[|[a-z_]+ =)/.test(line) ? line.slice(1) : line;
    })
    .join('\n');
}

function defaultsOf(schema: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, prop] of Object.entries(schema.properties as Record<string, { default?: unknown }>)) {
    if (prop.default !== undefined) out[key] = prop.default;
  }
  return out;
}

describe('config writer', () => {
  let dir: string;
  const sections = configSectionsFor(builtinPlugins, { platformSections: PLATFORM_CONFIG_SECTIONS });

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'config-writer-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    clearSecrets();
  });

  describe('renderConfig', () => {
    it('lists [worker] first, then each plugin section, then [soar] commented out', () => {
      expect(sections.map((s) => [s.name, s.commentedOut === true])).to.deep.equal([
        ['worker', false],
        ['fn_slack', false],
        ['soar', true],
      ]);
      const text = renderConfig(sections);
      expect(text.indexOf('[worker]')).to.be.lessThan(text.indexOf('[fn_slack]'));
      expect(text.indexOf('[fn_slack]')).to.be.lessThan(text.indexOf('\n;[soar]\n'));
      expect(text).not.to.match(/^\[soar\]/m);
      expect(text.startsWith(';')).to.equal(true);
      expect(text.endsWith('\n')).to.equal(true);
    });

    it('round-trips: parses and validates to the schema defaults once the token variable is set', () => {
      const text = renderConfig(sections);
      const cfg = parseConfigText(text, '/etc/app.config', TOKEN_ENV);
      expect(Object.keys(cfg.sections)).to.deep.equal(['worker', 'fn_slack']);
      // Every schema property is written, no more.
      expect(Object.keys(cfg.sections.worker!)).to.deep.equal(Object.keys(WORKER_SECTION_SCHEMA.properties as object));
      // Optional secrets (app_token, signing_secret) are written commented out, referring to
      // their variable, so that the file loads without them.
      const optionalSecrets = ['app_token', 'signing_secret'];
      expect(Object.keys(cfg.sections.fn_slack!)).to.deep.equal(
        Object.keys(SLACK_CONFIG_SCHEMA.properties as object).filter((k) => !optionalSecrets.includes(k)),
      );
      expect(text).to.contain(';app_token = $SLACK_APP_TOKEN\n');
      expect(text).to.contain(';signing_secret = $SLACK_SIGNING_SECRET\n');

      const worker = validateSection<Record<string, unknown>>(cfg, 'worker', WORKER_SECTION_SCHEMA);
      // The schema has no default destinations (core names no package): the file writes the packages' own.
      expect(worker).to.deep.equal({ ...defaultsOf(WORKER_SECTION_SCHEMA), destinations: 'fn_slack' });
      const slack = validateSection<Record<string, unknown>>(cfg, 'fn_slack', SLACK_CONFIG_SCHEMA);
      expect(slack).to.deep.equal({ ...defaultsOf(SLACK_CONFIG_SCHEMA), api_token: TOKEN_ENV.SLACK_BOT_TOKEN });
    });

    it('writes each key after its description, keys without a default empty', () => {
      const lines = renderConfig(sections).split('\n');
      const at = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
      expect(lines[at('num_workers =') - 1]).to.equal('; invocations in flight at once (the AMQP prefetch)');
      expect(lines[at('metrics_port')]).to.equal('metrics_port =');
      expect(lines[at('metrics_port') - 1]).to.equal('; health and metrics listener; off when empty');
      expect(lines[at('api_url')]).to.equal('api_url = https://slack.com/api/');
    });

    it('refers secrets to the environment: $SLACK_BOT_TOKEN, else $SECTION_KEY', () => {
      const text = renderConfig(sections);
      expect(text).to.match(/^api_token = \$SLACK_BOT_TOKEN$/m);
      expect(text).not.to.match(/xox[bp]-[A-Za-z0-9]/);
      // The variable is needed when [fn_slack] is validated (run, selftest), not to read the file.
      const unset = parseConfigText(text, '/etc/app.config', {});
      expect(() => validateSection(unset, 'fn_slack', SLACK_CONFIG_SCHEMA)).to.throw(ConfigError, 'SLACK_BOT_TOKEN');

      const custom: ConfigSectionSpec = {
        name: 'my-plugin',
        schema: {
          type: 'object',
          required: ['client_secret'],
          properties: {
            client_secret: { type: 'string', description: 'OAuth client secret' },
            api_key: { type: 'string', default: '', description: 'optional key' },
            motto: { type: 'string', default: 'costs $5 ; cheap', description: 'odd default' },
          },
        },
      };
      const out = renderConfig([custom]);
      expect(secretEnvName('my-plugin', 'client_secret')).to.equal('MY_PLUGIN_CLIENT_SECRET');
      expect(out).to.match(/^client_secret = \$MY_PLUGIN_CLIENT_SECRET$/m);
      // An optional secret is commented out, so the file loads without the variable.
      expect(out).to.match(/^;api_key = \$MY_PLUGIN_API_KEY$/m);
      const cfg = parseConfigText(out, 'f', { MY_PLUGIN_CLIENT_SECRET: 'shh-secret' });
      expect(cfg.sections['my-plugin']).to.deep.equal({ client_secret: 'shh-secret', motto: 'costs $5 ; cheap' });
    });
  });

  describe('[soar]', () => {
    it('local (the default): every [soar] key is written commented, after its comment, and loads without SOAR variables', () => {
      const text = renderConfig(sections);
      const lines = text.split('\n');
      for (const key of SOAR_KEYS) {
        const at = lines.findIndex((l, i) => i > lines.indexOf(';[soar]') && l.startsWith(`;${key} =`));
        expect(at, key).to.be.greaterThan(0);
        expect(lines[at - 1], key).to.match(/^; \S/);
      }
      expect(text).to.contain(';api_key_secret = $SOAR_API_KEY_SECRET\n');
      expect(text).to.contain(';retries = 3\n');
      expect(text).to.contain('; Uncomment it (and set [worker] platform = soar) to use SOAR.\n;[soar]\n');
      // Loads with the Slack token alone: [soar] is not a section until uncommented.
      expect(Object.keys(parseConfigText(text, 'f', TOKEN_ENV).sections)).to.deep.equal(['worker', 'fn_slack']);

      // Uncommented, with platform = soar and its address filled in, it is a valid [soar].
      const used = uncommentSoar(text)
        .replace(/^platform = local$/m, 'platform = soar')
        .replace(/^base_url =$/m, 'base_url = https://soar.example.com')
        .replace(/^org_id =$/m, 'org_id = 201');
      const soar = readSoarSection(parseConfigText(used, 'f', SOAR_ENV));
      expect(soar).to.include({ base_url: 'https://soar.example.com', org_id: 201, api_key_id: 'key-id-1', api_key_secret: 'key-secret-2', retries: 3 });
    });

    it("platform 'soar': [worker] platform = soar and an active [soar] with every key; the API key comes from the environment", () => {
      const soarSections = configSectionsFor(builtinPlugins, { platform: 'soar', platformSections: PLATFORM_CONFIG_SECTIONS });
      expect(soarSections.map((s) => [s.name, s.commentedOut === true])).to.deep.equal([
        ['worker', false],
        ['fn_slack', false],
        ['soar', false],
      ]);
      const text = renderConfig(soarSections);
      expect(text).to.match(/^platform = soar$/m);
      expect(text).to.match(/^api_key_id = \$SOAR_API_KEY_ID$/m);
      expect(text).to.match(/^api_key_secret = \$SOAR_API_KEY_SECRET$/m);
      expect(() => readSoarSection(parseConfigText(text, 'f', TOKEN_ENV))).to.throw(ConfigError, 'SOAR_API_KEY_ID');
      const cfg = parseConfigText(text, 'f', SOAR_ENV);
      expect(Object.keys(cfg.sections.soar!)).to.deep.equal(SOAR_KEYS);
      expect(validateSection<Record<string, unknown>>(cfg, 'worker', WORKER_SECTION_SCHEMA).platform).to.equal('soar');
      // base_url and org_id have no default: the loader names them until they are filled in.
      expect(() => readSoarSection(cfg)).to.throw(ConfigError, /base_url/);
    });

    it('configuredPlatform reads [worker] platform from the text, without substituting anything', () => {
      const file = path.join(dir, 'app.config');
      const write = (text: string) => {
        fs.writeFileSync(file, text);
        return configuredPlatform(file);
      };
      expect(write('[worker]\nplatform = soar   ; SOAR in production\n')).to.equal('soar');
      expect(write('[worker]\nplatform = "local"\n')).to.equal('local');
      expect(write('[worker]\nnum_workers = 3\n[other]\nplatform = soar\n')).to.equal(undefined);
      expect(write('[worker]\n;platform = soar\n')).to.equal(undefined);
      expect(configuredPlatform(path.join(dir, 'missing.config'))).to.equal(undefined);
    });
  });

  describe('createConfig (-c)', () => {
    it('creates parent folders and writes the file with mode 0600', () => {
      const file = path.join(dir, 'a', 'b', 'app.config');
      expect(createConfig(file, sections, { overwrite: false })).to.equal(file);
      expect(fs.readFileSync(file, 'utf8')).to.equal(renderConfig(sections));
      expect(fs.statSync(file).mode & 0o777).to.equal(0o600);
    });

    it('refuses to overwrite an existing file, naming it, unless told to', () => {
      const file = path.join(dir, 'app.config');
      fs.writeFileSync(file, '[worker]\nnum_workers = 3\n', { mode: 0o644 });
      let err: Error | undefined;
      try {
        createConfig(file, sections, { overwrite: false });
      } catch (e) {
        err = e as Error;
      }
      expect(err).to.be.instanceOf(ConfigError);
      expect(err!.message).to.contain(file).and.to.contain('overwrite');
      expect(fs.readFileSync(file, 'utf8')).to.equal('[worker]\nnum_workers = 3\n');

      createConfig(file, sections, { overwrite: true });
      expect(fs.readFileSync(file, 'utf8')).to.equal(renderConfig(sections));
      expect(fs.statSync(file).mode & 0o777).to.equal(0o600);
    });
  });

  describe('updateConfig (-u)', () => {
    const older = [
      '; our production worker -- do not touch without a change ticket',
      '[worker]',
      'amqp_url = amqps://svc:pw@mq.internal:5671   ; TLS, see CHG-1234',
      '# fewer in flight: Slack rate limits',
      'num_workers   =   7',
      'loglevel = DEBUG',
      ';metrics_port = 9100',
      '',
      '; trailing comment kept where it is',
      '',
      '[custom]',
      'x = 1',
      '',
    ].join('\n');

    it('keeps existing lines, values and comments, adds missing keys and the [fn_slack] section', () => {
      const file = path.join(dir, 'app.config');
      fs.writeFileSync(file, older);
      const result = updateConfig(file, sections);

      const workerKeys = Object.keys(WORKER_SECTION_SCHEMA.properties as object);
      const addedWorker = workerKeys.filter((k) => !['amqp_url', 'num_workers', 'loglevel', 'metrics_port'].includes(k));
      expect(result.added).to.deep.equal([
        { section: 'worker', keys: addedWorker, newSection: false, commentedOut: false },
        { section: 'fn_slack', keys: Object.keys(SLACK_CONFIG_SCHEMA.properties as object), newSection: true, commentedOut: false },
        { section: 'soar', keys: SOAR_KEYS, newSection: true, commentedOut: true },
      ]);

      const text = fs.readFileSync(file, 'utf8');
      // Every original line survives, in order, unchanged.
      const lines = text.split('\n');
      let from = 0;
      for (const line of older.split('\n').slice(0, -1)) {
        const found = lines.indexOf(line, from);
        expect(found, `line kept: ${line}`).to.be.greaterThanOrEqual(from);
        from = found + 1;
      }
      // The original text up to and including the last [worker] key is a prefix.
      expect(text.startsWith(older.slice(0, older.indexOf(';metrics_port')))).to.equal(true);
      // New [worker] keys sit inside [worker], before [custom]; [fn_slack] is at the end.
      expect(text.indexOf('max_attempts = 5')).to.be.lessThan(text.indexOf('[custom]'));
      expect(text.indexOf('[fn_slack]')).to.be.greaterThan(text.indexOf('x = 1'));
      expect(text).to.contain('; deliveries of one invocation before it is dead-lettered\nmax_attempts = 5\n');

      const cfg = parseConfigText(text, file, TOKEN_ENV);
      expect(cfg.sections.worker).to.include({
        amqp_url: 'amqps://svc:pw@mq.internal:5671',
        num_workers: '7',
        loglevel: 'DEBUG',
        max_attempts: '5',
      });
      expect(cfg.sections.worker).not.to.have.property('metrics_port');
      expect(cfg.sections.custom).to.deep.equal({ x: '1' });
      expect(cfg.sections.fn_slack).to.include({ api_token: TOKEN_ENV.SLACK_BOT_TOKEN, api_url: 'https://slack.com/api/' });
      validateSection(cfg, 'worker', WORKER_SECTION_SCHEMA);
      validateSection(cfg, 'fn_slack', SLACK_CONFIG_SCHEMA);
      // [soar] came commented out, at the end: the file loads without SOAR variables.
      expect(text.indexOf(';[soar]')).to.be.greaterThan(text.indexOf('[fn_slack]'));
      expect(cfg.sections).not.to.have.property('soar');
    });

    it('platform = soar in the file: adds an active [soar], which then needs the SOAR variables', () => {
      const file = path.join(dir, 'app.config');
      fs.writeFileSync(file, '[worker]\nplatform = soar\n');
      const result = updateConfig(file, configSectionsFor(builtinPlugins, { platform: configuredPlatform(file), platformSections: PLATFORM_CONFIG_SECTIONS }));
      expect(result.added.find((a) => a.section === 'soar')).to.deep.equal({ section: 'soar', keys: SOAR_KEYS, newSection: true, commentedOut: false });
      const text = fs.readFileSync(file, 'utf8');
      expect(text).to.contain('\n[soar]\n');
      expect(text).not.to.contain(';[soar]');
      expect(() => readSoarSection(parseConfigText(text, file, TOKEN_ENV))).to.throw(ConfigError, 'SOAR_API_KEY_ID');
      expect(Object.keys(parseConfigText(text, file, SOAR_ENV).sections.soar!)).to.deep.equal(SOAR_KEYS);
    });

    it('a commented-out [soar] is left alone for a local config; an active one gets its missing keys, active only for platform = soar', () => {
      const file = path.join(dir, 'app.config');
      const example = fs.readFileSync(new URL('../../../../app.config.example', import.meta.url), 'utf8');
      fs.writeFileSync(file, example);
      const fromExample = updateConfig(file, sections);
      expect(fromExample.added.map((a) => a.section)).not.to.include('soar');
      expect(fs.readFileSync(file, 'utf8').match(/^;\[soar\]$/gm)).to.have.length(1);

      // Local config, active [soar] lacking keys: they are added commented, so loading needs no variable.
      fs.writeFileSync(file, '[worker]\nplatform = local\n\n[soar]\nbase_url = https://soar.example.com\n\n[fn_slack]\napi_token = $SLACK_BOT_TOKEN\n');
      let result = updateConfig(file, configSectionsFor(builtinPlugins, { platform: configuredPlatform(file), platformSections: PLATFORM_CONFIG_SECTIONS }));
      expect(result.added.find((a) => a.section === 'soar')).to.deep.equal({
        section: 'soar',
        keys: SOAR_KEYS.filter((k) => k !== 'base_url'),
        newSection: false,
        commentedOut: true,
      });
      let text = fs.readFileSync(file, 'utf8');
      expect(text).to.contain('base_url = https://soar.example.com\n; numeric id of the SOAR organization (required)\n;org_id =\n');
      expect(parseConfigText(text, file, TOKEN_ENV).sections.soar).to.deep.equal({ base_url: 'https://soar.example.com' });

      // platform = soar: the same section gets active keys.
      fs.writeFileSync(file, '[worker]\nplatform = soar\n\n[soar]\nbase_url = https://soar.example.com\norg_id = 7\n');
      result = updateConfig(file, configSectionsFor(builtinPlugins, { platform: configuredPlatform(file), platformSections: PLATFORM_CONFIG_SECTIONS }));
      expect(result.added.find((a) => a.section === 'soar')!.commentedOut).to.equal(false);
      text = fs.readFileSync(file, 'utf8');
      const soar = readSoarSection(parseConfigText(text, file, SOAR_ENV));
      expect(soar).to.include({ base_url: 'https://soar.example.com', org_id: 7, api_key_secret: 'key-secret-2', timeout: 60 });
    });

    it("keys commented out under ;[soar] do not count for the section above it", () => {
      const file = path.join(dir, 'app.config');
      fs.writeFileSync(file, '[worker]\nnum_workers = 3\n\n[fn_slack]\napi_token = $SLACK_BOT_TOKEN\n\n;[soar]\n;timeout = 60\n');
      const result = updateConfig(file, sections);
      expect(result.added.find((a) => a.section === 'fn_slack')!.keys).to.include('timeout');
      expect(result.added.find((a) => a.section === 'soar')!.keys).not.to.include('timeout');
      const text = fs.readFileSync(file, 'utf8');
      expect(parseConfigText(text, file, TOKEN_ENV).sections.fn_slack).to.include({ timeout: '30' });
      // The soar keys went under ;[soar], commented.
      expect(text.indexOf(';base_url =')).to.be.greaterThan(text.indexOf(';timeout = 60'));
    });

    it('is idempotent: a second run adds nothing and leaves the file untouched', () => {
      const file = path.join(dir, 'app.config');
      fs.writeFileSync(file, older);
      updateConfig(file, sections);
      const once = fs.readFileSync(file);
      const mtime = fs.statSync(file).mtimeMs;
      expect(updateConfig(file, sections)).to.deep.equal({ added: [] });
      expect(fs.readFileSync(file).equals(once)).to.equal(true);
      expect(fs.statSync(file).mtimeMs).to.equal(mtime);
    });

    it('adds nothing to a file written by -c', () => {
      const file = path.join(dir, 'app.config');
      createConfig(file, sections, { overwrite: false });
      expect(updateConfig(file, sections)).to.deep.equal({ added: [] });
    });

    it('keeps CRLF line endings, and ends the last line when it adds after it', () => {
      const file = path.join(dir, 'app.config');
      const crlf = '[worker]\r\nnum_workers = 3';
      fs.writeFileSync(file, crlf);
      updateConfig(file, sections);
      const text = fs.readFileSync(file, 'utf8');
      expect(text.startsWith('[worker]\r\nnum_workers = 3\r\n')).to.equal(true);
      expect(text.replace(/\r\n/g, '')).not.to.contain('\n');
      expect(parseConfigText(text, file, TOKEN_ENV).sections.worker!.num_workers).to.equal('3');
    });

    it('tells to use -c when the file does not exist', () => {
      const file = path.join(dir, 'missing.config');
      expect(() => updateConfig(file, sections)).to.throw(ConfigError, /missing\.config.*worker config -c/);
    });
  });
});

describe('configTodo (what `config -c` says is left to fill in)', () => {
  it('names the variables of active required secrets and the active required keys without a default, never a commented-out section', () => {
    const local = configSectionsFor(builtinPlugins, { platformSections: PLATFORM_CONFIG_SECTIONS });
    expect(configTodo(local)).to.equal('set SLACK_BOT_TOKEN in the environment');
    const soar = configSectionsFor(builtinPlugins, { platform: 'soar', platformSections: PLATFORM_CONFIG_SECTIONS });
    expect(configTodo(soar)).to.equal(
      'set SLACK_BOT_TOKEN, SOAR_API_KEY_ID and SOAR_API_KEY_SECRET in the environment and [soar] base_url and org_id in the file',
    );
    const nothing: ConfigSectionSpec = { name: 'x', schema: { required: ['a'], properties: { a: { type: 'string', default: 'y' } } } };
    expect(configTodo([nothing])).to.equal('');
  });
});
