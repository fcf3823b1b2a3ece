/**
 * slack_post_attachment against the Slack Web API emulator, with files laid out in the
 * local platform's directory tree (src/platforms/local/local-platform.ts):
 *   incidents/<id>/attachments/<att>/<file>
 *   incidents/<id>/tasks/<task>/attachments/<att>/<file>
 *   incidents/<id>/artifacts/<art>/artifact.json + <file>
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Platform } from '../../../../src/platforms/platform.js';
import { UPLOAD_METHOD } from '../../../support/slack-emulator.js';
import { runFunction, type SlackFixture, expectOk, expectFailure, expectFailureMessage } from '../../../support/function-context.js';
import { useSlackFixture } from '../../../support/slack-hooks.js';

function writeFile(dir: string, name: string, bytes: Buffer): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, name), bytes);
}

describe('slack_post_attachment', function () {
  this.timeout(30_000);
  const slack = useSlackFixture();

  const incidentAttachment = (incident: number, att: number, name: string, bytes: Buffer, root = slack.fx.platformDir) =>
    writeFile(path.join(root, 'incidents', String(incident), 'attachments', String(att)), name, bytes);
  const taskAttachment = (incident: number, task: number, att: number, name: string, bytes: Buffer) =>
    writeFile(path.join(slack.fx.platformDir, 'incidents', String(incident), 'tasks', String(task), 'attachments', String(att)), name, bytes);
  function artifact(incident: number, art: number, type: string, name: string, bytes: Buffer): void {
    const dir = path.join(slack.fx.platformDir, 'incidents', String(incident), 'artifacts', String(art));
    writeFile(dir, name, bytes);
    fs.writeFileSync(path.join(dir, 'artifact.json'), JSON.stringify({ type, value: name }));
  }

  const uploadAs = (invocationId: string, attempt: number, inputs: Record<string, unknown>) =>
    runFunction(slack.fx, 'slack_post_attachment', { incident_id: 2103, slack_channel: 'inc-2103', slack_is_channel_private: false, ...inputs }, { invocationId, attempt });

  /** Makes the worker "die" (throw) right after Slack answered `method`, once. */
  function dieAfter(method: string): void {
    const client = slack.fx.state.client;
    const original = client.call.bind(client);
    let died = false;
    client.call = async (m, params, opts) => {
      const res = await original(m, params, opts);
      if (m === method && !died) {
        died = true;
        throw new Error(`worker died after ${method}`);
      }
      return res;
    };
  }

  /** Makes the worker "die" right before calling `method`, once. */
  function dieBefore(method: string): void {
    const client = slack.fx.state.client;
    const original = client.call.bind(client);
    let died = false;
    client.call = async (m, params, opts) => {
      if (m === method && !died) {
        died = true;
        throw new Error(`worker died before ${method}`);
      }
      return original(m, params, opts);
    };
  }

  const upload = (inputs: Record<string, unknown>, on: { store: SlackFixture['store']; platform: Platform; state: SlackFixture['state']; registry: SlackFixture['registry'] } = slack.fx) =>
    runFunction(on, 'slack_post_attachment', { incident_id: 2103, slack_channel: 'inc-2103', slack_is_channel_private: false, ...inputs });

  function expectNoUpload(): void {
    expect(slack.emu.calls('files.getUploadURLExternal')).to.equal(0);
    expect(slack.emu.calls(UPLOAD_METHOD)).to.equal(0);
    expect(slack.emu.calls('files.completeUploadExternal')).to.equal(0);
    expect(slack.emu.files()).to.have.length(0);
  }

  it('uploads an incident attachment: same bytes, escaped initial comment, result fields', async () => {
    const bytes = randomBytes(200_000);
    incidentAttachment(2103, 4, 'capture.pcap', bytes);
    const run = await upload({ attachment_id: 4, slack_text: '<!here> the capture & the <@U0001> notes' });
    const content = expectOk(run);

    const ch = slack.emu.channelByName('inc-2103')!;
    expect(content.channel).to.equal('inc-2103');
    expect(content.channel_id).to.equal(ch.id);
    expect(content.file_name).to.equal('capture.pcap');
    expect(content.size).to.equal(200_000);
    expect(slack.emu.fileBytes(content.file_id as string)!.equals(bytes)).to.equal(true);

    const [m, ...more] = slack.emu.messages(ch.id);
    expect(more).to.have.length(0);
    expect(m!.ts).to.equal(content.ts);
    expect(m!.text).to.equal('&lt;!here&gt; the capture &amp; the &lt;@U0001&gt; notes');
    expect(m!.files!.map((f) => f.id)).to.deep.equal([content.file_id]);
    expect(content.url).to.equal(`https://emulated.slack.com/archives/${ch.id}/p${m!.ts.replace('.', '')}`);
    // Built from auth.test's url: no chat.getPermalink call.
    expect(slack.emu.calls('chat.getPermalink')).to.equal(0);

    expect(run.progress).to.include('Uploading capture.pcap (200000 bytes) to #inc-2103');
    expect(run.progress).to.include('Uploaded capture.pcap to #inc-2103');
    const row = await slack.fx.state.conversations.get('RES-2103');
    expect(row).to.include({ channel: 'inc-2103', channelId: ch.id, channelType: 'Public', permalink: content.url });
  });

  it('strips Unicode direction controls from the file name: Slack shows and stores what the file is', async () => {
    const bytes = randomBytes(1000);
    incidentAttachment(2103, 5, 'invoice\u202Efdp.exe', bytes);
    const run = await upload({ attachment_id: 5 });
    const content = expectOk(run);
    expect(content.file_name).to.equal('invoicefdp.exe');
    const file = slack.emu.file(content.file_id as string)!;
    expect(file.name).to.equal('invoicefdp.exe');
    expect(file.title).to.equal('invoicefdp.exe');
    expect(run.progress).to.include('The file name holds Unicode direction controls; uploading it as invoicefdp.exe');
    const logged = slack.emu.callLog.filter((c) => c.method === 'files.getUploadURLExternal' || c.method === 'files.completeUploadExternal');
    expect(JSON.stringify(logged)).to.not.match(/[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]|\\u202e/i);
  });

  it("uploads a task's attachment and associates the channel with the task", async () => {
    const bytes = Buffer.from('task evidence\n'.repeat(100));
    taskAttachment(2103, 7, 2, 'notes.txt', bytes);
    const content = expectOk(await upload({ task_id: 7, attachment_id: 2, slack_channel: 'task-7', slack_is_channel_private: true }));
    expect(slack.emu.fileBytes(content.file_id as string)!.equals(bytes)).to.equal(true);
    expect(content.file_name).to.equal('notes.txt');
    expect(slack.emu.channelByName('task-7')!.isPrivate).to.equal(true);
    expect((await slack.fx.state.conversations.get('RES-2103-7'))?.channelType).to.equal('Private');
    expect(await slack.fx.state.conversations.get('RES-2103')).to.equal(undefined);
  });

  it('does not take an incident attachment for a task attachment of the same id', async () => {
    incidentAttachment(2103, 2, 'incident.txt', Buffer.from('incident'));
    fs.mkdirSync(path.join(slack.fx.platformDir, 'incidents', '2103', 'tasks', '7'), { recursive: true });
    const message = expectFailureMessage(await upload({ task_id: 7, attachment_id: 2 }), 'not_found');
    expect(message).to.contain('Attachment 2 of task 7 of incident 2103');
    expectNoUpload();
  });

  it('uploads an artifact file', async () => {
    const bytes = randomBytes(5000);
    artifact(2103, 11, 'Log File', 'auth.log', bytes);
    const content = expectOk(await upload({ artifact_id: 11, slack_text: 'auth log' }));
    expect(slack.emu.fileBytes(content.file_id as string)!.equals(bytes)).to.equal(true);
    expect(content.file_name).to.equal('auth.log');
    expect(slack.emu.messages(content.channel_id as string)[0]!.text).to.equal('auth log');
  });

  it('refuses a Malware Sample artifact without any Slack call', async () => {
    artifact(2103, 12, 'Malware Sample', 'dropper.exe', randomBytes(100));
    const message = expectFailureMessage(await upload({ artifact_id: 12 }), 'malware_refused');
    expect(message).to.equal('Artifact 12 is a Malware Sample; it is never uploaded to Slack');
    expectNoUpload();
    expect(slack.emu.calls()).to.equal(0);
  });

  it('refuses a file over max_upload_mb before reading it', async () => {
    const small = await slack.fixture({ max_upload_mb: '0.001' });
    incidentAttachment(2103, 5, 'big.zip', randomBytes(2000), small.platformDir);
    let opened = 0;
    const spy: Platform = {
      kind: 'spy',
      getAttachment: async (ref) => {
        const info = await small.platform.getAttachment(ref);
        return {
          ...info,
          open: () => {
            opened++;
            return info.open();
          },
        };
      },
      saveExport: (t, n, p) => small.platform.saveExport(t, n, p),
      checkExportTarget: (t) => small.platform.checkExportTarget(t),
      addNote: (n) => small.platform.addNote(n),
      getIncident: (id) => small.platform.getIncident(id),
      updateIncident: (id, c, a) => small.platform.updateIncident(id, c, a),
      findUserByEmail: (e) => small.platform.findUserByEmail(e),
      check: () => small.platform.check(),
    };
    const message = expectFailureMessage(await upload({ attachment_id: 5 }, { ...small, platform: spy }), 'attachment_too_large');
    expect(message).to.contain('big.zip');
    expect(message).to.contain('max_upload_mb = 0.001');
    expect(opened).to.equal(0);
    expect(slack.emu.calls()).to.equal(0);
  });

  it('accepts a file just under max_upload_mb', async () => {
    const small = await slack.fixture({ max_upload_mb: '0.001' });
    incidentAttachment(2103, 5, 'small.txt', Buffer.alloc(1000, 'a'), small.platformDir);
    const content = expectOk(await upload({ attachment_id: 5 }, small));
    expect(slack.emu.fileBytes(content.file_id as string)!.length).to.equal(1000);
  });

  it('wants exactly one of attachment_id and artifact_id', async () => {
    incidentAttachment(2103, 1, 'a.txt', Buffer.from('a'));
    artifact(2103, 1, 'Log File', 'b.log', Buffer.from('b'));
    const both = expectFailureMessage(await upload({ attachment_id: 1, artifact_id: 1 }), 'invalid_inputs');
    expect(both).to.equal('Give exactly one of attachment_id or artifact_id');
    const neither = expectFailureMessage(await upload({}), 'invalid_inputs');
    expect(neither).to.equal('Give exactly one of attachment_id or artifact_id');
    expect(slack.emu.calls()).to.equal(0);
  });

  it('waits for a share that appears late, then links to the message', async () => {
    slack.emu.shareDelayMs = 300;
    incidentAttachment(2103, 3, 'late.txt', Buffer.from('late share'));
    const run = await upload({ attachment_id: 3 });
    const content = expectOk(run);
    const ch = slack.emu.channelByName('inc-2103')!;
    const m = slack.emu.messages(ch.id)[0]!;
    expect(content.ts).to.equal(m.ts);
    expect(content.url).to.equal(`https://emulated.slack.com/archives/${ch.id}/p${m.ts.replace('.', '')}`);
    expect(slack.emu.calls('files.info')).to.be.greaterThan(1);
    expect(run.progress.some((p) => p.includes('has not shown the file'))).to.equal(false);
  });

  it('falls back to the file link when the share never shows up in time', async function () {
    this.timeout(20_000);
    slack.emu.shareDelayMs = 60_000;
    incidentAttachment(2103, 3, 'never.txt', Buffer.from('never shared visibly'));
    const run = await upload({ attachment_id: 3 });
    const content = expectOk(run);
    expect(content.ts).to.equal(null);
    expect(content.url).to.equal(`https://emulated.slack.com/files/${slack.emu.botUserId}/${content.file_id}/never.txt`);
    expect(run.progress).to.include('Slack has not shown the file in the channel yet; the link points at the file instead of the message');
    expect((await slack.fx.state.conversations.get('RES-2103'))?.permalink).to.equal(content.url);
  });

  it('uploads to the associated channel when no channel is given, and notes that slack_username does not apply', async () => {
    incidentAttachment(2103, 1, 'first.txt', Buffer.from('1'));
    incidentAttachment(2103, 2, 'second.txt', Buffer.from('2'));
    const first = expectOk(await upload({ attachment_id: 1 }));
    const run = await upload({ attachment_id: 2, slack_channel: undefined, slack_is_channel_private: undefined, slack_username: 'Night Shift' });
    const second = expectOk(run);
    expect(second.channel_id).to.equal(first.channel_id);
    expect(run.progress).to.include('slack_username does not apply to file uploads: Slack shows them as posted by the app');
    expect(slack.emu.messages(first.channel_id as string)).to.have.length(2);
  });

  it('reports a missing attachment clearly', async () => {
    fs.mkdirSync(path.join(slack.fx.platformDir, 'incidents', '2103'), { recursive: true });
    const message = expectFailureMessage(await upload({ attachment_id: 99 }), 'not_found');
    expect(message).to.contain('Attachment 99 of incident 2103 not found');
    expectNoUpload();
  });
  describe('an upload Slack refuses or that is cut off', () => {
    for (const status of [400, 403, 404, 413]) {
      it(`HTTP ${status} from the upload URL: a clear non-retryable error after one upload, nothing shared`, async () => {
        incidentAttachment(2103, 4, 'huge.bin', randomBytes(100_000));
        slack.emu.failNext(UPLOAD_METHOD, { status, times: 5 });
        const run = await upload({ attachment_id: 4 });
        const err = expectFailure(run, 'slack_upload_refused');
        expect(err.retryable).to.equal(false);
        expect(err.message).to.equal(
          `Slack refused the upload of huge.bin (HTTP ${status}); it is not retried: check the file (its size against Slack's limits and [fn_slack] max_upload_mb) and run the function again`,
        );
        expect(slack.emu.calls(UPLOAD_METHOD)).to.equal(1);
        expect(slack.emu.calls('files.completeUploadExternal')).to.equal(0);
      });
    }

    it('cut off mid-body: not repeated in the client; the redelivery reconciles first, then uploads once', async () => {
      const bytes = randomBytes(1 << 20);
      incidentAttachment(2103, 4, 'capture.pcap', bytes);
      const id = randomUUID();
      slack.emu.failNext(UPLOAD_METHOD, { closeAfterBytes: 64 * 1024 });
      const first = await uploadAs(id, 1, { attachment_id: 4 });
      const err = expectFailure(first, 'slack_upload_interrupted');
      expect(err.retryable).to.equal(true);
      expect(err.message).to.match(/^Uploading capture\.pcap to Slack was cut off \(.+\); the invocation will be retried$/);
      expect(slack.emu.calls(UPLOAD_METHOD)).to.equal(1);
      expect(slack.emu.calls('files.completeUploadExternal')).to.equal(0);

      const historyBefore = slack.emu.calls('conversations.history');
      const second = await uploadAs(id, 2, { attachment_id: 4 });
      const content = expectOk(second);
      expect(slack.emu.calls('conversations.history')).to.be.greaterThan(historyBefore);
      expect(slack.emu.calls(UPLOAD_METHOD)).to.equal(2);
      expect(slack.emu.fileBytes(content.file_id as string)!.equals(bytes)).to.equal(true);
      const ch = slack.emu.channelByName('inc-2103')!;
      expect(slack.emu.messages(ch.id).map((m) => m.files!.map((f) => f.id))).to.deep.equal([[content.file_id]]);
    });

    it('a 503 from the upload URL is still retried within the retry budget (Slack took nothing)', async () => {
      incidentAttachment(2103, 4, 'capture.pcap', randomBytes(3000));
      slack.emu.failNext(UPLOAD_METHOD, { status: 503 });
      const content = expectOk(await upload({ attachment_id: 4 }));
      expect(slack.emu.calls(UPLOAD_METHOD)).to.equal(2);
      expect(slack.emu.file(content.file_id as string)!.uploaded).to.equal(true);
    });
  });

  describe('redelivery after an interrupted attempt', () => {
    it('finds the file the earlier attempt uploaded and does not upload it again', async () => {
      const bytes = randomBytes(3000);
      incidentAttachment(2103, 4, 'capture.pcap', bytes);
      const id = randomUUID();
      await slack.fx.store.ledger.begin(id, 'slack_post_attachment');
      dieAfter('files.completeUploadExternal');
      const first = await uploadAs(id, 1, { attachment_id: 4, slack_text: 'the capture' });
      expect(first.error?.message).to.equal('worker died after files.completeUploadExternal');
      expect(slack.emu.files()).to.have.length(1);

      await slack.fx.store.ledger.begin(id, 'slack_post_attachment');
      const run = await uploadAs(id, 2, { attachment_id: 4, slack_text: 'the capture' });
      const content = expectOk(run);
      expect(run.progress).to.include('Found capture.pcap uploaded to #inc-2103 by an earlier attempt; not uploading it again');
      expect(run.progress.some((p) => p.startsWith('Uploading'))).to.equal(false);
      expect(slack.emu.calls('files.getUploadURLExternal')).to.equal(1);
      expect(slack.emu.calls('files.completeUploadExternal')).to.equal(1);
      const ch = slack.emu.channelByName('inc-2103')!;
      const [m, ...more] = slack.emu.messages(ch.id);
      expect(more).to.have.length(0);
      expect(content.file_id).to.equal(slack.emu.files()[0]!.id);
      expect(content.ts).to.equal(m!.ts);
      expect(content.url).to.equal(`https://emulated.slack.com/archives/${ch.id}/p${m!.ts.replace('.', '')}`);
      expect((await slack.fx.state.conversations.get('RES-2103'))?.permalink).to.equal(content.url);
    });

    it('uploads once when the earlier attempt stopped before its upload reached the channel', async () => {
      incidentAttachment(2103, 4, 'capture.pcap', randomBytes(3000));
      const id = randomUUID();
      await slack.fx.store.ledger.begin(id, 'slack_post_attachment');
      dieBefore('files.completeUploadExternal');
      expect((await uploadAs(id, 1, { attachment_id: 4 })).error?.message).to.equal('worker died before files.completeUploadExternal');

      await slack.fx.store.ledger.begin(id, 'slack_post_attachment');
      const run = await uploadAs(id, 2, { attachment_id: 4 });
      const content = expectOk(run);
      expect(run.progress).to.include('Uploading capture.pcap (3000 bytes) to #inc-2103');
      expect(slack.emu.calls('files.completeUploadExternal')).to.equal(1);
      const ch = slack.emu.channelByName('inc-2103')!;
      expect(slack.emu.messages(ch.id).map((m) => m.files!.map((f) => f.id))).to.deep.equal([[content.file_id]]);
    });

    it('does not take a file of the same name but another size, or posted by someone else, for its own', async () => {
      incidentAttachment(2103, 4, 'capture.pcap', randomBytes(3000));
      const ch = slack.emu.seedChannel({ name: 'inc-2103', members: [slack.emu.botUserId, slack.emu.adminUserId] });
      const other = await slack.fixture();
      // The bot uploads a capture.pcap of another size; the admin one of the same size.
      incidentAttachment(2103, 5, 'capture.pcap', randomBytes(2999), other.platformDir);
      expectOk(await runFunction(other, 'slack_post_attachment', { incident_id: 2103, slack_channel_id: ch.id, attachment_id: 5 }));
      const admin = `xoxp-admin-${randomUUID()}`;
      slack.emu.addToken(admin, { scopes: ['files:write', 'chat:write'], userType: 'user', botUserId: slack.emu.adminUserId });
      const adminFx = await slack.fixture({}, admin);
      incidentAttachment(2103, 6, 'capture.pcap', randomBytes(3000), adminFx.platformDir);
      await adminFx.state.client.uploadFile({ channelId: ch.id, filename: 'capture.pcap', size: 3000, open: async () => fs.createReadStream(path.join(adminFx.platformDir, 'incidents', '2103', 'attachments', '6', 'capture.pcap')) });

      const id = randomUUID();
      await slack.fx.store.ledger.begin(id, 'slack_post_attachment');
      await slack.fx.store.ledger.begin(id, 'slack_post_attachment');
      const run = await uploadAs(id, 2, { attachment_id: 4, slack_channel: undefined, slack_is_channel_private: undefined, slack_channel_id: ch.id });
      const content = expectOk(run);
      expect(run.progress).to.include('Uploading capture.pcap (3000 bytes) to #inc-2103');
      expect(slack.emu.messages(ch.id)).to.have.length(3);
      expect(slack.emu.messages(ch.id).filter((m) => m.files?.[0]?.id === content.file_id)).to.have.length(1);
    });
  });
});
