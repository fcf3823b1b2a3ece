import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { SlackEmulator } from '../../support/slack-emulator.js';
import { seedPlatform, seedWorkspace, type SeededWorkspace } from '../../../sandbox/seed.js';
import { ViewServer } from '../../../sandbox/view-server.js';

/** Posts through Slack's Web API on the emulator, as a person with a user token. */
async function post(emu: SlackEmulator, token: string, params: Record<string, string>): Promise<string> {
  const res = await fetch(`${emu.apiUrl}chat.postMessage`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
    body: new URLSearchParams(params),
  });
  const body = (await res.json()) as { ok: boolean; ts: string; error?: string };
  if (!body.ok) throw new Error(String(body.error));
  return body.ts;
}

describe('sandbox view of what landed', () => {
  let emu: SlackEmulator;
  let view: ViewServer;
  let workspace: SeededWorkspace;
  let root: string;
  let platformDir: string;

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-view-'));
    platformDir = path.join(root, 'files');
    seedPlatform(platformDir);
    fs.writeFileSync(path.join(root, 'secret.txt'), 'outside the platform dir');
    fs.symlinkSync(path.join(root, 'secret.txt'), path.join(platformDir, 'incidents', 'link.txt'));
    emu = await SlackEmulator.start();
    workspace = await seedWorkspace(emu);
    view = await ViewServer.start({ emulator: emu, platformDir });
  });

  after(async () => {
    await view?.close();
    await emu?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('lists the seeded channels with member names, and their messages with thread replies under the parent', async () => {
    const [alice, bob] = workspace.people;
    const parent = await post(emu, alice!.token, { channel: 'soc-alerts', text: 'Who is on call?' });
    await post(emu, bob!.token, { channel: 'soc-alerts', text: 'I am', thread_ts: parent });

    const channels = (await (await fetch(`${view.url}channels.json`)).json()) as { id: string; name: string; members: string[] }[];
    const alerts = channels.find((c) => c.name === 'soc-alerts')!;
    expect(alerts.members).to.include.members(['Alice Analyst', 'Bob Responder']);
    const messages = (await (await fetch(`${view.url}channels/${alerts.id}/messages.json`)).json()) as {
      ts: string;
      author: string;
      replies?: { author: string; text: string }[];
    }[];
    const thread = messages.find((m) => m.ts === parent)!;
    expect(thread.author).to.equal('Alice Analyst');
    expect(thread.replies!.map((r) => ({ author: r.author, text: r.text }))).to.deep.equal([{ author: 'Bob Responder', text: 'I am' }]);
    // Replies are not top-level messages.
    expect(messages.some((m) => (m as { text?: string }).text === 'I am')).to.equal(false);
  });

  it('escapes what people typed in the page', async () => {
    await post(emu, workspace.people[0]!.token, { channel: 'soc-alerts', text: '<script>alert(1)</script>' });
    const page = await (await fetch(view.url)).text();
    expect(page).to.not.contain('<script>');
    expect(page).to.contain('&#60;script&#62;alert(1)');
  });

  it('serves platform files, but nothing outside the platform dir (no .., no symlink out)', async () => {
    const ok = await fetch(`${view.url}platform/incidents/2103/attachments/1/reported-email-headers.txt`);
    expect(ok.status).to.equal(200);
    expect(await ok.text()).to.contain('Subject: Invoice overdue');
    for (const p of ['platform/incidents/link.txt', 'platform/..%2Fsecret.txt', 'platform/incidents/..%2F..%2Fsecret.txt']) {
      const res = await fetch(`${view.url}${p}`);
      expect(res.status, p).to.equal(404);
      expect(await res.text(), p).to.not.contain('outside the platform dir');
    }
    const listing = (await (await fetch(`${view.url}platform.json`)).json()) as { files: { path: string }[] };
    expect(listing.files.map((f) => f.path)).to.include('incidents/2103/artifacts/1/proxy.log');
  });

  it('takes no POST but a click, a submission or a closed modal, and none from a page of another origin', async () => {
    const res = await fetch(`${view.url}channels.json`, { method: 'POST', body: 'x' });
    expect(res.status).to.equal(404);
    expect(await res.text()).to.contain('/click, /submit or /dismiss');
    const before = emu.socketMode.delivered().length;
    const foreign = await fetch(`${view.url}click`, {
      method: 'POST',
      headers: { Origin: 'https://evil.example' },
      body: new URLSearchParams({ as: 'alice', channel: 'soc-alerts', button: 'Approve' }),
    });
    expect(foreign.status).to.equal(403);
    expect(emu.socketMode.delivered().length).to.equal(before);
  });

  it("clicks a message's button as the person named, through Slack's block_actions delivery, and says what to fix in a bad click", async () => {
    const channel = emu.channelByName('soc-alerts')!;
    const blocks = [
      { type: 'section', text: { type: 'mrkdwn', text: 'Block it?' } },
      {
        type: 'actions',
        block_id: 'q1',
        elements: [
          { type: 'button', action_id: 'yes', text: { type: 'plain_text', text: 'Approve' }, value: '0' },
          {
            type: 'static_select',
            action_id: 'sev',
            placeholder: { type: 'plain_text', text: 'Severity' },
            options: ['Low', 'High'].map((v) => ({ text: { type: 'plain_text', text: v }, value: v })),
            initial_option: { text: { type: 'plain_text', text: 'High' }, value: 'High' },
          },
        ],
      },
    ];
    const ts = await post(emu, emu.botToken, { channel: channel.id, text: 'Block it?', blocks: JSON.stringify(blocks) });

    const listed = (await (await fetch(`${view.url}channels/${channel.id}/messages.json`)).json()) as { ts: string; actions?: unknown[] }[];
    expect(listed.find((m) => m.ts === ts)!.actions).to.deep.equal([
      { type: 'button', action_id: 'yes', label: 'Approve' },
      {
        type: 'static_select',
        action_id: 'sev',
        label: 'Severity',
        options: [
          { label: 'Low', value: 'Low' },
          { label: 'High', value: 'High' },
        ],
        selected: 'High',
      },
    ]);
    const page = await (await fetch(`${view.url}?as=bob`)).text();
    expect(page).to.contain('<form method="post" action="/click">').and.contain('<button>Approve</button>').and.contain('<b>bob</b>');
    expect(page, "the menu shows the card's current value").to.contain('<option value="High" selected>High</option>');

    const before = emu.socketMode.delivered().length;
    const res = await fetch(`${view.url}click`, {
      method: 'POST',
      body: new URLSearchParams({ as: 'bob', channel: 'soc-alerts', button: 'Approve' }),
    });
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ ok: true, click: { user: 'bob', channel: channel.id, ts, action_id: 'yes' } });
    const select = await fetch(`${view.url}click`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ as: 'carol@example.com', channel: channel.id, ts, action_id: 'sev', option: 'High' }),
    });
    expect(select.status).to.equal(200);
    const sent = emu.socketMode.delivered().slice(before);
    expect(sent.map((env) => env.type)).to.deep.equal(['interactive', 'interactive']);
    const [first, second] = sent.map((env) => env.payload as { type: string; user: { name: string }; actions: Record<string, unknown>[] });
    expect(first!.type).to.equal('block_actions');
    expect(first!.user.name).to.equal('bob');
    expect(first!.actions[0]).to.include({ action_id: 'yes', value: '0', block_id: 'q1' });
    expect(second!.user.name).to.equal('carol');
    expect(second!.actions[0]!.selected_option).to.deep.include({ value: 'High' });

    for (const [fields, says] of [
      [{ as: 'mallory', channel: 'soc-alerts', button: 'Approve' }, 'as=mallory: give who acts, one of alice, bob, carol'],
      [{ as: 'bob', channel: 'nowhere', button: 'Approve' }, 'channel=nowhere: no such channel'],
      [{ as: 'bob', channel: 'soc-alerts' }, 'give the element to click: button=<its label> or action_id=<its action_id>'],
      [{ as: 'bob', channel: 'soc-alerts', button: 'Reject' }, 'has a button "Reject"'],
      [{ as: 'bob', channel: 'soc-alerts', action_id: 'sev', option: 'Huge' }, 'option=Huge: the menu sev offers Low, High'],
    ] as const) {
      const bad = await fetch(`${view.url}click`, { method: 'POST', body: new URLSearchParams(fields) });
      expect(bad.status, JSON.stringify(fields)).to.equal(400);
      expect(((await bad.json()) as { error: string }).error).to.contain(says);
    }
    expect(emu.socketMode.delivered().length, 'a bad click delivers nothing').to.equal(before + 2);

    // The page's forms come back to the page, as the same person.
    const back = await fetch(`${view.url}click`, {
      method: 'POST',
      redirect: 'manual',
      body: new URLSearchParams({ as: 'bob', channel: channel.id, ts, action_id: 'yes', back: '1' }),
    });
    expect(back.status).to.equal(303);
    expect(back.headers.get('location')).to.equal('/?as=bob');
  });

  it('shows a modal the app opened with its inputs, and submits it as the person through view_submission', async () => {
    const channel = emu.channelByName('soc-alerts')!;
    const ts = await post(emu, emu.botToken, {
      channel: channel.id,
      text: 'Close it?',
      blocks: JSON.stringify([
        { type: 'actions', elements: [{ type: 'button', action_id: 'close', text: { type: 'plain_text', text: 'Close…' } }] },
      ]),
    });
    const clicked = emu.click(workspace.people[1]!.id, channel.id, ts, 'close') as { trigger_id: string };
    const modal = {
      type: 'modal',
      callback_id: 'close:1',
      title: { type: 'plain_text', text: 'Close incident' },
      submit: { type: 'plain_text', text: 'Close' },
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: 'Closing incident 1' } },
        {
          type: 'input',
          block_id: 'resolution',
          label: { type: 'plain_text', text: 'Resolution' },
          element: { type: 'static_select', action_id: 'v', options: [{ text: { type: 'plain_text', text: 'Resolved' }, value: 'Resolved' }] },
        },
        {
          type: 'input',
          block_id: 'summary',
          label: { type: 'plain_text', text: 'Summary' },
          element: { type: 'plain_text_input', action_id: 'v', multiline: true },
        },
      ],
    };
    const opened = await fetch(`${emu.apiUrl}views.open`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${emu.botToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ trigger_id: clicked.trigger_id, view: modal }),
    });
    const viewId = ((await opened.json()) as { view: { id: string } }).view.id;

    const modals = (await (await fetch(`${view.url}modals.json`)).json()) as { id: string; inputs: { block_id: string }[] }[];
    expect(modals.map((m) => m.id)).to.include(viewId);
    expect(modals.find((m) => m.id === viewId)!.inputs.map((i) => i.block_id)).to.deep.equal(['resolution', 'summary']);
    const page = await (await fetch(view.url)).text();
    expect(page).to.contain('Close incident').and.contain('name="value:summary"').and.not.contain('http-equiv="refresh"');

    const empty = await fetch(`${view.url}submit`, {
      method: 'POST',
      body: new URLSearchParams({ as: 'bob', view: viewId, 'value:resolution': 'Resolved' }),
    });
    expect(empty.status).to.equal(400);
    expect(((await empty.json()) as { error: string }).error).to.contain('input summary is required');

    const before = emu.socketMode.delivered().length;
    const res = await fetch(`${view.url}submit`, {
      method: 'POST',
      body: new URLSearchParams({ as: 'bob', view: viewId, 'value:resolution': 'Resolved', 'value:summary': 'Sender blocked' }),
    });
    expect(res.status).to.equal(200);
    type Submission = { type: string; user: { name: string }; view: { id: string; state: unknown } };
    const payload = emu.socketMode.delivered()[before]!.payload as Submission;
    expect(payload.type).to.equal('view_submission');
    expect(payload.user.name).to.equal('bob');
    expect(payload.view.state).to.deep.equal({
      values: {
        resolution: { v: { type: 'static_select', selected_option: { text: { type: 'plain_text', text: 'Resolved' }, value: 'Resolved' } } },
        summary: { v: { type: 'plain_text_input', value: 'Sender blocked' } },
      },
    });
    const after = (await (await fetch(`${view.url}modals.json`)).json()) as { id: string }[];
    expect(after.map((m) => m.id), 'a submitted modal is no longer shown').to.not.include(viewId);
    const unknown = await fetch(`${view.url}dismiss`, { method: 'POST', body: new URLSearchParams({ as: 'bob', view: 'V404' }) });
    expect(unknown.status).to.equal(400);
    expect(((await unknown.json()) as { error: string }).error).to.contain('view=V404: no such modal');
  });

  it("shows the acting person what only they were shown (ephemeral messages), and nobody else", async () => {
    const [, bob] = workspace.people;
    const res = await fetch(`${emu.apiUrl}chat.postEphemeral`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${emu.botToken}` },
      body: new URLSearchParams({ channel: emu.channelByName('soc-alerts')!.id, user: bob!.id, text: 'Only for bob: nothing changed' }),
    });
    expect(((await res.json()) as { ok: boolean }).ok).to.equal(true);
    expect(await (await fetch(`${view.url}?as=bob`)).text()).to.contain('Only for bob: nothing changed');
    expect(await (await fetch(`${view.url}?as=alice`)).text()).to.not.contain('Only for bob');
  });
});
