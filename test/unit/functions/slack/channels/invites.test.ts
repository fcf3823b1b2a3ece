/**
 * Inviting slack_participant_emails (channels/invites.ts), exercised through
 * slack_post_message against the Slack Web API emulator (real HTTP).
 */
import { expect } from 'chai';
import { runFunction, expectOk } from '../../../../support/function-context.js';
import { useSlackFixture } from '../../../../support/slack-hooks.js';

describe('fn_slack participants (slack_post_message)', function () {
  this.timeout(30_000);
  const slack = useSlackFixture();

  const post = (inputs: Record<string, unknown>, opts: { invocationId?: string; attempt?: number } = {}) =>
    runFunction(slack.fx, 'slack_post_message', { slack_text: 'hello from SOAR', ...inputs }, opts);

  describe('participants', () => {
    it('looks each email up, invites everyone found in one call, and warns about the rest', async () => {
      const alice = slack.emu.addUser({ name: 'alice', email: 'alice@example.com' });
      const bob = slack.emu.addUser({ name: 'bob', email: 'bob@example.com' });
      const carol = slack.emu.addUser({ name: 'carol', email: 'carol@example.com' });
      slack.emu.user(slack.emu.botUserId)!.profile.email = 'soar-bot@example.com';
      const ch = slack.emu.seedChannel({ name: 'inc-42', members: [slack.emu.botUserId, carol.id] });

      const run = await post({
        incident_id: 42,
        slack_channel: 'inc-42',
        slack_is_channel_private: false,
        slack_participant_emails:
          'alice@example.com, bob@example.com; nobody@example.com carol@example.com,soar-bot@example.com, not-an-email',
      });
      const content = expectOk(run);

      expect(slack.emu.calls('users.lookupByEmail')).to.equal(5);
      expect(slack.emu.calls('conversations.invite')).to.equal(1);
      const invite = slack.emu.callLog.find((c) => c.method === 'conversations.invite')!;
      const invited = String(invite.params.users).split(',');
      expect(invited).to.have.members([alice.id, bob.id, carol.id]);
      expect(invited).to.not.include(slack.emu.botUserId);

      expect(slack.emu.members(ch.id)).to.include.members([alice.id, bob.id, carol.id, slack.emu.botUserId]);
      expect(run.progress).to.include('Warning: No Slack user has the email nobody@example.com');
      expect(run.progress).to.include('Warning: carol@example.com is already in #inc-42');
      expect(run.progress).to.include('Warning: "not-an-email" is not an email address');
      expect(run.progress).to.include('Invited 2 participant(s) to #inc-42');
      expect(run.progress.some((p) => p.includes('cant_invite_self'))).to.equal(false);
      expect(content.members).to.include.members([alice.id, bob.id, carol.id, slack.emu.botUserId]);
      expect(slack.emu.messages(ch.id)).to.have.length(1);
    });

    it('warns, and still posts, when everyone listed is already in the channel or unknown', async () => {
      const carol = slack.emu.addUser({ name: 'carol', email: 'carol@example.com' });
      const ch = slack.emu.seedChannel({ name: 'inc-43', members: [slack.emu.botUserId, carol.id] });
      const run = await post({
        incident_id: 43,
        slack_channel: 'inc-43',
        slack_participant_emails: 'carol@example.com, ghost@example.com',
      });
      expectOk(run);
      expect(slack.emu.calls('conversations.invite')).to.equal(1);
      expect(run.progress).to.include('Warning: Everyone listed is already in #inc-43');
      expect(run.progress).to.include('Warning: No Slack user has the email ghost@example.com');
      expect(slack.emu.messages(ch.id)).to.have.length(1);
    });

    it('does not call conversations.invite when no email matches', async () => {
      const run = await post({
        incident_id: 44,
        slack_channel: 'inc-44',
        slack_is_channel_private: true,
        slack_participant_emails: 'ghost@example.com',
      });
      expectOk(run);
      expect(slack.emu.calls('users.lookupByEmail')).to.equal(1);
      expect(slack.emu.calls('conversations.invite')).to.equal(0);
      expect(run.progress).to.include('Warning: No Slack user has the email ghost@example.com');
    });

    it('never invites the bot itself, even when it is the only match', async () => {
      slack.emu.user(slack.emu.botUserId)!.profile.email = 'soar-bot@example.com';
      const run = await post({
        incident_id: 45,
        slack_channel: 'inc-45',
        slack_is_channel_private: false,
        slack_participant_emails: 'soar-bot@example.com',
      });
      expectOk(run);
      expect(slack.emu.calls('conversations.invite')).to.equal(0);
      expect(run.progress.filter((p) => p.startsWith('Warning'))).to.deep.equal([]);
    });
  });
});
