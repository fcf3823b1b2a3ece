/**
 * slack_archive_channel against the Slack Web API emulator: notice, export (with threads
 * and files) saved on the incident or task in the local platform, archive, association.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { EmulatedUser } from '../../../support/slack-emulator.js';
import { runFunction, type SlackFixture, expectOk, expectFailureMessage } from '../../../support/function-context.js';
import { useSlackFixture } from '../../../support/slack-hooks.js';

const NOTICE = 'This channel has been set to be archived';
const POSTED_ON = / POSTED ON \d{4}-\d\d-\d\d \d\d:\d\d:\d\d:$/;

describe('slack_archive_channel', function () {
  this.timeout(30_000);
  const slack = useSlackFixture();
  let alice: EmulatedUser;
  let bob: EmulatedUser;
  const tmpFiles: string[] = [];

  beforeEach(async () => {
    alice = slack.emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
    bob = slack.emu.addUser({ name: 'bob', real_name: 'Bob Responder', email: 'bob@example.com' });
  });

  afterEach(() => {
    for (const f of tmpFiles.splice(0)) fs.rmSync(f, { force: true });
  });

  /** Creates the incident (and task) folder, and a channel associated with it by a first post. */
  async function channelFor(on: SlackFixture, incident: number, name: string, task?: number): Promise<string> {
    const dir = path.join(on.platformDir, 'incidents', String(incident), ...(task ? ['tasks', String(task)] : []));
    fs.mkdirSync(dir, { recursive: true });
    const run = await runFunction(on, 'slack_post_message', {
      incident_id: incident,
      ...(task ? { task_id: task } : {}),
      slack_channel: name,
      slack_is_channel_private: true,
      slack_text: 'Incident opened',
    });
    return expectOk(run).channel_id as string;
  }

  const archive = (inputs: Record<string, unknown>, on: SlackFixture = slack.fx) => runFunction(on, 'slack_archive_channel', inputs);

  function attachmentsOf(on: SlackFixture, ...segments: string[]): string[] {
    const dir = path.join(on.platformDir, 'incidents', ...segments, 'attachments');
    if (!fs.existsSync(dir)) return [];
    return fs.readdirSync(dir).flatMap((id) => fs.readdirSync(path.join(dir, id)).map((f) => `${id}/${f}`));
  }

  function templateFile(text: string): string {
    const file = path.join(os.tmpdir(), `export-template-${process.pid}-${Date.now()}-${tmpFiles.length}.njk`);
    fs.writeFileSync(file, text);
    tmpFiles.push(file);
    return file;
  }

  it('a redelivery after the notice was posted does not post it again', async () => {
    const channelId = await channelFor(slack.fx, 2110, 'inc-2110');
    slack.emu.failNext('conversations.archive', { status: 500 });
    const first = await runFunction(slack.fx, 'slack_archive_channel', { incident_id: 2110 }, { invocationId: 'inv-archive-1' });
    expect(first.error?.code).to.equal('slack_unavailable');
    const second = await runFunction(slack.fx, 'slack_archive_channel', { incident_id: 2110 }, { invocationId: 'inv-archive-1', attempt: 2 });
    expect(expectOk(second).archived).to.equal(true);
    expect(slack.emu.messages(channelId).filter((m) => m.text === NOTICE)).to.have.length(1);
    expect(slack.emu.channel(channelId)!.isArchived).to.equal(true);
  });

  it('posts the notice, exports the history with threads and files to the incident, archives, marks the association', async () => {
    const channelId = await channelFor(slack.fx, 2103, 'inc-2103');
    slack.emu.addMembers(channelId, [alice.id, bob.id]);
    const seeded = slack.emu.seedMessages(channelId, 5, { threads: 2, repliesPerThread: 2, withFiles: true, users: [alice.id, bob.id] });
    const fileId = (seeded[0]!.files![0] as { id: string }).id;

    const run = await archive({ incident_id: 2103 });
    const content = expectOk(run);

    // Slack side
    expect(slack.emu.channel(channelId)!.isArchived).to.equal(true);
    const top = slack.emu.messages(channelId);
    expect(top[top.length - 1]!.text).to.equal(NOTICE);
    expect(top[top.length - 1]!.user).to.equal(slack.emu.botUserId);

    // The export, on the incident
    expect(attachmentsOf(slack.fx, '2103')).to.deep.equal(['1/slack_msg_export_channel_inc-2103.txt']);
    const file = path.join(slack.fx.platformDir, 'incidents', '2103', 'attachments', '1', 'slack_msg_export_channel_inc-2103.txt');
    expect(content.export_location).to.equal(fs.realpathSync(file));
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    expect(lines[0]).to.match(
      new RegExp(`^Slack channel #inc-2103 \\(${channelId}\\) conversation history, exported \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC$`),
    );
    expect(lines[1]).to.equal('');
    const body = lines.slice(2).join('\n');
    const blocks = body.split('\n\n').filter(Boolean);
    expect(blocks).to.have.length(7); // opening post, 5 seeded, the notice
    expect(blocks[0]).to.match(/^1 - soar-bot POSTED ON \d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\nIncident opened$/);
    const b2 = blocks[1]!.split('\n');
    expect(b2[0]).to.match(/^2 - Alice Analyst/).and.match(POSTED_ON);
    expect(b2[1]).to.equal('seed message 0');
    expect(b2[2]).to.equal(`\tFile: seed-0.txt (https://emulated.slack.com/files/${alice.id}/${fileId}/seed-0.txt)`);
    expect(b2[3]).to.match(/^\tBob Responder POSTED A REPLY ON \d{4}-\d\d-\d\d \d\d:\d\d:\d\d:$/);
    expect(b2[4]).to.equal('\treply 0 to seed message 0');
    expect(b2[5]).to.match(/^\tAlice Analyst POSTED A REPLY ON /);
    expect(b2[6]).to.equal('\treply 1 to seed message 0');
    expect(b2).to.have.length(7);
    expect(blocks[2]).to.match(/^3 - Bob Responder POSTED ON [^\n]+:\nseed message 1$/);
    expect(blocks[3]!.split('\n')[0]).to.match(/^4 - Alice Analyst POSTED ON /);
    expect(blocks[3]).to.contain('\n\treply 0 to seed message 2');
    expect(blocks[6]).to.match(new RegExp(`^7 - soar-bot POSTED ON [^\\n]+:\\n${NOTICE}$`));

    // Result and association
    expect(content).to.deep.include({
      channel: 'inc-2103',
      channel_id: channelId,
      archived: true,
      export_file: 'slack_msg_export_channel_inc-2103.txt',
      export_attachment_id: 1,
      messages: 7,
      replies: 4,
      threads: 2,
      files: 1,
    });
    expect(content.bytes).to.equal(fs.statSync(file).size);
    const row = await slack.fx.state.conversations.get('RES-2103');
    expect(row!.archived).to.equal(true);
    expect(row!.archivedAt).to.be.instanceOf(Date);

    expect(run.progress).to.include.members([
      'Found channel #inc-2103',
      `Posted "${NOTICE}" to #inc-2103`,
      'Exported 7 messages and 4 replies (' + content.bytes + ' bytes)',
      'Saved slack_msg_export_channel_inc-2103.txt on incident 2103',
      'Archived #inc-2103',
    ]);
  });

  it("saves a task's export on the task", async () => {
    const channelId = await channelFor(slack.fx, 2103, 'task-7', 7);
    slack.emu.seedMessages(channelId, 3);
    const content = expectOk(await archive({ incident_id: 2103, task_id: 7 }));
    expect(attachmentsOf(slack.fx, '2103', 'tasks', '7')).to.deep.equal(['1/slack_msg_export_channel_task-7.txt']);
    expect(attachmentsOf(slack.fx, '2103')).to.deep.equal([]);
    expect(content.messages).to.equal(5);
    expect(slack.emu.channel(channelId)!.isArchived).to.equal(true);
    expect((await slack.fx.state.conversations.get('RES-2103-7'))!.archived).to.equal(true);
  });

  it('archives a channel given by slack_channel_id without an association only with slack_archive_unassociated', async () => {
    fs.mkdirSync(path.join(slack.fx.platformDir, 'incidents', '55'), { recursive: true });
    const ch = slack.emu.seedChannel({ name: 'loose-channel' });
    slack.emu.seedMessages(ch.id, 2);
    const content = expectOk(await archive({ incident_id: 55, slack_channel_id: ch.id, slack_archive_unassociated: true }));
    expect(content.channel).to.equal('loose-channel');
    expect(slack.emu.channel(ch.id)!.isArchived).to.equal(true);
    expect(attachmentsOf(slack.fx, '55')).to.deep.equal(['1/slack_msg_export_channel_loose-channel.txt']);
  });

  it('refuses a channel given by slack_channel_id that the incident was never associated with, before any Slack call', async () => {
    fs.mkdirSync(path.join(slack.fx.platformDir, 'incidents', '56'), { recursive: true });
    const ch = slack.emu.seedChannel({ name: 'someone-elses' });
    const other = await channelFor(slack.fx, 57, 'inc-57');
    slack.emu.resetCalls();
    for (const id of [ch.id, other]) {
      const message = expectFailureMessage(await archive({ incident_id: 56, slack_channel_id: id }), 'slack_channel_not_associated');
      expect(message).to.equal(
        `Slack channel ${id} is not associated with incident 56: to export it to incident 56 and archive it anyway, set slack_archive_unassociated to true`,
      );
    }
    expect(slack.emu.calls()).to.equal(0);
    expect(slack.emu.channel(ch.id)!.isArchived).to.equal(false);
    expect(attachmentsOf(slack.fx, '56')).to.deep.equal([]);
  });

  it('archives a channel given by slack_channel_id that a task of the incident is associated with', async () => {
    const taskChannel = await channelFor(slack.fx, 58, 'inc-58-task', 3);
    const content = expectOk(await archive({ incident_id: 58, slack_channel_id: taskChannel }));
    expect(content.channel_id).to.equal(taskChannel);
    expect((await slack.fx.state.conversations.get('RES-58-3'))!.archived).to.equal(true);
  });

  it('a redelivery after the export was saved does not save it again, and answers the same success', async () => {
    const channelId = await channelFor(slack.fx, 2120, 'inc-2120');
    slack.emu.seedMessages(channelId, 3);
    slack.emu.failNext('conversations.archive', { status: 500 });
    const first = await runFunction(slack.fx, 'slack_archive_channel', { incident_id: 2120 }, { invocationId: 'inv-2120' });
    expect(first.error?.code).to.equal('slack_unavailable');
    expect(attachmentsOf(slack.fx, '2120')).to.have.length(1);
    const second = await runFunction(slack.fx, 'slack_archive_channel', { incident_id: 2120 }, { invocationId: 'inv-2120', attempt: 2 });
    const content = expectOk(second);
    expect(attachmentsOf(slack.fx, '2120')).to.deep.equal(['1/slack_msg_export_channel_inc-2120.txt']);
    expect(content).to.deep.include({ archived: true, channel_id: channelId, export_attachment_id: 1, messages: 5 });
    expect(second.progress).to.include('slack_msg_export_channel_inc-2120.txt was saved on incident 2120 as attachment 1 by an earlier attempt; not saving it again');
    expect(slack.emu.messages(channelId).filter((m) => m.text === NOTICE)).to.have.length(1);
    expect(slack.emu.channel(channelId)!.isArchived).to.equal(true);
    expect((await slack.fx.state.conversations.get('RES-2120'))!.archived).to.equal(true);
  });

  it("a late conversations.archive answer: the retry finds the channel archived by its own attempt and answers success, one export", async () => {
    const slow = await slack.fixture({ timeout: '1' });
    const channelId = await channelFor(slow, 2121, 'inc-2121');
    // Slack archives the channel, but answers after the client's 1 s timeout.
    slack.emu.failNext('conversations.archive', { afterEffect: true, delayMs: 2500 });
    const first = await runFunction(slow, 'slack_archive_channel', { incident_id: 2121 }, { invocationId: 'inv-2121' });
    expect(first.error?.code, first.error?.message).to.equal('slack_unavailable');
    expect(first.error?.retryable).to.equal(true);
    expect(slack.emu.channel(channelId)!.isArchived).to.equal(true);
    const second = await runFunction(slow, 'slack_archive_channel', { incident_id: 2121 }, { invocationId: 'inv-2121', attempt: 2 });
    const content = expectOk(second);
    expect(content).to.deep.include({ archived: true, channel_id: channelId, export_attachment_id: 1 });
    expect(attachmentsOf(slow, '2121')).to.deep.equal(['1/slack_msg_export_channel_inc-2121.txt']);
    expect(slack.emu.calls('conversations.archive')).to.equal(1);
    expect((await slow.state.conversations.get('RES-2121'))!.archived).to.equal(true);
  });

  it('a redelivery after the channel was archived answers from the recorded steps without calling Slack', async () => {
    const channelId = await channelFor(slack.fx, 2122, 'inc-2122');
    const first = expectOk(await runFunction(slack.fx, 'slack_archive_channel', { incident_id: 2122 }, { invocationId: 'inv-2122' }));
    slack.emu.resetCalls();
    // The worker died after the archive, before the reply was recorded: same invocation again.
    const again = expectOk(await runFunction(slack.fx, 'slack_archive_channel', { incident_id: 2122 }, { invocationId: 'inv-2122', attempt: 2 }));
    expect(again).to.deep.equal(first);
    expect(slack.emu.calls()).to.equal(0);
    expect(attachmentsOf(slack.fx, '2122')).to.have.length(1);
    expect(slack.emu.channel(channelId)!.isArchived).to.equal(true);
  });

  it('refuses an already archived channel clearly', async () => {
    const channelId = await channelFor(slack.fx, 2103, 'inc-2103');
    expectOk(await archive({ incident_id: 2103 }));
    const posts = slack.emu.calls('chat.postMessage');
    const message = expectFailureMessage(await archive({ incident_id: 2103 }), 'slack_channel_already_archived');
    expect(message).to.equal('Slack channel #inc-2103 is already archived; nothing to do');
    expect(slack.emu.calls('conversations.archive')).to.equal(1);
    expect(slack.emu.calls('chat.postMessage')).to.equal(posts);
    expect(attachmentsOf(slack.fx, '2103')).to.have.length(1);
    expect(slack.emu.channel(channelId)!.isArchived).to.equal(true);
  });

  it('marks the association archived when the channel was archived in Slack directly', async () => {
    const channelId = await channelFor(slack.fx, 2103, 'inc-2103');
    slack.emu.channel(channelId)!.isArchived = true;
    expectFailureMessage(await archive({ incident_id: 2103 }), 'slack_channel_already_archived');
    expect((await slack.fx.state.conversations.get('RES-2103'))!.archived).to.equal(true);
  });

  it('needs an association or slack_channel_id, and says so before any Slack call', async () => {
    const message = expectFailureMessage(await archive({ incident_id: 404 }), 'slack_no_channel');
    expect(message).to.equal('No Slack channel is associated with incident 404: give slack_channel_id to archive a channel');
    expect(slack.emu.calls()).to.equal(0);
  });

  it('after archiving, a post without a channel is refused, and a new channel takes over the association', async () => {
    await channelFor(slack.fx, 2103, 'inc-2103');
    expectOk(await archive({ incident_id: 2103 }));
    const refused = await runFunction(slack.fx, 'slack_post_message', { incident_id: 2103, slack_text: 'more' });
    expect(refused.error?.code).to.equal('slack_channel_archived');
    expect(refused.error?.message).to.contain('#inc-2103 associated with incident 2103 was archived');
    const next = await runFunction(slack.fx, 'slack_post_message', {
      incident_id: 2103,
      slack_text: 'more',
      slack_channel: 'inc-2103-b',
      slack_is_channel_private: false,
    });
    const content = expectOk(next);
    const row = await slack.fx.state.conversations.get('RES-2103');
    expect(row).to.include({ channel: 'inc-2103-b', channelId: content.channel_id, archived: false, channelType: 'Public' });
  });

  it('uses [fn_slack] template_file for the export format', async () => {
    const tpl = templateFile('{{ message.number }}|{{ message.user }}|{{ message.text }}|replies={{ message.replies | length }}|{{ channel.name }}\n');
    const custom = await slack.fixture({ template_file: tpl });
    const channelId = await channelFor(custom, 9, 'inc-9');
    slack.emu.seedMessages(channelId, 2, { threads: 1, repliesPerThread: 3, users: [alice.id] });
    expectOk(await archive({ incident_id: 9 }, custom));
    const text = fs.readFileSync(path.join(custom.platformDir, 'incidents', '9', 'attachments', '1', 'slack_msg_export_channel_inc-9.txt'), 'utf8');
    const lines = text.split('\n');
    expect(lines[0]).to.match(/^Slack channel #inc-9 \(C[A-Z0-9]+\) conversation history, exported /);
    expect(lines.slice(2)).to.deep.equal([
      '1|soar-bot|Incident opened|replies=0|inc-9',
      '2|Alice Analyst|seed message 0|replies=3|inc-9',
      '3|Alice Analyst|seed message 1|replies=0|inc-9',
      `4|soar-bot|${NOTICE}|replies=0|inc-9`,
      '',
    ]);
    expect(text).to.not.contain('POSTED ON');
  });

  it('refuses a bad template clearly and does not archive the channel', async () => {
    const tpl = templateFile('{% for r in %}{{ r }}');
    const custom = await slack.fixture({ template_file: tpl });
    const channelId = await channelFor(custom, 9, 'inc-9');
    const posts = slack.emu.calls('chat.postMessage');
    const message = expectFailureMessage(await archive({ incident_id: 9 }, custom), 'export_template_invalid');
    expect(message).to.contain('Invalid export template').and.contain(tpl);
    expect(slack.emu.channel(channelId)!.isArchived).to.equal(false);
    expect(slack.emu.calls('conversations.archive')).to.equal(0);
    expect(slack.emu.calls('chat.postMessage'), 'no archive notice for a channel that is not archived').to.equal(posts);
    expect((await custom.state.conversations.get('RES-9'))!.archived).to.equal(false);
    expect(attachmentsOf(custom, '9')).to.deep.equal([]);
  });

  it('refuses an unreadable template_file clearly and does not archive the channel', async () => {
    const custom = await slack.fixture({ template_file: path.join(os.tmpdir(), 'no-such-template.njk') });
    const channelId = await channelFor(custom, 9, 'inc-9');
    const posts = slack.emu.calls('chat.postMessage');
    const message = expectFailureMessage(await archive({ incident_id: 9 }, custom), 'export_template_unreadable');
    expect(message).to.contain('no-such-template.njk');
    expect(slack.emu.channel(channelId)!.isArchived).to.equal(false);
    expect(slack.emu.calls('chat.postMessage')).to.equal(posts);
  });

  it('exports a 5,000-message channel with threads completely, reporting progress', async function () {
    this.timeout(60_000);
    const channelId = await channelFor(slack.fx, 5000, 'inc-big');
    slack.emu.seedMessages(channelId, 5000, { threads: 100, repliesPerThread: 3, users: [alice.id, bob.id] });
    const run = await archive({ incident_id: 5000 });
    const content = expectOk(run);
    expect(content).to.deep.include({ messages: 5002, replies: 300, threads: 100 });
    const text = fs.readFileSync(content.export_location as string, 'utf8');
    const lines = text.split('\n');
    const numbered = lines.filter((l) => /^\d+ - .+ POSTED ON /.test(l));
    expect(numbered).to.have.length(5002);
    numbered.forEach((l, i) => {
      if (!l.startsWith(`${i + 1} - `)) expect.fail(`line ${i + 1} is numbered wrongly: ${l}`);
    });
    expect(lines.filter((l) => /^\t.+ POSTED A REPLY ON /.test(l))).to.have.length(300);
    const seeded = lines.filter((l) => /^seed message \d+$/.test(l)).map((l) => Number(l.slice('seed message '.length)));
    expect(seeded).to.have.length(5000);
    expect(seeded.every((n, i) => n === i)).to.equal(true);
    expect(numbered[5001]).to.match(/^5002 - soar-bot POSTED ON /);
    expect(run.progress).to.include('Exported 5002 messages and 300 replies (' + content.bytes + ' bytes)');
    expect(run.progress.filter((p) => /^Exported \d+ messages and \d+ replies so far$/.test(p)).length).to.be.at.least(4);
    expect(slack.emu.channel(channelId)!.isArchived).to.equal(true);
  });
});
