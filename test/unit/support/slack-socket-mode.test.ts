/**
 * The emulator's Socket Mode, driven by Slack's own client (`@slack/socket-mode`), as
 * that package's integration tests drive a server: apps.connections.open, hello,
 * envelopes and acks, retries of unacknowledged events, refresh and refusal.
 */
import { expect } from 'chai';
import { SocketModeClient } from '@slack/socket-mode';
import { WebClient } from '@slack/web-api';
import type { EmulatedUser } from '../../support/slack-emulator.js';
import { useSlackEmulator } from '../../support/slack-hooks.js';
import { poller } from '../../support/until.js';

interface Received {
  type: string;
  envelopeId: string;
  body: Record<string, unknown>;
  retryNum: number | undefined;
  retryReason: string | undefined;
}

const until = poller({ timeoutMs: 5000, everyMs: 10 });

describe('Slack emulator: Socket Mode', function () {
  this.timeout(20_000);
  const slack = useSlackEmulator({ socketMode: { ackTimeoutMs: 300 } });
  let alice: EmulatedUser;

  beforeEach(async () => {
    alice = slack.emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
  });

  /** A connected client that records every envelope and acks it unless told not to. */
  async function connect(opts: { ack?: (r: Received) => boolean } = {}): Promise<{ client: SocketModeClient; got: Received[] }> {
    // clientPingTimeout also sets the client's reconnect delay (one timeout per consecutive failure).
    const client = new SocketModeClient({
      appToken: slack.emu.appToken,
      clientOptions: { slackApiUrl: slack.emu.apiUrl },
      clientPingTimeout: 1000,
      logLevel: 'error' as never,
    });
    slack.cleanup(() => client.disconnect().catch(() => undefined));
    const got: Received[] = [];
    client.on(
      'slack_event',
      async (e: {
        ack: () => Promise<void>;
        envelope_id: string;
        type: string;
        body: Record<string, unknown>;
        retry_num?: number;
        retry_reason?: string;
      }) => {
        const r: Received = { type: e.type, envelopeId: e.envelope_id, body: e.body, retryNum: e.retry_num, retryReason: e.retry_reason };
        got.push(r);
        if (opts.ack?.(r) ?? true) await e.ack();
      },
    );
    await client.start();
    return { client, got };
  }

  async function channelWithBotAndAlice(name: string): Promise<string> {
    const web = new WebClient(slack.emu.botToken, { slackApiUrl: slack.emu.apiUrl });
    const created = await web.conversations.create({ name });
    const id = created.channel!.id!;
    await web.conversations.invite({ channel: id, users: alice.id });
    return id;
  }

  it('apps.connections.open takes only an app-level token with connections:write', async () => {
    const asBot = await fetch(`${slack.emu.apiUrl}apps.connections.open`, { method: 'POST', headers: { authorization: `Bearer ${slack.emu.botToken}` } });
    expect(((await asBot.json()) as { error: string }).error).to.equal('not_allowed_token_type');
    slack.emu.addAppToken('xapp-no-scope', []);
    const noScope = await fetch(`${slack.emu.apiUrl}apps.connections.open`, { method: 'POST', headers: { authorization: 'Bearer xapp-no-scope' } });
    expect(((await noScope.json()) as { error: string }).error).to.equal('missing_scope');
    const asApp = await fetch(`${slack.emu.apiUrl}chat.postMessage`, { method: 'POST', headers: { authorization: `Bearer ${slack.emu.appToken}` } });
    expect(((await asApp.json()) as { error: string }).error).to.equal('not_allowed_token_type');
    const ok = await fetch(`${slack.emu.apiUrl}apps.connections.open`, { method: 'POST', headers: { authorization: `Bearer ${slack.emu.appToken}` } });
    expect(((await ok.json()) as { url: string }).url).to.match(/^ws:\/\/127\.0\.0\.1:\d+\/link\/\?ticket=/);
  });

  it("delivers a person's message and thread reply, and the bot's own post with bot_id, to a connected client", async () => {
    slack.emu.subscribe('message.channels', 'message.groups');
    const channel = await channelWithBotAndAlice('inc-3001');
    const { got } = await connect();
    const top = slack.emu.postAsUser(alice.id, channel, 'Isolated FS01');
    slack.emu.postAsUser(alice.id, channel, 'Confirmed clean', { threadTs: top.ts });
    await new WebClient(slack.emu.botToken, { slackApiUrl: slack.emu.apiUrl }).chat.postMessage({ channel, text: 'from the worker' });
    await until('three events', () => got.length === 3);
    const events = got.map((r) => r.body.event as Record<string, unknown>);
    expect(got.every((r) => r.type === 'events_api' && r.retryNum === 0)).to.equal(true);
    expect(events[0]).to.include({ type: 'message', channel, user: alice.id, text: 'Isolated FS01', channel_type: 'channel' });
    expect(events[1]).to.include({ text: 'Confirmed clean', thread_ts: top.ts });
    expect(events[2]).to.include({ text: 'from the worker', bot_id: slack.emu.botId });
    expect(new Set(got.map((r) => r.body.event_id)).size).to.equal(3);
    await until('acks', () => slack.emu.socketMode.delivered().every((e) => e.ackedAt !== undefined));
    for (const e of slack.emu.socketMode.delivered()) expect(e.ackLatencyMs).to.be.a('number').and.at.least(0);
  });

  it('sends no events for a channel the bot is not in, nor without a subscription', async () => {
    const { got } = await connect();
    const channel = await channelWithBotAndAlice('inc-3002');
    slack.emu.postAsUser(alice.id, channel, 'not subscribed yet');
    slack.emu.subscribe('message.channels');
    const other = slack.emu.seedChannel({ name: 'watercooler', members: [alice.id], creator: alice.id });
    slack.emu.postAsUser(alice.id, other.id, 'bot is not here');
    slack.emu.postAsUser(alice.id, channel, 'now it is');
    await until('one event', () => got.length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(got.map((r) => (r.body.event as { text: string }).text)).to.deep.equal(['now it is']);
  });

  it('resends an unacknowledged event with retry_attempt and retry_reason, at most three times', async () => {
    slack.emu.subscribe('message.channels');
    const channel = await channelWithBotAndAlice('inc-3003');
    const { got } = await connect({ ack: () => false });
    slack.emu.postAsUser(alice.id, channel, 'nobody acks me');
    await until('four sends', () => got.length === 4);
    await new Promise((r) => setTimeout(r, 700));
    expect(got).to.have.length(4);
    expect(got.map((r) => [r.retryNum, r.retryReason])).to.deep.equal([
      [0, ''],
      [1, 'timeout'],
      [2, 'timeout'],
      [3, 'timeout'],
    ]);
    expect(new Set(got.map((r) => r.envelopeId)).size).to.equal(1);
    expect(new Set(got.map((r) => r.body.event_id)).size).to.equal(1);
    expect(slack.emu.socketMode.delivered()[0]!.ackLatencyMs).to.equal(undefined);
  });

  it('records each envelope\'s ack latency, from its first send to the ack', async () => {
    // An ack held 150 ms must not meet the 300 ms timeout on a loaded machine: only the latency is under test here.
    slack.emu.socketMode.configure({ ackTimeoutMs: 5000 });
    slack.emu.subscribe('message.channels');
    const channel = await channelWithBotAndAlice('inc-3006');
    const client = new SocketModeClient({ appToken: slack.emu.appToken, clientOptions: { slackApiUrl: slack.emu.apiUrl }, logLevel: 'error' as never });
    slack.cleanup(() => client.disconnect().catch(() => undefined));
    client.on('slack_event', async (e: { ack: () => Promise<void> }) => {
      await new Promise((r) => setTimeout(r, 150)); // the ack is held back this long
      await e.ack();
    });
    await client.start();
    slack.emu.postAsUser(alice.id, channel, 'ack me late');
    await until('the ack', () => slack.emu.socketMode.delivered()[0]?.ackedAt !== undefined);
    const [env] = slack.emu.socketMode.delivered();
    expect(env!.sends).to.equal(1);
    expect(env!.ackLatencyMs).to.be.at.least(150);
  });

  it('pause holds events, resume sends the held ones at once and in order', async () => {
    slack.emu.subscribe('message.channels');
    const channel = await channelWithBotAndAlice('inc-3007');
    const { got } = await connect();
    slack.emu.socketMode.pause();
    for (const text of ['one', 'two', 'three']) slack.emu.postAsUser(alice.id, channel, text);
    await new Promise((r) => setTimeout(r, 200));
    expect(got).to.deep.equal([]);
    expect(slack.emu.socketMode.delivered().map((e) => e.sends)).to.deep.equal([0, 0, 0]);
    slack.emu.socketMode.resume();
    await until('three events', () => got.length === 3);
    expect(got.map((r) => (r.body.event as { text: string }).text)).to.deep.equal(['one', 'two', 'three']);
  });

  it('release sends the held events one at a time, spaced, in order, and what was raised meanwhile after them', async () => {
    slack.emu.subscribe('message.channels');
    const channel = await channelWithBotAndAlice('inc-3008');
    const { got } = await connect();
    slack.emu.socketMode.pause();
    for (const text of ['one', 'two', 'three']) slack.emu.postAsUser(alice.id, channel, text);
    const releasing = slack.emu.socketMode.release(50);
    slack.emu.postAsUser(alice.id, channel, 'raised meanwhile');
    await releasing;
    await until('four events', () => got.length === 4);
    expect(got.map((r) => (r.body.event as { text: string }).text)).to.deep.equal(['one', 'two', 'three', 'raised meanwhile']);
    const sentAt = slack.emu.socketMode.delivered().map((e) => e.sentAt[0]!);
    // Envelope k leaves no earlier than k × 50 ms after the first (a timer that fires late
    // makes the next gap shorter, as release catches up on its schedule, so the gaps between
    // neighbours are not bounded; the schedule is). Date.now's rounding allows a few ms less.
    expect(sentAt[1]! - sentAt[0]!).to.be.at.least(47);
    expect(sentAt[2]! - sentAt[0]!).to.be.at.least(97);
  });

  it('loses the acks it is told to, then resends the event as for any unacknowledged one; records when each send left', async () => {
    // Room for the resend's ack on a loaded machine: a second missed timeout would send it a third time.
    slack.emu.socketMode.configure({ ackTimeoutMs: 1500 });
    slack.emu.subscribe('message.channels');
    const channel = await channelWithBotAndAlice('inc-3006');
    const { got } = await connect();
    slack.emu.socketMode.loseAcks(1);
    const before = Date.now();
    slack.emu.postAsUser(alice.id, channel, 'my ack gets lost');
    await until('the resend acked', () => slack.emu.socketMode.delivered()[0]?.ackedAt !== undefined);
    const [env] = slack.emu.socketMode.delivered();
    expect(env!.acksLost).to.equal(1);
    expect(env!.sends).to.equal(2);
    expect(got.map((r) => r.retryNum)).to.deep.equal([0, 1]);
    expect(env!.sentAt).to.have.length(2);
    expect(env!.sentAt[0]).to.be.at.least(before);
    // The resend waits out the 1.5 s ack timeout (a timer; Date.now's rounding allows a few ms less).
    expect(env!.sentAt[1]! - env!.sentAt[0]!).to.be.at.least(1497);
  });

  it('a refresh_requested disconnect makes the client reconnect, and later events reach it', async () => {
    slack.emu.subscribe('message.channels');
    const channel = await channelWithBotAndAlice('inc-3004');
    const { got } = await connect();
    slack.emu.socketMode.disconnect('refresh_requested');
    await until('a second connection', () => slack.emu.socketMode.connectionsOpened === 2 && slack.emu.socketMode.connectionCount === 1, 10_000);
    slack.emu.postAsUser(alice.id, channel, 'after the refresh');
    await until('the event', () => got.length === 1);
  });

  it('holds an event raised while no connection is open until one opens', async () => {
    slack.emu.subscribe('message.channels');
    const channel = await channelWithBotAndAlice('inc-3005');
    slack.emu.postAsUser(alice.id, channel, 'while nobody listens');
    const { got } = await connect();
    await until('the held event', () => got.length === 1);
  });

  it('deals envelopes to the open connections in turn, or to the connections a test routes the next ones to', async () => {
    const one = await connect();
    const two = await connect();
    const [first, second] = slack.emu.socketMode.connectionIds();
    const deliver = (n: number) => slack.emu.socketMode.deliver('interactive', { n });
    const receivers = (from: number, to: number) =>
      [...Array(to - from).keys()].map((i) => (one.got.some((r) => r.body.n === from + i) ? 'one' : 'two'));
    for (let n = 0; n < 4; n++) deliver(n);
    await until('four envelopes', () => one.got.length + two.got.length === 4);
    expect(receivers(0, 4)).to.have.members(['one', 'one', 'two', 'two']);
    slack.emu.socketMode.routeNext(second!, second!, first!);
    for (let n = 4; n < 7; n++) deliver(n);
    await until('three more', () => one.got.length + two.got.length === 7);
    expect(receivers(4, 7)).to.deep.equal(['two', 'two', 'one']);
    expect(slack.emu.socketMode.delivered().slice(4).map((e) => e.sentTo)).to.deep.equal([[second], [second], [first]]);
  });

  it('refuses a connection past the per-app limit with too_many_websockets', async () => {
    slack.emu.socketMode.configure({ maxConnections: 1 });
    await connect();
    const url = (
      (await (
        await fetch(`${slack.emu.apiUrl}apps.connections.open`, { method: 'POST', headers: { authorization: `Bearer ${slack.emu.appToken}` } })
      ).json()) as { url: string }
    ).url;
    const { WebSocket } = await import('ws');
    const ws = new WebSocket(url);
    const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
      ws.once('message', (d) => resolve(JSON.parse(d.toString()) as Record<string, unknown>));
      ws.once('error', reject);
    });
    expect(first).to.include({ type: 'disconnect', reason: 'too_many_websockets' });
    await new Promise((r) => ws.once('close', r));
    expect(slack.emu.socketMode.connectionCount).to.equal(1);
  });

  it('delivers interactive and slash command envelopes once, with the ack payload recorded', async () => {
    const { client } = await connect();
    client.on('slash_commands', async ({ ack }: { ack: (r?: Record<string, unknown>) => Promise<void> }) => {
      await ack({ text: 'Incident 2103: Phishing wave' });
    });
    const env = slack.emu.socketMode.deliver('slash_commands', { command: '/soar', text: 'incident 2103', user_id: alice.id });
    await until('the ack', () => env.ackedAt !== undefined);
    expect(env.response).to.deep.equal({ text: 'Incident 2103: Phishing wave' });
    await new Promise((r) => setTimeout(r, 500));
    expect(env.sends).to.equal(1);
  });
});
