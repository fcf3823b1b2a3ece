/**
 * fn_slack's responder verbs end to end: invocations published on the real RabbitMQ, run by
 * a spawned `worker run`, against the Slack Web API emulator; replies checked as a caller
 * sees them. One incident's life: post, then each verb on its channel.
 */
import { expect } from 'chai';
import { SlackEmulator } from '../../support/slack-emulator.js';
import { writeConfig, type TestConfig } from '../../support/harness.js';
import { invoke, startWorkerRun, stopWorkerRun, succeeded, type Reply, type WorkerRun } from '../../support/invocations.js';

describe('fn_slack responder verbs end to end (RabbitMQ + worker run + Slack emulator)', function () {
  this.timeout(90_000);
  let emu: SlackEmulator;
  let cfg: TestConfig;
  let run: WorkerRun;
  let channelId: string;
  let ts: string;
  let alice: { id: string };

  before(async () => {
    emu = await SlackEmulator.start();
    cfg = writeConfig({
      sections: { fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl, soar_url: 'https://soar.example.com/#incidents/{incident_id}' } },
    });
    run = await startWorkerRun(cfg);
    alice = emu.addUser({ name: 'alice', email: 'alice@example.com', real_name: 'Alice Example' });
    const [, results] = succeeded(
      await invoke(run, 'slack_post_message', { incident_id: 4242, slack_channel: 'inc-4242', slack_is_channel_private: false, slack_text: 'Phishing wave' }),
    );
    channelId = results.content.channel_id;
    ts = results.content.ts;
  });

  after(async () => {
    await stopWorkerRun(run, cfg);
    await emu?.close();
  });

  /** Runs `fn` on incident 4242 and returns [progress, result content]. */
  async function ok(fn: string, inputs: Record<string, unknown>): Promise<[string[], Reply]> {
    const [progress, results] = succeeded(await invoke(run, fn, { incident_id: 4242, ...inputs }));
    expect(results.metrics.package).to.equal('fn_slack');
    return [progress, results.content as Reply];
  }

  it('slack_update_message edits the post', async () => {
    const [progress] = await ok('slack_update_message', { slack_ts: ts, slack_text: 'Phishing wave: contained' });
    expect(progress).to.include(`Updated message ${ts} in #inc-4242`);
    expect(emu.message(channelId, ts)!.text).to.equal('Phishing wave: contained');
  });

  it('slack_set_channel_topic sets topic and purpose', async () => {
    await ok('slack_set_channel_topic', { slack_topic: 'Contained', slack_purpose: 'Incident 4242' });
    expect(emu.channel(channelId)!.topic.value).to.equal('Contained');
    expect(emu.channel(channelId)!.purpose.value).to.equal('Incident 4242');
  });

  it('slack_invite_users and slack_remove_users', async () => {
    const [, invited] = await ok('slack_invite_users', { slack_participant_emails: 'alice@example.com' });
    expect(invited.invited).to.deep.equal([alice.id]);
    expect(emu.members(channelId)).to.include(alice.id);
    const [, removed] = await ok('slack_remove_users', { slack_participant_emails: 'alice@example.com' });
    expect(removed.removed).to.deep.equal([alice.id]);
    expect(emu.members(channelId)).to.not.include(alice.id);
  });

  it('slack_pin_message, slack_add_reaction and slack_add_bookmark', async () => {
    await ok('slack_pin_message', { slack_ts: ts });
    expect(emu.pins(channelId)).to.deep.equal([ts]);
    await ok('slack_add_reaction', { slack_ts: ts, slack_reaction: 'white_check_mark' });
    expect(emu.message(channelId, ts)!.reactions!.map((r) => r.name)).to.deep.equal(['white_check_mark']);
    const [, bookmark] = await ok('slack_add_bookmark', { slack_bookmark_title: 'In SOAR' });
    expect(bookmark.link).to.equal('https://soar.example.com/#incidents/4242');
    expect(emu.bookmarks(channelId)).to.have.length(1);
  });

  it('slack_rename_channel renames, and the next function finds the channel by the association', async () => {
    const [, content] = await ok('slack_rename_channel', { slack_new_name: 'inc-4242-phishing' });
    expect(content).to.deep.include({ channel: 'inc-4242-phishing', previous_name: 'inc-4242' });
    const [, read] = await ok('slack_get_conversation', { slack_limit: 10 });
    expect(read.channel).to.equal('inc-4242-phishing');
    expect(read.messages.map((m: Reply) => m.text)).to.deep.equal(['Phishing wave: contained']);
    expect(read.messages[0].author.id).to.equal(emu.botUserId);
  });

  it('slack_send_direct_message and slack_lookup_user', async () => {
    const [, dm] = succeeded(await invoke(run, 'slack_send_direct_message', { slack_user_emails: 'alice@example.com', slack_text: 'Your turn' }));
    expect(dm.content.messages).to.have.length(1);
    expect(emu.messages(emu.imWith(alice.id)!).map((m) => m.text)).to.deep.equal(['Your turn']);
    const [, user] = succeeded(await invoke(run, 'slack_lookup_user', { slack_user_email: 'alice@example.com' }));
    expect(user.content).to.deep.include({ id: alice.id, name: 'alice', real_name: 'Alice Example', email: 'alice@example.com' });
  });

  it('answers what Slack refuses with an error reply and a stable code', async () => {
    const replies = await invoke(run, 'slack_pin_message', { incident_id: 4242, slack_ts: '1000000000.000001' });
    const final = replies[replies.length - 1]!;
    expect(final.message_type).to.equal(1);
    expect(final.error).to.deep.include({ code: 'slack_message_not_found', retryable: false });
    expect(final.message).to.contain('slack_ts');
  });
});
