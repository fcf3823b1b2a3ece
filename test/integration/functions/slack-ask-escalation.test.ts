/**
 * slack_ask's escalation (and final reply) are done once, with real parts (SQLite and
 * PostgreSQL stores, the emulator with the real web-api client, a real reply queue):
 * - two finishers of one expired ask at once (the ender slow past its hold and another
 *   worker's sweeper that claimed the row) post one escalation and send one final reply;
 * - a finisher that runs again after the escalation was posted finds it however many
 *   messages came after it in a busy channel, reading only what came since the expiry.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { LocalPlatform } from '../../../src/platforms/local/local-platform.js';
import type { Store } from '../../../src/core/store/store.js';
import { ESCALATION_EVENT_TYPE, expireAsk, finishAsk } from '../../../src/functions/slack/ask/ask-finish.js';
import { askIdOf } from '../../../src/functions/slack/ask/ask-function.js';
import { SlackEmulator } from '../../support/slack-emulator.js';
import { tempDir } from '../../support/harness.js';
import { AskNode, dropAskSchemas, newSchema, openAskStore, ReplyCollector, type Dialect } from '../../support/ask-fixture.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const dialect of ['sqlite', 'postgres'] as Dialect[]) {
  describe(`slack_ask escalation, once (${dialect})`, function () {
    this.timeout(30_000);
    let emu: SlackEmulator;
    let replies: ReplyCollector;
    let dir: string;
    let where: string;
    const stores: Store[] = [];
    const nodes: AskNode[] = [];

    /** A worker whose sweeper runs only at its start: the test decides who finishes. */
    async function node(): Promise<AskNode> {
      const store = await openAskStore(dialect, where);
      stores.push(store);
      const n = await AskNode.start({
        store,
        platform: new LocalPlatform(path.join(dir, 'files')),
        apiUrl: emu.apiUrl,
        token: emu.botToken,
        config: { ask_sweep_interval: '3600' },
      });
      nodes.push(n);
      return n;
    }

    beforeEach(async () => {
      emu = await SlackEmulator.start();
      const alice = emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
      emu.seedChannel({ name: 'inc-5001', members: [emu.botUserId, alice.id] });
      emu.seedChannel({ name: 'soc-leads', members: [emu.botUserId] });
      replies = await ReplyCollector.open();
      dir = tempDir('slack-ask-esc-');
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

    const leadsId = () => emu.channelByName('soc-leads')!.id;
    const escalations = () => emu.messages(leadsId()).filter((m) => m.metadata?.event_type === ESCALATION_EVENT_TYPE);

    /** An ask whose deadline passed, ended (expired) by `n` and not finished: what a slow ender leaves. */
    async function expiredAsk(n: AskNode): Promise<string> {
      const run = n.invoke(replies, {
        incident_id: 5001,
        slack_channel: 'inc-5001',
        slack_question: 'Isolate host FS01?',
        slack_answers: 'Approve,Reject',
        slack_ask_timeout: 1,
        slack_default_answer: 'Reject',
        slack_escalation_channel: 'soc-leads',
      });
      expect(await run.done).to.equal('ack');
      const rt = n.state.asks!;
      const row = (await rt.table.get(askIdOf(run.id)))!;
      while (Date.now() <= row.deadline) await sleep(20);
      expect(await expireAsk(rt, row)).to.equal(true);
      return run.id;
    }

    it('two finishers of one expired ask at once post one escalation and send one final reply', async () => {
      const a = await node();
      const b = await node();
      const id = await expiredAsk(a);
      const askId = askIdOf(id);
      const row = (await a.state.asks!.table.get(askId))!;
      // Each post is held a moment before Slack stores it: a finisher that looked and found
      // nothing cannot have posted yet when the other one looks.
      emu.failNext('chat.postMessage', { delayMs: 300, times: 2 });
      await Promise.all([finishAsk(a.state.asks!, row), finishAsk(b.state.asks!, row)]);
      expect(escalations()).to.have.length(1);
      expect(escalations()[0]!.text).to.contain('incident 5001 got no answer');
      await replies.waitForFinal(id);
      await sleep(300); // a second final reply would be on the queue by now
      expect(replies.finals(id)).to.have.length(1);
      expect((await a.state.asks!.table.get(askId))!.finishedAt).to.be.a('number');
    });

    it('a finisher run again finds the escalation after more than 100 later messages, reading only since the expiry', async () => {
      const n = await node();
      const id = await expiredAsk(n);
      const rt = n.state.asks!;
      const row = (await rt.table.get(askIdOf(id)))!;
      // The first finisher posts the escalation and dies before its final reply.
      const dying = { ...rt, deferred: { finalReply: rt.deferred.finalReply.bind(rt.deferred), send: () => Promise.reject(new Error('the worker died')) } };
      let died: unknown;
      await finishAsk(dying, row).catch((err) => (died = err));
      expect((died as Error).message).to.equal('the worker died');
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
}
