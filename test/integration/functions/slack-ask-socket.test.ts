/**
 * slack_ask end to end through the worker's own Socket Mode connection: a caller publishes
 * the invocation on RabbitMQ, the worker (a real process) posts the question, a person
 * clicks in the emulator, the click reaches the worker as an `interactive` envelope, and the
 * caller gets one final reply. Also across kill -9: the worker that asked is killed, a new
 * one starts, and the click reaches that one.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { SlackEmulator, type EmulatedUser } from '../../support/slack-emulator.js';
import { Caller, deleteDestination, uniqueName, WorkerProcess, writeConfig, type TestConfig } from '../../support/harness.js';
import { poller } from '../../support/until.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const until = poller({ timeoutMs: 30_000, everyMs: 50 });

describe("slack_ask through the worker's Socket Mode connection", function () {
  this.timeout(120_000);
  let emu: SlackEmulator;
  let alice: EmulatedUser;
  let bob: EmulatedUser;
  let cfg: TestConfig;
  let inboundQueue: string;
  let caller: Caller;
  const workers: WorkerProcess[] = [];

  beforeEach(async () => {
    emu = await SlackEmulator.start();
    alice = emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
    bob = emu.addUser({ name: 'bob', real_name: 'Bob Lead', email: 'bob@example.com' });
    emu.seedChannel({ name: 'inc-7001', members: [emu.botUserId, alice.id, bob.id] });
    inboundQueue = uniqueName('inbound');
    cfg = writeConfig({
      sections: {
        fn_slack: {
          api_token: emu.botToken,
          api_url: emu.apiUrl,
          app_token: emu.appToken,
          inbound_queue: inboundQueue,
          ask_sweep_interval: 1,
          ask_lease: 2,
        },
      },
    });
    caller = await Caller.open();
  });

  afterEach(async () => {
    await caller.close();
    for (const w of workers.splice(0)) await w.stop('SIGKILL');
    await deleteDestination(cfg.destination).catch(() => undefined);
    await deleteDestination(inboundQueue).catch(() => undefined);
    await emu.close();
  });

  async function start(): Promise<WorkerProcess> {
    const w = WorkerProcess.start(cfg.file);
    workers.push(w);
    await w.waitFor();
    await w.waitFor('Listener socket-mode started');
    return w;
  }

  const channelId = () => emu.channelByName('inc-7001')!.id;
  const questions = () => emu.messages(channelId()).filter((m) => m.metadata?.event_type === 'soar_worker_post');
  const actionIds = (ts: string) =>
    (
      (emu.message(channelId(), ts)!.blocks ?? []).find((b) => (b as { type: string }).type === 'actions') as
        { elements: { action_id: string }[] } | undefined
    )?.elements.map((e) => e.action_id) ?? [];

  function ask(): string {
    const id = randomUUID();
    caller.publish(
      cfg.destination,
      caller.invocation('slack_ask', {
        incident_id: 7001,
        slack_channel: 'inc-7001',
        slack_question: 'Disable the account of jdoe?',
        slack_answers: 'Approve,Reject',
        slack_allowed_responders: 'alice@example.com',
      }),
      { messageId: id, correlationId: id },
    );
    return id;
  }

  const posted = (id: string) => (caller.replies.get(id) ?? []).some((r) => String(r.message).startsWith('Question posted'));

  it('a click reaches the worker and answers; a click by someone not allowed changes nothing', async () => {
    await start();
    const id = ask();
    await until('the question posted', () => posted(id));
    const ts = questions()[0]!.ts;
    const [approve, reject] = actionIds(ts);
    emu.click(bob.id, channelId(), ts, reject!);
    await until("bob's ephemeral", () => emu.ephemerals(bob.id).length === 1);
    expect(emu.ephemerals(bob.id)[0]!.text).to.equal('You are not allowed to answer this question.');
    expect(caller.finalReplies(id)).to.have.length(0);
    emu.click(alice.id, channelId(), ts, approve!);
    await caller.waitForFinal([id], 30_000);
    await sleep(1500);
    const finals = caller.finalReplies(id) as Record<string, any>[];
    expect(finals).to.have.length(1);
    expect(finals[0]!.results.content).to.include({ answer: 'Approve', timed_out: false, ts });
    expect(finals[0]!.results.content.responder).to.deep.equal({ id: alice.id, name: 'Alice Analyst', email: 'alice@example.com' });
    expect(actionIds(ts)).to.have.length(0);
    expect(questions()).to.have.length(1);
    expect((caller.replies.get(id) ?? []).map((r) => String(r.message)).filter((m) => m.startsWith('Warning'))).to.deep.equal([]);
  });

  it('a question pending across kill -9 and a restart is answered by the new worker', async () => {
    const first = await start();
    const id = ask();
    await until('the question posted', () => posted(id));
    await first.stop('SIGKILL');
    const second = await start();
    const ts = questions()[0]!.ts;
    emu.click(alice.id, channelId(), ts, actionIds(ts)[1]!);
    await caller.waitForFinal([id], 30_000);
    await sleep(1500);
    const finals = caller.finalReplies(id) as Record<string, any>[];
    expect(finals).to.have.length(1);
    expect(finals[0]!.results.content).to.include({ answer: 'Reject', timed_out: false });
    expect(questions()).to.have.length(1);
    // Logged after the reply is confirmed and the ask marked finished: it may trail the reply.
    await second.waitFor(/Ask [0-9a-f]{24} \(invocation [^)]+\) answered: "Reject"; final reply sent/);
  });
});
