/**
 * fn_slack end to end with `platform = soar`: invocations published on the real
 * RabbitMQ, run by a spawned `worker run` whose attachments come from (and exports go
 * to) the SOAR REST emulator, against the Slack Web API emulator.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { SlackEmulator } from '../../support/slack-emulator.js';
import { SoarEmulator } from '../../support/soar-emulator.js';
import { writeConfig, type TestConfig } from '../../support/harness.js';
import { invoke, startWorkerRun, stopWorkerRun, succeeded, type Reply, type WorkerRun } from '../../support/invocations.js';

describe('fn_slack end to end with platform = soar (RabbitMQ + worker run + SOAR and Slack emulators)', function () {
  this.timeout(90_000);
  let slack: SlackEmulator;
  let soar: SoarEmulator;
  let cfg: TestConfig;
  let run: WorkerRun;

  before(async () => {
    slack = await SlackEmulator.start();
    soar = await SoarEmulator.start();
    // [soar] data_table = true: the mapping is also copied to this table on the incident.
    soar.dataTables.set('slack_conversations_db', {
      type_name: 'slack_conversations_db',
      type_id: 8,
      fields: Object.fromEntries(
        ['slack_db_time', 'slack_db_res_id', 'slack_db_channel', 'slack_db_channel_id', 'slack_db_channel_type', 'slack_db_permalink', 'slack_db_archived'].map(
          (name) => [name, { name, input_type: 'text' }],
        ),
      ),
    });
    cfg = writeConfig({
      worker: { platform: 'soar' },
      sections: {
        fn_slack: { api_token: slack.botToken, api_url: slack.apiUrl },
        soar: { base_url: soar.baseUrl, org_id: soar.orgId, api_key_id: soar.apiKeyId, api_key_secret: '$SOAR_TEST_SECRET', data_table: 'true' },
      },
    });
    run = await startWorkerRun(cfg, { SOAR_TEST_SECRET: soar.apiKeySecret });
  });

  after(async () => {
    await stopWorkerRun(run, cfg);
    await slack?.close();
    await soar?.close();
  });

  it('slack_post_attachment: streams an incident attachment from SOAR to the channel', async () => {
    const bytes = randomBytes(200_000);
    const attachmentId = soar.addAttachment({ incidentId: 2200, name: 'evidence.bin', contentType: 'application/octet-stream', content: bytes });
    const [progress, results] = succeeded(
      await invoke(run, 'slack_post_attachment', {
        incident_id: 2200,
        attachment_id: attachmentId,
        slack_channel: 'inc-2200',
        slack_is_channel_private: true,
        slack_text: 'evidence from SOAR',
      }),
    );
    expect(progress).to.include('Uploading evidence.bin (200000 bytes) to #inc-2200');
    const content = results.content as Reply;
    expect(content).to.deep.include({ channel: 'inc-2200', file_name: 'evidence.bin', size: 200_000 });
    expect(slack.fileBytes(content.file_id)!.equals(bytes)).to.equal(true);
    expect(soar.requestsTo(new RegExp(`/incidents/2200/attachments/${attachmentId}(/contents)?$`)).map((r) => r.status)).to.deep.equal([200, 200]);
  });

  it('slack_post_attachment: a task attachment, and a Malware Sample artifact refused with nothing sent', async () => {
    const taskAtt = soar.addAttachment({ incidentId: 2201, taskId: 31, name: 'notes.txt', contentType: 'text/plain', content: 'task notes' });
    const [, results] = succeeded(
      await invoke(run, 'slack_post_attachment', { incident_id: 2201, task_id: 31, attachment_id: taskAtt, slack_channel: 'inc-2201-task', slack_is_channel_private: false }),
    );
    expect(slack.fileBytes((results.content as Reply).file_id)!.toString()).to.equal('task notes');

    const files = slack.calls('files.completeUploadExternal');
    const malware = soar.addArtifact({ incidentId: 2201, type: 'Malware Sample', value: 'evil.exe', file: { name: 'evil.exe', content: 'MZ' } });
    const replies = await invoke(run, 'slack_post_attachment', { incident_id: 2201, artifact_id: malware, slack_channel: 'inc-2201-task' });
    const final = replies[replies.length - 1]!;
    expect(final.message_type).to.equal(1);
    expect(final.error).to.deep.equal({ code: 'malware_refused', retryable: false });
    expect(final.message).to.contain('is a Malware Sample');
    expect(slack.calls('files.completeUploadExternal')).to.equal(files);
    expect(soar.requestsTo(new RegExp(`/artifacts/${malware}/contents$`))).to.have.length(0);
  });

  it('slack_archive_channel: saves the export on the SOAR incident as an attachment, archives the channel', async () => {
    soar.addIncident(2300);
    succeeded(await invoke(run, 'slack_post_message', { incident_id: 2300, slack_channel: 'inc-2300', slack_is_channel_private: false, slack_text: 'Incident 2300 opened' }));
    const ch = slack.channelByName('inc-2300')!;
    slack.seedMessages(ch.id, 10, { threads: 1, repliesPerThread: 2 });

    const [progress, results] = succeeded(await invoke(run, 'slack_archive_channel', { incident_id: 2300 }));
    expect(progress).to.include('Saved slack_msg_export_channel_inc-2300.txt on incident 2300');
    expect(results.content).to.deep.include({ archived: true, export_file: 'slack_msg_export_channel_inc-2300.txt' });
    expect(slack.channel(ch.id)!.isArchived).to.equal(true);

    const uploads = soar.uploads.filter((u) => u.incidentId === 2300);
    expect(uploads).to.have.length(1);
    expect(uploads[0]).to.deep.include({ name: 'slack_msg_export_channel_inc-2300.txt', contentType: 'text/plain' });
    expect(uploads[0]!.taskId).to.equal(undefined);
    const text = uploads[0]!.bytes.toString('utf8');
    expect(text).to.match(/^Slack channel #inc-2300 \(C[A-Z0-9]+\) conversation history, exported /);
    expect(text).to.match(/\n1 - soar-bot POSTED ON [^\n]+:\nIncident 2300 opened\n/);
    expect(text.match(/^\t.+ POSTED A REPLY ON /gm)).to.have.length(2);

    // The mapping, copied to SOAR's data table on the incident, is marked archived there too.
    const rows = soar.rows.filter((r) => r.incidentId === 2300);
    expect(rows).to.have.length(1);
    expect(rows[0]!.cells).to.deep.include({
      slack_db_res_id: { value: 'RES-2300' },
      slack_db_channel: { value: 'inc-2300' },
      slack_db_channel_id: { value: ch.id },
      slack_db_archived: { value: true },
    });
  });
});
