/**
 * The receivers' pure parts: Slack's request signature, the request parser, and the
 * ordering key and number of an envelope.
 */
import { expect } from 'chai';
import { parseRequest, slackSignature, verifyRequest } from '../../../../../src/functions/slack/inbound/http-receiver.js';
import { orderingKey, orderingSeq } from '../../../../../src/functions/slack/inbound/recorder.js';
import { appTokenShapeProblem, describeAppTokenError } from '../../../../../src/functions/slack/inbound/app-token.js';

describe('inbound receivers', () => {
  describe('verifyRequest', () => {
    const secret = '8f742231b10e8888abcd99yyyzzz85a5';
    const body = Buffer.from('token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&command=%2Fsoar&text=incident+2103');
    const now = 1531420618;
    const headers = (ts: number, sig = slackSignature(secret, String(ts), body)) => ({
      'x-slack-request-timestamp': String(ts),
      'x-slack-signature': sig,
    });

    it("matches Slack's documented example signature", () => {
      // https://api.slack.com/authentication/verifying-requests-from-slack
      const example = Buffer.from(
        'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
      );
      expect(slackSignature(secret, '1531420618', example)).to.equal('v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503');
    });

    it('accepts a fresh, correctly signed request', () => {
      expect(verifyRequest(secret, headers(now), body, now + 10)).to.equal(undefined);
    });

    it('refuses a wrong signature, a missing one and a tampered body', () => {
      expect(verifyRequest(secret, headers(now, 'v0=' + '0'.repeat(64)), body, now)).to.match(/signature does not match/);
      expect(verifyRequest(secret, headers(now, 'v0=short'), body, now)).to.match(/signature does not match/);
      expect(verifyRequest(secret, { 'x-slack-request-timestamp': String(now) }, body, now)).to.match(/no X-Slack-Signature/);
      expect(verifyRequest(secret, headers(now), Buffer.concat([body, Buffer.from('x')]), now)).to.match(/does not match/);
    });

    it('refuses a timestamp more than five minutes off either way, or none', () => {
      expect(verifyRequest(secret, headers(now - 301), body, now)).to.match(/301 s off/);
      expect(verifyRequest(secret, headers(now + 301), body, now)).to.match(/off/);
      expect(verifyRequest(secret, headers(now - 300), body, now)).to.equal(undefined);
      expect(verifyRequest(secret, { 'x-slack-signature': 'v0=1' }, body, now)).to.match(/Timestamp/);
    });
  });

  describe('parseRequest', () => {
    it('answers url_verification, and reads events, interactions and slash commands', () => {
      expect(parseRequest('application/json', JSON.stringify({ type: 'url_verification', challenge: 'abc' }), 0)).to.deep.equal({ challenge: 'abc' });
      expect(
        parseRequest('application/json; charset=utf-8', JSON.stringify({ type: 'event_callback', event_id: 'Ev1', event: {} }), 2),
      ).to.deep.include({
        kind: 'events_api',
        retryAttempt: 2,
      });
      const interactive = parseRequest(
        'application/x-www-form-urlencoded',
        `payload=${encodeURIComponent(JSON.stringify({ type: 'block_actions' }))}`,
        0,
      );
      expect(interactive).to.deep.equal({ kind: 'interactive', payload: { type: 'block_actions' }, retryAttempt: 0 });
      const command = parseRequest('application/x-www-form-urlencoded', 'command=%2Fsoar&text=incident+2103&trigger_id=t1', 0);
      expect(command).to.deep.equal({
        kind: 'slash_commands',
        payload: { command: '/soar', text: 'incident 2103', trigger_id: 't1' },
        retryAttempt: 0,
      });
      expect(parseRequest('application/json', JSON.stringify({ type: 'app_rate_limited' }), 0)).to.equal(undefined);
      expect(() => parseRequest('application/json', '{not json', 0)).to.throw();
    });
  });

  describe('ordering', () => {
    it('keys an envelope by its channel and numbers a message by its ts in microseconds', () => {
      const event = { kind: 'events_api' as const, payload: { event: { type: 'message', channel: 'C1', ts: '1700000000.000100' } } };
      expect(orderingKey(event)).to.equal('C1');
      expect(orderingSeq(event)).to.equal(1700000000000100);
      expect(orderingSeq({ kind: 'events_api', payload: { event: { ts: '1700000000.5' } } })).to.equal(1700000000500000);
      expect(orderingKey({ kind: 'slash_commands', payload: { channel_id: 'C2' } })).to.equal('C2');
      expect(orderingKey({ kind: 'interactive', payload: { channel: { id: 'C3' } } })).to.equal('C3');
      expect(orderingKey({ kind: 'interactive', payload: { type: 'view_submission', view: {} } })).to.equal(undefined);
      expect(orderingSeq({ kind: 'slash_commands', payload: {} })).to.equal(undefined);
    });
  });

  describe('app token problems', () => {
    it('tells a bot token given as the app token and a missing connections:write apart', () => {
      expect(appTokenShapeProblem('xoxb-1-2-3')).to.match(/is a bot token .* not an app-level token/);
      expect(appTokenShapeProblem('xapp-1-A1-2-abc')).to.equal(undefined);
      expect(describeAppTokenError('not_allowed_token_type')).to.match(/not an app-level token/);
      expect(describeAppTokenError('missing_scope')).to.match(/lacks the scope connections:write/);
      expect(describeAppTokenError('invalid_auth')).to.match(/not valid/);
    });
  });
});
