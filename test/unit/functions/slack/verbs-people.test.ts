/**
 * slack_send_direct_message, slack_lookup_user and slack_get_conversation against the Slack
 * Web API emulator.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { expectFailure, expectOk, runFunction } from '../../../support/function-context.js';
import { useSlackFixture } from '../../../support/slack-hooks.js';

describe('fn_slack responder verbs on people and conversations', function () {
  this.timeout(60_000);
  const slack = useSlackFixture();

  const run = (name: string, inputs: Record<string, unknown>, opts: { invocationId?: string; attempt?: number } = {}) =>
    runFunction(slack.fx, name, inputs, opts);

  describe('slack_send_direct_message', () => {
    it('sends one direct message per person, once per invocation id', async () => {
      const alice = slack.emu.addUser({ name: 'alice', email: 'alice@example.com' });
      const bob = slack.emu.addUser({ name: 'bob', email: 'bob@example.com' });
      const invocationId = randomUUID();
      const inputs = { slack_user_emails: 'alice@example.com; bob@example.com, ghost@example.com', slack_text: 'Please look at incident 2103' };
      const first = expectOk(await run('slack_send_direct_message', inputs, { invocationId }));
      expect(first.not_found).to.deep.equal(['ghost@example.com']);
      expect(first.messages.map((m: { user_id: string }) => m.user_id)).to.deep.equal([alice.id, bob.id]);
      const second = await run('slack_send_direct_message', inputs, { invocationId, attempt: 2 });
      expect(expectOk(second).messages).to.deep.equal(first.messages);
      expect(second.progress).to.include('alice@example.com already had the message (an earlier attempt sent it)');
      for (const u of [alice, bob]) {
        const dm = slack.emu.imWith(u.id)!;
        expect(slack.emu.messages(dm).map((m) => m.text)).to.deep.equal(['Please look at incident 2103']);
      }
      // Another invocation is another message.
      expectOk(await run('slack_send_direct_message', inputs));
      expect(slack.emu.messages(slack.emu.imWith(alice.id)!)).to.have.length(2);
    });

    it('sends what an interrupted attempt did not: the person it had reached is not messaged again', async () => {
      const alice = slack.emu.addUser({ name: 'alice', email: 'alice@example.com' });
      const bob = slack.emu.addUser({ name: 'bob', email: 'bob@example.com' });
      const invocationId = randomUUID();
      const inputs = { slack_user_emails: 'alice@example.com,bob@example.com', slack_text: 'hi' };
      // alice's message goes out, then Slack fails bob's: the invocation is redelivered.
      slack.emu.failNext('chat.postMessage', { status: 500, after: 1 });
      const first = await run('slack_send_direct_message', inputs, { invocationId });
      expect(first.error?.retryable, first.error?.message).to.equal(true);
      expect(slack.emu.messages(slack.emu.imWith(alice.id)!)).to.have.length(1);
      const second = expectOk(await run('slack_send_direct_message', inputs, { invocationId, attempt: 2 }));
      expect(second.messages).to.have.length(2);
      expect(slack.emu.messages(slack.emu.imWith(alice.id)!)).to.have.length(1);
      expect(slack.emu.messages(slack.emu.imWith(bob.id)!).map((m) => m.text)).to.deep.equal(['hi']);
    });

    it('fails clearly when nobody has the emails, or for an invalid one', async () => {
      const err = expectFailure(await run('slack_send_direct_message', { slack_user_emails: 'ghost@example.com', slack_text: 'hi' }), 'slack_user_not_found');
      expect(err.message).to.contain('ghost@example.com');
      expectFailure(await run('slack_send_direct_message', { slack_user_emails: 'ghost', slack_text: 'hi' }), 'invalid_email');
      expect(slack.emu.calls('conversations.open')).to.equal(0);
    });
  });

  describe('slack_lookup_user', () => {
    it('returns the user with the email', async () => {
      const alice = slack.emu.addUser({ name: 'alice', email: 'Alice@Example.com', real_name: 'Alice Example' });
      const content = expectOk(await run('slack_lookup_user', { slack_user_email: 'alice@example.com' }));
      expect(content).to.deep.equal({
        id: alice.id,
        name: 'alice',
        real_name: 'Alice Example',
        email: 'Alice@Example.com',
        tz: alice.tz,
        is_bot: false,
        deleted: false,
      });
    });

    it('says nobody has the email', async () => {
      const err = expectFailure(await run('slack_lookup_user', { slack_user_email: 'ghost@example.com' }), 'slack_user_not_found');
      expect(err.message).to.contain('ghost@example.com');
    });
  });

  describe('slack_get_conversation', () => {
    let channelId: string;
    beforeEach(async () => {
      const posted = expectOk(await run('slack_post_message', { incident_id: 2103, slack_channel: 'inc-2103', slack_is_channel_private: false, slack_text: 'Opened' }));
      channelId = posted.channel_id;
    });

    it('returns messages oldest first with authors and their emails, replies on request', async () => {
      const alice = slack.emu.addUser({ name: 'alice', email: 'alice@example.com', real_name: 'Alice Example' });
      slack.emu.addMembers(channelId, [alice.id]);
      const seeded = slack.emu.seedMessages(channelId, 4, { users: [alice.id], threads: 1, repliesPerThread: 2, text: 'note' });
      const content = expectOk(await run('slack_get_conversation', { incident_id: 2103, slack_include_replies: true }));
      expect(content).to.deep.include({ channel: 'inc-2103', channel_id: channelId, has_more: false });
      const msgs = content.messages as Record<string, any>[];
      expect(msgs.map((m) => m.ts)).to.deep.equal([...slack.emu.messages(channelId)].map((m) => m.ts).sort());
      expect(msgs[0]!.text).to.equal('Opened');
      expect(msgs[0]!.author).to.deep.include({ id: slack.emu.botUserId, email: null });
      const byAlice = msgs.filter((m) => m.author.id === alice.id);
      expect(byAlice).to.have.length(seeded.length);
      expect(byAlice[0]!.author).to.deep.equal({ id: alice.id, name: 'Alice Example', email: 'alice@example.com' });
      const parent = msgs.find((m) => m.reply_count > 0)!;
      expect(parent.replies).to.have.length(2);
      expect(parent.replies.map((r: { ts: string }) => r.ts)).to.deep.equal(slack.emu.replies(channelId, parent.ts).map((r) => r.ts));
      // One users.info per author, not per message.
      expect(slack.emu.calls('users.info')).to.equal(2);
    });

    it('pages through history with the limit, and says there are more', async () => {
      slack.emu.seedMessages(channelId, 300);
      const limited = expectOk(await run('slack_get_conversation', { incident_id: 2103, slack_limit: 250 }));
      expect(limited.messages).to.have.length(250);
      expect(limited.has_more).to.equal(true);
      const all = slack.emu.messages(channelId).map((m) => m.ts);
      expect(limited.messages.map((m: { ts: string }) => m.ts)).to.deep.equal(all.slice(-250));
      expect(slack.emu.calls('conversations.history')).to.equal(2);
      const whole = expectOk(await run('slack_get_conversation', { incident_id: 2103, slack_limit: 1000 }));
      expect(whole.messages).to.have.length(301);
      expect(whole.has_more).to.equal(false);
      expect(expectOk(await run('slack_get_conversation', { incident_id: 2103, slack_limit: 301 })).has_more).to.equal(false);
    });

    it('reads only after slack_oldest, and refuses a limit over 1000', async () => {
      const [, second] = slack.emu.seedMessages(channelId, 3);
      const after = expectOk(await run('slack_get_conversation', { incident_id: 2103, slack_oldest: second!.ts }));
      expect(after.messages).to.have.length(1);
      const res = await run('slack_get_conversation', { incident_id: 2103, slack_limit: 1001 });
      expect(res.error?.message).to.contain('slack_limit');
    });
  });
});
