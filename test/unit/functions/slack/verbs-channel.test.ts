/**
 * The responder verbs that act on a channel (slack_update_message, slack_set_channel_topic,
 * slack_rename_channel, slack_invite_users, slack_remove_users, slack_pin_message,
 * slack_add_reaction, slack_add_bookmark) against the Slack Web API emulator: the channel
 * resolved as slack_post_message resolves it, Slack's refusals as clear errors, and each
 * run twice for one invocation id where it acts.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { expectFailure, expectOk, runFunction } from '../../../support/function-context.js';
import { useSlackFixture } from '../../../support/slack-hooks.js';

describe('fn_slack responder verbs on a channel', function () {
  this.timeout(30_000);
  const slack = useSlackFixture({ config: { soar_url: 'https://soar.example.com/#incidents/{incident_id}' } });
  let channelId: string;
  let ts: string;

  beforeEach(async () => {
    // The incident's channel and its association, made as a workflow makes them: by a post.
    const posted = expectOk(await run('slack_post_message', { slack_channel: 'inc-2103', slack_is_channel_private: false, slack_text: 'Phishing wave' }));
    channelId = posted.channel_id;
    ts = posted.ts;
  });

  function run(name: string, inputs: Record<string, unknown>, opts: { invocationId?: string; attempt?: number } = {}) {
    return runFunction(slack.fx, name, { incident_id: 2103, ...inputs }, opts);
  }

  /** Runs twice under one invocation id, the second as a redelivery. */
  async function twice(name: string, inputs: Record<string, unknown>) {
    const invocationId = randomUUID();
    const first = await run(name, inputs, { invocationId });
    const second = await run(name, inputs, { invocationId, attempt: 2 });
    return [expectOk(first), expectOk(second), second] as const;
  }

  describe('channel resolution', () => {
    it('acts on the incident\'s associated channel, on slack_channel, or on slack_channel_id', async () => {
      const other = slack.emu.seedChannel({ name: 'war-room' });
      expect(expectOk(await run('slack_pin_message', { slack_ts: ts })).channel_id).to.equal(channelId);
      const [m] = slack.emu.seedMessages(other.id, 1);
      expect(expectOk(await run('slack_pin_message', { slack_channel: '#war-room', slack_ts: m!.ts })).channel_id).to.equal(other.id);
      expect(expectOk(await run('slack_add_reaction', { slack_channel_id: other.id, slack_ts: m!.ts, slack_reaction: 'eyes' })).channel_id).to.equal(other.id);
    });

    it('never creates a channel, and asks for one when the incident has none', async () => {
      const err = expectFailure(await run('slack_pin_message', { slack_channel: 'no-such-channel', slack_ts: ts }), 'slack_channel_not_found');
      expect(err.message).to.contain('#no-such-channel');
      expect(slack.emu.channelByName('no-such-channel')).to.equal(undefined);
      expectFailure(await runFunction(slack.fx, 'slack_pin_message', { incident_id: 9999, slack_ts: ts }), 'slack_no_channel');
    });
  });

  describe('slack_update_message', () => {
    it('edits the message, laid out as a post; twice is one edit', async () => {
      const [content] = await twice('slack_update_message', { slack_ts: ts, slack_text: 'Contained *at 10:00*' });
      expect(content).to.deep.include({ channel: 'inc-2103', channel_id: channelId, ts });
      const m = slack.emu.message(channelId, ts)!;
      expect(m.text).to.equal('Contained *at 10:00*');
      expect(m.blocks).to.deep.equal([{ type: 'section', text: { type: 'mrkdwn', text: 'Contained *at 10:00*', verbatim: true } }]);
      expect(slack.emu.messages(channelId)).to.have.length(1);
    });

    it('says which message Slack did not find, and refuses a message the app did not post', async () => {
      const missing = expectFailure(await run('slack_update_message', { slack_ts: '1000000000.000001', slack_text: 'x' }), 'slack_message_not_found');
      expect(missing.message).to.contain('1000000000.000001').and.contain('#inc-2103').and.contain('slack_ts');
      const [theirs] = slack.emu.seedMessages(channelId, 1);
      const refused = expectFailure(await run('slack_update_message', { slack_ts: theirs!.ts, slack_text: 'x' }), 'slack_not_bot_message');
      expect(refused.message).to.contain('only its own messages');
    });

    it('refuses a text too long for one message before calling Slack', async () => {
      const calls = slack.emu.calls('chat.update');
      expectFailure(await run('slack_update_message', { slack_ts: ts, slack_text: 'word '.repeat(20_000) }), 'slack_text_too_long');
      expect(slack.emu.calls('chat.update')).to.equal(calls);
    });

    it('refuses a malformed slack_ts through the input schema', async () => {
      const res = await run('slack_update_message', { slack_ts: 'yesterday', slack_text: 'x' });
      expect(res.error?.message).to.contain('slack_ts');
    });
  });

  describe('slack_set_channel_topic', () => {
    it('sets the topic and the purpose; twice sets them once', async () => {
      const [content, again] = await twice('slack_set_channel_topic', { slack_topic: 'Phishing wave — contained', slack_purpose: 'Incident 2103' });
      expect(again).to.deep.equal(content);
      expect(content).to.deep.include({ topic: 'Phishing wave — contained', purpose: 'Incident 2103' });
      expect(slack.emu.channel(channelId)!.topic.value).to.equal('Phishing wave — contained');
      expect(slack.emu.channel(channelId)!.purpose.value).to.equal('Incident 2103');
    });

    it('asks for a topic or a purpose, and refuses one over 250 characters before calling Slack', async () => {
      expectFailure(await run('slack_set_channel_topic', {}), 'missing_topic');
      const err = expectFailure(await run('slack_set_channel_topic', { slack_topic: 'x'.repeat(251) }), 'slack_too_long');
      expect(err.message).to.contain('slack_topic').and.contain('250');
      expect(slack.emu.calls('conversations.setTopic')).to.equal(0);
    });
  });

  describe('slack_rename_channel', () => {
    it('renames the channel, the association follows; twice is one rename', async () => {
      const [first, second] = await twice('slack_rename_channel', { slack_new_name: 'inc-2103-phishing' });
      expect(first).to.deep.include({ channel: 'inc-2103-phishing', channel_id: channelId, previous_name: 'inc-2103' });
      expect(second).to.deep.include({ channel: 'inc-2103-phishing', previous_name: null });
      expect(slack.emu.channel(channelId)!.name).to.equal('inc-2103-phishing');
      expect(slack.emu.calls('conversations.rename')).to.equal(1);
      const row = await slack.fx.state.conversations.get('RES-2103');
      expect(row).to.deep.include({ channel: 'inc-2103-phishing', channelId });
      // Later functions find it by its new name, and by the association.
      expect(expectOk(await run('slack_pin_message', { slack_channel: 'inc-2103-phishing', slack_ts: ts })).channel_id).to.equal(channelId);
    });

    it('says when the name is taken or not a channel name', async () => {
      slack.emu.seedChannel({ name: 'taken' });
      const taken = expectFailure(await run('slack_rename_channel', { slack_new_name: 'taken' }), 'slack_name_taken');
      expect(taken.message).to.contain('#taken').and.contain('slack_new_name');
      const bad = expectFailure(await run('slack_rename_channel', { slack_new_name: 'Bad Name' }), 'invalid_channel_name');
      expect(bad.message).to.contain('slack_new_name');
      expect((await slack.fx.state.conversations.get('RES-2103'))!.channel).to.equal('inc-2103');
    });
  });

  describe('slack_invite_users / slack_remove_users', () => {
    it('invites by email; twice invites once; unknown emails are warnings', async () => {
      const alice = slack.emu.addUser({ name: 'alice', email: 'alice@example.com' });
      const [first, second] = await twice('slack_invite_users', { slack_participant_emails: 'alice@example.com, ghost@example.com' });
      expect(first.invited).to.deep.equal([alice.id]);
      expect(first.warnings).to.include('No Slack user has the email ghost@example.com');
      expect(second.invited).to.deep.equal([]);
      expect(slack.emu.members(channelId)).to.include(alice.id);
    });

    it('refuses an input that is not a list of emails', async () => {
      const err = expectFailure(await run('slack_invite_users', { slack_participant_emails: 'alice@example.com, not-an-email' }), 'invalid_email');
      expect(err.message).to.contain('"not-an-email"');
      expect(slack.emu.calls('conversations.invite')).to.equal(0);
    });

    it('removes by email; a redelivery finds them gone and succeeds', async () => {
      const alice = slack.emu.addUser({ name: 'alice', email: 'alice@example.com' });
      slack.emu.addMembers(channelId, [alice.id]);
      const [first, second] = await twice('slack_remove_users', { slack_participant_emails: 'alice@example.com' });
      expect(first.removed).to.deep.equal([alice.id]);
      expect(second.removed).to.deep.equal([]);
      expect(second.warnings).to.deep.equal(['alice@example.com is not in #inc-2103']);
      expect(slack.emu.members(channelId)).to.not.include(alice.id);
    });

    it('refuses to remove the app itself, before removing anyone', async () => {
      const alice = slack.emu.addUser({ name: 'alice', email: 'alice@example.com' });
      slack.emu.addMembers(channelId, [alice.id]);
      const botEmail = 'bot@example.com';
      slack.emu.user(slack.emu.botUserId)!.profile.email = botEmail;
      const err = expectFailure(await run('slack_remove_users', { slack_participant_emails: `alice@example.com,${botEmail}` }), 'slack_cant_remove_bot');
      expect(err.message).to.contain(botEmail);
      expect(slack.emu.members(channelId)).to.include.members([alice.id, slack.emu.botUserId]);
      expect(slack.emu.calls('conversations.kick')).to.equal(0);
    });

    it('says who is not in the channel when nobody could be removed', async () => {
      slack.emu.addUser({ name: 'bob', email: 'bob@example.com' });
      const err = expectFailure(await run('slack_remove_users', { slack_participant_emails: 'bob@example.com' }), 'slack_user_not_in_channel');
      expect(err.message).to.contain('bob@example.com').and.contain('#inc-2103');
    });
  });

  describe('slack_pin_message / slack_add_reaction', () => {
    it('pins once for one invocation id (already_pinned is success)', async () => {
      const [first, second] = await twice('slack_pin_message', { slack_ts: ts });
      expect(first).to.deep.include({ ts, pinned: true, already_pinned: false });
      expect(second).to.deep.include({ already_pinned: true });
      expect(slack.emu.pins(channelId)).to.deep.equal([ts]);
      expectFailure(await run('slack_pin_message', { slack_ts: '1000000000.000001' }), 'slack_message_not_found');
    });

    it('reacts once for one invocation id (already_reacted is success); colons are optional', async () => {
      const [first, second] = await twice('slack_add_reaction', { slack_ts: ts, slack_reaction: ':white_check_mark:' });
      expect(first).to.deep.include({ reaction: 'white_check_mark', already_reacted: false });
      expect(second).to.deep.include({ already_reacted: true });
      expect(slack.emu.message(channelId, ts)!.reactions).to.deep.equal([{ name: 'white_check_mark', users: [slack.emu.botUserId], count: 1 }]);
    });

    it('says when the emoji does not exist', async () => {
      const err = expectFailure(await run('slack_add_reaction', { slack_ts: ts, slack_reaction: 'no_such_emoji' }), 'slack_invalid_reaction');
      expect(err.message).to.contain('slack_reaction');
    });
  });

  describe('slack_add_bookmark', () => {
    it('bookmarks the incident in SOAR by default; twice adds one bookmark', async () => {
      const [first, second] = await twice('slack_add_bookmark', { slack_bookmark_title: 'Incident 2103 in SOAR' });
      expect(first).to.deep.include({ link: 'https://soar.example.com/#incidents/2103', already_bookmarked: false });
      expect(second).to.deep.include({ bookmark_id: first.bookmark_id, already_bookmarked: true });
      expect(slack.emu.bookmarks(channelId).map((b) => [b.title, b.link])).to.deep.equal([['Incident 2103 in SOAR', 'https://soar.example.com/#incidents/2103']]);
    });

    it('takes a link, refusing one that is not http(s)', async () => {
      expectOk(await run('slack_add_bookmark', { slack_bookmark_title: 'Runbook', slack_bookmark_link: 'https://wiki.example.com/runbook' }));
      const err = expectFailure(await run('slack_add_bookmark', { slack_bookmark_title: 'x', slack_bookmark_link: 'javascript:alert(1)' }), 'invalid_link');
      expect(err.message).to.contain('slack_bookmark_link');
      expect(slack.emu.bookmarks(channelId)).to.have.length(1);
    });
  });
});
