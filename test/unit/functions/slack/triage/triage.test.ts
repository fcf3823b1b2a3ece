/**
 * The triage card on both platforms: posted by slack_post_message, clicked in the Slack
 * emulator, handled through routeEnvelope: assign, severity, close through the modal,
 * people who cannot be matched, a closed incident's card, the same envelope handled
 * twice, and two people clicking at once.
 */
import { expect } from 'chai';
import { RetryableError } from '../../../../../src/core/runtime/errors.js';
import { ACTION_ASSIGN, ACTION_CLOSE, ACTION_SEVERITY } from '../../../../../src/functions/slack/triage/card.js';
import { TriageScene, type PlatformKind } from '../../../../support/triage-fixture.js';

type Json = Record<string, any>;

function cardText(message: Json): string {
  return JSON.stringify((message.blocks as Json[]).filter((b) => String(b.block_id ?? '').startsWith('triage')));
}

function actionsOf(message: Json): Json | undefined {
  return (message.blocks as Json[]).find((b) => b.type === 'actions' && String(b.block_id).startsWith('triage:'));
}

for (const kind of ['local', 'soar'] as PlatformKind[]) {
  describe(`triage card (${kind} platform)`, function () {
    this.timeout(20_000);
    let scene: TriageScene;
    let ts: string;

    beforeEach(async () => {
      scene = await new TriageScene(kind).start();
      scene.seed(2103, { name: 'Phishing wave', severity: 'Medium' });
      ts = await scene.postCard(2103);
    });

    afterEach(async () => {
      await scene.stop();
    });

    const patches = () => scene.soar?.requestsTo(/\/incidents\/2103$/, 'PATCH') ?? [];

    it('is posted with Assign to me, a severity select and Close…, after the message', function () {
      const message = scene.card(ts);
      expect(JSON.stringify(message.blocks[0])).to.include('Phishing wave');
      const actions = actionsOf(message)!;
      expect(actions.block_id).to.equal('triage:2103');
      expect(actions.elements.map((e: Json) => e.action_id)).to.deep.equal([ACTION_ASSIGN, ACTION_SEVERITY, ACTION_CLOSE]);
      expect(actions.elements[1].options.map((o: Json) => o.value)).to.deep.equal(['Low', 'Medium', 'High']);
    });

    it('"Assign to me" makes the clicking person the owner and shows it on the card', async function () {
      await scene.click(scene.alice, ts, ACTION_ASSIGN);
      const inc = await scene.platform.getIncident(2103);
      expect(inc.owner?.email).to.equal('alice@example.com');
      const card = cardText(scene.card(ts));
      expect(card)
        .to.include('*Owner:*')
        .and.to.include(kind === 'soar' ? 'Alice Analyst (alice@example.com)' : 'alice@example.com');
      expect(card).to.include('Assigned to Alice Analyst by Alice Analyst');
      expect(scene.told(scene.alice)).to.deep.equal([]);
      expect(scene.notes(2103)).to.have.length(1);
      expect(scene.notes(2103)[0]).to.include('Assigned to Alice Analyst by Alice Analyst');
    });

    it('the severity select re-rates the incident and the card keeps the new severity selected', async function () {
      await scene.click(scene.bob, ts, ACTION_SEVERITY, 'High');
      expect((await scene.platform.getIncident(2103)).severity).to.equal('High');
      const message = scene.card(ts);
      expect(cardText(message)).to.include('*Severity:*\\nHigh').and.to.include('Severity set to High by Bob Lead');
      expect(actionsOf(message)!.elements[1].initial_option.value).to.equal('High');
    });

    it('"Close…" opens the modal; its submission closes the incident and the card loses its buttons', async function () {
      await scene.click(scene.alice, ts, ACTION_CLOSE);
      const views = [...scene.emu.views.views.values()];
      expect(views).to.have.length(1);
      expect(views[0]!.view.callback_id).to.equal('triage:close');
      expect(views[0]!.updates).to.equal(0);
      const submission = scene.emu.submitView(scene.alice.id, views[0]!.id, { resolution: 'Duplicate', summary: 'duplicate of 2099' });
      await scene.route('interactive', submission);
      const inc = await scene.platform.getIncident(2103);
      expect(inc).to.include({ status: 'Closed', resolution: 'Duplicate', resolution_summary: 'duplicate of 2099' });
      const message = scene.card(ts);
      expect(actionsOf(message)).to.equal(undefined);
      expect(cardText(message)).to.include('Closed (Duplicate)').and.to.include('Closed by Alice Analyst: duplicate of 2099');
      expect(scene.notes(2103)).to.have.length(1);
      expect(scene.notes(2103)[0]).to.include('Closed by Alice Analyst: duplicate of 2099 (resolution: Duplicate)');
    });

    it('tells the person to click again when the close form cannot open any more (an expired trigger)', async function () {
      const payload = scene.emu.click(scene.alice.id, scene.channel, ts, ACTION_CLOSE);
      payload.trigger_id = `${Date.now() - 60_000}.abcdef`;
      await scene.route('interactive', payload);
      expect(scene.emu.views.views.size).to.equal(0);
      expect(scene.told(scene.alice)).to.have.length(1);
      expect(scene.told(scene.alice)[0]).to.include('The close form could not be opened').and.to.include('click Close… again');
      expect((await scene.platform.getIncident(2103)).status).to.equal('Active');
    });

    it('tells a person who cannot be matched why, and changes nothing', async function () {
      const before = await scene.platform.getIncident(2103);
      await scene.click(scene.mallory, ts, ACTION_ASSIGN);
      await scene.click(scene.mallory, ts, ACTION_SEVERITY, 'Low');
      expect(await scene.platform.getIncident(2103)).to.deep.equal(before);
      expect(patches()).to.have.length(0);
      expect(scene.notes(2103)).to.deep.equal([]);
      const told = scene.told(scene.mallory);
      expect(told).to.have.length(2);
      expect(told[0]).to.include('You cannot triage incident 2103').and.to.include('Nothing changed');
      expect(told[0]).to.include(
        kind === 'soar' ? 'no user of the incident platform has your email (mallory@guest.example)' : 'Slack shows no email for you',
      );
      expect(actionsOf(scene.card(ts))).to.not.equal(undefined);
      expect(cardText(scene.card(ts))).to.not.include('Owner');
    });

    it('turns the close modal into a notice for a person who cannot be matched', async function () {
      await scene.click(scene.mallory, ts, ACTION_CLOSE);
      const view = [...scene.emu.views.views.values()][0]!;
      expect(view.updates).to.equal(1);
      expect(view.view.submit).to.equal(undefined);
      expect(JSON.stringify(view.view.blocks)).to.include('You cannot close incident 2103');
    });

    it("says a closed incident's card is closed, changes nothing and redraws the card without buttons", async function () {
      scene.seed(2104, { name: 'Old case', severity: 'Low', status: 'Closed', resolution: 'Resolved' });
      const closedTs = await scene.postCard(2104);
      await scene.click(scene.alice, closedTs, ACTION_SEVERITY, 'High');
      expect((await scene.platform.getIncident(2104)).severity).to.equal('Low');
      expect(scene.notes(2104)).to.deep.equal([]);
      expect(scene.told(scene.alice)).to.deep.equal(['Incident 2104 is closed (Resolved); nothing changed.']);
      const message = scene.card(closedTs);
      expect(actionsOf(message)).to.equal(undefined);
      expect(cardText(message)).to.include('Closed (Resolved)');
      // Close… on a closed incident: the modal says so instead of asking.
      scene.seed(2105, { name: 'Also closed', status: 'Closed', resolution: 'Unresolved' });
      const otherTs = await scene.postCard(2105);
      await scene.click(scene.bob, otherTs, ACTION_CLOSE);
      const view = [...scene.emu.views.views.values()].at(-1)!;
      expect(JSON.stringify(view.view.blocks)).to.include('Incident 2105 is already closed (Unresolved)');
    });

    it('handles the same click twice (a crash before it was marked done) with one change', async function () {
      const payload = scene.emu.click(scene.alice.id, scene.channel, ts, ACTION_SEVERITY, { selectedOption: 'Low' });
      await scene.route('interactive', payload);
      const after = await scene.platform.getIncident(2103);
      const cardAfter = cardText(scene.card(ts));
      await scene.route('interactive', payload);
      expect(await scene.platform.getIncident(2103)).to.deep.equal(after);
      expect(cardText(scene.card(ts))).to.equal(cardAfter);
      if (kind === 'soar') expect(patches()).to.have.length(1);
      expect(scene.notes(2103)).to.have.length(1);
    });

    it('a close whose note failed after the incident was closed is finished by the next delivery: the note and the card, not "already closed"', async function () {
      await scene.click(scene.alice, ts, ACTION_CLOSE);
      const view = [...scene.emu.views.views.values()][0]!;
      const submission = scene.emu.submitView(scene.alice.id, view.id, { resolution: 'Duplicate', summary: 'duplicate of 2099' });
      // The platform takes the change, then fails the note once (an outage): the delivery fails after the close.
      const platform = scene.platform;
      let failures = 1;
      scene.platform = Object.assign(Object.create(platform) as typeof platform, {
        addNote: (note: Parameters<typeof platform.addNote>[0]) =>
          failures-- > 0 ? Promise.reject(new RetryableError('the platform is down for a moment')) : platform.addNote(note),
      });
      let failed: unknown;
      await scene.route('interactive', submission).catch((err) => (failed = err));
      expect((failed as Error).message).to.equal('the platform is down for a moment');
      expect((await platform.getIncident(2103)).status).to.equal('Closed');
      expect(scene.notes(2103)).to.deep.equal([]);
      await scene.route('interactive', submission); // the inbound path's retry of the same envelope
      expect(scene.told(scene.alice)).to.deep.equal([]);
      expect(scene.notes(2103)).to.have.length(1);
      expect(scene.notes(2103)[0]).to.include('Closed by Alice Analyst: duplicate of 2099 (resolution: Duplicate)');
      const message = scene.card(ts);
      expect(actionsOf(message)).to.equal(undefined);
      expect(cardText(message)).to.include('Closed by Alice Analyst: duplicate of 2099');
      if (kind === 'soar') expect(patches()).to.have.length(1);
    });

    it('keeps both changes when two people click at once, and the card shows the final state', async function () {
      const a = scene.emu.click(scene.alice.id, scene.channel, ts, ACTION_SEVERITY, { selectedOption: 'High' });
      const b = scene.emu.click(scene.bob.id, scene.channel, ts, ACTION_ASSIGN);
      await Promise.all([scene.route('interactive', a), scene.route('interactive', b)]);
      const inc = await scene.platform.getIncident(2103);
      expect(inc.severity).to.equal('High');
      expect(inc.owner?.email).to.equal('bob@example.com');
      const card = cardText(scene.card(ts));
      expect(card).to.include('*Severity:*\\nHigh').and.to.include('bob@example.com');
      expect(scene.notes(2103)).to.have.length(2);
    });

    it('keeps one owner when two people take the incident at once, the card agreeing with the platform', async function () {
      const a = scene.emu.click(scene.alice.id, scene.channel, ts, ACTION_ASSIGN);
      const b = scene.emu.click(scene.bob.id, scene.channel, ts, ACTION_ASSIGN);
      await Promise.all([scene.route('interactive', a), scene.route('interactive', b)]);
      const owner = (await scene.platform.getIncident(2103)).owner!.email;
      expect(['alice@example.com', 'bob@example.com']).to.include(owner);
      const other = owner === 'alice@example.com' ? 'bob@example.com' : 'alice@example.com';
      const state = JSON.stringify((scene.card(ts).blocks as Json[]).find((b) => String(b.block_id).startsWith('triage-state')));
      expect(state).to.include(owner).and.not.to.include(other);
    });
  });
}
