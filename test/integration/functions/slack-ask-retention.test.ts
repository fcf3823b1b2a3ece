/**
 * fn_slack_asks retention, on SQLite and PostgreSQL with the plugin's own setup and sweeper:
 * a worker that starts prunes the asks that finished longer ago than the worker's retention
 * (`[worker] ledger_retention_days`, passed to setup as `retentionDays`), and keeps pending
 * asks, ended-but-unfinished ones and recently finished ones whatever their age. A late click
 * on a pruned question is told it is no longer open.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { LocalPlatform } from '../../../src/platforms/local/local-platform.js';
import type { Store } from '../../../src/core/store/store.js';
import { NO_LONGER_OPEN_TEXT } from '../../../src/functions/slack/ask/ask-answer.js';
import { askIdOf } from '../../../src/functions/slack/ask/ask-function.js';
import { ASK_TABLE } from '../../../src/functions/slack/ask/ask-table.js';
import type { BlockAction } from '../../../src/functions/slack/inbound/router.js';
import { SlackEmulator, type EmulatedUser } from '../../support/slack-emulator.js';
import { tempDir } from '../../support/harness.js';
import { AskNode, dropAskSchemas, newSchema, openAskStore, ReplyCollector, type Dialect } from '../../support/ask-fixture.js';

const DAY = 86_400_000;

for (const dialect of ['sqlite', 'postgres'] as Dialect[]) {
  describe(`slack_ask retention (${dialect})`, function () {
    this.timeout(30_000);
    let emu: SlackEmulator;
    let alice: EmulatedUser;
    let replies: ReplyCollector;
    let dir: string;
    let where: string;
    const stores: Store[] = [];
    const nodes: AskNode[] = [];

    async function node(config: Record<string, string> = {}): Promise<AskNode> {
      const store = await openAskStore(dialect, where);
      stores.push(store);
      const platform = new LocalPlatform(path.join(dir, 'files'));
      const n = await AskNode.start({ store, platform, apiUrl: emu.apiUrl, token: emu.botToken, config, retentionDays: 30 });
      nodes.push(n);
      return n;
    }

    beforeEach(async () => {
      emu = await SlackEmulator.start();
      alice = emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
      emu.seedChannel({ name: 'inc-5001', members: [emu.botUserId, alice.id] });
      replies = await ReplyCollector.open();
      dir = tempDir('slack-ask-retention-');
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

    async function ask(n: AskNode, timeout: number): Promise<{ id: string; askId: string; ts: string }> {
      const run = n.invoke(replies, {
        incident_id: 5001,
        slack_channel: 'inc-5001',
        slack_question: 'Isolate host FS01?',
        slack_answers: 'Approve,Reject',
        slack_ask_timeout: timeout,
        slack_default_answer: 'Reject',
      });
      expect(await run.done).to.equal('ack');
      return { id: run.id, askId: askIdOf(run.id), ts: emu.messages(channelId()).at(-1)!.ts };
    }

    /** Moves an ask's times `days` into the past, as if it had been asked and ended then. */
    async function age(store: Store, askId: string, days: number): Promise<void> {
      const ms = days * DAY;
      await store.sql.execute(
        `UPDATE ${ASK_TABLE} SET created_at = created_at - $2, ended_at = ended_at - $2, finished_at = finished_at - $2 WHERE ask_id = $1`,
        [askId, ms],
      );
    }

    it('a starting worker prunes asks finished before the retention, never pending, unfinished or recent ones; a late click is told it is over', async () => {
      const first = await node();
      const rt = first.state.asks!;
      // Answered long ago; Alice's second click is built while the buttons are still there.
      const old = await ask(first, 600);
      const lateClick = emu.click(alice.id, channelId(), old.ts, `ask:${old.askId}:1`);
      await first.click(emu.click(alice.id, channelId(), old.ts, `ask:${old.askId}:0`));
      await replies.waitForFinal(old.id);
      // Expired long ago (the sweeper gives the default answer).
      const expired = await ask(first, 1);
      await replies.waitForFinal(expired.id);
      // Answered within the retention.
      const recent = await ask(first, 600);
      await first.click(emu.click(alice.id, channelId(), recent.ts, `ask:${recent.askId}:0`));
      await replies.waitForFinal(recent.id);
      // Still pending, asked long ago.
      const pending = await ask(first, 600);
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
      const second = await node({ ask_sweep_interval: '3600' });
      const table = second.state.asks!.table;
      const deadline = Date.now() + 10_000;
      while ((await table.get(old.askId)) !== undefined) {
        if (Date.now() > deadline) throw new Error('the old answered ask was never pruned');
        await new Promise((r) => setTimeout(r, 20));
      }
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
}
