/**
 * slack_ask with two `worker run` processes sharing a PostgreSQL store (issue #14, Tests:
 * "two clicks at once at two workers give one answer"). Each worker holds its own Socket
 * Mode connection; two allowed people click different answers at the same moment and the
 * emulator gives one click to each worker's connection. Exactly one answer is recorded,
 * one final reply goes to the caller, the question is updated once (with that answer),
 * and the other person is told it was already answered.
 *
 * Both workers record what their connection receives on the shared inbound queue; one of
 * them (the queue's single active consumer) handles both clicks. A SQLite store serves
 * one worker only (README, "Several workers"), so there is no SQLite variant.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { tempPostgresDatabase } from '../../support/fault-checks.js';
import { Caller, deleteDestination, uniqueName, WorkerProcess, writeConfig, type TestConfig } from '../../support/harness.js';
import { SlackEmulator, type EmulatedUser } from '../../support/slack-emulator.js';
import { poller } from '../../support/until.js';

const until = poller({ timeoutMs: 30_000, everyMs: 50 });

describe('slack_ask: two clicks at once at two worker processes (PostgreSQL store, a Socket Mode connection each)', function () {
  this.timeout(180_000);
  let emu: SlackEmulator;
  let alice: EmulatedUser;
  let bob: EmulatedUser;
  let db: { url: string; drop: () => Promise<void> };
  let caller: Caller;
  let cfg: TestConfig;
  let inboundQueue: string;
  const workers: WorkerProcess[] = [];
  /** Each worker's Socket Mode connection id, in the order of `workers`. */
  const connectionOf: number[] = [];

  before(async () => {
    emu = await SlackEmulator.start();
    alice = emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
    bob = emu.addUser({ name: 'bob', real_name: 'Bob Lead', email: 'bob@example.com' });
    emu.seedChannel({ name: 'inc-7101', members: [emu.botUserId, alice.id, bob.id] });
    db = await tempPostgresDatabase('ask2');
    inboundQueue = uniqueName('inbound');
    const fnSlack = { api_token: emu.botToken, api_url: emu.apiUrl, app_token: emu.appToken, inbound_queue: inboundQueue };
    cfg = writeConfig({ worker: { store: db.url }, sections: { fn_slack: fnSlack } });
    // The second worker: its own lock, logs and folder; the same queues and store.
    const second = writeConfig({ destination: cfg.destination, worker: { store: db.url }, sections: { fn_slack: fnSlack } });
    for (const file of [cfg.file, second.file]) {
      const w = WorkerProcess.start(file);
      workers.push(w);
      await w.waitFor();
      await w.waitFor('Listener socket-mode started');
      await until('its connection', () => emu.socketMode.connectionCount === workers.length);
      connectionOf.push(emu.socketMode.connectionIds().at(-1)!);
    }
    caller = await Caller.open();
  });

  after(async () => {
    for (const w of workers.splice(0)) await w.stop('SIGKILL');
    await caller?.close();
    if (cfg) await deleteDestination(cfg.destination).catch(() => undefined);
    if (inboundQueue) await deleteDestination(inboundQueue).catch(() => undefined);
    await emu?.close();
    await db?.drop();
  });

  const channelId = () => emu.channelByName('inc-7101')!.id;
  const questions = () => emu.messages(channelId()).filter((m) => m.metadata?.event_type === 'soar_worker_post');
  const actionIds = (ts: string) =>
    (
      (emu.message(channelId(), ts)!.blocks ?? []).find((b) => (b as { type: string }).type === 'actions') as
        { elements: { action_id: string }[] } | undefined
    )?.elements.map((e) => e.action_id) ?? [];
  /** Edits of the question: chat.update calls and response_url replacements Slack took. */
  const questionEdits = () =>
    emu.calls('chat.update') + emu.interactive.responses().filter((r) => r.outcome === 'ok' && r.body.replace_original === true).length;

  for (const [round, aliceTo] of [
    [1, 0],
    [2, 1],
  ] as const) {
    it(`round ${round}: alice's click reaches worker ${aliceTo + 1} and bob's the other, at once: one answer, one final reply, one edit, the other told`, async () => {
      const id = randomUUID();
      caller.publish(
        cfg.destination,
        caller.invocation('slack_ask', {
          incident_id: 7101,
          slack_channel: 'inc-7101',
          slack_question: `Isolate host FS0${round}?`,
          slack_answers: 'Approve,Reject',
          slack_allowed_responders: 'alice@example.com,bob@example.com',
        }),
        { messageId: id, correlationId: id },
      );
      await until('the question posted', () => (caller.replies.get(id) ?? []).some((r) => String(r.message).startsWith('Question posted')));
      const ts = questions().at(-1)!.ts;
      const [approve, reject] = actionIds(ts);
      const editsBefore = questionEdits();
      const answeredBefore = workers.map((w) => (w.output.match(/answered: "(Approve|Reject)"; final reply sent/g) ?? []).length);

      // The two clicks of one moment, one to each worker's connection.
      emu.socketMode.routeNext(connectionOf[aliceTo]!, connectionOf[1 - aliceTo]!);
      const clicks = [emu.click(alice.id, channelId(), ts, approve!), emu.click(bob.id, channelId(), ts, reject!)];
      const envelopes = clicks.map((p) => emu.socketMode.delivered().find((e) => e.payload === p)!);
      expect(envelopes.map((e) => e.sentTo)).to.deep.equal([[connectionOf[aliceTo]], [connectionOf[1 - aliceTo]]]);

      await caller.waitForFinal([id], 60_000);
      await until('both clicks acknowledged', () => envelopes.every((e) => e.ackedAt !== undefined));
      await until('the other clicker told', () => emu.ephemerals(alice.id).length + emu.ephemerals(bob.id).length >= round);
      await sleep(1500); // time for a second answer, reply or edit to show

      const finals = caller.finalReplies(id) as Record<string, any>[];
      expect(finals).to.have.length(1);
      const content = finals[0]!.results.content;
      expect(content.timed_out).to.equal(false);
      const [winner, loser] = content.answer === 'Approve' ? [alice, bob] : [bob, alice];
      expect(content.answer).to.be.oneOf(['Approve', 'Reject']);
      expect(content.responder.id).to.equal(winner.id);
      // One answer recorded: one worker logged it, once.
      const answered = workers.map((w, i) => (w.output.match(/answered: "(Approve|Reject)"; final reply sent/g) ?? []).length - answeredBefore[i]!);
      expect(answered.reduce((a, b) => a + b, 0), workers.map((w) => w.output).join('\n')).to.equal(1);
      // The question, edited once: the answer and who gave it, no buttons left.
      expect(questionEdits() - editsBefore).to.equal(1);
      expect(actionIds(ts)).to.have.length(0);
      expect(emu.message(channelId(), ts)!.text).to.contain(content.answer).and.contain(winner.real_name);
      expect(questions()).to.have.length(round);
      // The other clicker: told it was already answered, by whom; the winner was told nothing.
      expect(emu.ephemerals(loser.id).at(-1)!.text).to.equal(`This question was already answered by ${winner.real_name}: ${content.answer}.`);
      expect(emu.ephemerals(alice.id).length + emu.ephemerals(bob.id).length).to.equal(round);
    });
  }

  it('DMs to two people, both click at once, one at each worker (two channels, handled in parallel): one answer, both questions say who answered', async () => {
    const id = randomUUID();
    caller.publish(
      cfg.destination,
      caller.invocation('slack_ask', {
        incident_id: 7101,
        slack_user_emails: 'alice@example.com,bob@example.com',
        slack_question: 'Disable the account of jdoe?',
        slack_answers: 'Approve,Reject',
      }),
      { messageId: id, correlationId: id },
    );
    await until('the question posted', () => (caller.replies.get(id) ?? []).some((r) => String(r.message).startsWith('Question posted')));
    const dms = [alice, bob].map((u) => emu.imWith(u.id)!);
    const dmQuestions = dms.map((dm) => emu.messages(dm).filter((m) => m.metadata?.event_type === 'soar_worker_post'));
    expect(dmQuestions.map((q) => q.length)).to.deep.equal([1, 1]);
    const [qa, qb] = dmQuestions.map((q) => q[0]!);
    const buttonsOf = (dm: string, ts: string) =>
      ((emu.message(dm, ts)!.blocks ?? []).find((b) => (b as { type: string }).type === 'actions') as { elements: { action_id: string }[] } | undefined)
        ?.elements.map((e) => e.action_id) ?? [];
    const editsBefore = questionEdits();
    const ephemeralsBefore = emu.ephemerals().length;

    // Slack answers the clicker's users.info slowly: both handlers have read the ask as
    // pending and wait at once, so the store's conditional update alone decides the winner.
    emu.failNext('users.info', { delayMs: 1000, times: 2 });
    emu.socketMode.routeNext(connectionOf[0]!, connectionOf[1]!);
    const clicks = [emu.click(alice.id, dms[0]!, qa!.ts, buttonsOf(dms[0]!, qa!.ts)[0]!), emu.click(bob.id, dms[1]!, qb!.ts, buttonsOf(dms[1]!, qb!.ts)[1]!)];
    const envelopes = clicks.map((p) => emu.socketMode.delivered().find((e) => e.payload === p)!);
    expect(envelopes.map((e) => e.sentTo)).to.deep.equal([[connectionOf[0]], [connectionOf[1]]]);

    await caller.waitForFinal([id], 60_000);
    await until('both clicks acknowledged', () => envelopes.every((e) => e.ackedAt !== undefined));
    await until('the other clicker told', () => emu.ephemerals().length > ephemeralsBefore);
    emu.clearFaults();
    await sleep(1500); // time for a second answer, reply or edit to show

    const finals = caller.finalReplies(id) as Record<string, any>[];
    expect(finals).to.have.length(1);
    const content = finals[0]!.results.content;
    const [winner, loser] = content.answer === 'Approve' ? [alice, bob] : [bob, alice];
    expect(content.responder.id).to.equal(winner.id);
    // Each question edited once, to the one answer; no buttons left.
    expect(questionEdits() - editsBefore).to.equal(2);
    for (const [i, q] of [qa!, qb!].entries()) {
      expect(buttonsOf(dms[i]!, q.ts)).to.have.length(0);
      expect(emu.message(dms[i]!, q.ts)!.text).to.contain(`${content.answer}, answered by`);
    }
    const told = emu.ephemerals().slice(ephemeralsBefore);
    expect(told.map((e) => [e.user, e.text])).to.deep.equal([[loser.id, `This question was already answered by ${winner.real_name}: ${content.answer}.`]]);
  });
});
