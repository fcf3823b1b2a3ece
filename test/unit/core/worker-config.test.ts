/**
 * `[worker]` keys of the broker: heartbeat and queue_type (defaults, bad values), the
 * broker and PostgreSQL URLs checked at load (a config error, never the password), and
 * the warning for a metrics listener other machines can reach.
 */
import fs from 'node:fs';
import { expect } from 'chai';
import { ConfigError } from '../../../src/core/runtime/errors.js';
import { parseConfigText } from '../../../src/core/config.js';
import { isLoopbackHost, metricsHostWarning, readWorkerSection } from '../../../src/core/worker-config.js';
import { clearSecrets } from '../../../src/core/redact.js';
import { configSectionsFor, renderConfig } from '../../../src/core/commands/config-writer.js';
import { builtinPlugins } from '../../../src/functions/index.js';
import { PLATFORM_CONFIG_SECTIONS } from '../../../src/platforms/index.js';

function section(lines: string) {
  return readWorkerSection(parseConfigText(`[worker]\n${lines}\n`, '/etc/worker/app.config', {}));
}

function configError(lines: string): ConfigError {
  try {
    section(lines);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`no error for ${lines}`);
}

describe('[worker] broker settings', () => {
  afterEach(() => clearSecrets());

  it('defaults to a 10 s heartbeat and classic queues, and reads both keys', () => {
    const d = section('');
    expect(d.heartbeat).to.equal(10);
    expect(d.queue_type).to.equal('classic');
    const s = section('heartbeat = 2\nqueue_type = quorum');
    expect(s.heartbeat).to.equal(2);
    expect(s.queue_type).to.equal('quorum');
  });

  it('`worker config -c` writes heartbeat and queue_type with their comments, as app.config.example has them', () => {
    const text = renderConfig(configSectionsFor(builtinPlugins, { platformSections: PLATFORM_CONFIG_SECTIONS }));
    const example = fs.readFileSync(new URL('../../../app.config.example', import.meta.url), 'utf8');
    for (const block of [
      '; AMQP heartbeat, seconds: a silent broker is noticed within two; /readyz fails after one\nheartbeat = 10\n',
      '; classic | quorum (replicated; the broker also caps deliveries at max_attempts)\nqueue_type = classic\n',
    ]) {
      expect(text).to.contain(block);
      expect(example).to.contain(block);
    }
  });

  it('names the key and the allowed values of a bad queue_type or heartbeat', () => {
    expect(configError('queue_type = stream').message).to.equal(
      '/etc/worker/app.config: [worker] queue_type: must be one of classic, quorum (got "stream")',
    );
    expect(configError('heartbeat = 0').message).to.match(/\[worker\] heartbeat: must be >= 1/);
  });

  it('refuses a malformed broker URL at load, saying what to fix, without the password', () => {
    const cases: [string, RegExp][] = [
      ['amqp://guest:s3cret-pw@rabbit:56a72', /\[worker\] amqp_url: not a valid URL; expected the form amqp:\/\/user:password@host:5672\/vhost/],
      ['amqp://guest:s3cret-pw@rabbit:99999', /\[worker\] amqp_url: not a valid URL/],
      ['amqp://guest:s3cret%zz@rabbit', /\[worker\] amqp_url: the password holds a % that is not a percent-escape; write % as %25/],
      ['amqp://guest:s3cret-pw@rabbit/a/b', /\[worker\] amqp_url: the vhost has a \/; write it as %2F/],
      ['amqp://guest:s3cret-pw@rabbit?heartbeat=60', /remove \?heartbeat= from the URL and set \[worker\] heartbeat instead/],
      ['amqp:///vhost', /\[worker\] amqp_url: no host/],
      ['http://rabbit', /\[worker\] amqp_url: must match pattern/],
    ];
    for (const [url, expected] of cases) {
      const err = configError(`amqp_url = ${url}`);
      expect(err.message, url).to.match(expected);
      expect(err.message, url).not.to.contain('s3cret');
    }
  });

  it('refuses a malformed PostgreSQL store URL at load, without the password', () => {
    for (const [url, expected] of [
      ['postgres://worker:s3cret-pw@db:5x432/soar', /\[worker\] store: not a valid URL; expected the form postgres:\/\/user:password@host:5432\/database/],
      ['postgres://worker:50%off-s3cret@db/soar', /\[worker\] store: the password holds a % that is not a percent-escape/],
    ] as const) {
      const err = configError(`store = ${url}`);
      expect(err.message, url).to.match(expected);
      expect(err.message, url).not.to.contain('s3cret');
    }
  });

  it('accepts well-formed URLs: encoded password and vhost, a socket host parameter, a SQLite path', () => {
    expect(section('amqp_url = amqps://guest:p%40ss%25@rabbit.example.com:5671/%2Fprod').amqp_url).to.equal(
      'amqps://guest:p%40ss%25@rabbit.example.com:5671/%2Fprod',
    );
    expect(section('store = postgresql://worker@/soar?host=/var/run/postgresql').store).to.equal('postgresql://worker@/soar?host=/var/run/postgresql');
    expect(section('store = postgres:///soar').store).to.equal('postgres:///soar');
    expect(section('store = /var/lib/worker/worker.db').store).to.equal('/var/lib/worker/worker.db');
  });

  it('warns about a metrics listener on a non-loopback address only', () => {
    expect(metricsHostWarning({ metrics_host: '127.0.0.1', metrics_port: 9464 })).to.equal(undefined);
    expect(metricsHostWarning({ metrics_host: '::1', metrics_port: 9464 })).to.equal(undefined);
    expect(metricsHostWarning({ metrics_host: 'localhost', metrics_port: 9464 })).to.equal(undefined);
    expect(metricsHostWarning({ metrics_host: '0.0.0.0', metrics_port: undefined })).to.equal(undefined);
    expect(metricsHostWarning({ metrics_host: '0.0.0.0', metrics_port: 9464 })).to.match(
      /^\[worker\] metrics_host = 0\.0\.0\.0: the health and metrics listener \(no authentication\) is reachable from other machines/,
    );
    expect(isLoopbackHost('10.0.0.5')).to.equal(false);
    expect(isLoopbackHost('127.3.2.1')).to.equal(true);
  });
});
