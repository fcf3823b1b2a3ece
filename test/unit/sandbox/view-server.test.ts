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

  it('is read-only', async () => {
    const res = await fetch(`${view.url}channels.json`, { method: 'POST', body: 'x' });
    expect(res.status).to.equal(405);
  });
});
