/**
 * What mirroring takes from Slack's `message` events (payloads as Slack documents them),
 * and how Slack's markup becomes readable text.
 */
import { expect } from 'chai';
import { classifyMessageEvent } from '../../../../../src/functions/slack/inbound/mirror-events.js';
import { readableText, type NameResolver } from '../../../../../src/functions/slack/inbound/readable-text.js';

const BOT = 'UBOT';

describe('mirror events', () => {
  it("takes a person's message, reply, broadcast, file share and /me, keyed by channel and ts", () => {
    const base = { type: 'message', channel: 'C1', user: 'U1', text: 'hi', ts: '1796637600.000100' };
    const m = classifyMessageEvent(base, BOT);
    expect(m).to.deep.include({ kind: 'message', key: 'C1:1796637600.000100', threadTs: undefined, userId: 'U1', text: 'hi' });
    expect(classifyMessageEvent({ ...base, thread_ts: '1796637500.000001' }, BOT)).to.deep.include({
      kind: 'message',
      threadTs: '1796637500.000001',
    });
    // A thread's parent carries its own ts as thread_ts: not a reply.
    expect(classifyMessageEvent({ ...base, thread_ts: base.ts }, BOT)).to.deep.include({ threadTs: undefined });
    for (const subtype of ['thread_broadcast', 'file_share', 'me_message']) {
      expect(classifyMessageEvent({ ...base, subtype }, BOT).kind, subtype).to.equal('message');
    }
  });

  it('skips bots (the worker too, even without bot_id), system subtypes and messages without a user', () => {
    const base = { type: 'message', channel: 'C1', user: 'U1', text: 'hi', ts: '1796637600.000100' };
    expect(classifyMessageEvent({ ...base, bot_id: 'B1' }, BOT)).to.deep.equal({ kind: 'skip', reason: 'a bot message' });
    expect(classifyMessageEvent({ ...base, subtype: 'bot_message' }, BOT).kind).to.equal('skip');
    expect(classifyMessageEvent({ ...base, user: BOT }, BOT)).to.deep.equal({ kind: 'skip', reason: "the worker's own message" });
    for (const subtype of [
      'channel_join',
      'channel_leave',
      'channel_topic',
      'channel_purpose',
      'channel_name',
      'channel_archive',
      'pinned_item',
      'reminder_add',
    ]) {
      expect(classifyMessageEvent({ ...base, subtype }, BOT), subtype).to.deep.equal({ kind: 'skip', reason: `a ${subtype} message` });
    }
    expect(classifyMessageEvent({ ...base, user: undefined }, BOT).kind).to.equal('skip');
  });

  it("takes an edit of a person's text, not an unfurl or an edit of a bot's message", () => {
    const message = { type: 'message', user: 'U1', text: 'new', ts: '1796637600.000100', edited: { user: 'U1', ts: '1796637700.000200' } };
    const event = {
      type: 'message',
      subtype: 'message_changed',
      hidden: true,
      channel: 'C1',
      message,
      previous_message: { ...message, text: 'old', edited: undefined },
      ts: '1796637700.000200',
    };
    expect(classifyMessageEvent(event, BOT)).to.deep.include({
      kind: 'edit',
      key: 'C1:1796637600.000100:edit:1796637700.000200',
      text: 'new',
      ts: '1796637600.000100',
    });
    expect(classifyMessageEvent({ ...event, previous_message: message }, BOT).kind, 'same text (an unfurl)').to.equal('skip');
    const { edited: _edited, ...unedited } = message;
    expect(classifyMessageEvent({ ...event, message: unedited }, BOT).kind, 'no edited').to.equal('skip');
    expect(classifyMessageEvent({ ...event, message: { ...message, bot_id: 'B1' } }, BOT).kind, 'a bot').to.equal('skip');
  });

  it("takes the delete of a person's message, not of a bot's", () => {
    const event = {
      type: 'message',
      subtype: 'message_deleted',
      hidden: true,
      channel: 'C1',
      deleted_ts: '1796637600.000100',
      ts: '1796637800.000300',
      event_ts: '1796637800.000300',
    };
    expect(classifyMessageEvent({ ...event, previous_message: { user: 'U1', text: 'x', ts: '1796637600.000100' } }, BOT)).to.deep.include({
      kind: 'delete',
      key: 'C1:1796637600.000100:deleted',
      userId: 'U1',
      created: new Date(1796637800000),
    });
    expect(classifyMessageEvent({ ...event, previous_message: { bot_id: 'B1', text: 'x', ts: '1' } }, BOT).kind).to.equal('skip');
    expect(classifyMessageEvent(event, BOT)).to.deep.include({ kind: 'delete', userId: undefined });
  });
});

describe('readable text', () => {
  const names: NameResolver = {
    user: async (id) => ({ U1: 'Alice Analyst' })[id],
    channel: async (id) => ({ C1: 'inc-2103' })[id],
  };

  it('names mentions, keeps link targets, unescapes what Slack escapes', async () => {
    const cases: [string, string][] = [
      ['<@U1> and <@U2|bob> and <@U9>', '@Alice Analyst and @bob and @U9'],
      ['<#C1> <#C2|ops> <#C9>', '#inc-2103 #ops #C9'],
      ['<!here> <!channel> <!everyone> <!subteam^S1|@oncall> <!subteam^S2>', '@here @channel @everyone @oncall @group'],
      ['<!date^1392734382^{date_num}|2014-02-18 6:39 AM>', '2014-02-18 6:39 AM'],
      ['<https://a.example/x?y=1&amp;z=2|the page> <https://b.example>', 'the page (https://a.example/x?y=1&z=2) https://b.example'],
      ['<mailto:a@example.com|a@example.com> <mailto:b@example.com|Bob>', 'a@example.com Bob (b@example.com)'],
      ['1 &lt; 2 &amp;&amp; 3 &gt; 2, &amp;lt; stays', '1 < 2 && 3 > 2, &lt; stays'],
      ['*bold* _it_ `code`', '*bold* _it_ `code`'],
    ];
    for (const [slack, readable] of cases) expect(await readableText(slack, names), slack).to.equal(readable);
  });
});
