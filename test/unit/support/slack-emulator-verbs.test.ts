/**
 * The Slack emulator's responder-verb methods (chat.update, conversations.setTopic /
 * setPurpose / rename / kick / open, pins.add, reactions.add, bookmarks.add / list), called
 * with the real WebClient, with the errors Slack documents for them.
 */
import { ErrorCode, WebClient } from '@slack/web-api';
import { expect } from 'chai';
import { useSlackEmulator } from '../../support/slack-hooks.js';

async function slackError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: string; data?: { error?: string } };
    expect(e.code).to.equal(ErrorCode.PlatformError);
    return String(e.data?.error);
  }
  throw new Error('expected the call to be rejected');
}

describe('SlackEmulator: responder verbs', function () {
  this.timeout(20_000);
  const slack = useSlackEmulator();
  let client: WebClient;
  let chan: string;
  let ts: string;

  beforeEach(async () => {
    client = new WebClient(slack.emu.botToken, { slackApiUrl: slack.emu.apiUrl, retryConfig: { retries: 0 } });
    chan = slack.emu.seedChannel({ name: 'inc-1' }).id;
    ts = String((await client.chat.postMessage({ channel: chan, text: 'hello' })).ts);
  });

  it('chat.update edits the caller\'s own message, refuses others\' and unknown ones', async () => {
    const res = await client.chat.update({ channel: chan, ts, text: 'edited' });
    expect(res.text).to.equal('edited');
    expect(slack.emu.message(chan, ts)!.text).to.equal('edited');
    expect(slack.emu.message(chan, ts)!.edited?.user).to.equal(slack.emu.botUserId);
    const [theirs] = slack.emu.seedMessages(chan, 1);
    expect(await slackError(client.chat.update({ channel: chan, ts: theirs!.ts, text: 'x' }))).to.equal('cant_update_message');
    expect(await slackError(client.chat.update({ channel: chan, ts: '1000000000.000001', text: 'x' }))).to.equal('message_not_found');
    expect(await slackError(client.chat.update({ channel: chan, ts, text: 'x'.repeat(40_001) }))).to.equal('msg_too_long');
  });

  it('conversations.setTopic / setPurpose set the values, at most 250 characters, members only', async () => {
    await client.conversations.setTopic({ channel: chan, topic: 'Phishing' });
    await client.conversations.setPurpose({ channel: chan, purpose: 'Incident 1' });
    expect(slack.emu.channel(chan)!.topic.value).to.equal('Phishing');
    expect(slack.emu.channel(chan)!.purpose.value).to.equal('Incident 1');
    expect(await slackError(client.conversations.setTopic({ channel: chan, topic: 'x'.repeat(251) }))).to.equal('too_long');
    const other = slack.emu.seedChannel({ name: 'other', members: [slack.emu.adminUserId] }).id;
    expect(await slackError(client.conversations.setTopic({ channel: other, topic: 't' }))).to.equal('not_in_channel');
  });

  it('conversations.rename renames, refusing a taken or invalid name', async () => {
    await client.conversations.rename({ channel: chan, name: 'inc-1-phishing' });
    expect(slack.emu.channelByName('inc-1-phishing')!.id).to.equal(chan);
    expect(slack.emu.channelByName('inc-1')).to.equal(undefined);
    expect(await slackError(client.conversations.rename({ channel: chan, name: 'general' }))).to.equal('name_taken');
    expect(await slackError(client.conversations.rename({ channel: chan, name: 'Bad Name' }))).to.match(/^invalid_name/);
  });

  it('conversations.kick removes a member; not_in_channel, cant_kick_self, user_not_found', async () => {
    const bob = slack.emu.addUser({ name: 'bob', email: 'bob@example.com' });
    slack.emu.addMembers(chan, [bob.id]);
    await client.conversations.kick({ channel: chan, user: bob.id });
    expect(slack.emu.members(chan)).to.not.include(bob.id);
    expect(await slackError(client.conversations.kick({ channel: chan, user: bob.id }))).to.equal('not_in_channel');
    expect(await slackError(client.conversations.kick({ channel: chan, user: slack.emu.botUserId }))).to.equal('cant_kick_self');
    expect(await slackError(client.conversations.kick({ channel: chan, user: 'U404' }))).to.equal('user_not_found');
  });

  it('conversations.open opens one IM per person (already_open the second time); history needs im:history', async () => {
    const bob = slack.emu.addUser({ name: 'bob', email: 'bob@example.com' });
    const first = await client.conversations.open({ users: bob.id });
    const dm = String((first.channel as { id: string }).id);
    expect(dm).to.match(/^D/);
    const again = await client.conversations.open({ users: bob.id });
    expect(again).to.deep.include({ already_open: true, channel: { id: dm } });
    await client.chat.postMessage({ channel: dm, text: 'hi bob' });
    expect(slack.emu.messages(dm).map((m) => m.text)).to.deep.equal(['hi bob']);
    expect((await client.conversations.history({ channel: dm })).messages).to.have.length(1);
    const list = await client.conversations.list({ types: 'public_channel,private_channel' });
    expect((list.channels ?? []).map((c) => c.id)).to.not.include(dm);
    const noIm = slack.emu.addToken('xoxb-no-im', { scopes: ['chat:write', 'channels:history'], botUserId: slack.emu.botUserId });
    const limited = new WebClient(noIm.token, { slackApiUrl: slack.emu.apiUrl, retryConfig: { retries: 0 } });
    expect(await slackError(limited.conversations.open({ users: bob.id }))).to.equal('missing_scope');
    expect(await slackError(limited.conversations.history({ channel: dm }))).to.equal('missing_scope');
    expect(await slackError(client.conversations.open({ users: 'U404' }))).to.equal('user_not_found');
  });

  it('pins.add pins once (already_pinned after), message_not_found', async () => {
    await client.pins.add({ channel: chan, timestamp: ts });
    expect(slack.emu.pins(chan)).to.deep.equal([ts]);
    expect(await slackError(client.pins.add({ channel: chan, timestamp: ts }))).to.equal('already_pinned');
    expect(await slackError(client.pins.add({ channel: chan, timestamp: '1000000000.000001' }))).to.equal('message_not_found');
  });

  it('reactions.add reacts once (already_reacted after); invalid_name for an unknown emoji', async () => {
    await client.reactions.add({ channel: chan, timestamp: ts, name: 'eyes' });
    expect(slack.emu.message(chan, ts)!.reactions).to.deep.equal([{ name: 'eyes', users: [slack.emu.botUserId], count: 1 }]);
    expect(await slackError(client.reactions.add({ channel: chan, timestamp: ts, name: 'eyes' }))).to.equal('already_reacted');
    expect(await slackError(client.reactions.add({ channel: chan, timestamp: ts, name: 'no_such_emoji' }))).to.equal('invalid_name');
    slack.emu.addEmoji('no_such_emoji');
    await client.reactions.add({ channel: chan, timestamp: ts, name: 'no_such_emoji' });
    const history = await client.conversations.history({ channel: chan });
    expect((history.messages![0] as { reactions?: unknown[] }).reactions).to.have.length(2);
  });

  it('bookmarks.add adds a link, bookmarks.list lists them; invalid_bookmark_type, invalid_link', async () => {
    const res = await client.bookmarks.add({ channel_id: chan, title: 'SOAR', type: 'link', link: 'https://soar.example.com/#incidents/1' });
    expect(res.bookmark).to.deep.include({ title: 'SOAR', link: 'https://soar.example.com/#incidents/1', channel_id: chan });
    const listed = await client.bookmarks.list({ channel_id: chan });
    expect(listed.bookmarks!.map((b) => b.title)).to.deep.equal(['SOAR']);
    expect(await slackError(client.apiCall('bookmarks.add', { channel_id: chan, title: 'x', type: 'message', link: 'https://x.test' }))).to.equal(
      'invalid_bookmark_type',
    );
    expect(await slackError(client.bookmarks.add({ channel_id: chan, title: 'x', type: 'link', link: 'javascript:alert(1)' }))).to.equal('invalid_link');
  });
});
