/**
 * The look-up commands: parsing, and `@bot incident <id>` / the slash command answered
 * (in the mention's thread; to the person alone through the response_url) on both
 * platforms, with unknown incidents, bad ids, the channel's own incident, help, people
 * who cannot be matched and injection attempts in the incident's name.
 */
import { expect } from 'chai';
import { parseCommand } from '../../../../../src/functions/slack/inbound/commands/parse.js';
import { TriageScene, type PlatformKind } from '../../../../support/triage-fixture.js';

type Json = Record<string, any>;

describe('look-up commands: parsing', function () {
  it('reads incident with an id (with or without #), incident alone, and help, ignoring mentions', function () {
    expect(parseCommand('<@U0BOT> incident 2103')).to.deep.equal({ kind: 'incident', incidentId: 2103 });
    expect(parseCommand('  Incident   #2103 ')).to.deep.equal({ kind: 'incident', incidentId: 2103 });
    expect(parseCommand('<@U0BOT|soar> incident')).to.deep.equal({ kind: 'channel_incident' });
    expect(parseCommand('help')).to.deep.equal({ kind: 'help' });
  });

  it('refuses ids that are not positive integers, and calls anything else unknown', function () {
    expect(parseCommand('incident abc')).to.deep.equal({ kind: 'bad_id', given: 'abc' });
    expect(parseCommand('incident 0')).to.deep.equal({ kind: 'bad_id', given: '0' });
    expect(parseCommand('incident -5')).to.deep.equal({ kind: 'bad_id', given: '-5' });
    expect(parseCommand('incident 99999999999999999999')).to.deep.equal({ kind: 'bad_id', given: '99999999999999999999' });
    expect(parseCommand('incident 2103 now')).to.deep.equal({ kind: 'unknown' });
    expect(parseCommand('close 2103')).to.deep.equal({ kind: 'unknown' });
    expect(parseCommand('')).to.deep.equal({ kind: 'unknown' });
    expect(parseCommand(undefined)).to.deep.equal({ kind: 'unknown' });
  });
});

const EVIL = '<!channel> <https://evil.example/login|Open incident 2103 in SOAR> <@U0ADMIN> &amp;';

for (const kind of ['local', 'soar'] as PlatformKind[]) {
  describe(`look-up commands (${kind} platform)`, function () {
    this.timeout(20_000);
    let scene: TriageScene;

    beforeEach(async () => {
      scene = await new TriageScene(kind).start();
      scene.seed(2103, { name: 'Phishing wave', severity: 'High' });
      scene.seed(2110, { name: EVIL, severity: 'Low' });
      await scene.postCard(2103); // makes #inc-2103 the incident's channel
    });

    afterEach(async () => {
      await scene.stop();
    });

    /** The slash command as `user` types it in `channel`; the answer they alone see. */
    async function slash(user = scene.alice, text: string, channel = scene.channel): Promise<Json> {
      const before = scene.emu.ephemerals(user.id).length;
      await scene.route('slash_commands', scene.emu.slashCommand(user.id, channel, text));
      const shown = scene.emu.ephemerals(user.id).slice(before);
      expect(shown, 'one answer').to.have.length(1);
      return shown[0] as unknown as Json;
    }

    it('answers the slash command through its response_url with the summary as Block Kit', async function () {
      const answer = await slash(scene.alice, 'incident 2103');
      expect(answer.via).to.equal('response_url');
      const blocks = JSON.stringify(answer.blocks);
      expect(blocks).to.include('*Incident 2103:* Phishing wave');
      expect(blocks).to.include('*Severity:*\\nHigh').and.to.include('*Status:*\\nActive').and.to.include('*Owner:*\\nUnassigned');
      expect(blocks).to.include('<https://soar.example.com/#incidents/2103|Open incident 2103 in SOAR>');
      expect(answer.text).to.include('Incident 2103: Phishing wave');
      // Nothing in the channel: only the person who asked sees it.
      expect(scene.emu.ephemerals(scene.bob.id)).to.have.length(0);
    });

    it('falls back to chat.postEphemeral when the response_url no longer works', async function () {
      const payload = scene.emu.slashCommand(scene.alice.id, scene.channel, 'incident 2103');
      scene.emu.interactive.ageResponseUrls(31 * 60 * 1000);
      await scene.route('slash_commands', payload);
      const shown = scene.emu.ephemerals(scene.alice.id);
      expect(shown.map((m) => m.via)).to.deep.equal(['chat.postEphemeral']);
      expect(JSON.stringify(shown[0]!.blocks)).to.include('*Incident 2103:* Phishing wave');
    });

    it('answers a mention in its thread', async function () {
      scene.emu.subscribe('app_mention');
      const mention = scene.emu.postAsUser(scene.alice.id, scene.channel, `<@${scene.emu.botUserId}> incident 2103`);
      const env = scene.emu.socketMode.delivered().find((e) => (e.payload.event as Json)?.type === 'app_mention');
      expect(env, 'the app_mention event').to.not.equal(undefined);
      expect(await scene.route('events_api', env!.payload)).to.equal(1);
      const replies = (await scene.web.conversations.replies({ channel: scene.channel, ts: mention.ts })).messages!;
      expect(replies).to.have.length(2);
      expect(JSON.stringify(replies[1]!.blocks)).to.include('*Incident 2103:* Phishing wave');
    });

    it('answers a mention once when its answer was posted but not heard back: the next delivery finds it in the thread', async function () {
      scene.emu.subscribe('app_mention');
      const mention = scene.emu.postAsUser(scene.alice.id, scene.channel, `<@${scene.emu.botUserId}> incident 2103`);
      const env = scene.emu.socketMode.delivered().find((e) => (e.payload.event as Json)?.type === 'app_mention');
      scene.emu.failNext('chat.postMessage', { afterEffect: true, closeSocket: true });
      let failed: unknown;
      await scene.route('events_api', env!.payload).catch((err) => (failed = err));
      expect(failed, 'the lost answer fails the delivery').to.not.equal(undefined);
      const thread = async () => (await scene.web.conversations.replies({ channel: scene.channel, ts: mention.ts })).messages!;
      expect(await thread()).to.have.length(2); // Slack posted it all the same
      expect(await scene.route('events_api', env!.payload)).to.equal(1); // the inbound path's retry
      const replies = await thread();
      expect(replies).to.have.length(2);
      expect(JSON.stringify(replies[1]!.blocks)).to.include('*Incident 2103:* Phishing wave');
    });

    it('takes "incident" alone in an incident channel as that incident, and says when a channel has none', async function () {
      expect(JSON.stringify((await slash(scene.alice, 'incident')).blocks)).to.include('*Incident 2103:* Phishing wave');
      const other = (await scene.web.conversations.create({ name: 'random-talk' })).channel!.id!;
      await scene.web.conversations.invite({ channel: other, users: scene.alice.id });
      expect((await slash(scene.alice, 'incident', other)).text).to.include('This channel belongs to no incident');
    });

    it('says an unknown incident was not found, and what an id looks like for a bad one', async function () {
      expect((await slash(scene.alice, 'incident 9999')).text).to.equal('Incident 9999 was not found.');
      expect((await slash(scene.alice, 'incident 21x03')).text).to.include('"21x03" is not an incident id');
    });

    it('lists the commands for help, and for anything else', async function () {
      const help = await slash(scene.alice, 'help');
      expect(help.text).to.include('/soar incident 2103').and.to.include('/soar help');
      const other = await slash(scene.bob, 'reboot everything');
      expect(other.text).to.include("I don't know that one.").and.to.include('/soar incident 2103');
    });

    it('answers only people who can be matched to a platform user', async function () {
      const answer = await slash(scene.mallory, 'incident 2103');
      expect(answer.text).to.include('You cannot look up incidents');
      expect(JSON.stringify(answer.blocks)).to.not.include('Phishing wave');
    });

    it('escapes the incident name: no mention, no link, no entity from it', async function () {
      const answer = await slash(scene.alice, 'incident 2110');
      const blocks = JSON.stringify(answer.blocks);
      expect(blocks).to.include(
        '&lt;!channel&gt; &lt;https://evil.example/login|Open incident 2103 in SOAR&gt; &lt;@U0ADMIN&gt; &amp;amp;',
      );
      expect(blocks).to.not.include('<!channel>').and.to.not.include('<https://evil').and.to.not.include('<@U0ADMIN>');
      expect(answer.text).to.not.include('<!channel>');
      // The only link is the one built from soar_url.
      expect(blocks.match(/<https?:/g)).to.have.length(1);
    });
  });
}
