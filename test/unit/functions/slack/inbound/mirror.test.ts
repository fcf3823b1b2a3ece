/**
 * Mirroring through the inbound router: the events the Slack emulator delivers (people's
 * posts, replies, edits, deletes, file shares, bots' posts, system messages) handed to
 * routeEnvelope with the mirroring handler set, a real SlackClient against the emulator,
 * a real SQLite store and the local platform (and the SOAR platform against its emulator).
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { WebClient } from '@slack/web-api';
import { silentLogger, type Logger } from '../../../../../src/core/logging.js';
import type { ConversationRow } from '../../../../../src/functions/slack/store/conversations.js';
import { MIRROR_HANDLERS } from '../../../../../src/functions/slack/inbound/mirror.js';
import { envelopeKey, routeEnvelope, type InboundContext } from '../../../../../src/functions/slack/inbound/router.js';
import type { Platform } from '../../../../../src/platforms/platform.js';
import { SoarClient } from '../../../../../src/platforms/soar/soar-client.js';
import { SoarPlatform } from '../../../../../src/platforms/soar/soar-platform.js';
import type { EmulatedChannel, EmulatedUser } from '../../../../support/slack-emulator.js';
import { SoarEmulator } from '../../../../support/soar-emulator.js';
import { useSlackFixture } from '../../../../support/slack-hooks.js';

interface NoteFile {
  text: string;
  author: { id: string; name: string; email: string | null };
  created: string;
  source: string;
  slack: { channel_id: string; ts: string; thread_ts: string | null; permalink: string | null };
  key: string;
}

describe('mirroring (inbound handler set)', function () {
  this.timeout(20_000);
  const slack = useSlackFixture();
  let alice: EmulatedUser;
  let bob: EmulatedUser;
  let channel: EmulatedChannel;
  let routed: number;
  let warnings: string[];

  const association = (over: Partial<ConversationRow> = {}): ConversationRow => ({
    resId: 'RES-2103',
    incidentId: 2103,
    taskId: null,
    channel: channel.name,
    channelId: channel.id,
    channelType: 'Public',
    permalink: null,
    time: new Date(),
    archived: false,
    archivedAt: null,
    ...over,
  });

  beforeEach(async () => {
    slack.emu.subscribe('message.channels', 'message.groups');
    alice = slack.emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
    bob = slack.emu.addUser({ name: 'bob', real_name: 'Bob Builder', email: 'bob@example.com' });
    channel = slack.emu.seedChannel({ name: 'inc-2103', members: [slack.emu.botUserId, alice.id, bob.id] });
    await slack.fx.state.conversations.insertIfAbsent(association());
    await mkdir(join(slack.fx.platformDir, 'incidents/2103/tasks/12'), { recursive: true });
    routed = 0;
    warnings = [];
  });

  function context(platform: Platform, key: string): InboundContext {
    const quiet = silentLogger();
    const log: Logger = {
      error: (m, meta) => quiet.error(m, meta),
      info: (m, meta) => quiet.info(m, meta),
      debug: (m, meta) => quiet.debug(m, meta),
      warn: (m: string) => void warnings.push(m),
      child: () => log,
    };
    return {
      state: slack.fx.state,
      platform,
      store: slack.fx.store,
      log,
      key,
      attempt: 1,
      steps: { get: () => undefined, record: async () => undefined },
      signal: new AbortController().signal,
    };
  }

  /** Routes every envelope the emulator delivered since the last call, as the inbound path would. */
  async function deliver(platform: Platform = slack.fx.platform): Promise<Record<string, unknown>[]> {
    const envelopes = slack.emu.socketMode.delivered().slice(routed);
    routed += envelopes.length;
    for (const env of envelopes) {
      const kind = env.type;
      await routeEnvelope(
        { kind, payload: env.payload, retryAttempt: 0 },
        [MIRROR_HANDLERS],
        context(platform, envelopeKey({ kind, payload: env.payload })!),
      );
    }
    return envelopes.map((e) => e.payload);
  }

  async function notes(dir = 'incidents/2103/notes'): Promise<NoteFile[]> {
    const path = join(slack.fx.platformDir, dir);
    let names: string[];
    try {
      names = (await readdir(path)).filter((n) => !n.startsWith('.')).sort();
    } catch {
      return [];
    }
    return Promise.all(names.map(async (n) => JSON.parse(await readFile(join(path, n), 'utf8')) as NoteFile));
  }

  it('turns a message and a thread reply into two notes, in channel order, with author, readable text and permalink', async () => {
    const top = slack.emu.postAsUser(
      alice.id,
      channel.id,
      'Seeing *502s* on <https://status.example.com|the status page> &amp; web-3, <@' + bob.id + '> <!here>',
    );
    const reply = slack.emu.postAsUser(bob.id, channel.id, 'On it, see <#' + channel.id + '|inc-2103>', { threadTs: top.ts });
    await deliver();
    const [first, second, ...rest] = await notes();
    expect(rest).to.deep.equal([]);
    expect(first).to.deep.equal({
      text: 'Seeing *502s* on the status page (https://status.example.com) & web-3, @Bob Builder @here',
      author: { id: alice.id, name: 'Alice Analyst', email: 'alice@example.com' },
      created: new Date(Math.floor(Number(top.ts) * 1000)).toISOString(),
      source: 'slack',
      slack: {
        channel_id: channel.id,
        ts: top.ts,
        thread_ts: null,
        permalink: `https://emulated.slack.com/archives/${channel.id}/p${top.ts.replace('.', '')}`,
      },
      key: `${channel.id}:${top.ts}`,
    });
    expect(second!.text).to.equal('On it, see #inc-2103');
    expect(second!.author).to.deep.equal({ id: bob.id, name: 'Bob Builder', email: 'bob@example.com' });
    expect(second!.slack).to.deep.equal({
      channel_id: channel.id,
      ts: reply.ts,
      thread_ts: top.ts,
      permalink: `https://emulated.slack.com/archives/${channel.id}/p${reply.ts.replace('.', '')}?thread_ts=${top.ts}&cid=${channel.id}`,
    });
    // The permalinks are the ones Slack gives, built without asking it; each author asked once.
    const web = new WebClient(slack.emu.botToken, { slackApiUrl: slack.emu.apiUrl });
    expect(second!.slack.permalink).to.equal((await web.chat.getPermalink({ channel: channel.id, message_ts: reply.ts })).permalink);
    expect(slack.emu.calls('chat.getPermalink')).to.equal(1); // the one just made by the test
    expect(slack.emu.calls('users.info')).to.equal(2);
    expect(slack.emu.calls('chat.postMessage')).to.equal(0);
  });

  it('adds nothing for the same event again (a retry) or a copy under a new event id', async () => {
    slack.emu.postAsUser(alice.id, channel.id, 'once');
    const [payload] = await deliver();
    const event = payload!.event as Record<string, unknown>;
    slack.emu.emitEvent(event, { eventId: String(payload!.event_id) });
    slack.emu.emitEvent(event);
    await deliver();
    expect((await notes()).map((n) => n.text)).to.deep.equal(['once']);
  });

  it("does not mirror the worker's own posts, other bots' posts, or system messages", async () => {
    const bot = new WebClient(slack.emu.botToken, { slackApiUrl: slack.emu.apiUrl });
    await bot.chat.postMessage({ channel: channel.id, text: 'posted by the worker' });
    await bot.chat.postMessage({ channel: channel.id, text: 'as a custom bot name', username: 'Other' });
    // Another app's bot, and system subtypes, as Slack sends them.
    slack.emu.emitEvent({
      type: 'message',
      subtype: 'bot_message',
      channel: channel.id,
      bot_id: 'B999',
      text: 'alert!',
      ts: '1796637600.000100',
    });
    for (const subtype of ['channel_join', 'channel_leave', 'channel_topic', 'channel_purpose', 'channel_name', 'pinned_item']) {
      slack.emu.emitEvent({
        type: 'message',
        subtype,
        channel: channel.id,
        user: alice.id,
        text: `<@${alice.id}> did ${subtype}`,
        ts: '1796637601.000100',
      });
    }
    const delivered = await deliver();
    expect(delivered).to.have.length(9);
    expect(await notes()).to.deep.equal([]);
    expect(slack.emu.calls('users.info')).to.equal(0);
  });

  it('does not mirror a channel with no incident, nor one whose association is archived, and asks Slack nothing for it', async () => {
    const other = slack.emu.seedChannel({ name: 'random-talk', members: [slack.emu.botUserId, alice.id] });
    const archived = slack.emu.seedChannel({ name: 'inc-2000', members: [slack.emu.botUserId, alice.id] });
    await slack.fx.state.conversations.insertIfAbsent(
      association({
        resId: 'RES-2000',
        incidentId: 2000,
        channel: 'inc-2000',
        channelId: archived.id,
        archived: true,
        archivedAt: new Date(),
      }),
    );
    slack.emu.postAsUser(alice.id, other.id, 'lunch?');
    slack.emu.postAsUser(alice.id, archived.id, 'late word');
    await deliver();
    expect(await notes()).to.deep.equal([]);
    expect(await notes('incidents/2000/notes')).to.deep.equal([]);
    expect(slack.emu.calls('users.info') + slack.emu.calls('auth.test')).to.equal(0);
  });

  it('notes an edit and a delete briefly, each once, after the message', async () => {
    const m = slack.emu.postAsUser(alice.id, channel.id, 'root cause: DNS');
    // People edit and delete seconds apart; notes are ordered by the millisecond.
    await sleep(5);
    slack.emu.editAsUser(alice.id, channel.id, m.ts, 'root cause: BGP');
    await sleep(5);
    slack.emu.deleteAsUser(alice.id, channel.id, m.ts);
    const delivered = await deliver();
    // Both again (a retry each): nothing more.
    for (const p of delivered.slice(1)) slack.emu.emitEvent(p.event as Record<string, unknown>, { eventId: String(p.event_id) });
    await deliver();
    const all = await notes();
    expect(all.map((n) => n.text)).to.deep.equal([
      'root cause: DNS',
      'Edited the message in Slack; it now reads:\nroot cause: BGP',
      `Deleted the message of ${new Date(Math.floor(Number(m.ts) * 1000)).toISOString()} in Slack`,
    ]);
    expect(all[1]!.key).to.match(new RegExp(`^${channel.id}:${m.ts.replace('.', '\\.')}:edit:\\d+\\.\\d+$`));
    expect(all[2]!.key).to.equal(`${channel.id}:${m.ts}:deleted`);
    expect(all.map((n) => n.author.name)).to.deep.equal(['Alice Analyst', 'Alice Analyst', 'Alice Analyst']);
  });

  it('without a workspace url asks chat.getPermalink, and notes a delete without a link (Slack has none for it)', async () => {
    slack.emu.authTestUrl = false;
    const m = slack.emu.postAsUser(alice.id, channel.id, 'short-lived');
    await deliver();
    slack.emu.deleteAsUser(alice.id, channel.id, m.ts);
    await deliver();
    const [posted, deleted] = await notes();
    expect(posted!.slack.permalink).to.equal(`https://emulated.slack.com/archives/${channel.id}/p${m.ts.replace('.', '')}`);
    expect(deleted!.key).to.equal(`${channel.id}:${m.ts}:deleted`);
    expect(deleted!.slack.permalink).to.equal(null);
    expect(slack.emu.calls('chat.getPermalink')).to.equal(2);
  });

  it('names shared files with their Slack links', async () => {
    slack.emu.postAsUser(alice.id, channel.id, 'the capture', { files: [{ name: 'capture.pcap', content: 'pcap bytes' }] });
    await deliver();
    const [n] = await notes();
    expect(n!.text).to.match(/^the capture\n\[file\] capture\.pcap \(https:\/\/emulated\.slack\.com\/files\/U\w+\/F\w+\/capture\.pcap\)$/);
  });

  it("puts a task channel's messages on the task, and mirrors nothing with mirror = off", async () => {
    const taskChannel = slack.emu.seedChannel({ name: 'inc-2103-task-12', members: [slack.emu.botUserId, alice.id] });
    await slack.fx.state.conversations.insertIfAbsent(
      association({ resId: 'RES-2103-12', taskId: 12, channel: taskChannel.name, channelId: taskChannel.id }),
    );
    slack.emu.postAsUser(alice.id, taskChannel.id, 'task done');
    await deliver();
    expect((await notes('incidents/2103/tasks/12/notes')).map((n) => n.text)).to.deep.equal(['task done']);

    const off = await slack.fixture({ mirror: 'off' });
    slack.emu.postAsUser(alice.id, channel.id, 'not mirrored');
    const envelopes = slack.emu.socketMode.delivered().slice(routed);
    routed += envelopes.length;
    for (const env of envelopes) {
      await routeEnvelope({ kind: env.type, payload: env.payload, retryAttempt: 0 }, [MIRROR_HANDLERS], {
        ...context(slack.fx.platform, 'k'),
        state: off.state,
      });
    }
    expect(await notes()).to.deep.equal([]);
  });

  it('names an author Slack no longer knows by id, and warns (adds nothing) for an incident the platform lacks', async () => {
    await slack.fx.state.conversations.insertIfAbsent(association({ resId: 'RES-4040', incidentId: 4040 }));
    slack.emu.emitEvent({ type: 'message', channel: channel.id, user: 'U0GONE', text: 'from a departed user', ts: '1796637600.000100' });
    await deliver();
    const [n] = await notes();
    expect(n!.author).to.deep.equal({ id: 'U0GONE', name: 'U0GONE', email: null });
    expect(warnings.join('\n')).to.match(/Not mirrored: incident 4040 \(associated with C\w+\) is not on the platform/);
  });

  describe('on the SOAR platform', () => {
    let soar: SoarEmulator;
    let platform: SoarPlatform;

    beforeEach(async () => {
      soar = await SoarEmulator.start();
      soar.addIncident(2103);
      platform = new SoarPlatform(
        new SoarClient({ baseUrl: soar.baseUrl, orgId: soar.orgId, apiKeyId: soar.apiKeyId, apiKeySecret: soar.apiKeySecret }),
      );
    });

    afterEach(async () => {
      platform.client.close();
      await soar.close();
    });

    it('adds a message and a reply as two escaped comments, once each however often they arrive', async () => {
      // As Slack stores what a person typed: <, > and & escaped.
      const top = slack.emu.postAsUser(alice.id, channel.id, 'a &lt;b&gt; &amp; c');
      slack.emu.postAsUser(bob.id, channel.id, 'reply', { threadTs: top.ts });
      const delivered = await deliver(platform);
      for (const p of delivered) slack.emu.emitEvent(p.event as Record<string, unknown>);
      await deliver(platform);
      expect(soar.comments).to.have.length(2);
      expect(soar.comments[0]!.text).to.include('<b>Alice Analyst</b> (alice@example.com) in Slack:</p><p>a &#60;b&#62; &#38; c</p>');
      expect(soar.comments[0]!.text).to.include(`[note ${channel.id}:${top.ts}]`);
      expect(soar.comments[1]!.text).to.include('<b>Bob Builder</b> (bob@example.com) in a Slack thread:</p><p>reply</p>');
      expect(soar.requestsTo(/\/comments$/, 'POST')).to.have.length(2);
    });
  });
});
