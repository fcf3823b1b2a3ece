/**
 * SlackClient's retry rules as metrics see them: a rate-limit wait is reported only
 * when the client really waits, not for a 429 that ends the call past its budget.
 */
import { expect } from 'chai';
import { silentLogger } from '../../../../src/core/logging.js';
import { SlackClient } from '../../../../src/functions/slack/slack-client.js';
import { SlackEmulator } from '../../../support/slack-emulator.js';

describe('SlackClient', () => {
  let emu: SlackEmulator;
  before(async () => {
    emu = await SlackEmulator.start();
  });
  after(async () => emu.close());
  afterEach(() => emu.clearFaults());

  function client(retryBudgetMs: number, seen: Array<[string, number]>): SlackClient {
    return new SlackClient({
      token: emu.botToken,
      apiUrl: emu.apiUrl,
      log: silentLogger(),
      timeoutMs: 5000,
      retryBudgetMs,
      sleep: async () => undefined,
      onRateLimited: (method, seconds) => void seen.push([method, seconds]),
    });
  }

  it('reports each 429 it waits out, with its Retry-After', async () => {
    const seen: Array<[string, number]> = [];
    emu.failNext('auth.test', { status: 429, retryAfter: 2, times: 2 });
    const res = await client(10_000, seen).call('auth.test', {});
    expect(res.ok).to.equal(true);
    expect(seen).to.deep.equal([
      ['auth.test', 2],
      ['auth.test', 2],
    ]);
  });

  it('does not report a 429 whose wait would pass the retry budget (it gives up instead)', async () => {
    const seen: Array<[string, number]> = [];
    emu.failNext('auth.test', { status: 429, retryAfter: 2, times: 2 });
    let error: unknown;
    await client(3_000, seen).call('auth.test', {}).catch((e: unknown) => (error = e));
    expect((error as { code?: string }).code).to.equal('slack_rate_limited');
    expect(seen).to.deep.equal([['auth.test', 2]]);
  });
});
