/**
 * Triage and look-ups end to end: a card posted by `slack_post_message` through the real
 * broker, clicked in the Slack emulator, delivered over Socket Mode to a spawned
 * `worker run`, recorded on the inbound queue and handled once; the incident on the local
 * platform changes, the card is redrawn, the close modal opens within its trigger's 3 s;
 * the slash command and a mention are answered.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { SlackEmulator, type EmulatedUser } from '../../support/slack-emulator.js';
import { deleteDestination, uniqueName, writeConfig, type TestConfig } from '../../support/harness.js';
import { invoke, startWorkerRun, stopWorkerRun, succeeded, type WorkerRun } from '../../support/invocations.js';
import { poller } from '../../support/until.js';

type Json = Record<string, any>;

const until = poller({ timeoutMs: 20_000, everyMs: 50 });

describe('triage and look-ups from Slack end to end (RabbitMQ + worker run + Socket Mode)', function () {
  this.timeout(120_000);
  let emu: SlackEmulator;
  let cfg: TestConfig;
  let run: WorkerRun;
  let inboundQueue: string;
  let alice: EmulatedUser;
  let bob: EmulatedUser;
  let channel: string;
  let ts: string;

  const incidentFile = () => path.join(cfg.dir, 'files', 'incidents', '2103', 'incident.json');
  const incident = (): Json => JSON.parse(fs.readFileSync(incidentFile(), 'utf8')) as Json;
  const notes = (): string[] => {
    const dir = path.join(path.dirname(incidentFile()), 'notes');
    if (!fs.existsSync(dir)) return [];
    return fs
      .readdirSync(dir)
      .filter((n) => !n.startsWith('.'))
      .sort()
      .map((n) => (JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as Json).text as string);
  };
  const card = (): Json => emu.message(channel, ts) as unknown as Json;
  const hasActions = () => (card().blocks as Json[]).some((b) => b.type === 'actions');
  const delivered = () => emu.socketMode.delivered();
  const allAcked = () => delivered().every((e) => e.ackedAt !== undefined);

  before(async () => {
    emu = await SlackEmulator.start({ socketMode: { ackTimeoutMs: 1000 } });
    emu.subscribe('app_mention');
    alice = emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
    bob = emu.addUser({ name: 'bob', real_name: 'Bob Lead', email: 'bob@example.com' });
    inboundQueue = uniqueName('inbound');
    cfg = writeConfig({
      sections: {
        fn_slack: {
          api_token: emu.botToken,
          api_url: emu.apiUrl,
          app_token: emu.appToken,
          inbound_queue: inboundQueue,
          soar_url: 'https://soar.example.com/#incidents/{incident_id}',
        },
      },
    });
    fs.mkdirSync(path.dirname(incidentFile()), { recursive: true });
    fs.writeFileSync(
      incidentFile(),
      JSON.stringify({ id: 2103, name: 'Phishing <!channel> wave', severity: 'Medium', status: 'Active', owner: null }),
    );
    run = await startWorkerRun(cfg);
    await run.worker.waitFor('Listener socket-mode started').catch(() => undefined);
    await until('a Socket Mode connection', () => emu.socketMode.connectionCount >= 1);
    const [, results] = succeeded(
      await invoke(run, 'slack_post_message', {
        incident_id: 2103,
        slack_channel: 'inc-2103',
        slack_is_channel_private: false,
        slack_participant_emails: 'alice@example.com,bob@example.com',
        slack_text: 'Phishing wave: please triage',
        slack_triage_buttons: true,
      }),
    );
    channel = results.content.channel_id;
    ts = results.content.ts;
  });

  after(async () => {
    await stopWorkerRun(run, cfg);
    await deleteDestination(inboundQueue);
    await emu?.close();
  });

  it('Assign to me: the incident gets its owner and the card shows it', async () => {
    emu.click(alice.id, channel, ts, 'triage:assign');
    await until('the owner', () => incident().owner === 'alice@example.com');
    await until('the redrawn card', () => JSON.stringify(card().blocks).includes('Assigned to Alice Analyst by Alice Analyst'));
    expect(JSON.stringify(card().blocks)).to.include('*Owner:*\\nalice@example.com');
  });

  it('the same click delivered three times (copies under new envelopes, as a second connection gets) takes effect once', async () => {
    const updatesBefore = emu.calls('chat.update');
    const payload = emu.click(bob.id, channel, ts, 'triage:severity', { selectedOption: 'High' });
    emu.socketMode.deliver('interactive', payload);
    await until('the severity', () => incident().severity === 'High');
    emu.socketMode.deliver('interactive', payload);
    await until('every copy acked', () => allAcked() && delivered().filter((e) => e.payload === payload).length === 3);
    // The click notes and redraws after the change: wait for those, then give the copies time to (not) act.
    await until('the redrawn card', () => JSON.stringify(card().blocks).includes('Severity set to High by Bob Lead'));
    await new Promise((r) => setTimeout(r, 1000));
    expect(emu.calls('chat.update') - updatesBefore).to.equal(1);
    expect(notes().filter((t) => t.startsWith('Severity set to High'))).to.have.length(1);
    expect(JSON.stringify(card().blocks)).to.include('Severity set to High by Bob Lead');
  });

  it('Close… opens the modal within its trigger, and the submission closes the incident', async () => {
    emu.click(alice.id, channel, ts, 'triage:close');
    await until('the modal', () => emu.views.views.size === 1);
    const view = [...emu.views.views.values()][0]!;
    expect(view.view.callback_id).to.equal('triage:close');
    emu.submitView(alice.id, view.id, { resolution: 'Duplicate', summary: 'duplicate of 2099' });
    await until('the incident closed', () => incident().status === 'Closed');
    expect(incident()).to.include({
      resolution: 'Duplicate',
      resolution_summary: 'duplicate of 2099',
      owner: 'alice@example.com',
      severity: 'High',
    });
    await until('the card without buttons', () => !hasActions());
    expect(JSON.stringify(card().blocks)).to.include('Closed (Duplicate)');
    expect(notes()).to.deep.equal([
      'Assigned to Alice Analyst by Alice Analyst',
      'Severity set to High by Bob Lead',
      'Closed by Alice Analyst: duplicate of 2099 (resolution: Duplicate)',
    ]);
    // The incident's file stays private.
    expect(fs.statSync(incidentFile()).mode & 0o777).to.equal(0o600);
  });

  it('a click on the closed card says so', async () => {
    // The emulator lets a person click only what the message shows: put the buttons back as a stale client would show them.
    const stale = emu.message(channel, ts)!;
    const before = emu.ephemerals(bob.id).length;
    stale.blocks = [
      ...(stale.blocks ?? []),
      {
        type: 'actions',
        block_id: 'triage:2103',
        elements: [{ type: 'button', action_id: 'triage:assign', text: { type: 'plain_text', text: 'Assign to me' }, value: '2103' }],
      },
    ];
    emu.click(bob.id, channel, ts, 'triage:assign');
    await until('the note to bob', () => emu.ephemerals(bob.id).length > before);
    expect(emu.ephemerals(bob.id).at(-1)!.text).to.equal('Incident 2103 is closed (Duplicate); nothing changed.');
    expect(incident().owner).to.equal('alice@example.com');
  });

  it('the slash command answers the person alone with the escaped summary', async () => {
    emu.slashCommand(bob.id, channel, 'incident 2103');
    await until('the answer', () => emu.ephemerals(bob.id).some((m) => m.via === 'response_url'));
    const answer = emu.ephemerals(bob.id).find((m) => m.via === 'response_url')!;
    const blocks = JSON.stringify(answer.blocks);
    expect(blocks).to.include('*Incident 2103:* Phishing &lt;!channel&gt; wave').and.to.include('Closed (Duplicate)');
    expect(blocks).to.include('<https://soar.example.com/#incidents/2103|Open incident 2103 in SOAR>');
    expect(blocks).to.not.include('<!channel>');
  });

  it('a mention is answered in its thread', async () => {
    const mention = emu.postAsUser(alice.id, channel, `<@${emu.botUserId}> incident 2103`);
    await until('the thread reply', () => (emu.replies(channel, mention.ts) ?? []).length >= 1);
    expect(JSON.stringify(emu.replies(channel, mention.ts)![0]!.blocks)).to.include('*Incident 2103:*');
  });
});
