/**
 * fn_slack state: the progress messages a call's waits produce, and the rate limiter
 * that `[fn_slack]` builds (shared by every invocation through one client).
 */
import { expect } from 'chai';
import type { FunctionContext } from '../../../../src/core/runtime/plugin.js';
import { silentLogger } from '../../../../src/core/logging.js';
import { validateSection } from '../../../../src/core/config.js';
import { SLACK_CONFIG_SCHEMA, type SlackConfig } from '../../../../src/functions/slack/config.js';
import { callOptionsFor, createSlackState } from '../../../../src/functions/slack/state.js';
import { UNUSED_CONVERSATIONS as NO_TABLE } from '../../../support/conversation-conformance.js';

function fakeContext(): { ctx: FunctionContext; statuses: string[] } {
  const statuses: string[] = [];
  const ctx = { status: async (m: string) => void statuses.push(m), signal: new AbortController().signal } as unknown as FunctionContext;
  return { ctx, statuses };
}

const config = (extra: Record<string, string> = {}) =>
  validateSection<SlackConfig>(
    { file: 'app.config', sections: { fn_slack: { api_token: 'xoxb-1', api_url: 'http://127.0.0.1:9/api/', ...extra } } },
    'fn_slack',
    SLACK_CONFIG_SCHEMA,
  );

describe('fn_slack state', () => {
  it("reports the scheduler's pacing at most once per 30 s per invocation, Slack's own waits every time", async () => {
    const { ctx, statuses } = fakeContext();
    const a = callOptionsFor(ctx);
    const b = callOptionsFor(ctx); // another call of the same invocation
    await a.onWait?.({ method: 'conversations.history', seconds: 2, reason: 'scheduled' });
    await b.onWait?.({ method: 'conversations.replies', seconds: 1, reason: 'scheduled' });
    await a.onWait?.({ method: 'conversations.history', seconds: 3, reason: 'rate_limited' });
    await a.onWait?.({ method: 'conversations.history', seconds: 3, reason: 'rate_limited' });
    expect(statuses).to.deep.equal([
      "Pacing Slack calls to stay within Slack's rate limits: conversations.history waits about 2s",
      'Slack is rate-limiting conversations.history: waiting 3s',
      'Slack is rate-limiting conversations.history: waiting 3s',
    ]);
    // Another invocation has its own allowance.
    const other = fakeContext();
    await callOptionsFor(other.ctx).onWait?.({ method: 'chat.postMessage', seconds: 1, reason: 'scheduled' });
    expect(other.statuses).to.have.length(1);
  });

  it('builds one limiter with rate_limits = on and none with off; keeps the (config, log, conversations, onRateLimited) signature', () => {
    const seen: string[] = [];
    const on = createSlackState(config(), silentLogger(), NO_TABLE, (m) => void seen.push(m));
    expect(on.limiter?.budgetOf('conversations.create')).to.equal(20);
    expect(createSlackState(config({ rate_limits: 'off' }), silentLogger(), NO_TABLE).limiter).to.equal(undefined);
    expect(() => createSlackState(config({ rate_limit_overrides: 'users.info=5' }), silentLogger(), NO_TABLE)).to.throw(/rate_limit_overrides: "users\.info=5"/);
  });

  it('[fn_slack] refuses an unknown time_zone when the section is validated (at start), and takes a known one', () => {
    expect(() => createSlackState(config({ time_zone: 'Mars/Olympus' }), silentLogger(), NO_TABLE)).to.throw(
      /\[fn_slack\] time_zone: "Mars\/Olympus" is not an IANA time zone/,
    );
    expect(createSlackState(config({ time_zone: 'Europe/Berlin' }), silentLogger(), NO_TABLE).config.time_zone).to.equal('Europe/Berlin');
  });
});
