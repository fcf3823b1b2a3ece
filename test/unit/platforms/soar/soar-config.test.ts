/**
 * The [soar] section: validation, `$VAR` secrets registered for redaction, cafile =
 * false, the commented example in app.config.example, createPlatform wiring.
 */
import fs from 'node:fs';
import { expect } from 'chai';
import { parseConfigText } from '../../../../src/core/config.js';
import { ConfigError } from '../../../../src/core/runtime/errors.js';
import { clearSecrets, redact } from '../../../../src/core/redact.js';
import { readSoarSection, SOAR_CONFIG_SECTION, SOAR_SECTION_SCHEMA, verifyDisabled } from '../../../../src/platforms/soar/soar-config.js';
import { renderConfig } from '../../../../src/core/commands/config-writer.js';
import { createPlatform } from '../../../../src/core/runtime/worker.js';
import { readWorkerSection } from '../../../../src/core/worker-config.js';

const ENV = { SOAR_KEY: 'key-id-1', SOAR_SECRET: 'the-very-secret-value', PROXY_PW: 'proxy-pass-99' };

function load(soar: string, worker = 'platform = soar'): ReturnType<typeof parseConfigText> {
  return parseConfigText(`[worker]\n${worker}\n\n[soar]\n${soar}\n`, '/etc/worker/app.config', ENV);
}

describe('[soar] config', function () {
  afterEach(() => clearSecrets());

  it('reads the section with defaults, substitutes $VAR and registers the secrets for redaction', () => {
    const cfg = load('base_url = https://soar.example.com:8443/\norg_id = 201\napi_key_id = $SOAR_KEY\napi_key_secret = $SOAR_SECRET\nproxy = http://u:$PROXY_PW@proxy:3128');
    const s = readSoarSection(cfg);
    expect(s).to.deep.include({
      base_url: 'https://soar.example.com:8443',
      org_id: 201,
      api_key_id: 'key-id-1',
      api_key_secret: 'the-very-secret-value',
      cafile: '',
      timeout: 60,
      retries: 3,
      retry_max_delay: 10,
    });
    expect(redact('secret the-very-secret-value and proxy-pass-99')).to.equal('secret *** and ***');
  });

  it('names every missing or bad key', () => {
    expect(() => readSoarSection(parseConfigText('[worker]\nplatform = soar\n', '/c', {}))).to.throw(ConfigError, '/c: [worker] platform = soar needs a [soar] section');
    let message = '';
    try {
      readSoarSection(load('base_url = soar.example.com\norg_id = x'));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).to.include('[soar] base_url: must match pattern');
    expect(message).to.include('[soar] org_id: must be integer (got "x")');
    expect(message).to.include('[soar] api_key_id: is required but missing');
    expect(message).to.include('[soar] api_key_secret: is required but missing');
    // The worker speaks plain HTTP to the proxy: an https:// proxy is refused, not misused.
    expect(() => readSoarSection(load('base_url = https://soar.example.com\norg_id = 1\napi_key_id = k\napi_key_secret = s\nproxy = https://proxy:3128'))).to.throw(
      ConfigError,
      '[soar] proxy: must match pattern',
    );
  });

  it('treats cafile = false as "do not verify" and expands ~ in a cafile path', () => {
    expect(verifyDisabled(readSoarSection(load('base_url = https://s\norg_id = 1\napi_key_id = a\napi_key_secret = bcde\ncafile = False')))).to.equal(true);
    const s = readSoarSection(load('base_url = https://s\norg_id = 1\napi_key_id = a\napi_key_secret = bcde\ncafile = ~/ca.pem'));
    expect(verifyDisabled(s)).to.equal(false);
    expect(s.cafile).to.match(/^\/.*\/ca\.pem$/);
  });

  it('app.config.example carries a commented [soar] example that is valid once uncommented', () => {
    const text = fs.readFileSync(new URL('../../../../app.config.example', import.meta.url), 'utf8');
    const start = text.indexOf(';[soar]');
    expect(start).to.be.greaterThan(0);
    const block = text
      .slice(start)
      .split('\n')
      .map((l) => (/^;[\w[]/.test(l) ? l.slice(1) : l))
      .join('\n');
    const cfg = parseConfigText(`[worker]\nplatform = soar\n${block}`, 'example', { SOAR_API_KEY_ID: 'id', SOAR_API_KEY_SECRET: 'secret' });
    const s = readSoarSection(cfg);
    expect(Object.keys(cfg.sections.soar!)).to.deep.equal(Object.keys(SOAR_SECTION_SCHEMA.properties as object));
    expect(s.org_id).to.equal(201);
  });

  it('renders through the config writer with the secrets as $VAR references', () => {
    const text = renderConfig([SOAR_CONFIG_SECTION]);
    expect(text).to.include('\napi_key_id = $SOAR_API_KEY_ID\n');
    expect(text).to.include('\napi_key_secret = $SOAR_API_KEY_SECRET\n');
    const cfg = parseConfigText(`[worker]\nplatform = soar\n${text.replace('base_url =', 'base_url = https://soar.example.com').replace('org_id =', 'org_id = 3')}`, 'c', {
      SOAR_API_KEY_ID: 'id',
      SOAR_API_KEY_SECRET: 'secret-1',
    });
    expect(readSoarSection(cfg)).to.deep.include({ org_id: 3, api_key_secret: 'secret-1', data_table: false });
  });

  it('createPlatform builds the soar platform from the loaded config, and needs that config', () => {
    const cfg = load('base_url = http://127.0.0.1:9\norg_id = 7\napi_key_id = a\napi_key_secret = bcde');
    const section = readWorkerSection(cfg);
    expect(createPlatform(section, cfg).kind).to.equal('soar');
    expect(() => createPlatform(section)).to.throw(ConfigError, 'platform = soar');
    expect(createPlatform(readWorkerSection(parseConfigText('[worker]\n', 'c', {}))).kind).to.equal('local');
  });
});
