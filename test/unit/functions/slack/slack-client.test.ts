/**
 * SlackClient against the Slack emulator: its retry rules as metrics see them (a rate-limit
 * wait is reported only when the client really waits, not for a 429 that ends the call past
 * its budget), its one paginate, and the one error type it rejects with.
 */
import { expect } from 'chai';
import { silentLogger } from '../../../../src/core/logging.js';
import { paginate, SLACK_UNAVAILABLE_BACKOFF, SlackClient, type SlackCall } from '../../../../src/functions/slack/slack-client.js';
import { isSlackError, SlackApiError } from '../../../../src/functions/slack/slack-errors.js';
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

  it('waits out Slack outages (5xx) 1 s doubling to 30 s, the named SLACK_UNAVAILABLE_BACKOFF', async () => {
    const slept: number[] = [];
    const c = new SlackClient({
      token: emu.botToken,
      apiUrl: emu.apiUrl,
      log: silentLogger(),
      timeoutMs: 5000,
      retryBudgetMs: 200_000,
      sleep: async (ms) => void slept.push(ms),
    });
    emu.failNext('auth.test', { status: 503, times: 7 });
    expect((await c.call('auth.test', {})).ok).to.equal(true);
    expect(slept).to.deep.equal([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    expect(slept[0]).to.equal(SLACK_UNAVAILABLE_BACKOFF.initialMs);
  });

  describe('paginate', () => {
    /** Seeds `n` channels named `${prefix}-<i>` and answers their names in listing order. */
    function seedChannels(prefix: string, n: number): string[] {
      return Array.from({ length: n }, (_, i) => emu.seedChannel({ name: `${prefix}-${i}` }).name);
    }

    it('follows next_cursor through every page, with the same params on each, and stops after the last', async () => {
      const names = seedChannels('pg-all', 7);
      emu.resetCalls();
      const pages: string[][] = [];
      for await (const page of client(5000, []).paginate('conversations.list', { limit: 3, exclude_archived: true })) {
        pages.push((page.channels ?? []).map((c) => String(c.name)));
      }
      expect(pages.flat()).to.include.members(names);
      expect(pages.every((p) => p.length <= 3)).to.equal(true);
      const calls = emu.callLog.filter((c) => c.method === 'conversations.list');
      expect(calls).to.have.length(pages.length);
      expect(calls.length).to.be.greaterThan(2);
      expect(calls[0]!.params.cursor).to.equal(undefined);
      expect(calls.slice(1).every((c) => typeof c.params.cursor === 'string' && c.params.cursor !== '')).to.equal(true);
      expect(calls.every((c) => String(c.params.limit) === '3' && String(c.params.exclude_archived) === 'true')).to.equal(true);
    });

    it('asks for no further page once the caller has enough', async () => {
      seedChannels('pg-break', 7);
      emu.resetCalls();
      for await (const page of client(5000, []).paginate('conversations.list', { limit: 2 })) {
        expect(page.channels).to.have.length(2);
        break;
      }
      expect(emu.calls('conversations.list')).to.equal(1);
    });

    it('pages over any SlackCall, leaving the caller\'s params as they were', async () => {
      const ch = emu.seedChannel({ name: 'pg-members' });
      const people = Array.from({ length: 5 }, (_, i) => emu.addUser({ name: `member-${i}` }).id);
      emu.addMembers(ch.id, people);
      const c = client(5000, []);
      const seen: Record<string, unknown>[] = [];
      const call: SlackCall = (method, params) => {
        seen.push(params);
        return c.call(method, params);
      };
      const params = { channel: ch.id, limit: 2 };
      const members: string[] = [];
      for await (const page of paginate(call, 'conversations.members', params)) members.push(...(page.members ?? []));
      expect(members).to.have.members(emu.members(ch.id));
      expect(seen).to.have.length(Math.ceil(members.length / 2));
      expect(params).to.deep.equal({ channel: ch.id, limit: 2 });
    });
  });

  it("rejects a Slack error answer with a SlackApiError that isSlackError recognises, not the SDK's error", async () => {
    let error: unknown;
    await client(5000, [])
      .call('conversations.info', { channel: 'C0MISSING' }, { what: '#gone' })
      .catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(SlackApiError);
    expect(isSlackError(error, 'channel_not_found')).to.equal(true);
    expect(isSlackError(error, 'not_in_channel', 'is_archived')).to.equal(false);
    expect(isSlackError(new Error('channel_not_found'), 'channel_not_found')).to.equal(false);
    expect((error as SlackApiError).code).to.equal('slack_channel_not_found');
    expect((error as SlackApiError).message).to.contain('#gone');
    expect(error).to.not.have.property('data');
  });
});
