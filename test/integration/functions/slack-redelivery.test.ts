/**
 * The worker dies (SIGKILL) after Slack accepted an effect but before the invocation
 * finished; the broker redelivers it to a new worker process, which must find the
 * effect instead of repeating it: a created channel is found by name, an upload by its
 * file share in the channel, an archive by the steps it recorded in the ledger.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { SlackEmulator } from '../../support/slack-emulator.js';
import { Caller, deleteDestination, WorkerProcess, writeConfig, type TestConfig } from '../../support/harness.js';
import { poller } from '../../support/until.js';

/** Long enough that the worker is surely killed while it waits on this call. */
const HANG_MS = 60_000;

const until = poller({ timeoutMs: 30_000, everyMs: 50 });

describe('fn_slack: redelivery after the worker died mid-invocation (SIGKILL)', function () {
  this.timeout(120_000);
  // The broker is shared: another test run closing every connection takes the caller's
  // reply queue with it. Rerun then (each try has its own emulator, worker and queue).
  this.retries(2);
  let emu: SlackEmulator;
  let cfg: TestConfig;
  let worker: WorkerProcess | undefined;
  let caller: Caller;

  beforeEach(async () => {
    emu = await SlackEmulator.start();
    cfg = writeConfig({ worker: { max_attempts: 3 }, sections: { fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl } } });
    caller = await Caller.open();
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
  });

  afterEach(async () => {
    await caller?.close();
    await worker?.stop('SIGKILL');
    await deleteDestination(cfg.destination).catch(() => undefined);
    await emu?.close();
  });

  /** Kills the worker, starts a new one on the same config, returns the invocation's final reply. */
  async function killAndRedeliver(id: string): Promise<Record<string, any>> {
    await worker!.stop('SIGKILL');
    emu.clearFaults();
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
    await caller.waitForFinal([id], 60_000);
    const [reply, ...more] = caller.finalReplies(id);
    expect(more).to.have.length(0);
    return reply as Record<string, any>;
  }

  it('slack_post_message: the channel created before the crash is found by name; no second channel, one post', async () => {
    // The worker hangs on its post, right after creating the channel.
    emu.failNext('chat.postMessage', { delayMs: HANG_MS, closeSocket: true });
    const id = caller.publish(cfg.destination, caller.invocation('slack_post_message', {
      incident_id: 4001, slack_channel: 'inc-4001', slack_is_channel_private: false, slack_text: 'after the crash',
    }));
    await until('the channel', () => emu.channelByName('inc-4001') !== undefined && emu.calls('chat.postMessage') === 1);
    const reply = await killAndRedeliver(id);
    expect(reply.message, JSON.stringify(reply)).to.equal('Completed');
    const ch = emu.channelByName('inc-4001')!;
    expect(reply.results.content.channel_id).to.equal(ch.id);
    expect(emu.channels().filter((c) => c.name === 'inc-4001')).to.have.length(1);
    expect(emu.calls('conversations.create')).to.equal(1);
    expect(emu.messages(ch.id).map((m) => m.text)).to.deep.equal(['after the crash']);
    const progress = (caller.replies.get(id) ?? []).map((r) => r.message);
    expect(progress).to.include('Found channel #inc-4001');
    expect(worker!.output).to.contain('Delivery 2 of an invocation that did not finish before');
  });

  it('slack_post_attachment: the file shared before the crash is found; it is not uploaded again', async () => {
    const bytes = randomBytes(50_000);
    const dir = path.join(cfg.dir, 'files', 'incidents', '4002', 'attachments', '3');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'evidence.bin'), bytes);
    // The worker hangs waiting for the share to show, right after Slack completed the upload.
    emu.failNext('files.info', { delayMs: HANG_MS, closeSocket: true });
    const id = caller.publish(cfg.destination, caller.invocation('slack_post_attachment', {
      incident_id: 4002, slack_channel: 'inc-4002', slack_is_channel_private: false, attachment_id: 3,
    }));
    await until('the upload', () => emu.calls('files.completeUploadExternal') === 1 && emu.calls('files.info') === 1);
    const reply = await killAndRedeliver(id);
    expect(reply.message, JSON.stringify(reply)).to.equal('Completed');
    const ch = emu.channelByName('inc-4002')!;
    const [file, ...moreFiles] = emu.files();
    expect(moreFiles).to.have.length(0);
    expect(emu.fileBytes(file!.id)!.equals(bytes)).to.equal(true);
    expect(emu.calls('files.getUploadURLExternal')).to.equal(1);
    const [m, ...more] = emu.messages(ch.id);
    expect(more).to.have.length(0);
    expect(reply.results.content).to.deep.include({ file_id: file!.id, ts: m!.ts, channel_id: ch.id });
    const progress = (caller.replies.get(id) ?? []).map((r) => r.message);
    expect(progress).to.include('Found evidence.bin uploaded to #inc-4002 by an earlier attempt; not uploading it again');
  });

  /** Posts through the worker so that the incident has a channel, and returns its id. */
  async function associate(incident: number, name: string): Promise<string> {
    fs.mkdirSync(path.join(cfg.dir, 'files', 'incidents', String(incident)), { recursive: true });
    const id = caller.publish(cfg.destination, caller.invocation('slack_post_message', {
      incident_id: incident, slack_channel: name, slack_is_channel_private: false, slack_text: 'opened',
    }));
    await caller.waitForFinal([id], 30_000);
    const reply = caller.finalReplies(id)[0] as Record<string, any>;
    expect(reply.message, JSON.stringify(reply)).to.equal('Completed');
    return reply.results.content.channel_id as string;
  }

  const exportsOf = (incident: number) => {
    const dir = path.join(cfg.dir, 'files', 'incidents', String(incident), 'attachments');
    return fs.existsSync(dir) ? fs.readdirSync(dir).flatMap((a) => fs.readdirSync(path.join(dir, a)).map((f) => `${a}/${f}`)) : [];
  };

  it('slack_archive_channel killed between the saved export and the archive: the redelivery saves no second export and succeeds', async () => {
    const channelId = await associate(4003, 'inc-4003');
    // The worker hangs on conversations.archive, right after saving the export.
    emu.failNext('conversations.archive', { delayMs: HANG_MS, closeSocket: true });
    const id = caller.publish(cfg.destination, caller.invocation('slack_archive_channel', { incident_id: 4003 }));
    await until('the export', () => exportsOf(4003).length === 1 && emu.calls('conversations.archive') === 1);
    const reply = await killAndRedeliver(id);
    expect(reply.message, JSON.stringify(reply)).to.equal('Completed');
    expect(exportsOf(4003)).to.deep.equal(['1/slack_msg_export_channel_inc-4003.txt']);
    expect(reply.results.content).to.deep.include({ archived: true, channel_id: channelId, export_attachment_id: 1 });
    expect(emu.channel(channelId)!.isArchived).to.equal(true);
    expect(emu.messages(channelId).filter((m) => m.text === 'This channel has been set to be archived')).to.have.length(1);
    const progress = (caller.replies.get(id) ?? []).map((r) => r.message);
    expect(progress).to.include('slack_msg_export_channel_inc-4003.txt was saved on incident 4003 as attachment 1 by an earlier attempt; not saving it again');
  });

  it('slack_archive_channel killed while Slack archived the channel but had not answered: the redelivery answers success, one export', async () => {
    const channelId = await associate(4004, 'inc-4004');
    // Slack archives the channel; its answer never comes before the worker dies.
    emu.failNext('conversations.archive', { afterEffect: true, delayMs: HANG_MS, closeSocket: true });
    const id = caller.publish(cfg.destination, caller.invocation('slack_archive_channel', { incident_id: 4004 }));
    await until('the archive', () => emu.channel(channelId)!.isArchived && exportsOf(4004).length === 1);
    const reply = await killAndRedeliver(id);
    expect(reply.message, JSON.stringify(reply)).to.equal('Completed');
    expect(reply.results.content).to.deep.include({ archived: true, channel_id: channelId, export_attachment_id: 1 });
    expect(exportsOf(4004)).to.have.length(1);
    expect(emu.calls('conversations.archive')).to.equal(1);
  });
});
