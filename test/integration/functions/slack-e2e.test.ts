/**
 * fn_slack end to end: invocations published on the real RabbitMQ, run by a spawned
 * `worker run`, against the Slack Web API emulator; replies checked as a caller sees them.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { SlackEmulator } from '../../support/slack-emulator.js';
import { runCli, writeConfig, type TestConfig } from '../../support/harness.js';
import { invoke, startWorkerRun, stopWorkerRun, succeeded as succeededResult, type Reply, type WorkerRun } from '../../support/invocations.js';

const CONTAINER = {
  'Type of data': 'Incident',
  'Additional Text': 'Escalated by the night shift',
  'Incident ID': { type: 'string', data: '2103' },
  Description: { type: 'richtext', data: '<p>Phishing <b>wave</b></p>' },
  Confirmed: { type: 'boolean', data: true },
};

describe('fn_slack end to end (RabbitMQ + worker run + Slack emulator)', function () {
  this.timeout(90_000);
  let emu: SlackEmulator;
  let cfg: TestConfig;
  let run: WorkerRun;

  before(async () => {
    emu = await SlackEmulator.start();
    cfg = writeConfig({ sections: { fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl } } });
    fs.mkdirSync(path.join(cfg.dir, 'files', 'incidents'), { recursive: true });
    run = await startWorkerRun(cfg);
  });

  after(async () => {
    await stopWorkerRun(run, cfg);
    await emu?.close();
  });

  /**
   * The shared success check, plus what every result in this file must also show:
   * progress replies before it, the 'Completed' message and a ResultPayload v2 with
   * fn_slack's metrics. Returns [progress messages, results].
   */
  function succeeded(replies: Reply[]): [string[], Reply] {
    const [progress, results] = succeededResult(replies);
    expect(replies[replies.length - 1]!.message).to.equal('Completed');
    expect(progress.length).to.be.greaterThan(0);
    for (const p of replies.slice(0, -1)) expect(p).to.deep.include({ message_type: 0, complete: false });
    expect(results.version).to.equal(2);
    expect(results.metrics.package).to.equal('fn_slack');
    expect(results.metrics.execution_time_ms).to.be.a('number');
    return [progress, results];
  }

  it('slack_post_message: posts a container to a new channel and returns the ResultPayload v2', async () => {
    const alice = emu.addUser({ name: 'alice', email: 'alice@example.com' });
    const inputs = {
      incident_id: 2103,
      slack_channel: 'inc-2103',
      slack_is_channel_private: false,
      slack_participant_emails: 'alice@example.com',
      slack_text: JSON.stringify(CONTAINER),
    };
    const [progress, results] = succeeded(await invoke(run, 'slack_post_message', inputs));
    const order = ['Created public channel #inc-2103', 'Invited 1 participant(s) to #inc-2103', 'Posted the message to #inc-2103'];
    const at = order.map((m) => progress.indexOf(m));
    expect(at.every((i) => i >= 0), progress.join(' | ')).to.equal(true);
    expect([...at].sort((a, b) => a - b)).to.deep.equal(at);

    const ch = emu.channelByName('inc-2103')!;
    const [m, ...more] = emu.messages(ch.id);
    expect(more).to.have.length(0);
    expect(results.content).to.deep.include({
      channel: 'inc-2103',
      channel_id: ch.id,
      ts: m!.ts,
      url: `https://emulated.slack.com/archives/${ch.id}/p${m!.ts.replace('.', '')}`,
    });
    expect(results.content.members).to.have.members([emu.botUserId, alice.id]);
    expect(results.inputs).to.deep.include({ incident_id: 2103, slack_channel: 'inc-2103' });
    expect((m!.blocks as { type: string }[]).map((b) => b.type)).to.deep.equal(['header', 'section', 'section']);
    expect(m!.text).to.contain('*Description*: Phishing *wave*');
    expect(m!.metadata?.event_type).to.equal('soar_worker_post');
  });

  it('slack_post_attachment: uploads a file from the local platform (via `worker invoke --json`)', async () => {
    const bytes = randomBytes(50_000);
    const dir = path.join(cfg.dir, 'files', 'incidents', '2200', 'attachments', '1');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'evidence.bin'), bytes);

    const res = await runCli([
      'invoke', 'slack_post_attachment', '--config-file', cfg.file, '--destination', cfg.destination, '--json',
      '-i', 'incident_id=2200', '-i', 'attachment_id=1', '-i', 'slack_channel=inc-2200',
      '-i', 'slack_is_channel_private=true', '-i', 'slack_text=evidence for <!here> & co',
    ]);
    expect(res.code, res.stderr + res.stdout).to.equal(0);
    const replies = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as Reply);
    const [progress, results] = succeeded(replies);
    expect(progress).to.include('Uploading evidence.bin (50000 bytes) to #inc-2200');

    const ch = emu.channelByName('inc-2200')!;
    expect(ch.isPrivate).to.equal(true);
    const content = results.content as Reply;
    expect(content).to.deep.include({ channel: 'inc-2200', channel_id: ch.id, file_name: 'evidence.bin', size: 50_000 });
    expect(emu.fileBytes(content.file_id)!.equals(bytes)).to.equal(true);
    const [m] = emu.messages(ch.id);
    expect(m!.text).to.equal('evidence for &lt;!here&gt; &amp; co');
    expect(content.ts).to.equal(m!.ts);
    expect(content.url).to.equal(`https://emulated.slack.com/archives/${ch.id}/p${m!.ts.replace('.', '')}`);
  });

  it('slack_archive_channel: exports to the incident, archives the channel', async () => {
    fs.mkdirSync(path.join(cfg.dir, 'files', 'incidents', '2300'), { recursive: true });
    succeeded(
      await invoke(run, 'slack_post_message', {
        incident_id: 2300,
        slack_channel: 'inc-2300',
        slack_is_channel_private: true,
        slack_text: 'Incident 2300 opened',
      }),
    );
    const ch = emu.channelByName('inc-2300')!;
    emu.seedMessages(ch.id, 20, { threads: 2, repliesPerThread: 2 });

    const [progress, results] = succeeded(await invoke(run, 'slack_archive_channel', { incident_id: 2300 }));
    expect(progress[0]).to.equal('Found channel #inc-2300');
    expect(progress).to.include('Posted "This channel has been set to be archived" to #inc-2300');
    expect(progress).to.include('Archived #inc-2300');
    expect(progress.some((p) => /^Exported 22 messages and 4 replies \(\d+ bytes\)$/.test(p))).to.equal(true);
    expect(results.content).to.deep.include({
      channel: 'inc-2300',
      channel_id: ch.id,
      archived: true,
      export_file: 'slack_msg_export_channel_inc-2300.txt',
      messages: 22,
      replies: 4,
    });

    expect(emu.channel(ch.id)!.isArchived).to.equal(true);
    const file = path.join(cfg.dir, 'files', 'incidents', '2300', 'attachments', '1', 'slack_msg_export_channel_inc-2300.txt');
    const text = fs.readFileSync(file, 'utf8');
    expect(text).to.match(/^Slack channel #inc-2300 \(C[A-Z0-9]+\) conversation history, exported /);
    expect(text).to.match(/\n1 - soar-bot POSTED ON [^\n]+:\nIncident 2300 opened\n/);
    expect(text).to.match(/\n22 - soar-bot POSTED ON [^\n]+:\nThis channel has been set to be archived\n/);
    expect(text.match(/^\t.+ POSTED A REPLY ON /gm)).to.have.length(4);

    // The association is marked archived: a post without a channel is now refused.
    const refused = await invoke(run, 'slack_post_message', { incident_id: 2300, slack_text: 'after' });
    expect(refused).to.have.length(1);
    expect(refused[0]!.message_type).to.equal(1);
    expect(refused[0]!.error).to.deep.equal({ code: 'slack_channel_archived', retryable: false });
  });

  it('answers invalid inputs with one error reply naming every missing field', async () => {
    const posts = emu.calls('chat.postMessage');
    const replies = await invoke(run, 'slack_post_message', { slack_channel: 'inc-x' });
    await new Promise((r) => setTimeout(r, 300)); // nothing else may follow
    expect(replies).to.have.length(1);
    const [reply] = replies;
    expect(reply!.message_type).to.equal(1);
    expect(reply!.complete).to.equal(true);
    expect((reply!.error as Reply).code).to.equal('invalid_inputs');
    expect((reply!.error as Reply).retryable).to.equal(false);
    expect(reply!.message).to.match(/^Invalid inputs for slack_post_message: /);
    expect(reply!.message).to.contain('incident_id: is required');
    expect(reply!.message).to.contain('slack_text: is required');
    expect(emu.calls('chat.postMessage')).to.equal(posts);
    expect(emu.channelByName('inc-x')).to.equal(undefined);
  });
});
