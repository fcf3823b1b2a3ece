/**
 * slack_send_direct_message when the worker dies (SIGKILL) after Slack accepted the first
 * person's message and before the invocation finished: the broker redelivers it to a new
 * worker process, which finds that message by its metadata and sends only the rest.
 */
import { expect } from 'chai';
import { SlackEmulator } from '../../support/slack-emulator.js';
import { Caller, deleteDestination, WorkerProcess, writeConfig, type TestConfig } from '../../support/harness.js';
import { poller } from '../../support/until.js';

/** Long enough that the worker is surely killed while it waits on this call. */
const HANG_MS = 60_000;

const until = poller({ timeoutMs: 30_000, everyMs: 50 });

describe('fn_slack responder verbs: redelivery after the worker died mid-invocation (SIGKILL)', function () {
  this.timeout(120_000);
  // The broker is shared: another run closing every connection takes the caller's reply
  // queue with it. Rerun then (each try has its own emulator, worker and queue).
  this.retries(2);
  let emu: SlackEmulator;
  let cfg: TestConfig;
  let worker: WorkerProcess | undefined;
  let caller: Caller;

  beforeEach(async () => {
    emu = await SlackEmulator.start();
    cfg = writeConfig({ worker: { max_attempts: 3 }, sections: { fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl } } });
    caller = await Caller.open();
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
  });

  afterEach(async () => {
    await caller?.close();
    await worker?.stop('SIGKILL');
    await deleteDestination(cfg.destination).catch(() => undefined);
    await emu?.close();
  });

  it('slack_send_direct_message: the message sent before the crash is not sent again', async () => {
    const alice = emu.addUser({ name: 'alice', email: 'alice@example.com' });
    const bob = emu.addUser({ name: 'bob', email: 'bob@example.com' });
    // alice's message goes out; the worker hangs on bob's.
    emu.failNext('chat.postMessage', { delayMs: HANG_MS, closeSocket: true, after: 1 });
    const id = caller.publish(
      cfg.destination,
      caller.invocation('slack_send_direct_message', { slack_user_emails: 'alice@example.com,bob@example.com', slack_text: 'Incident 4003 needs you' }),
    );
    await until("bob's message under way", () => emu.calls('chat.postMessage') === 2);
    await worker!.stop('SIGKILL');
    emu.clearFaults();
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
    await caller.waitForFinal([id], 60_000);
    const [reply, ...more] = caller.finalReplies(id) as Record<string, any>[];
    expect(more).to.have.length(0);
    expect(reply!.message, JSON.stringify(reply)).to.equal('Completed');
    expect(emu.messages(emu.imWith(alice.id)!).map((m) => m.text)).to.deep.equal(['Incident 4003 needs you']);
    expect(emu.messages(emu.imWith(bob.id)!).map((m) => m.text)).to.deep.equal(['Incident 4003 needs you']);
    expect(reply!.results.content.messages.map((m: { user_id: string }) => m.user_id)).to.deep.equal([alice.id, bob.id]);
    const progress = (caller.replies.get(id) ?? []).map((r) => r.message);
    expect(progress).to.include('alice@example.com already had the message (an earlier attempt sent it)');
  });
});
