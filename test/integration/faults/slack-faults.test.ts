/**
 * Fault: Slack rate-limits and fails (issue #5). Real RabbitMQ, a spawned `worker run`,
 * the Slack emulator answering 429 with Retry-After, 500s and 503s.
 *
 * - Bursts of 429s and 5xx: every invocation still succeeds, each posted once (a 500 on
 *   chat.postMessage is not repeated by the Slack client, because it may have taken
 *   effect; the runner retries the invocation, which reconciles through the message
 *   metadata before posting).
 * - Slack down for longer than the retry budget: after `max_attempts` deliveries each
 *   invocation gets one error reply with `retryable: true`, its message waits in the
 *   dead-letter queue (nothing lost), and it is not delivered again (nothing loops).
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { expectAnsweredSuccessfully, expectOnePostEach, openWatchedCaller, publishPosts, waitForFinal } from '../../support/fault-checks.js';
import { type Caller, deleteDestination, queueDepth, WorkerProcess, writeConfig, type TestConfig } from '../../support/harness.js';
import { SlackEmulator } from '../../support/slack-emulator.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fault: Slack rate limits and outages', function () {
  this.timeout(120_000);
  let emu: SlackEmulator;
  let cfg: TestConfig;
  let caller: Caller;
  let worker: WorkerProcess | undefined;

  beforeEach(async () => {
    emu = await SlackEmulator.start();
    caller = await openWatchedCaller();
  });

  afterEach(async () => {
    await worker?.stop('SIGKILL');
    worker = undefined;
    await caller.close();
    if (cfg) await deleteDestination(cfg.destination);
    await emu.close();
  });

  async function start(fnSlack: Record<string, number>, maxAttempts: number): Promise<void> {
    cfg = writeConfig({
      worker: { num_workers: 10, max_attempts: maxAttempts },
      sections: { fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl, ...fnSlack } },
    });
    worker = WorkerProcess.start(cfg.file);
    await worker.waitFor();
  }

  /** `n` posts spread over three incidents, whose channels are `<channel>-0` to `-2`. */
  function postBatch(n: number, channel: string): string[] {
    return publishPosts(
      caller,
      cfg.destination,
      Array.from({ length: n }, (_, i) => ({
        incident_id: 7000 + (i % 3),
        slack_channel: `${channel}-${i % 3}`,
        slack_is_channel_private: false,
        slack_text: `post ${i}`,
      })),
    );
  }

  it('bursts of 429 (Retry-After) and 500/503: every invocation succeeds, each posted once', async () => {
    // Budget 20 s per call: a call that meets the whole 503 burst waits 1+2+4 s.
    await start({ retry_budget: 20 }, 5);
    emu.failNext('chat.postMessage', { retryAfter: 1, times: 6 });
    emu.failNext('chat.postMessage', { status: 500, times: 3 });
    emu.failNext('conversations.members', { retryAfter: 2, times: 2 });
    // A read after the post (permalinks are built locally and need no call now).
    emu.failNext('conversations.members', { status: 503, times: 3 });
    const ids = postBatch(24, `rl-${randomUUID().slice(0, 6)}`);
    await waitForFinal(caller, ids, 90_000, () => worker!.output);
    await sleep(300);

    const twice = expectAnsweredSuccessfully(caller, ids);
    expect(twice, 'invocations answered twice').to.deep.equal([]);
    expectOnePostEach(emu, ids);
    // Every injected fault was served: 6 + 2 rate limits, 3 + 3 server errors.
    expect(emu.rateLimitedCount).to.equal(8);
    const statuses = worker!.output.match(/Attempt 1 of 5 failed, will retry: Slack chat\.postMessage failed \(HTTP 500\)/g) ?? [];
    expect(statuses.length, 'the 500s on chat.postMessage were retried by redelivery').to.equal(3);
    // The runner's retries are visible to the caller as progress, never as a second final reply.
    const retried = ids.filter((id) =>
      (caller.replies.get(id) ?? []).some((r) => r.complete === false && /^Attempt 1 failed/.test(String(r.message))),
    );
    expect(retried).to.have.length(3);
    expect(await queueDepth(`${cfg.destination}.dead`)).to.equal(0);
  });

  it('Slack down for longer than the retry budget: a retryable error reply after max_attempts, dead-lettered, no loop', async () => {
    // Budget 2 s per call and 2 deliveries: each invocation gives up after about 2 + 1 + 2 s.
    await start({ retry_budget: 2 }, 2);
    emu.setDown(true);
    const ids = postBatch(3, `down-${randomUUID().slice(0, 6)}`);
    await waitForFinal(caller, ids, 60_000, () => worker!.output);
    for (const id of ids) {
      const replies = caller.replies.get(id)!;
      const finals = replies.filter((r) => r.complete === true);
      expect(finals, JSON.stringify(replies)).to.have.length(1);
      expect(finals[0]!.message_type).to.equal(1);
      expect(finals[0]!.error).to.deep.equal({ code: 'slack_unavailable', retryable: true });
      expect(String(finals[0]!.message)).to.match(/kept failing \(HTTP \d{3}\) for longer than the retry budget of 2s/);
      expect(replies.filter((r) => /^Attempt 1 failed/.test(String(r.message)))).to.have.length(1);
    }
    // Nothing lost: the three wait in the dead-letter queue; nothing loops: no more Slack calls.
    const deadline = Date.now() + 5000;
    while ((await queueDepth(`${cfg.destination}.dead`)) < 3 && Date.now() < deadline) await sleep(100);
    expect(await queueDepth(`${cfg.destination}.dead`)).to.equal(3);
    expect(await queueDepth(cfg.destination)).to.equal(0);
    const calls = emu.calls();
    await sleep(3000);
    expect(emu.calls(), 'Slack calls after the invocations were dead-lettered').to.equal(calls);
    expect(emu.channels().filter((c) => c.name.startsWith('down-'))).to.have.length(0);
  });
});
