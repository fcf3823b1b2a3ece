/**
 * slack_post_message against the Slack Web API emulator: layout, escaping, long text,
 * idempotent redelivery, error mapping and the retry rules.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { WebClient } from '@slack/web-api';
import { RetryableError } from '../../../../src/core/runtime/errors.js';
import { DEFAULT_BOT_SCOPES, type EmulatedMessage } from '../../../support/slack-emulator.js';
import { runFunction, type SlackFixture, expectOk, expectFailure, expectFailureMessage } from '../../../support/function-context.js';
import { useSlackFixture } from '../../../support/slack-hooks.js';

const CONTAINER = {
  'Type of data': 'Incident',
  'Additional Text': 'Escalated by the night shift',
  'SOAR URL': { type: 'incident', data: 2103 },
  'Incident ID': { type: 'string', data: '2103' },
  Description: { type: 'richtext', data: '<p>Phishing <b>wave</b></p>' },
  Created: { type: 'datetime', data: 1541066628000 },
  Confirmed: { type: 'boolean', data: true },
};

type Block = { type: string; text?: { type: string; text: string }; fields?: { type: string; text: string }[]; elements?: { text: string }[] };

/** The text of every section block (text and fields), in order. */
function sectionTexts(m: EmulatedMessage): string[] {
  const out: string[] = [];
  for (const b of (m.blocks ?? []) as Block[]) {
    if (b.type !== 'section') continue;
    if (b.text) out.push(b.text.text);
    for (const f of b.fields ?? []) out.push(f.text);
  }
  return out;
}

describe('slack_post_message', function () {
  this.timeout(30_000);
  const slack = useSlackFixture({ config: { soar_url: 'https://soar.example.com/#incidents/{incident_id}' } });

  const post = (inputs: Record<string, unknown>, opts: { invocationId?: string; attempt?: number } = {}, on: SlackFixture = slack.fx) =>
    runFunction(on, 'slack_post_message', { incident_id: 2103, slack_channel: 'inc-2103', slack_is_channel_private: false, slack_text: 'Phishing wave', ...inputs }, opts);

  function only(channelId: string): EmulatedMessage {
    const msgs = slack.emu.messages(channelId);
    expect(msgs).to.have.length(1);
    return msgs[0]!;
  }

  describe('layout', () => {
    it('posts plain text as a section block with the same fallback text', async () => {
      const content = expectOk(await post({ slack_text: 'Phishing wave *contained*\nsecond line' }));
      const m = only(content.channel_id);
      expect(m.text).to.equal('Phishing wave *contained*\nsecond line');
      expect(m.blocks).to.deep.equal([
        { type: 'section', text: { type: 'mrkdwn', text: 'Phishing wave *contained*\nsecond line', verbatim: true } },
      ]);
    });

    it('posts a container as header, fields and a SOAR link, with a fallback text carrying the same content', async () => {
      const content = expectOk(await post({ slack_text: JSON.stringify(CONTAINER) }));
      const m = only(content.channel_id);
      const blocks = m.blocks as Block[];
      expect(blocks.map((b) => b.type)).to.deep.equal(['header', 'section', 'section', 'context']);
      expect(blocks[0]!.text).to.deep.include({ type: 'plain_text', text: 'Incident' });
      expect(blocks[1]!.text!.text).to.equal('Escalated by the night shift');
      expect(blocks[2]!.fields!.map((f) => f.text)).to.deep.equal([
        '*Incident ID*\n2103',
        '*Description*\nPhishing *wave*',
        '*Created*\n2018-11-01 10:03:48 UTC',
        '*Confirmed*\nYes',
      ]);
      expect(blocks[3]!.elements![0]!.text).to.equal('<https://soar.example.com/#incidents/2103|Open incident 2103 in SOAR>');
      expect(m.text).to.equal(
        [
          'Incident',
          'Escalated by the night shift',
          '*Incident ID*: 2103',
          '*Description*: Phishing *wave*',
          '*Created*: 2018-11-01 10:03:48 UTC',
          '*Confirmed*: Yes',
          '<https://soar.example.com/#incidents/2103|Open incident 2103 in SOAR>',
        ].join('\n'),
      );
    });

    it('escapes untrusted data so that it cannot mention, link or format dates', async () => {
      const hostile = '<!channel> <!here> <@U0001> <!subteam^S1> <http://evil.example|click> <!date^1|x> & done';
      const plain = expectOk(await post({ slack_text: hostile }));
      const m1 = only(plain.channel_id);
      const escaped = '&lt;!channel&gt; &lt;!here&gt; &lt;@U0001&gt; &lt;!subteam^S1&gt; &lt;http://evil.example|click&gt; &lt;!date^1|x&gt; &amp; done';
      expect(m1.text).to.equal(escaped);
      expect(sectionTexts(m1)).to.deep.equal([escaped]);

      const container = expectOk(
        await post({
          incident_id: 2104,
          slack_channel: 'inc-2104',
          slack_text: JSON.stringify({ 'Type of data': '<!here>', 'Additional Text': '<!channel> now', 'Owner <@U0001>': '<!everyone>' }),
        }),
      );
      const m2 = only(container.channel_id);
      const all = JSON.stringify(m2.blocks) + m2.text;
      for (const token of ['<!channel>', '<!here>', '<@U0001>', '<!everyone>']) expect(all).to.not.contain(token);
      expect(m2.text).to.contain('&lt;!channel&gt; now');
      expect(sectionTexts(m2)).to.include('*Owner &lt;@U0001&gt;*\n&lt;!everyone&gt;');
    });

    it('continues a 100,000-character text in the thread, in order, losing nothing', async () => {
      let text = '';
      for (let i = 0; text.length < 100_000; i++) text += `word${i} `;
      text = text.slice(0, 100_000);
      const run = await post({ slack_text: text });
      const content = expectOk(run);
      const top = only(content.channel_id);
      expect(top.ts).to.equal(content.ts);
      const replies = slack.emu.replies(content.channel_id, content.ts);
      expect(replies.length).to.be.greaterThan(0);
      expect(content.thread_ts).to.equal(content.ts);
      expect(content.continuation_ts).to.deep.equal(replies.map((r) => r.ts));
      const parts = [top, ...replies];
      expect(parts.map((p) => sectionTexts(p).join('')).join('')).to.equal(text);
      for (const p of parts) expect(p.text.length).to.be.at.most(40_000);
      const total = parts.length;
      expect(JSON.stringify(top.blocks)).to.contain(`(1/${total}, continued in thread)`);
      replies.forEach((r, i) => expect(JSON.stringify(r.blocks)).to.contain(`(continued ${i + 2}/${total})`));
      expect(run.progress).to.include(`Posted the message to #inc-2103 (${total - 1} continuation(s) in its thread)`);
      replies.forEach((r, i) => expect(r.metadata?.event_payload).to.deep.include({ part: i + 1, parts: total }));
    });

    it('posts plain_text blocks and mrkdwn false with slack_mrkdwn false', async () => {
      const content = expectOk(await post({ slack_text: 'not *bold*', slack_mrkdwn: false }));
      const m = only(content.channel_id);
      expect(m.mrkdwn).to.equal(false);
      expect(m.blocks).to.deep.equal([{ type: 'section', text: { type: 'plain_text', text: 'not *bold*', emoji: true } }]);
      expect(String(slack.emu.callLog.find((c) => c.method === 'chat.postMessage')!.params.mrkdwn)).to.equal('false');
    });

    it('keeps Slack formatting on by default', async () => {
      const content = expectOk(await post({ slack_text: 'is *bold*' }));
      expect(only(content.channel_id).mrkdwn).to.equal(undefined);
      expect(String(slack.emu.callLog.find((c) => c.method === 'chat.postMessage')!.params.mrkdwn)).to.equal('true');
    });

    it('never asks Slack to link plain-text names: @channel stays text in the post and every continuation', async () => {
      const text = `@channel @here @everyone @alice #general <!here>\n`.repeat(1500);
      const content = expectOk(await post({ slack_text: text }));
      const posts = slack.emu.callLog.filter((c) => c.method === 'chat.postMessage');
      expect(posts.length).to.be.greaterThan(1);
      for (const c of posts) {
        expect(c.params).to.not.have.property('link_names');
        expect(c.params.parse === undefined || c.params.parse === 'none', String(c.params.parse)).to.equal(true);
        expect(String(c.params.text)).to.include('@channel @here @everyone @alice #general &lt;!here&gt;');
        expect(String(c.params.text) + String(c.params.blocks)).to.not.match(/<[!@#]/);
      }
      expect(content.continuation_ts).to.have.length(posts.length - 1);
    });

    it('passes slack_username to Slack', async () => {
      const content = expectOk(await post({ slack_username: 'Night Shift' }));
      expect(only(content.channel_id).username).to.equal('Night Shift');
    });

    it('strips Unicode direction controls from slack_username', async () => {
      const content = expectOk(await post({ slack_username: '\u202BNight\u200F Shift\u2066 (CISO)\u2069\u202C\u061C\u200E\u202A\u202D\u202E\u2067\u2068' }));
      expect(only(content.channel_id).username).to.equal('Night Shift (CISO)');
      const onlyControls = expectOk(await post({ slack_username: '\u202E\u2066', slack_channel: 'inc-2103-b' }));
      expect(only(onlyControls.channel_id).username).to.equal(undefined);
    });

    it('uses [fn_slack] username when slack_username is not given', async () => {
      const named = await slack.fixture({ username: 'SOAR' });
      const content = expectOk(await post({}, {}, named));
      expect(only(content.channel_id).username).to.equal('SOAR');
    });

    it('reports that slack_as_user has no effect, and posts anyway', async () => {
      const run = await post({ slack_as_user: true });
      const content = expectOk(run);
      expect(run.progress).to.include('slack_as_user has no effect with a bot token: the message is posted by the app');
      expect(only(content.channel_id).bot_id).to.equal(slack.emu.botId);
    });

    it('returns channel, channel_id, ts, url (the permalink) and members', async () => {
      const alice = slack.emu.addUser({ name: 'alice', email: 'alice@example.com' });
      const run = await post({ slack_participant_emails: 'alice@example.com' });
      const content = expectOk(run);
      const ch = slack.emu.channelByName('inc-2103')!;
      const m = only(ch.id);
      expect(content.channel).to.equal('inc-2103');
      expect(content.channel_id).to.equal(ch.id);
      expect(content.ts).to.equal(m.ts);
      expect(content.url).to.equal(`https://emulated.slack.com/archives/${ch.id}/p${m.ts.replace('.', '')}`);
      expect(content.members).to.have.members([slack.emu.botUserId, alice.id]);
      expect(content.is_private).to.equal(false);
      expect(content.thread_ts).to.equal(null);
      expect(content.continuation_ts).to.deep.equal([]);
      expect(run.progress).to.include('Posted the message to #inc-2103');
    });

    it("builds the permalink from auth.test's url, asked once: no chat.getPermalink call, the link Slack would give", async () => {
      const first = expectOk(await post({ slack_text: 'one' }));
      const second = expectOk(await post({ slack_text: 'two' }));
      expect(slack.emu.calls('chat.getPermalink')).to.equal(0);
      expect(slack.emu.calls('auth.test')).to.equal(1);
      const asked = new WebClient(slack.emu.botToken, { slackApiUrl: slack.emu.apiUrl });
      for (const content of [first, second]) {
        const answer = await asked.chat.getPermalink({ channel: String(content.channel_id), message_ts: String(content.ts) });
        expect(content.url).to.equal(answer.permalink);
      }
    });

    it('asks chat.getPermalink when auth.test gives no workspace url', async () => {
      slack.emu.authTestUrl = false;
      const content = expectOk(await post({}));
      expect(slack.emu.calls('chat.getPermalink')).to.equal(1);
      expect(content.url).to.equal(`https://emulated.slack.com/archives/${String(content.channel_id)}/p${String(content.ts).replace('.', '')}`);
    });

    it('tags each post with the invocation id in its metadata', async () => {
      const invocationId = randomUUID();
      const content = expectOk(await post({}, { invocationId }));
      expect(only(content.channel_id).metadata).to.deep.equal({
        event_type: 'soar_worker_post',
        event_payload: { invocation_id: invocationId, part: 0, parts: 1 },
      });
    });
  });

  describe('redelivery', () => {
    it('does not post again when an earlier attempt of the same invocation already posted', async () => {
      const invocationId = randomUUID();
      // Attempt 1 posts, then fails afterwards (the member list is unavailable).
      slack.emu.failNext('conversations.members', { error: 'service_unavailable' });
      const first = await post({ slack_text: 'once only' }, { invocationId, attempt: 1 });
      expect(first.error?.retryable).to.equal(true);
      const ch = slack.emu.channelByName('inc-2103')!;
      const posted = only(ch.id);

      const run = await post({ slack_text: 'once only' }, { invocationId, attempt: 2 });
      const content = expectOk(run);
      expect(slack.emu.messages(ch.id)).to.have.length(1);
      expect(slack.emu.calls('chat.postMessage')).to.equal(1);
      expect(content.ts).to.equal(posted.ts);
      expect(run.progress).to.include('Found 1 part(s) posted by an earlier attempt; not posting them again');
      expect((await slack.fx.state.conversations.get('RES-2103'))?.channelId).to.equal(ch.id);
    });

    it('posts only the parts an interrupted earlier attempt did not post', async () => {
      const invocationId = randomUUID();
      const text = 'x '.repeat(50_000); // three parts
      slack.emu.failNext('chat.postMessage', {}); // the first part goes through
      slack.emu.failNext('chat.postMessage', { status: 500 }); // the second one fails
      const first = await post({ slack_text: text }, { invocationId, attempt: 1 });
      expect(first.error?.retryable).to.equal(true);
      const ch = slack.emu.channelByName('inc-2103')!;
      const top = only(ch.id);
      expect(slack.emu.replies(ch.id, top.ts)).to.have.length(0);

      const content = expectOk(await post({ slack_text: text }, { invocationId, attempt: 2 }));
      expect(content.ts).to.equal(top.ts);
      expect(slack.emu.messages(ch.id)).to.have.length(1);
      const replies = slack.emu.replies(ch.id, top.ts);
      expect(replies.map((r) => r.metadata?.event_payload.part)).to.deep.equal([1, 2]);
      expect([top, ...replies].map((p) => sectionTexts(p).join('')).join('')).to.equal(text);
    });

    it('a new invocation (another id) posts again', async () => {
      expectOk(await post({ slack_text: 'same text' }, { invocationId: randomUUID() }));
      expectOk(await post({ slack_text: 'same text' }, { invocationId: randomUUID(), attempt: 2 }));
      expect(slack.emu.messages(slack.emu.channelByName('inc-2103')!.id)).to.have.length(2);
    });
  });

  describe('an associated channel archived in Slack by a person', () => {
    const REFUSAL =
      'The Slack channel #inc-2103 associated with incident 2103 was archived: give slack_channel to open a new channel, which then replaces #inc-2103 as the channel of incident 2103';

    it('found archived on lookup: refused clearly, the association learns it, a post with slack_channel replaces it', async () => {
      const uncached = await slack.fixture({ channel_cache_ttl: '0' });
      const first = expectOk(await post({}, {}, uncached));
      slack.emu.channel(first.channel_id)!.isArchived = true;

      const byAssociation = { slack_channel: undefined, slack_is_channel_private: undefined };
      expect(expectFailureMessage(await post(byAssociation, {}, uncached), 'slack_channel_archived')).to.equal(REFUSAL);
      const row = (await uncached.state.conversations.get('RES-2103'))!;
      expect(row).to.include({ channelId: first.channel_id, archived: true });
      expect(row.archivedAt).to.be.instanceOf(Date);
      // Known now: refused without asking Slack.
      slack.emu.resetCalls();
      expect(expectFailureMessage(await post(byAssociation, {}, uncached), 'slack_channel_archived')).to.equal(REFUSAL);
      expect(slack.emu.calls()).to.equal(0);

      const next = expectOk(await post({ slack_channel: 'inc-2103-b' }, {}, uncached));
      expect(await uncached.state.conversations.get('RES-2103')).to.include({ channel: 'inc-2103-b', channelId: next.channel_id, archived: false });
      expect(expectOk(await post(byAssociation, {}, uncached)).channel_id).to.equal(next.channel_id);
    });

    it('is_archived on the post (archived after the lookup): refused clearly, the association learns it', async () => {
      const uncached = await slack.fixture({ channel_cache_ttl: '0' });
      const first = expectOk(await post({}, {}, uncached));
      slack.emu.failNext('chat.postMessage', { error: 'is_archived' });
      const run = await post({ slack_channel: undefined, slack_is_channel_private: undefined }, {}, uncached);
      expect(expectFailureMessage(run, 'slack_channel_archived')).to.equal(REFUSAL);
      expect(await uncached.state.conversations.get('RES-2103')).to.include({ channelId: first.channel_id, archived: true });
    });

    it('is_archived on the post with the channel cache on: the fresh info is dropped, the next post by id posts nothing', async () => {
      const first = expectOk(await post({}));
      slack.fx.state.channels.forgetChannel(first.channel_id); // the next post looks the channel up afresh
      // Slack archives it between the lookup (which says live, and is cached) and the post.
      slack.emu.failNext('chat.postMessage', { error: 'is_archived' });
      const run = await post({ slack_channel: undefined, slack_is_channel_private: undefined });
      expect(expectFailure(run, 'slack_channel_archived').message).to.contain('was archived: give slack_channel');
      slack.emu.channel(first.channel_id)!.isArchived = true;
      const posts = slack.emu.calls('chat.postMessage');
      expectFailure(await post({ slack_channel: undefined, slack_channel_id: first.channel_id }), 'slack_channel_archived');
      expect(slack.emu.calls('chat.postMessage')).to.equal(posts);
    });

    it('a post by slack_channel_id to the associated channel, found archived, also marks the association', async () => {
      const uncached = await slack.fixture({ channel_cache_ttl: '0' });
      const first = expectOk(await post({}, {}, uncached));
      slack.emu.channel(first.channel_id)!.isArchived = true;
      const message = expectFailureMessage(await post({ slack_channel: undefined, slack_channel_id: first.channel_id }, {}, uncached), 'slack_channel_archived');
      expect(message).to.equal(`Slack channel #inc-2103 (${first.channel_id}) is archived: unarchive it in Slack, or give another slack_channel`);
      expect((await uncached.state.conversations.get('RES-2103'))!.archived).to.equal(true);
    });
  });

  describe('Slack errors', () => {
    it('explains not_in_channel on a private channel the app is not in', async () => {
      expectOk(await post({ incident_id: 1, slack_channel: 'secret', slack_is_channel_private: true }));
      // The app was removed from the channel between the lookup and the post. The second
      // post uses cached channel info, so Slack's refusal makes the worker look the
      // channel up again and post once more: both posts are refused.
      slack.emu.failNext('chat.postMessage', { error: 'not_in_channel', times: 2 });
      const err = expectFailure(await post({ incident_id: 1, slack_channel: 'secret', slack_is_channel_private: true }), 'slack_not_in_channel');
      expect(err.message).to.equal(
        'The Slack app is not a member of the channel #secret: invite it there (/invite @<app name>) and run the function again',
      );
      expect(err.retryable).to.equal(false);
    });

    it('explains a private channel the app cannot see when given by id', async () => {
      const ch = slack.emu.seedChannel({ name: 'hidden', isPrivate: true, members: [slack.emu.adminUserId] });
      const err = expectFailure(await post({ slack_channel: undefined, slack_channel_id: ch.id }), 'slack_channel_not_found');
      expect(err.message).to.contain(ch.id);
      expect(err.message).to.contain('a private channel must have the app as a member');
      expect(slack.emu.calls('chat.postMessage')).to.equal(0);
    });

    it('names the missing scope', async () => {
      slack.emu.addToken('xoxb-limited', { scopes: DEFAULT_BOT_SCOPES.filter((s) => s !== 'chat:write'), name: 'limited-bot' });
      const limited = await slack.fixture({}, 'xoxb-limited');
      const err = expectFailure(await post({}, {}, limited), 'slack_missing_scope');
      expect(err.message).to.contain('lacks the scope "chat:write" needed by chat.postMessage');
      expect(err.message).to.contain('reinstall the app');
      expect(err.retryable).to.equal(false);
    });

    it('explains invalid_auth without showing the token', async () => {
      const bad = await slack.fixture({}, 'xoxb-not-a-real-token');
      const err = expectFailure(await post({}, {}, bad), 'slack_auth_failed');
      expect(err.message).to.contain('Slack rejected the token in [fn_slack] api_token (invalid_auth)');
      expect(err.message).to.not.contain('xoxb-not-a-real-token');
      expect(slack.emu.calls('chat.postMessage')).to.equal(0);
    });
  });

  describe('retries', () => {
    it('waits out a 429 with Retry-After 1 and succeeds, saying so', async () => {
      slack.emu.failNext('chat.postMessage', { retryAfter: 1 });
      const started = Date.now();
      const run = await post({});
      const content = expectOk(run);
      expect(Date.now() - started).to.be.at.least(900);
      expect(run.progress).to.include('Slack is rate-limiting chat.postMessage: waiting 1s');
      expect(slack.emu.calls('chat.postMessage')).to.equal(2);
      expect(only(content.channel_id).ts).to.equal(content.ts);
    });

    it('gives up with a retryable error when rate limiting lasts beyond the retry budget', async () => {
      const tight = await slack.fixture({ retry_budget: '1' });
      slack.emu.failNext('chat.postMessage', { retryAfter: 3 });
      const err = expectFailure(await post({}, {}, tight), 'slack_rate_limited');
      expect(err).to.be.instanceOf(RetryableError);
      expect(err.retryable).to.equal(true);
      expect(err.message).to.contain('beyond the retry budget of 1s');
      expect(slack.emu.calls('chat.postMessage')).to.equal(1);
      expect(slack.emu.messages(slack.emu.channelByName('inc-2103')!.id)).to.have.length(0);
    });

    it('does not repeat chat.postMessage after a 500: retryable error, one call', async () => {
      slack.emu.failNext('chat.postMessage', { status: 500 });
      const err = expectFailure(await post({}), 'slack_unavailable');
      expect(err.retryable).to.equal(true);
      expect(err.message).to.contain('HTTP 500');
      expect(slack.emu.calls('chat.postMessage')).to.equal(1);
      expect(slack.emu.messages(slack.emu.channelByName('inc-2103')!.id).length).to.be.at.most(1);
      expect(await slack.fx.state.conversations.get('RES-2103')).to.equal(undefined);
    });

    it('a transient Slack error is retryable and does not promise a retry (the runner decides that)', async () => {
      slack.emu.failNext('chat.postMessage', { error: 'service_unavailable' });
      const err = expectFailure(await post({}), 'slack_unavailable');
      expect(err.retryable).to.equal(true);
      expect(err.message).to.equal('Slack chat.postMessage failed with service_unavailable, a temporary Slack error');
      expect(err.message).not.to.match(/will be retried|will retry|retrying/i);
    });

    it('retries conversations.info after a 500 and succeeds', async () => {
      const ch = slack.emu.seedChannel({ name: 'flaky' });
      slack.emu.failNext('conversations.info', { status: 500 });
      const run = await post({ slack_channel: undefined, slack_channel_id: ch.id });
      const content = expectOk(run);
      expect(content.channel_id).to.equal(ch.id);
      expect(slack.emu.calls('conversations.info')).to.equal(2);
      expect(run.progress).to.include('Slack conversations.info is unavailable (HTTP 500): retrying in 1s');
      expect(slack.emu.messages(ch.id)).to.have.length(1);
    });
  });
});
