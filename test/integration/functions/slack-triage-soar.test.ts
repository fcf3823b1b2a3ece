/**
 * Triage end to end with `platform = soar`: a card posted through the real broker, its
 * clicks delivered over Socket Mode to a spawned `worker run`, the incident changed in
 * the SOAR emulator with versioned PATCHes as the matched SOAR user; two people clicking
 * at once both get their change.
 */
import { expect } from 'chai';
import { SlackEmulator, type EmulatedUser } from '../../support/slack-emulator.js';
import { SoarEmulator } from '../../support/soar-emulator.js';
import { deleteDestination, uniqueName, writeConfig, type TestConfig } from '../../support/harness.js';
import { invoke, startWorkerRun, stopWorkerRun, succeeded, type WorkerRun } from '../../support/invocations.js';
import { poller } from '../../support/until.js';

type Json = Record<string, any>;

const until = poller({ timeoutMs: 20_000, everyMs: 50 });

describe('triage end to end with platform = soar (RabbitMQ + worker run + Socket Mode + SOAR emulator)', function () {
  this.timeout(120_000);
  let slack: SlackEmulator;
  let soar: SoarEmulator;
  let cfg: TestConfig;
  let run: WorkerRun;
  let inboundQueue: string;
  let alice: EmulatedUser;
  let bob: EmulatedUser;
  let mallory: EmulatedUser;
  let bobId: number;
  let channel: string;
  let ts: string;

  const incident = () => soar.incidents.get(2103)!;
  const card = (): Json => slack.message(channel, ts) as unknown as Json;

  before(async () => {
    slack = await SlackEmulator.start();
    soar = await SoarEmulator.start();
    alice = slack.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
    bob = slack.addUser({ name: 'bob', real_name: 'Bob Lead', email: 'bob@example.com' });
    mallory = slack.addUser({ name: 'mallory', real_name: 'Mallory Guest', email: 'mallory@guest.example' });
    soar.addUser({ email: 'alice@example.com', fname: 'Alice', lname: 'Analyst' });
    bobId = soar.addUser({ email: 'bob@example.com', fname: 'Bob', lname: 'Lead' });
    soar.addIncident(2103, 'Phishing wave', { severity_code: 5 });
    inboundQueue = uniqueName('inbound');
    cfg = writeConfig({
      worker: { platform: 'soar' },
      sections: {
        fn_slack: { api_token: slack.botToken, api_url: slack.apiUrl, app_token: slack.appToken, inbound_queue: inboundQueue },
        soar: { base_url: soar.baseUrl, org_id: soar.orgId, api_key_id: soar.apiKeyId, api_key_secret: '$SOAR_TEST_SECRET' },
      },
    });
    run = await startWorkerRun(cfg, { SOAR_TEST_SECRET: soar.apiKeySecret });
    await until('a Socket Mode connection', () => slack.socketMode.connectionCount >= 1);
    const [, results] = succeeded(
      await invoke(run, 'slack_post_message', {
        incident_id: 2103,
        slack_channel: 'inc-2103',
        slack_is_channel_private: false,
        slack_participant_emails: 'alice@example.com,bob@example.com,mallory@guest.example',
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
    await slack?.close();
    await soar?.close();
  });

  it('a person with no SOAR user is told why and nothing changes', async () => {
    slack.click(mallory.id, channel, ts, 'triage:assign');
    await until('the note to mallory', () => slack.ephemerals(mallory.id).length === 1);
    expect(slack.ephemerals(mallory.id)[0]!.text).to.include('no user of the incident platform has your email (mallory@guest.example)');
    expect(soar.requestsTo(/\/incidents\/2103$/, 'PATCH')).to.have.length(0);
  });

  it('two people clicking at once (assign, severity) both get their change; the card shows both', async () => {
    slack.click(alice.id, channel, ts, 'triage:severity', { selectedOption: 'High' });
    slack.click(bob.id, channel, ts, 'triage:assign');
    await until('both changes', () => incident().owner_id === bobId && incident().severity_code === 6);
    await until('the card with both', () => {
      const text = JSON.stringify(card().blocks);
      return text.includes('*Severity:*\\nHigh') && text.includes('Bob Lead (bob@example.com)');
    });
  });

  it('Close… and its modal close the incident in SOAR with the resolution ids SOAR gives', async () => {
    slack.click(alice.id, channel, ts, 'triage:close');
    await until('the modal', () => slack.views.views.size === 1);
    const view = [...slack.views.views.values()][0]!;
    slack.submitView(alice.id, view.id, { resolution: 'Not an Issue', summary: 'a phishing test by the red team' });
    await until('the incident closed', () => incident().plan_status === 'C');
    expect(incident()).to.include({ resolution_id: 9, resolution_summary: 'a phishing test by the red team', owner_id: bobId });
    await until('the card without buttons', () => !(card().blocks as Json[]).some((b) => b.type === 'actions'));
    expect(JSON.stringify(card().blocks)).to.include('Closed (Not an Issue)').and.to.include('Closed by Alice Analyst');
    // One comment per change, none for the person who could not be matched.
    const comments = soar.comments.filter((c) => c.incidentId === 2103).map((c) => c.text);
    expect(comments).to.have.length(3);
    expect(comments.join('\n')).to.include('Assigned to Bob Lead by Bob Lead').and.to.include('Severity set to High by Alice Analyst');
  });
});
