/**
 * The emulator's modals and slash commands, driven by Slack's own clients: views.open
 * honours a trigger for 3 s and once, views.update checks the hash, a submission carries
 * the inputs in Slack's state shape, a slash command carries Slack's fields and a
 * response_url that answers the person alone.
 */
import { expect } from 'chai';
import { SocketModeClient } from '@slack/socket-mode';
import { WebClient } from '@slack/web-api';
import type { EmulatedUser } from '../../support/slack-emulator.js';
import { TRIGGER_TTL_MS } from '../../support/slack-views.js';
import { useSlackEmulator } from '../../support/slack-hooks.js';

const MODAL = {
  type: 'modal',
  callback_id: 'triage:close',
  private_metadata: '{"incident_id":2103}',
  title: { type: 'plain_text', text: 'Close incident' },
  submit: { type: 'plain_text', text: 'Close' },
  blocks: [
    {
      type: 'input',
      block_id: 'resolution',
      label: { type: 'plain_text', text: 'Resolution' },
      element: {
        type: 'static_select',
        action_id: 'value',
        options: ['Resolved', 'Duplicate'].map((r) => ({ text: { type: 'plain_text', text: r }, value: r })),
      },
    },
    {
      type: 'input',
      block_id: 'summary',
      label: { type: 'plain_text', text: 'Summary' },
      element: { type: 'plain_text_input', action_id: 'value', max_length: 20 },
    },
  ],
};

describe('Slack emulator: modals and slash commands', function () {
  this.timeout(20_000);
  const slack = useSlackEmulator();
  let web: WebClient;
  let alice: EmulatedUser;
  let channel: string;

  beforeEach(async () => {
    web = new WebClient(slack.emu.botToken, { slackApiUrl: slack.emu.apiUrl, retryConfig: { retries: 0 } });
    alice = slack.emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
    channel = (await web.conversations.create({ name: 'inc-2103' })).channel!.id!;
    await web.conversations.invite({ channel, users: alice.id });
  });

  const error = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (err) {
      return String((err as { data?: { error?: string } }).data?.error);
    }
    throw new Error('expected a Slack error');
  };

  it('opens a modal once per fresh trigger: expired, reused and made-up triggers are refused', async function () {
    const trigger = `${Date.now()}.abcdef`;
    const opened = await web.views.open({ trigger_id: trigger, view: MODAL as never });
    expect(opened.view).to.include({ callback_id: 'triage:close', private_metadata: '{"incident_id":2103}' });
    expect(opened.view!.id).to.match(/^V/);
    expect(await error(web.views.open({ trigger_id: trigger, view: MODAL as never }))).to.equal('exchanged_trigger_id');
    expect(await error(web.views.open({ trigger_id: `${Date.now() - TRIGGER_TTL_MS - 100}.abcdef`, view: MODAL as never }))).to.equal(
      'expired_trigger_id',
    );
    expect(await error(web.views.open({ trigger_id: 'nonsense', view: MODAL as never }))).to.equal('invalid_trigger_id');
    expect(
      await error(
        web.views.open({
          trigger_id: `${Date.now()}.abc123`,
          view: { ...MODAL, title: { type: 'plain_text', text: 'x'.repeat(25) } } as never,
        }),
      ),
    ).to.equal('invalid_arguments');
  });

  it('updates a view by id, refusing a stale hash and an unknown id', async function () {
    const opened = await web.views.open({ trigger_id: `${Date.now()}.aa`, view: MODAL as never });
    const updated = await web.views.update({
      view_id: opened.view!.id!,
      hash: opened.view!.hash!,
      view: { ...MODAL, blocks: [] } as never,
    });
    expect(updated.view!.hash).to.not.equal(opened.view!.hash);
    expect(await error(web.views.update({ view_id: opened.view!.id!, hash: opened.view!.hash!, view: MODAL as never }))).to.equal(
      'hash_conflict',
    );
    expect(await error(web.views.update({ view_id: 'V999', view: MODAL as never }))).to.equal('not_found');
  });

  it('delivers a submission with the inputs in state.values, refusing an empty required input', async function () {
    const client = new SocketModeClient({ appToken: slack.emu.appToken, clientOptions: { slackApiUrl: slack.emu.apiUrl }, logLevel: 'error' as never });
    const got: Record<string, any>[] = [];
    client.on('interactive', async (e: { ack: () => Promise<void>; body: Record<string, unknown> }) => {
      got.push(e.body);
      await e.ack();
    });
    await client.start();
    try {
      const opened = await web.views.open({ trigger_id: `${Date.now()}.bb`, view: MODAL as never });
      expect(() => slack.emu.submitView(alice.id, opened.view!.id!, { resolution: 'Duplicate' })).to.throw('input summary is required');
      expect(() => slack.emu.submitView(alice.id, opened.view!.id!, { resolution: 'Nope', summary: 'x' })).to.throw('no option Nope');
      slack.emu.submitView(alice.id, opened.view!.id!, { resolution: 'Duplicate', summary: 'dup of 2099' });
      const deadline = Date.now() + 5000;
      while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(got).to.have.length(1);
      expect(got[0]!.type).to.equal('view_submission');
      expect(got[0]!.user.id).to.equal(alice.id);
      expect(got[0]!.view.state.values).to.deep.equal({
        resolution: {
          value: { type: 'static_select', selected_option: { text: { type: 'plain_text', text: 'Duplicate' }, value: 'Duplicate' } },
        },
        summary: { value: { type: 'plain_text_input', value: 'dup of 2099' } },
      });
      expect(got[0]!.view).to.include({ callback_id: 'triage:close', id: opened.view!.id });
    } finally {
      await client.disconnect();
    }
  });

  it("builds a slash command's payload whose response_url answers the person alone, and whose trigger opens a modal", async function () {
    const payload = slack.emu.slashCommand(alice.id, channel, 'incident 2103');
    expect(payload).to.include({
      command: '/soar',
      text: 'incident 2103',
      user_id: alice.id,
      channel_id: channel,
      channel_name: 'inc-2103',
      user_name: 'alice',
    });
    const res = await fetch(String(payload.response_url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'Incident 2103: Phishing' }),
    });
    expect(((await res.json()) as { ok: boolean }).ok).to.equal(true);
    expect(slack.emu.ephemerals(alice.id).map((m) => [m.text, m.via])).to.deep.equal([['Incident 2103: Phishing', 'response_url']]);
    const opened = await web.views.open({ trigger_id: String(payload.trigger_id), view: MODAL as never });
    expect(slack.emu.views.views.get(opened.view!.id!)!.userId).to.equal(alice.id);
  });
});
