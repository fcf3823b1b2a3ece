/**
 * When Slack cannot be reached, the cause (DNS, refused, timeout, TLS) is named in the
 * progress message, the log and the final error: "unavailable" alone sends a person
 * looking in the wrong place.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { createLogger } from '../../../../src/core/logging.js';
import { tempDir } from '../../../support/harness.js';
import { createSlackState, runFunction, slackFixture, type SlackFixture } from '../../../support/function-context.js';

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function readLog(file: string, text: string): Promise<string> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const log = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (log.includes(text) || Date.now() > deadline) return log;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Slack unreachable: the cause is named', function () {
  this.timeout(30_000);
  let fx: SlackFixture | undefined;
  const servers: http.Server[] = [];
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  async function post(apiUrl: string, overrides: Record<string, string> = {}) {
    fx = await slackFixture(apiUrl, 'xoxb-1-2-unreachable', { retry_budget: '1', ...overrides });
    const logFile = path.join(tempDir(), 'app.log');
    fx.state = createSlackState(
      fx.config,
      createLogger({ level: 'INFO', logdir: path.dirname(logFile), console: false }),
      fx.state.conversations,
    );
    const run = await runFunction(fx, 'slack_post_message', {
      incident_id: 2103,
      slack_channel: 'inc-2103',
      slack_is_channel_private: false,
      slack_text: 'Phishing wave',
    });
    return { run, logFile };
  }

  async function expectCause(apiUrl: string, cause: RegExp, overrides: Record<string, string> = {}) {
    const { run, logFile } = await post(apiUrl, overrides);
    expect(run.error, 'the call failed').to.exist;
    expect(run.error!.retryable).to.equal(true);
    expect(run.error!.message).to.match(cause);
    expect(run.progress.join('\n')).to.match(cause);
    const log = await readLog(logFile, 'retrying');
    expect(log).to.match(cause);
  }

  it('connection refused (a closed port)', async () => {
    const port = await closedPort();
    await expectCause(`http://127.0.0.1:${port}/api/`, new RegExp(`connection refused by 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
  });

  it('DNS: a host name that does not resolve', async () => {
    await expectCause('http://nonexistent.invalid/api/', /DNS: host name nonexistent\.invalid not found \(ENOTFOUND\)/);
  });

  it('timeout: a server that never answers', async () => {
    const server = http.createServer(() => undefined);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    await expectCause(`http://127.0.0.1:${port}/api/`, /timeout: no answer within 1s/, { timeout: '1', retry_budget: '1' });
  });

  it('TLS: https to a server that does not speak TLS', async () => {
    const server = http.createServer((_req, res) => res.end('{}'));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    await expectCause(`https://127.0.0.1:${port}/api/`, /TLS: .*\(ERR_SSL_WRONG_VERSION_NUMBER\)/);
  });
});
