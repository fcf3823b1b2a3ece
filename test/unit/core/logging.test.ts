import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { createLogger } from '../../../src/core/logging.js';
import { clearSecrets, redact, registerSecret, registerUrlPassword } from '../../../src/core/redact.js';

/**
 * The log file's text once it holds `last` (winston's file transport writes in order, in
 * the background; a fixed wait was too short on a loaded machine).
 */
async function logFileOnce(file: string, last: string): Promise<string> {
  const read = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
  for (const deadline = Date.now() + 10_000; !read().includes(last) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
  return read();
}

describe('logging', () => {
  afterEach(() => clearSecrets());

  it('masks registered secrets, Slack tokens, URL passwords and bearer headers in the log file', async () => {
    const logdir = fs.mkdtempSync(path.join(os.tmpdir(), 'log-test-'));
    registerSecret('soar-api-secret-42');
    const log = createLogger({ level: 'DEBUG', logdir, console: false });
    log.info('connecting to amqp://worker:hunter22@rabbit:5672 with key soar-api-secret-42');
    log.warn('slack said no', { token: 'xoxb-1234-5678-abcdefgh', header: 'Authorization: Bearer xoxb-999-abc', nested: { api_key: 'plain' } });
    log.debug('child line', { other: 'xoxp-1-2-3' });
    const text = await logFileOnce(path.join(logdir, 'app.log'), 'child line');
    for (const secret of ['hunter22', 'soar-api-secret-42', 'xoxb-1234-5678-abcdefgh', 'xoxb-999-abc', 'xoxp-1-2-3', '"plain"']) {
      expect(text, secret).not.to.contain(secret);
    }
    expect(text).to.contain('amqp://worker:***@rabbit:5672');
    expect(text).to.match(/INFO connecting/);
    expect(text).to.match(/DEBUG child line/);
  });

  it('masks a URL password registered from the config wherever it appears, raw or percent-decoded', () => {
    registerUrlPassword('amqp://worker:Pw%2Fs3cret-99@rabbit:5672/vhost');
    expect(redact('login refused for Pw/s3cret-99 and Pw%2Fs3cret-99')).to.equal('login refused for *** and ***');
    expect(redact('amqp://worker:Pw%2Fs3cret-99@rabbit')).to.equal('amqp://worker:***@rabbit');
    registerUrlPassword('postgres://worker@db/test');
    expect(redact('worker@db')).to.equal('worker@db');
  });

  it('accepts Python-style level names and filters below the level', async () => {
    const logdir = fs.mkdtempSync(path.join(os.tmpdir(), 'log-test-'));
    const log = createLogger({ level: 'WARNING', logdir, console: false });
    log.info('hidden');
    log.warn('shown');
    const text = await logFileOnce(path.join(logdir, 'app.log'), 'shown');
    expect(text).to.contain('WARN shown');
    expect(text).not.to.contain('hidden');
  });

  it('redact() masks each secret shape whatever its case or position (its quick pre-check lets none through)', () => {
    const cases: [string, string][] = [
      ['token xoxb-123-456-abc end', 'token xoxb-*** end'],
      ['(xoxp-9-8-7)', '(xoxp-***)'],
      ['app xapp-1-A1-2-ff', 'app xapp-***'],
      ['amqp://guest:s3cret@localhost:5672/', 'amqp://guest:***@localhost:5672/'],
      ['POSTGRESQL://u:p4ss@db/x', 'POSTGRESQL://u:***@db/x'],
      ['authorization: bearer abc.def', 'authorization: bearer ***'],
      ['Authorization: BASIC dXNlcjpwYXNz', 'Authorization: BASIC ***'],
    ];
    for (const [input, masked] of cases) expect(redact(input), input).to.equal(masked);
    registerSecret('plain-secret-value');
    expect(redact('the value plain-secret-value leaked')).to.equal('the value *** leaked');
  });

  it('does no work for a line below the level, on the logger and its children', () => {
    const logger = createLogger({ level: 'INFO', console: false });
    let reads = 0;
    const meta = {
      get detail() {
        reads++;
        return 'x';
      },
    };
    logger.debug('skipped', meta);
    logger.child({ invocation: 'i-1' }).debug('skipped too', meta);
    expect(reads).to.equal(0);
    logger.child({ invocation: 'i-1' }).info('written', meta);
    expect(reads).to.be.greaterThan(0);
  });

  it('redact() leaves ordinary text alone', () => {
    expect(redact('Posted to #inc-2103 at https://emulated.slack.com/archives/C1/p1')).to.equal(
      'Posted to #inc-2103 at https://emulated.slack.com/archives/C1/p1',
    );
  });
});
