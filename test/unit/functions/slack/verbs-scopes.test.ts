/**
 * The scopes fn_slack asks for (REQUIRED_SCOPES: the manifest and selftest's check) are
 * enough for every responder verb, redeliveries included, and a token without one of them
 * gets an error naming it.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { REQUIRED_SCOPES } from '../../../../src/functions/slack/scopes.js';
import { expectFailure, expectOk, runFunction, type SlackFixture } from '../../../support/function-context.js';
import { useSlackEmulator } from '../../../support/slack-hooks.js';

describe('fn_slack responder verbs with exactly the required scopes', function () {
  this.timeout(30_000);
  const slack = useSlackEmulator();

  async function fixtureWith(scopes: string[]): Promise<SlackFixture> {
    const token = `xoxb-${randomUUID()}`;
    slack.emu.addToken(token, { scopes, name: 'soar-worker' });
    return slack.fixture({ soar_url: 'https://soar.example.com/#incidents/{incident_id}' }, token);
  }

  it('every verb runs, and runs again as a redelivery', async () => {
    const fx = await fixtureWith(Object.keys(REQUIRED_SCOPES));
    slack.emu.addUser({ name: 'alice', email: 'alice@example.com' });
    const posted = expectOk(await runFunction(fx, 'slack_post_message', { incident_id: 1, slack_channel: 'inc-1', slack_is_channel_private: true, slack_text: 'x' }));
    const ts = posted.ts as string;
    const calls: [string, Record<string, unknown>][] = [
      ['slack_update_message', { slack_ts: ts, slack_text: 'y' }],
      ['slack_set_channel_topic', { slack_topic: 't', slack_purpose: 'p' }],
      ['slack_invite_users', { slack_participant_emails: 'alice@example.com' }],
      ['slack_remove_users', { slack_participant_emails: 'alice@example.com' }],
      ['slack_pin_message', { slack_ts: ts }],
      ['slack_add_reaction', { slack_ts: ts, slack_reaction: 'eyes' }],
      ['slack_add_bookmark', { slack_bookmark_title: 'SOAR' }],
      ['slack_rename_channel', { slack_new_name: 'inc-1-renamed' }],
      ['slack_get_conversation', { slack_include_replies: true }],
      ['slack_send_direct_message', { slack_user_emails: 'alice@example.com', slack_text: 'hi' }],
      ['slack_lookup_user', { slack_user_email: 'alice@example.com' }],
    ];
    for (const [name, inputs] of calls) {
      const invocationId = randomUUID();
      const withIncident = name === 'slack_lookup_user' || name === 'slack_send_direct_message' ? inputs : { incident_id: 1, ...inputs };
      const first = await runFunction(fx, name, withIncident, { invocationId });
      expect(first.error?.message, name).to.equal(undefined);
      const again = await runFunction(fx, name, withIncident, { invocationId, attempt: 2 });
      expect(again.error?.message, `${name} redelivered`).to.equal(undefined);
    }
  });

  it('a token without pins:write gets an error naming the scope', async () => {
    const fx = await fixtureWith(Object.keys(REQUIRED_SCOPES).filter((s) => s !== 'pins:write'));
    const posted = expectOk(await runFunction(fx, 'slack_post_message', { incident_id: 1, slack_channel: 'inc-1', slack_is_channel_private: false, slack_text: 'x' }));
    const err = expectFailure(await runFunction(fx, 'slack_pin_message', { incident_id: 1, slack_ts: posted.ts }), 'slack_missing_scope');
    expect(err.message).to.contain('pins:write');
  });
});
