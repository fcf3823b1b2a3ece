/**
 * slack_ask with real parts: the runner and fn_slack's own setup (ask runtime, sweeper),
 * a real RabbitMQ reply queue for every reply, SQLite and PostgreSQL for the ask table,
 * Slack through the emulator and the real web-api client, clicks as the emulator builds
 * them (`emu.click`) handed to the inbound router.
 *
 * Throughout: one final reply per invocation, and the question posted once; the
 * escalation posted once, by two finishers of one ask at once and in a busy channel.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { LocalPlatform } from '../../../src/platforms/local/local-platform.js';
import type { Store } from '../../../src/core/store/store.js';
import { NO_LONGER_OPEN_TEXT, NOT_ALLOWED_TEXT } from '../../../src/functions/slack/ask/ask-answer.js';
import { ESCALATION_EVENT_TYPE, expireAsk, finishAsk } from '../../../src/functions/slack/ask/ask-finish.js';
import { askIdOf } from '../../../src/functions/slack/ask/ask-function.js';
import { ASK_TABLE } from '../../../src/functions/slack/ask/ask-table.js';
import type { BlockAction } from '../../../src/functions/slack/inbound/router.js';
import { SlackEmulator, type EmulatedUser } from '../../support/slack-emulator.js';
import { tempDir } from '../../support/harness.js';
import { AskNode, dropAskSchemas, newSchema, openAskStore, ReplyCollector, type Dialect } from '../../support/ask-fixture.js';
import { poller } from '../../support/until.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DAY = 86_400_000;

const until = poller({ timeoutMs: 10_000, everyMs: 20 });

for (const dialect of ['sqlite', 'postgres'] as Dialect[]) {
  describe(`slack_ask (${dialect})`, function () {
    this.timeout(30_000);
    let emu: SlackEmulator;
    let alice: EmulatedUser;
    let bob: EmulatedUser;
    let carol: EmulatedUser;
    let replies: ReplyCollector;
    let dir: string;
    let where: string;
    const stores: Store[] = [];
    const nodes: AskNode[] = [];

    /** `retentionDays`: the worker's retention, as `worker run` passes it (none: nothing pruned). */
    async function node(config: Record<string, string> = {}, retentionDays?: number): Promise<AskNode> {
      const store = await openAskStore(dialect, where);
      stores.push(store);
      const platform = new LocalPlatform(path.join(dir, 'files'));
      const retention = retentionDays === undefined ? {} : { retentionDays };
      const n = await AskNode.start({ store, platform, apiUrl: emu.apiUrl, token: emu.botToken, config, ...retention });
      nodes.push(n);
      return n;
    }

    beforeEach(async () => {
      emu = await SlackEmulator.start();
      alice = emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
      bob = emu.addUser({ name: 'bob', real_name: 'Bob Lead', email: 'bob@example.com' });
      carol = emu.addUser({ name: 'carol', real_name: 'Carol Chief', email: 'carol@example.com' });
      emu.seedChannel({ name: 'inc-5001', members: [emu.botUserId, alice.id, bob.id, carol.id] });
      emu.seedChannel({ name: 'soc-leads', members: [emu.botUserId, carol.id] });
      replies = await ReplyCollector.open();
      dir = tempDir('slack-ask-');
      fs.mkdirSync(path.join(dir, 'files'), { recursive: true });
      where = dialect === 'sqlite' ? path.join(dir, 'worker.db') : newSchema();
    });

    afterEach(async () => {
      for (const n of nodes.splice(0)) await n.close();
      for (const s of stores.splice(0)) await s.close();
      await replies.close();
      await emu.close();
    });

    after(async () => {
      if (dialect === 'postgres') await dropAskSchemas();
    });

    const channelId = () => emu.channelByName('inc-5001')!.id;
    const question = (ch = channelId()) => emu.messages(ch).filter((m) => m.blocks?.some((b) => (b as { type?: string }).type === 'actions'));
    const buttons = (ts: string, ch = channelId()) =>
      (
        (emu.message(ch, ts)!.blocks ?? []).find((b) => (b as { type?: string }).type === 'actions') as
          { elements: { action_id: string }[] } | undefined
      )?.elements ?? [];

    async function ask(n: AskNode, inputs: Record<string, unknown>, id?: string): Promise<string> {
      const run = n.invoke(
        replies,
        { incident_id: 5001, slack_question: 'Isolate host FS01?', slack_answers: 'Approve,Reject', ...inputs },
        id ? { id } : {},
      );
      expect(await run.done).to.equal('ack');
      return run.id;
    }

    it('posts the question with one button per answer and defers: acked, progress only, where and until when', async () => {
      const n = await node();
      const id = await ask(n, { slack_channel: 'inc-5001', slack_ask_timeout: 600 });
      const [q, ...more] = question();
      expect(more).to.have.length(0);
      const askId = askIdOf(id);
      expect(buttons(q!.ts).map((b) => b.action_id)).to.deep.equal([`ask:${askId}:0`, `ask:${askId}:1`]);
      await until('progress', () => replies.progress(id).some((m) => m.startsWith('Question posted')));
      expect(replies.progress(id).find((m) => m.startsWith('Question posted'))).to.match(
        /^Question posted to #inc-5001; waiting for an answer until \d{4}-\d\d-\d\dT/,
      );
      // No app_token or events_port in this worker's config: it says clicks cannot reach it.
      expect(
        replies.progress(id).some((m) => m.startsWith('Warning: [fn_slack] app_token (Socket Mode) and events_port (HTTP) are not set')),
      ).to.equal(true);
      await sleep(150);
      expect(replies.finals(id)).to.have.length(0);
      const entry = (await n.store.ledger.get(id))!;
      expect(entry).to.include({ state: 'running', inFlight: false });
      expect((await n.state.asks!.table.get(askId))!.state).to.equal('pending');
    });

    it('the first allowed click answers; a click by someone not allowed and a late click change nothing', async () => {
      const n = await node();
      const id = await ask(n, { slack_channel: 'inc-5001', slack_allowed_responders: 'alice@example.com,carol@example.com' });
      const ts = question()[0]!.ts;
      const askId = askIdOf(id);

      await n.click(emu.click(bob.id, channelId(), ts, `ask:${askId}:1`));
      expect(emu.ephemerals(bob.id).map((e) => e.text)).to.deep.equal([NOT_ALLOWED_TEXT]);
      expect((await n.state.asks!.table.get(askId))!.state).to.equal('pending');
      expect(buttons(ts)).to.have.length(2);

      // Carol's client still shows the buttons: her click is built now, handled after the answer.
      const late = emu.click(carol.id, channelId(), ts, `ask:${askId}:1`);
      await n.click(emu.click(alice.id, channelId(), ts, `ask:${askId}:0`));
      const final = await replies.waitForFinal(id);
      expect(final).to.include({ message_type: 0, complete: true });
      const content = final.results.content;
      expect(content).to.include({ answer: 'Approve', timed_out: false, channel: '#inc-5001', channel_id: channelId(), ts });
      expect(content.responder).to.deep.equal({ id: alice.id, name: 'Alice Analyst', email: 'alice@example.com' });
      expect(Date.parse(content.answered_at)).to.be.closeTo(Date.now(), 60_000);
      expect(content.url).to.match(/^https:\/\//);
      // Updated in place: the answer, who and when, no buttons.
      const updated = emu.message(channelId(), ts)!;
      expect(buttons(ts)).to.have.length(0);
      expect(JSON.stringify(updated.blocks)).to.contain('Approve').and.contain(`answered by <@${alice.id}>`).and.contain('<!date^');
      expect(updated.text).to.contain('Approve, answered by');
      const entry = (await n.store.ledger.get(id))!;
      expect(entry.state).to.equal('succeeded');
      expect(entry.repliedAt).to.be.instanceOf(Date);

      await n.click(late);
      expect(emu.ephemerals(carol.id).map((e) => e.text)).to.deep.equal(['This question was already answered by Alice Analyst: Approve.']);
      const row = (await n.state.asks!.table.get(askId))!;
      expect(row).to.include({ state: 'answered', answer: 'Approve' });
      expect(row.finishedAt).to.be.a('number');
      await sleep(300);
      expect(replies.finals(id)).to.have.length(1);
      expect(emu.calls('chat.postMessage')).to.equal(1);
    });

    it('two clicks at once at two workers (two store connections) give one answer', async () => {
      const one = await node();
      const two = await node();
      for (let round = 0; round < 4; round++) {
        const id = await ask(round % 2 ? two : one, { slack_channel: 'inc-5001' });
        const ts = question().at(-1)!.ts;
        const askId = askIdOf(id);
        const a = emu.click(alice.id, channelId(), ts, `ask:${askId}:0`);
        const b = emu.click(bob.id, channelId(), ts, `ask:${askId}:1`);
        await Promise.all([one.click(a), two.click(b)]);
        const final = await replies.waitForFinal(id);
        await sleep(200);
        expect(replies.finals(id), `round ${round}`).to.have.length(1);
        const row = (await one.state.asks!.table.get(askId))!;
        expect(final.results.content.answer).to.equal(row.answer);
        const loser = row.answer === 'Approve' ? bob : alice;
        expect(emu.ephemerals(loser.id).at(-1)!.text).to.match(/^This question was already answered by/);
      }
    });

    it('the timeout gives the default answer: timed_out, the question says it expired, escalated; a late click changes nothing', async () => {
      const n = await node();
      const id = await ask(n, {
        slack_channel: 'inc-5001',
        slack_ask_timeout: 1,
        slack_default_answer: 'Reject',
        slack_escalation_channel: 'soc-leads',
      });
      const ts = question()[0]!.ts;
      const late = emu.click(alice.id, channelId(), ts, `ask:${askIdOf(id)}:0`);
      const final = await replies.waitForFinal(id);
      expect(final.results.content).to.include({ answer: 'Reject', timed_out: true, responder: null, answered_at: null, ts });
      expect(final.results.reason).to.match(/^No answer by /);
      expect(buttons(ts)).to.have.length(0);
      expect(emu.message(channelId(), ts)!.text).to.contain('Expired at').and.contain('the default answer Reject was given');
      const leads = emu.messages(emu.channelByName('soc-leads')!.id);
      expect(leads).to.have.length(1);
      expect(leads[0]!.text).to.contain('incident 5001 got no answer');
      await n.click(late);
      expect(emu.ephemerals(alice.id).map((e) => e.text)).to.deep.equal(['This question expired (default answer: Reject).']);
      await sleep(500); // several sweeps
      expect(replies.finals(id)).to.have.length(1);
      expect(emu.messages(emu.channelByName('soc-leads')!.id)).to.have.length(1);
    });

    it('without a default the timeout answers null', async () => {
      const n = await node();
      const id = await ask(n, { slack_channel: 'inc-5001', slack_ask_timeout: 1 });
      expect((await replies.waitForFinal(id)).results.content).to.include({ answer: null, timed_out: true });
    });

    it('DMs to two people: the first answer wins and both questions say who answered', async () => {
      const n = await node();
      const id = await ask(n, { slack_user_emails: 'alice@example.com,bob@example.com' });
      const aliceDm = emu.imWith(alice.id)!;
      const bobDm = emu.imWith(bob.id)!;
      const [qa] = question(aliceDm);
      const [qb] = question(bobDm);
      expect(qa && qb).to.not.equal(undefined);
      const late = emu.click(alice.id, aliceDm, qa!.ts, `ask:${askIdOf(id)}:0`);
      await n.click(emu.click(bob.id, bobDm, qb!.ts, `ask:${askIdOf(id)}:1`));
      const final = await replies.waitForFinal(id);
      expect(final.results.content).to.include({ answer: 'Reject', channel: '@bob@example.com', channel_id: bobDm, ts: qb!.ts });
      for (const [dm, ts] of [
        [aliceDm, qa!.ts],
        [bobDm, qb!.ts],
      ] as const) {
        expect(buttons(ts, dm)).to.have.length(0);
        expect(emu.message(dm, ts)!.text).to.contain('Reject, answered by');
      }
      await n.click(late);
      expect(emu.ephemerals(alice.id).map((e) => e.text)).to.deep.equal(['This question was already answered by Bob Lead: Reject.']);
      await sleep(200);
      expect(replies.finals(id)).to.have.length(1);
    });

    it('the question is never posted twice for one invocation id: a redelivery, and a post whose answer was lost', async () => {
      const n = await node();
      const id = await ask(n, { slack_channel: 'inc-5001' });
      const again = n.invoke(
        replies,
        { incident_id: 5001, slack_channel: 'inc-5001', slack_question: 'Isolate host FS01?', slack_answers: 'Approve,Reject' },
        { id, redelivered: true },
      );
      expect(await again.done).to.equal('ack');
      expect(question()).to.have.length(1);
      // Slack posts, the answer never arrives: the retry finds the post by its metadata.
      emu.failNext('chat.postMessage', { afterEffect: true, closeSocket: true });
      const lost = n.invoke(replies, { incident_id: 5001, slack_channel: 'inc-5001', slack_question: 'Second?', slack_answers: 'Yes,No' });
      expect(await lost.done).to.deep.equal({ retryAfterMs: 0 }); // retried later, no final reply
      const retry = n.invoke(
        replies,
        { incident_id: 5001, slack_channel: 'inc-5001', slack_question: 'Second?', slack_answers: 'Yes,No' },
        { id: lost.id, redelivered: true },
      );
      expect(await retry.done).to.equal('ack');
      expect(question().filter((m) => m.text.includes('Second?'))).to.have.length(1);
      expect((await n.state.asks!.table.get(askIdOf(lost.id)))!.posts).to.have.length(1);
      await n.click(emu.click(alice.id, channelId(), question().at(-1)!.ts, `ask:${askIdOf(lost.id)}:0`));
      expect((await replies.waitForFinal(lost.id)).results.content.answer).to.equal('Yes');
      await sleep(200);
      expect(replies.finals(lost.id)).to.have.length(1);
    });

    it('a worker that dies between the answer and the reply loses nothing: the sweeper finishes the ask', async () => {
      const n = await node();
      const id = await ask(n, { slack_channel: 'inc-5001' });
      const ts = question()[0]!.ts;
      const rt = n.state.asks!;
      const row = (await rt.table.get(askIdOf(id)))!;
      // What a click does up to its conditional update; its worker dies before finishing.
      const now = Date.now();
      const reply = rt.deferred.finalReply(row.ticket, { content: { answer: 'Approve', timed_out: false } });
      expect(
        await rt.table.answer(row.askId, {
          answer: 'Approve',
          responder: { id: alice.id, name: 'Alice Analyst', email: 'alice@example.com' },
          endedAt: now,
          reply,
          claimUntil: now + 500,
        }),
      ).to.equal(true);
      const final = await replies.waitForFinal(id);
      expect(final.results.content.answer).to.equal('Approve');
      await until('the question updated', () => buttons(ts).length === 0);
      await sleep(400);
      expect(replies.finals(id)).to.have.length(1);
    });

    describe('escalation and final reply, once', () => {
      const leadsId = () => emu.channelByName('soc-leads')!.id;
      const escalations = () => emu.messages(leadsId()).filter((m) => m.metadata?.event_type === ESCALATION_EVENT_TYPE);
      /** A worker whose sweeper runs only at its start: the test decides who finishes. */
      const idleSweeper = () => node({ ask_sweep_interval: '3600' });

      /** An ask whose deadline passed, ended (expired) by `n` and not finished: what a slow ender leaves. */
      async function expiredAsk(n: AskNode): Promise<string> {
        const id = await ask(n, { slack_channel: 'inc-5001', slack_ask_timeout: 1, slack_default_answer: 'Reject', slack_escalation_channel: 'soc-leads' });
        const rt = n.state.asks!;
        const row = (await rt.table.get(askIdOf(id)))!;
        while (Date.now() <= row.deadline) await sleep(20);
        expect(await expireAsk(rt, row)).to.equal(true);
        return id;
      }

      it('two finishers of one expired ask at once (a slow ender, a sweeper) post one escalation and send one final reply', async () => {
        const a = await idleSweeper();
        const b = await idleSweeper();
        const id = await expiredAsk(a);
        const row = (await a.state.asks!.table.get(askIdOf(id)))!;
        // Each post is held a moment before Slack stores it: a finisher that looked and found
        // nothing cannot have posted yet when the other one looks.
        emu.failNext('chat.postMessage', { delayMs: 300, times: 2 });
        await Promise.all([finishAsk(a.state.asks!, row), finishAsk(b.state.asks!, row)]);
        expect(escalations()).to.have.length(1);
        expect(escalations()[0]!.text).to.contain('incident 5001 got no answer');
        await replies.waitForFinal(id);
        await sleep(300); // a second final reply would be on the queue by now
        expect(replies.finals(id)).to.have.length(1);
        expect((await a.state.asks!.table.get(row.askId))!.finishedAt).to.be.a('number');
      });

      it('a finisher run again finds the escalation after more than 100 later messages, reading only since the expiry', async () => {
        const n = await idleSweeper();
        const id = await expiredAsk(n);
        const rt = n.state.asks!;
        const row = (await rt.table.get(askIdOf(id)))!;
        // The first finisher posts the escalation and dies before its final reply.
        const died = new Error('the worker died');
        const dying = { ...rt, deferred: { finalReply: rt.deferred.finalReply.bind(rt.deferred), send: () => Promise.reject(died) } };
        expect(await finishAsk(dying, row).catch((err: unknown) => err)).to.equal(died);
        expect(escalations()).to.have.length(1);
        emu.seedMessages(leadsId(), 250, { text: 'busy channel' });
        emu.resetCalls();
        await finishAsk(rt, (await rt.table.get(row.askId))!);
        expect(escalations()).to.have.length(1);
        expect((await replies.waitForFinal(id)).results.content).to.include({ answer: 'Reject', timed_out: true });
        const reads = emu.callLog.filter((c) => c.method === 'conversations.history');
        expect(reads.length).to.be.greaterThan(1); // more than one page: 250 later messages
        for (const r of reads) expect(Number(r.params.oldest)).to.be.closeTo(row.deadline / 1000 - 300, 1);
      });
    });

    describe('retention', () => {
      /** Moves an ask's times `days` into the past, as if it had been asked and ended then. */
      async function age(store: Store, askId: string, days: number): Promise<void> {
        const ms = days * DAY;
        await store.sql.execute(
          `UPDATE ${ASK_TABLE} SET created_at = created_at - $2, ended_at = ended_at - $2, finished_at = finished_at - $2 WHERE ask_id = $1`,
          [askId, ms],
        );
      }

      /** An ask of `timeout` seconds in #inc-5001: its invocation, ask id and question ts. */
      async function askIn(n: AskNode, timeout: number): Promise<{ id: string; askId: string; ts: string }> {
        const id = await ask(n, { slack_channel: 'inc-5001', slack_ask_timeout: timeout, slack_default_answer: 'Reject' });
        return { id, askId: askIdOf(id), ts: question().at(-1)!.ts };
      }

      it('a starting worker prunes asks finished before the retention, never pending, unfinished or recent ones; a late click is told it is over', async () => {
        const first = await node({}, 30);
        const rt = first.state.asks!;
        // Answered long ago; Alice's second click is built while the buttons are still there.
        const old = await askIn(first, 600);
        const lateClick = emu.click(alice.id, channelId(), old.ts, `ask:${old.askId}:1`);
        await first.click(emu.click(alice.id, channelId(), old.ts, `ask:${old.askId}:0`));
        await replies.waitForFinal(old.id);
        // Expired long ago (the sweeper gives the default answer).
        const expired = await askIn(first, 1);
        await replies.waitForFinal(expired.id);
        // Answered within the retention.
        const recent = await askIn(first, 600);
        await first.click(emu.click(alice.id, channelId(), recent.ts, `ask:${recent.askId}:0`));
        await replies.waitForFinal(recent.id);
        // Still pending, asked long ago.
        const pending = await askIn(first, 600);
        // Ended long ago but never finished: its ender still holds it (as if it were mid-finish).
        const pendingRow = (await rt.table.get(pending.askId))!;
        const unfinishedId = 'unfinished0000000000000';
        await rt.table.insert({ ...pendingRow, askId: unfinishedId, invocationId: randomUUID() });
        const endedAt = Date.now();
        const reply = rt.deferred.finalReply(pendingRow.ticket, new Error('unused'));
        const ending = { answer: 'Approve', responder: null, endedAt, reply, claimUntil: endedAt + 100 * DAY };
        expect(await rt.table.answer(unfinishedId, ending)).to.equal(true);
        await first.close();
        nodes.splice(nodes.indexOf(first), 1);

        for (const a of [old.askId, expired.askId, pending.askId, unfinishedId]) await age(first.store, a, 31);
        await age(first.store, recent.askId, 29);

        // One sweep (at start) and no more, so that the clock moved below expires nothing.
        const second = await node({ ask_sweep_interval: '3600' }, 30);
        const table = second.state.asks!.table;
        await until('the old answered ask pruned', async () => (await table.get(old.askId)) === undefined);
        expect(await table.get(expired.askId)).to.equal(undefined);
        expect((await table.get(recent.askId))!.state).to.equal('answered');
        expect((await table.get(pending.askId))!.state).to.equal('pending');
        expect(await table.get(unfinishedId)).to.include({ state: 'answered', finishedAt: null });
        expect(await table.counts()).to.deep.equal({ pending: 1, answered: 2, expired: 0 });

        // A click on buttons of a question the store does not know yet (just posted) is asked to try again.
        const fresh = emu.click(alice.id, channelId(), pending.ts, `ask:${pending.askId}:0`);
        (fresh.actions as BlockAction[])[0]!.action_id = `ask:${askIdOf(randomUUID())}:0`;
        await second.click(fresh);
        expect(emu.ephemerals(alice.id).at(-1)!.text).to.match(/try again in a moment/);
        // A late click on the pruned question, 31 days after it was posted: it is over.
        second.state.asks!.now = () => Date.now() + 31 * DAY;
        await second.click(lateClick);
        expect(emu.ephemerals(alice.id).at(-1)!.text).to.equal(NO_LONGER_OPEN_TEXT);
        expect(replies.finals(old.id)).to.have.length(1);
      });
    });

    it('bad input gets a clear error and posts nothing', async () => {
      const n = await node();
      const run = n.invoke(replies, { incident_id: 5001, slack_channel: 'inc-5001', slack_question: 'Q?', slack_answers: 'Yes,Yes' });
      await run.done;
      const final = await replies.waitForFinal(run.id);
      expect(final).to.include({ message_type: 1, message: 'slack_answers lists "Yes" twice: each answer must be a different label' });
      const both = n.invoke(replies, {
        incident_id: 5001,
        slack_channel: 'inc-5001',
        slack_user_emails: 'alice@example.com',
        slack_question: 'Q?',
        slack_answers: 'Yes',
      });
      await both.done;
      expect((await replies.waitForFinal(both.id)).error.code).to.equal('conflicting_inputs');
      expect(question()).to.have.length(0);
    });
  });
}
