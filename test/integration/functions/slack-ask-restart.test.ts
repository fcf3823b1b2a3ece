/**
 * slack_ask across worker processes: the worker that posted a question is killed (SIGKILL)
 * and another starts on the same store and queue.
 * - A pending question is answered after the restart: the click ends the ask and the one
 *   handling it dies before the final reply; the restarted worker's sweeper sends it.
 * - A deadline that passed while every worker was down is expired when one starts.
 * Throughout: one final reply per invocation, one question posted.
 */
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { silentLogger } from '../../../src/core/logging.js';
import { LedgerDeferredReplies } from '../../../src/core/runtime/deferred.js';
import { SqliteStore } from '../../../src/core/store/sqlite-store.js';
import { handleAnswerClick } from '../../../src/functions/slack/ask/ask-answer.js';
import { askIdOf } from '../../../src/functions/slack/ask/ask-function.js';
import { AskTable } from '../../../src/functions/slack/ask/ask-table.js';
import { slackPlugin } from '../../../src/functions/slack/index.js';
import { createSlackState } from '../../../src/functions/slack/state.js';
import { SqlConversationTable } from '../../../src/functions/slack/store/conversations.js';
import { LocalPlatform } from '../../../src/platforms/local/local-platform.js';
import { SlackEmulator, type EmulatedUser } from '../../support/slack-emulator.js';
import { Caller, deleteDestination, WorkerProcess, writeConfig, type TestConfig } from '../../support/harness.js';
import { validateSection } from '../../../src/core/config.js';
import type { SlackConfig } from '../../../src/functions/slack/config.js';
import type { BlockAction } from '../../../src/functions/slack/inbound/router.js';
import { poller } from '../../support/until.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const until = poller({ timeoutMs: 30_000, everyMs: 50 });

describe('slack_ask across a worker killed with SIGKILL and a restart', function () {
  this.timeout(120_000);
  let emu: SlackEmulator;
  let alice: EmulatedUser;
  let cfg: TestConfig;
  let worker: WorkerProcess | undefined;
  let caller: Caller;

  function config(sweepSeconds: number): TestConfig {
    return writeConfig({
      destination: cfg?.destination,
      worker: { max_attempts: 3, ...(cfg ? { store: path.join(cfg.dir, 'worker.db'), platform_dir: path.join(cfg.dir, 'files') } : {}) },
      sections: { fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl, ask_sweep_interval: sweepSeconds, ask_lease: 1 } },
    });
  }

  beforeEach(async () => {
    emu = await SlackEmulator.start();
    alice = emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
    emu.seedChannel({ name: 'inc-6001', members: [emu.botUserId, alice.id] });
    cfg = undefined as unknown as TestConfig;
    cfg = config(0.5);
    caller = await Caller.open();
  });

  afterEach(async () => {
    await caller?.close();
    await worker?.stop('SIGKILL');
    worker = undefined;
    await deleteDestination(cfg.destination).catch(() => undefined);
    await emu?.close();
  });

  const channelId = () => emu.channelByName('inc-6001')!.id;
  const questions = () =>
    emu.messages(channelId()).filter((m) => m.metadata !== undefined || m.blocks?.some((b) => (b as { type: string }).type === 'actions'));

  async function askAndKill(inputs: Record<string, unknown>): Promise<string> {
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
    const id = randomUUID(); // message_id (the invocation id) and correlation_id alike
    caller.publish(
      cfg.destination,
      caller.invocation('slack_ask', {
        incident_id: 6001,
        slack_channel: 'inc-6001',
        slack_question: 'Isolate host FS02?',
        slack_answers: 'Approve,Reject',
        ...inputs,
      }),
      { messageId: id, correlationId: id },
    );
    await until('the question posted', () => (caller.replies.get(id) ?? []).some((r) => String(r.message).startsWith('Question posted')));
    await worker.stop('SIGKILL');
    worker = undefined;
    return id;
  }

  it('a question pending across kill -9 and a restart is answered, with one final reply', async () => {
    const id = await askAndKill({ slack_ask_timeout: 600 });
    const restarted = config(0.5);
    worker = WorkerProcess.start(restarted.file);
    await worker.waitFor();

    // Alice clicks; the worker handling it ends the ask and updates the question, then dies
    // before the final reply (its reply connection is gone).
    const store = SqliteStore.open(path.join(cfg.dir, 'worker.db'), { tables: slackPlugin.tables ?? [] });
    try {
      const slackConfig = validateSection<SlackConfig>(
        { file: 't', sections: { fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl, rate_limits: 'off' } } },
        'fn_slack',
        slackPlugin.configSchema,
      );
      const state = createSlackState(slackConfig, silentLogger(), new SqlConversationTable(store.sql));
      const real = new LedgerDeferredReplies({ ledger: store.ledger, publish: () => Promise.reject(new Error('unused')), log: silentLogger() });
      const dying = { finalReply: real.finalReply.bind(real), send: () => Promise.reject(new Error('the worker died')) };
      const rt = {
        table: new AskTable(store.sql),
        client: state.client,
        channels: state.channels,
        conversations: state.conversations,
        deferred: dying,
        platform: new LocalPlatform(path.join(cfg.dir, 'files')),
        log: silentLogger(),
        leaseMs: 500,
        now: Date.now,
        withLock: store.withLock.bind(store),
      };
      const ts = questions()[0]!.ts;
      const payload = emu.click(alice.id, channelId(), ts, `ask:${askIdOf(id)}:0`);
      await handleAnswerClick(rt, (payload.actions as BlockAction[])[0]!, payload);
      expect((await rt.table.get(askIdOf(id)))!.state).to.equal('answered');
    } finally {
      await store.close();
    }

    await caller.waitForFinal([id], 30_000);
    await sleep(1500); // more sweeps: nothing more is sent
    const finals = caller.finalReplies(id) as Record<string, any>[];
    expect(finals).to.have.length(1);
    expect(finals[0]!.results.content).to.include({ answer: 'Approve', timed_out: false });
    expect(finals[0]!.results.content.responder).to.include({ id: alice.id, email: 'alice@example.com' });
    expect(questions()).to.have.length(1);
    expect(worker.output).to.match(/finishing what its answer left undone/);
  });

  it('a deadline that passed while every worker was down is expired at start', async () => {
    const id = await askAndKill({ slack_ask_timeout: 1, slack_default_answer: 'Reject' });
    await sleep(2000); // the deadline passes while nothing runs
    // A sweep interval of an hour: only the sweep at start can expire it in time.
    const restarted = config(3600);
    worker = WorkerProcess.start(restarted.file);
    await caller.waitForFinal([id], 30_000);
    await sleep(500);
    const finals = caller.finalReplies(id) as Record<string, any>[];
    expect(finals).to.have.length(1);
    expect(finals[0]!.results.content).to.include({ answer: 'Reject', timed_out: true, responder: null });
    expect(questions()).to.have.length(1);
    expect(emu.message(channelId(), questions()[0]!.ts)!.text).to.contain('Expired at');
  });
});
