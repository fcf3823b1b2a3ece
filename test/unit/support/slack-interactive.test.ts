/**
 * The emulator's interactivity, driven by Slack's own clients: a click in a stored message
 * reaches a Socket Mode client as a `block_actions` payload; the payload's response_url
 * replaces, deletes or answers ephemerally (5 uses, 30 minutes); chat.postEphemeral is
 * recorded per user; conversations.open gives the DM the question goes to.
 */
import { expect } from 'chai';
import { SocketModeClient } from '@slack/socket-mode';
import { WebClient } from '@slack/web-api';
import type { EmulatedUser } from '../../support/slack-emulator.js';
import { RESPONSE_URL_MAX_USES, RESPONSE_URL_TTL_MS } from '../../support/slack-interactive.js';
import { useSlackEmulator } from '../../support/slack-hooks.js';
import { poller } from '../../support/until.js';

const until = poller({ timeoutMs: 5000, everyMs: 10 });

const QUESTION_BLOCKS = [
  { type: 'section', text: { type: 'mrkdwn', text: 'Isolate host FS01?' } },
  {
    type: 'actions',
    block_id: 'answers',
    elements: [
      { type: 'button', action_id: 'ask:1:0', text: { type: 'plain_text', text: 'Approve' }, value: '0', style: 'primary' },
      { type: 'button', action_id: 'ask:1:1', text: { type: 'plain_text', text: 'Reject' }, value: '1' },
      {
        type: 'static_select',
        action_id: 'triage:severity',
        placeholder: { type: 'plain_text', text: 'Severity' },
        options: ['Low', 'High'].map((s) => ({ text: { type: 'plain_text', text: s }, value: s.toLowerCase() })),
      },
    ],
  },
];

describe('Slack emulator: interactivity', function () {
  this.timeout(20_000);
  const slack = useSlackEmulator();
  let web: WebClient;
  let alice: EmulatedUser;
  let bob: EmulatedUser;
  let channel: string;
  let ts: string;

  beforeEach(async () => {
    web = new WebClient(slack.emu.botToken, { slackApiUrl: slack.emu.apiUrl, retryConfig: { retries: 0 } });
    alice = slack.emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
    bob = slack.emu.addUser({ name: 'bob', real_name: 'Bob Lead', email: 'bob@example.com' });
    channel = (await web.conversations.create({ name: 'inc-4001' })).channel!.id!;
    await web.conversations.invite({ channel, users: alice.id });
    ts = (await web.chat.postMessage({ channel, text: 'Isolate host FS01?', blocks: QUESTION_BLOCKS })).ts!;
  });

  async function connect(): Promise<Record<string, unknown>[]> {
    const client = new SocketModeClient({ appToken: slack.emu.appToken, clientOptions: { slackApiUrl: slack.emu.apiUrl }, logLevel: 'error' as never });
    slack.cleanup(() => client.disconnect().catch(() => undefined));
    const got: Record<string, unknown>[] = [];
    client.on('interactive', async (e: { ack: () => Promise<void>; body: Record<string, unknown> }) => {
      got.push(e.body);
      await e.ack();
    });
    await client.start();
    return got;
  }

  const post = async (url: string, body: unknown): Promise<{ status: number; body: { ok: boolean; error?: string } }> => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { ok: boolean; error?: string } };
  };

  it("a button click reaches the app as Slack's block_actions payload, acknowledged", async () => {
    const got = await connect();
    slack.emu.click(alice.id, channel, ts, 'ask:1:0');
    await until('the click', () => got.length === 1);
    const p = got[0] as Record<string, any>;
    expect(p.type).to.equal('block_actions');
    expect(p.user).to.include({ id: alice.id, username: 'alice', team_id: slack.emu.team.id });
    expect(p.container).to.deep.equal({ type: 'message', message_ts: ts, channel_id: channel, is_ephemeral: false });
    expect(p.channel).to.deep.equal({ id: channel, name: 'inc-4001' });
    expect(p.team).to.deep.equal({ id: slack.emu.team.id, domain: slack.emu.team.domain });
    expect(p.message.ts).to.equal(ts);
    expect(p.message.blocks).to.have.length(2);
    expect(p.trigger_id).to.be.a('string').and.not.empty;
    expect(p.api_app_id).to.equal(slack.emu.tokenInfo(slack.emu.botToken)!.appId);
    expect(p.response_url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/actions\//);
    expect(p.actions).to.have.length(1);
    expect(p.actions[0]).to.include({ type: 'button', action_id: 'ask:1:0', block_id: 'answers', value: '0', style: 'primary' });
    expect(p.actions[0].text).to.deep.equal({ type: 'plain_text', text: 'Approve' });
    expect(p.actions[0].action_ts).to.match(/^\d{10}\.\d{6}$/);
    await until('the ack', () => slack.emu.socketMode.delivered().every((d) => d.ackedAt !== undefined));
    const sent = slack.emu.socketMode.delivered().filter((d) => d.type === 'interactive');
    expect(sent).to.have.length(1);
    expect(sent[0]!.sends).to.equal(1);
  });

  it('two clicks get distinct action_ts; a select sends the chosen option; what is not there cannot be clicked', async () => {
    const a = slack.emu.click(alice.id, channel, ts, 'ask:1:0') as Record<string, any>;
    const b = slack.emu.click(alice.id, channel, ts, 'ask:1:0') as Record<string, any>;
    expect(a.actions[0].action_ts).to.not.equal(b.actions[0].action_ts);
    const s = slack.emu.click(bob.id, channel, ts, 'triage:severity', { selectedOption: 'high' }) as Record<string, any>;
    expect(s.actions[0]).to.include({ type: 'static_select', action_id: 'triage:severity' });
    expect(s.actions[0].selected_option).to.deep.equal({ text: { type: 'plain_text', text: 'High' }, value: 'high' });
    expect(() => slack.emu.click(bob.id, channel, ts, 'triage:severity', { selectedOption: 'medium' })).to.throw(/no option medium/);
    expect(() => slack.emu.click(alice.id, channel, ts, 'ask:1:9')).to.throw(/no element/);
    expect(() => slack.emu.click(alice.id, channel, '1.000001', 'ask:1:0')).to.throw(/no message/);
  });

  it('response_url: replace_original edits the message in place, delete_original removes it', async () => {
    const p = slack.emu.click(alice.id, channel, ts, 'ask:1:0') as { response_url: string };
    const r = await post(p.response_url, {
      replace_original: true,
      text: 'Approved by Alice',
      blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'Approved' } }],
    });
    expect(r).to.deep.equal({ status: 200, body: { ok: true } });
    const m = slack.emu.message(channel, ts)!;
    expect(m.text).to.equal('Approved by Alice');
    expect(m.blocks).to.have.length(1);
    expect(slack.emu.ephemerals()).to.have.length(0);
    const d = await post(p.response_url, { delete_original: true });
    expect(d.body.ok).to.equal(true);
    expect(slack.emu.message(channel, ts)).to.equal(undefined);
    expect(slack.emu.messages(channel).map((x) => x.ts)).to.not.include(ts);
  });

  it('response_url: without replace_original the answer is ephemeral to the clicker, or in_channel when asked', async () => {
    const p = slack.emu.click(alice.id, channel, ts, 'ask:1:1') as { response_url: string };
    const before = slack.emu.messages(channel).length;
    await post(p.response_url, { text: 'only you see this' });
    expect(slack.emu.ephemerals(alice.id).map((e) => [e.text, e.channel, e.via])).to.deep.equal([['only you see this', channel, 'response_url']]);
    expect(slack.emu.ephemerals(bob.id)).to.have.length(0);
    expect(slack.emu.messages(channel)).to.have.length(before);
    await post(p.response_url, { text: 'everyone sees this', response_type: 'in_channel' });
    expect(slack.emu.messages(channel).at(-1)!.text).to.equal('everyone sees this');
    const bad = await post(p.response_url, { replace_original: true });
    expect(bad).to.deep.equal({ status: 400, body: { ok: false, error: 'no_text' } });
  });

  it(`response_url: ${RESPONSE_URL_MAX_USES} uses within 30 minutes, then used_url; an old one is expired_url`, async () => {
    const p = slack.emu.click(alice.id, channel, ts, 'ask:1:0') as { response_url: string };
    for (let i = 0; i < RESPONSE_URL_MAX_USES; i++) expect((await post(p.response_url, { text: `n${i}` })).body.ok).to.equal(true);
    expect((await post(p.response_url, { text: 'six' })).body).to.deep.equal({ ok: false, error: 'used_url' });
    const q = slack.emu.click(alice.id, channel, ts, 'ask:1:0') as { response_url: string };
    slack.emu.interactive.ageResponseUrls(RESPONSE_URL_TTL_MS + 1000);
    expect((await post(q.response_url, { text: 'late' })).body).to.deep.equal({ ok: false, error: 'expired_url' });
    expect(slack.emu.message(channel, ts)!.text).to.equal('Isolate host FS01?');
    expect((await post(`${slack.emu.baseUrl}/actions/T0001/1/nope`, { text: 'x' })).status).to.equal(404);
  });

  it('chat.postEphemeral: shown to one member, kept per user, never in the history', async () => {
    const before = slack.emu.messages(channel).length;
    const r = await web.chat.postEphemeral({ channel, user: alice.id, text: 'you are not allowed to answer this' });
    expect(r.message_ts).to.match(/^\d{10}\.\d{6}$/);
    expect(slack.emu.ephemerals(alice.id)).to.have.length(1);
    expect(slack.emu.ephemerals(alice.id)[0]).to.include({ text: 'you are not allowed to answer this', channel, via: 'chat.postEphemeral' });
    expect(slack.emu.messages(channel)).to.have.length(before);
    const notIn = await web.chat.postEphemeral({ channel, user: bob.id, text: 'x' }).catch((e: { data: { error: string } }) => e.data);
    expect(notIn).to.include({ error: 'user_not_in_channel' });
    const noText = await web.chat.postEphemeral({ channel, user: alice.id, text: '' }).catch((e: { data: { error: string } }) => e.data);
    expect(noText).to.include({ error: 'no_text' });
    expect(slack.emu.ephemerals(bob.id)).to.have.length(0);
  });

  it('conversations.open gives the DM a question goes to, and a click there carries the DM channel', async () => {
    const got = await connect();
    const dm = (await web.conversations.open({ users: bob.id })).channel!.id!;
    expect(dm).to.match(/^D/);
    expect(slack.emu.imWith(bob.id)).to.equal(dm);
    const q = await web.chat.postMessage({ channel: dm, text: 'Was this you?', blocks: QUESTION_BLOCKS });
    slack.emu.click(bob.id, dm, q.ts!, 'ask:1:1');
    await until('the click', () => got.length === 1);
    expect((got[0] as Record<string, any>).channel).to.deep.equal({ id: dm, name: 'directmessage' });
    expect((got[0] as Record<string, any>).actions[0].value).to.equal('1');
  });
});
