/**
 * `npm run sandbox` end to end: the real worker, the real RabbitMQ, @slack/web-api over
 * HTTP to the emulator. The sandbox is spawned as a newcomer runs it; the commands it
 * prints are run as pasted (through sh, from the repo root), the clicks too (a curl to the
 * view's /click, the route the page's buttons post to); what landed is read from the
 * sandbox's own view.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import amqp from 'amqplib';
import { expect } from 'chai';
import { builtinPlugins } from '../../../src/functions/index.js';
import { deleteQueuesIfEmpty, Sandbox } from '../../../sandbox/sandbox.js';
import { sandboxOptions } from '../../../sandbox/options.js';
import { AMQP_URL, REPO_ROOT, tempDir, uniqueName } from '../../support/harness.js';
import { silentLogger } from '../../../src/core/logging.js';

const MAIN = path.join(REPO_ROOT, 'sandbox', 'main.ts');

class SandboxProcess {
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  async waitFor(text: string, timeoutMs = 45_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.output.includes(text)) {
      if (this.child.exitCode !== null) throw new Error(`sandbox exited (${this.child.exitCode}) before "${text}":\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for "${text}":\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The value printed after `label` on the banner. */
  field(label: string): string {
    const m = new RegExp(`^\\s*${label}:\\s+(\\S+)`, 'm').exec(this.output);
    if (!m) throw new Error(`no "${label}:" in the sandbox output:\n${this.output}`);
    return m[1] as string;
  }

  /** The printed `worker invoke` lines, in order. */
  commands(): string[] {
    return this.output
      .split('\n')
      .filter((l) => l.startsWith('  npx tsx src/cli.ts '))
      .map((l) => l.trim());
  }
}

/** Runs a printed line as pasted into a shell at the repo root. */
function runPasted(command: string, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  expect(res.status, url).to.equal(200);
  return (await res.json()) as T;
}

/** Whether a queue exists on the broker (checkQueue fails on a missing one). */
async function queueExists(name: string): Promise<boolean> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    try {
      await ch.checkQueue(name);
      return true;
    } catch {
      return false;
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

interface ViewChannel {
  id: string;
  name: string;
  is_archived: boolean;
  members: string[];
}

describe('sandbox (npm run sandbox)', function () {
  this.timeout(240_000);
  let proc: SandboxProcess | undefined;
  let dir: string | undefined;
  const destination = uniqueName('sandbox_test');

  after(async () => {
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) {
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
    // Killed, it could not remove its folder.
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    // A given --destination is not the sandbox's to delete: this test made it, so it removes it.
    await deleteQueuesIfEmpty(AMQP_URL, destination).catch(() => undefined);
  });

  it('runs every function through the printed commands with no Slack account, takes clicks, shows what landed, and stops cleanly on Ctrl-C', async () => {
    proc = new SandboxProcess(
      spawn(process.execPath, ['--import', 'tsx', MAIN, '--amqp-url', AMQP_URL, '--destination', destination], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    await proc.waitFor('Ctrl-C stops');
    const view = proc.field('What landed');
    dir = path.dirname(proc.field('Config'));
    expect(fs.statSync(dir).mode & 0o777).to.equal(0o700);
    expect(fs.statSync(proc.field('Config')).mode & 0o777).to.equal(0o600);

    // One ready-to-paste line per function a caller can call (not the internal slack_inbound).
    const commands = proc.commands();
    const names = builtinPlugins.flatMap((p) => p.functions.filter((f) => !f.internal).map((f) => f.name));
    expect(commands.map((c) => /\binvoke (\S+)/.exec(c)?.[1])).to.have.members(names);

    // slack_post_message, as printed: it lands in the emulated #inc-2103.
    const post = commands.find((c) => c.includes(' invoke slack_post_message '))!;
    const posted = await runPasted(post);
    expect(posted.code, posted.stdout + posted.stderr).to.equal(0);
    expect(posted.stdout).to.contain('result:');
    const ts = (JSON.parse(posted.stdout.slice(posted.stdout.indexOf('result:') + 'result:'.length)) as { content: { ts: string } })
      .content.ts;
    let channels = await getJson<ViewChannel[]>(`${view}channels.json`);
    const inc = channels.find((c) => c.name === 'inc-2103');
    expect(inc, JSON.stringify(channels)).to.not.equal(undefined);
    expect(inc!.members).to.include.members(['Alice Analyst', 'Bob Responder']);
    const messages = await getJson<{ ts: string; author: string; text: string }[]>(`${view}channels/${inc!.id}/messages.json`);
    expect(messages.map((m) => m.ts)).to.include(ts);
    expect(messages.find((m) => m.ts === ts)!.text).to.contain('Phishing wave');

    // A person types in the channel, as the banner shows (Slack's API with a user token).
    const curl = proc.output.split('\n').find((l) => l.trim().startsWith('curl '))!.trim();
    const said = await runPasted(curl);
    expect(JSON.parse(said.stdout)).to.include({ ok: true, channel: inc!.id });
    // The inbound half: the worker gets the message over Socket Mode and mirrors it into a
    // note on the incident (issue #18: the sandbox shows the inbound half too).
    const notePath = async (): Promise<string | undefined> =>
      (await getJson<{ files: { path: string }[] }>(`${view}platform.json`)).files.find((f) =>
        /^incidents\/2103\/notes\/[^/]+\.json$/.test(f.path),
      )?.path;
    const noteDeadline = Date.now() + 30_000;
    while ((await notePath()) === undefined && Date.now() < noteDeadline) await new Promise((r) => setTimeout(r, 200));
    const noteFile = await notePath();
    expect(noteFile, proc.output).to.not.equal(undefined);
    const note = (await (await fetch(`${view}platform/${noteFile!}`)).json()) as { text: string; author: { name: string } };
    expect(note).to.deep.include({ text: 'Blocked the sender domain at the mail gateway' });
    expect(note.author.name).to.equal('Alice Analyst');

    // A person clicks "Assign to me" on the post's triage card, with the printed curl (the
    // page's own route): the click reaches the worker as Slack's block_actions, and the
    // incident's owner (alice when seeded) becomes bob.
    const clickLine = (what: string) => {
      const line = proc!.output.split('\n').find((l) => l.trim().startsWith('curl ') && l.includes('/click') && l.includes(what));
      expect(line, `no printed click with ${what}:\n${proc!.output}`).to.not.equal(undefined);
      return line!.trim();
    };
    const assigned = await runPasted(clickLine('Assign to me'));
    expect(JSON.parse(assigned.stdout), assigned.stdout + assigned.stderr).to.deep.include({ ok: true });
    const owner = async () => (await getJson<{ owner: string | null }>(`${view}platform/incidents/2103/incident.json`)).owner;
    expect(await owner(), 'as seeded').to.equal('alice@example.com');
    const ownerDeadline = Date.now() + 30_000;
    while ((await owner()) !== 'bob@example.com' && Date.now() < ownerDeadline) await new Promise((r) => setTimeout(r, 200));
    expect(await owner(), proc.output).to.equal('bob@example.com');

    // "Close…" as the page's button posts it: the worker opens the close modal (views.open
    // with the click's trigger), the page lists it, and bob submits it as the page's form
    // does (a view_submission); the incident is closed with his resolution.
    const form = (route: string, fields: Record<string, string>) =>
      fetch(`${view}${route}`, { method: 'POST', body: new URLSearchParams(fields) });
    const closeClick = await form('click', { as: 'bob', channel: inc!.id, ts, action_id: 'triage:close' });
    expect(closeClick.status, await closeClick.clone().text()).to.equal(200);
    type Modal = { id: string; title: string; submittable: boolean; inputs: { block_id: string }[] };
    const closeModal = async () =>
      (await getJson<Modal[]>(`${view}modals.json`)).find((m) => m.submittable && m.inputs.some((i) => i.block_id === 'resolution'));
    const modalDeadline = Date.now() + 30_000;
    while ((await closeModal()) === undefined && Date.now() < modalDeadline) await new Promise((r) => setTimeout(r, 200));
    const modal = await closeModal();
    expect(modal, proc.output).to.not.equal(undefined);
    const submitted = await form('submit', {
      as: 'bob',
      view: modal!.id,
      'value:resolution': 'Resolved',
      'value:summary': 'Sender domain blocked at the gateway',
    });
    expect(submitted.status, await submitted.clone().text()).to.equal(200);
    type Incident = { status: string; resolution: string | null; resolution_summary: string | null };
    const incident = () => getJson<Incident>(`${view}platform/incidents/2103/incident.json`);
    const closeDeadline = Date.now() + 30_000;
    while ((await incident()).status !== 'Closed' && Date.now() < closeDeadline) await new Promise((r) => setTimeout(r, 200));
    expect(await incident(), proc.output).to.deep.include({
      status: 'Closed',
      resolution: 'Resolved',
      resolution_summary: 'Sender domain blocked at the gateway',
    });
    // Every other function, top to bottom, as printed (a `<ts>` is the post's ts, as the note says).
    for (const command of commands.filter((c) => c !== post)) {
      const pasted = command.replace(/<ts>/g, ts);
      expect(pasted, 'a printed line has a placeholder this test cannot fill').to.not.match(/<[a-z_]+>/);
      if (command.includes(' invoke slack_ask ')) {
        // The question waits for a person: once it is in the channel, bob answers with the
        // printed click, and the workflow's final reply carries his answer (not the default).
        const asking = runPasted(pasted);
        const hasQuestion = async () =>
          (await getJson<{ actions?: { label: string }[] }[]>(`${view}channels/${inc!.id}/messages.json`)).some((m) =>
            m.actions?.some((a) => a.label === 'Reject'),
          );
        const askDeadline = Date.now() + 30_000;
        while (!(await hasQuestion()) && Date.now() < askDeadline) await new Promise((r) => setTimeout(r, 200));
        const answered = await runPasted(clickLine('button=Reject'));
        expect(JSON.parse(answered.stdout), answered.stdout + answered.stderr).to.deep.include({ ok: true });
        const run = await asking;
        expect(run.code, `${command}\n${run.stdout}${run.stderr}`).to.equal(0);
        const reply = JSON.parse(run.stdout.slice(run.stdout.indexOf('result:') + 'result:'.length)) as {
          content: { answer: string; timed_out: boolean; responder: { name: string } | null };
        };
        expect(reply.content).to.include({ answer: 'Reject', timed_out: false });
        expect(reply.content.responder?.name).to.equal('Bob Responder');
        continue;
      }
      const run = await runPasted(pasted);
      expect(run.code, `${command}\n${run.stdout}${run.stderr}`).to.equal(0);
    }

    // What slack_post_attachment and slack_archive_channel did, as the view shows it. (A
    // function may have renamed the channel in between: the view gives its name now.)
    channels = await getJson<ViewChannel[]>(`${view}channels.json`);
    const archived = channels.find((c) => c.id === inc!.id)!;
    expect(archived.is_archived).to.equal(true);
    const files = await getJson<{ name: string; channels: string[] }[]>(`${view}files.json`);
    expect(files.find((f) => f.name === 'reported-email-headers.txt')?.channels, JSON.stringify(files)).to.deep.equal([archived.name]);
    const platform = await getJson<{ files: { path: string }[] }>(`${view}platform.json`);
    const exported = platform.files.find((f) => f.path.endsWith(`/slack_msg_export_channel_${archived.name}.txt`));
    expect(exported, JSON.stringify(platform)).to.not.equal(undefined);
    const exportText = await (await fetch(`${view}platform/${exported!.path}`)).text();
    expect(exportText).to.contain('Alice Analyst POSTED ON').and.contain('Blocked the sender domain');

    // Ctrl-C: the worker, the view and the emulator stop; the temporary folder goes.
    proc.child.kill('SIGINT');
    const exit = await proc.exited;
    expect(exit, proc.output).to.deep.equal({ code: 0, signal: null });
    expect(proc.output).to.contain('sandbox: stopped');
    // The given --destination is the user's and stays; the inbound queue was the sandbox's own.
    expect(await queueExists(destination)).to.equal(true);
    for (const q of ['inbound', 'inbound.dead', 'inbound.retry']) expect(await queueExists(`${destination}.${q}`), q).to.equal(false);
    expect(fs.existsSync(dir)).to.equal(false);
    dir = undefined;
    expect(await fetch(view).then(() => 'answered', () => 'refused')).to.equal('refused');
  });

  it('deletes the queue it generated when it stops, and refuses a --dir that is not empty', async () => {
    const sandbox = await Sandbox.start(sandboxOptions({ amqpUrl: AMQP_URL, log: silentLogger() }));
    const generated = sandbox.info.destination;
    try {
      expect(generated).to.match(/^fn_slack_sandbox_[0-9a-f]{8}$/);
      expect(await queueExists(generated)).to.equal(true);
      expect(await queueExists(`${generated}.inbound`), 'its own inbound queue').to.equal(true);
      await sandbox.stop();
      expect(await queueExists(generated)).to.equal(false);
      expect(await queueExists(`${generated}.dead`)).to.equal(false);
      expect(await queueExists(`${generated}.retry`)).to.equal(false);
      for (const q of ['inbound', 'inbound.dead', 'inbound.retry']) expect(await queueExists(`${generated}.${q}`), q).to.equal(false);
      expect(fs.existsSync(sandbox.info.dir)).to.equal(false);
    } finally {
      // When an assertion above failed: leave nothing running or declared on the shared broker.
      await sandbox.stop();
      await deleteQueuesIfEmpty(AMQP_URL, generated).catch(() => undefined);
      fs.rmSync(sandbox.info.dir, { recursive: true, force: true });
    }

    const used = tempDir('sandbox-used-');
    try {
      fs.writeFileSync(path.join(used, 'worker.db'), '');
      let error: Error | undefined;
      await Sandbox.start(sandboxOptions({ amqpUrl: AMQP_URL, dir: used, log: silentLogger() })).catch((err: Error) => (error = err));
      expect(error?.message).to.contain('is not empty');
    } finally {
      fs.rmSync(used, { recursive: true, force: true });
    }
  });
});
