/**
 * The Socket Mode receiver against the emulator (Slack's own client on both ends of the
 * real WebSocket): it acknowledges only what was recorded, reconnects after Slack's
 * refresh and after a refusal past the connection limit, says so on /readyz and in its
 * metrics, and refuses at start a token Slack will never accept.
 */
import { expect } from 'chai';
import { silentLogger } from '../../../../../src/core/logging.js';
import { WorkerMetrics } from '../../../../../src/core/metrics.js';
import { ConfigError } from '../../../../../src/core/runtime/errors.js';
import type { ListenerContext, SubmitOptions, SubmittedInvocation } from '../../../../../src/core/runtime/plugin.js';
import { EnvelopeRecorder } from '../../../../../src/functions/slack/inbound/recorder.js';
import { SocketModeReceiver } from '../../../../../src/functions/slack/inbound/socket-mode-receiver.js';
import type { EmulatedUser } from '../../../../support/slack-emulator.js';
import { sampleValue } from '../../../../support/prometheus.js';
import { useSlackEmulator } from '../../../../support/slack-hooks.js';
import { poller } from '../../../../support/until.js';

const until = poller({ timeoutMs: 10_000, everyMs: 10 });

interface Submitted {
  queue: string;
  invocation: SubmittedInvocation;
  opts: SubmitOptions;
}

describe('SocketModeReceiver', function () {
  this.timeout(30_000);
  const slack = useSlackEmulator({ socketMode: { ackTimeoutMs: 300 } });
  let alice: EmulatedUser;
  const fast = { initialMs: 50, maxMs: 200, factor: 2, jitter: 0 as const };

  beforeEach(async () => {
    alice = slack.emu.addUser({ name: 'alice', email: 'alice@example.com' });
    slack.emu.subscribe('message.channels');
  });

  function receiver(submit: (s: Submitted) => Promise<void>, metrics = new WorkerMetrics({ processMetrics: false }), appToken = slack.emu.appToken) {
    const warnings: string[] = [];
    const base = silentLogger();
    const log: ListenerContext['log'] = Object.assign(Object.create(base) as ListenerContext['log'], {
      warn: (m: string) => void warnings.push(m),
      child: () => log,
    });
    const ctx: ListenerContext = {
      log,
      metrics: metrics.forPlugin('fn_slack'),
      submit: (queue, invocation, opts) => submit({ queue, invocation, opts }),
    };
    const r = new SocketModeReceiver({
      appToken,
      apiUrl: slack.emu.apiUrl,
      recorder: new EnvelopeRecorder('fn_slack.inbound', ctx),
      log,
      metrics: ctx.metrics,
      reconnect: fast,
      clientPingTimeoutMs: 1000,
    });
    slack.cleanup(() => r.stop());
    return { r, warnings, metrics };
  }

  function channel(name: string): string {
    return slack.emu.seedChannel({ name, members: [alice.id, slack.emu.botUserId], creator: alice.id }).id;
  }

  it('submits each envelope with its dedupe key and channel, and acknowledges it only after the submit resolved', async () => {
    const got: Submitted[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const { r } = receiver(async (s) => {
      got.push(s);
      await gate;
    });
    await r.start();
    expect(r.status()).to.deep.equal({ ready: true, detail: 'connected' });
    const ch = channel('inc-5001');
    slack.emu.postAsUser(alice.id, ch, 'hello');
    await until('the submit', () => got.length === 1);
    const [env] = slack.emu.socketMode.delivered();
    await new Promise((res) => setTimeout(res, 100));
    expect(env!.ackedAt, 'not acked before the record is confirmed').to.equal(undefined);
    release();
    await until('the ack', () => env!.ackedAt !== undefined);
    expect(got[0]!.queue).to.equal('fn_slack.inbound');
    expect(got[0]!.opts.messageId).to.equal(`event:${env!.payload.event_id as string}`);
    expect(got[0]!.opts.orderingKey).to.equal(ch);
    expect(got[0]!.invocation).to.deep.include({ function: { name: 'slack_inbound' } });
    expect(got[0]!.invocation.inputs).to.deep.include({ kind: 'events_api', retry_attempt: 0 });
  });

  it('does not acknowledge what it could not record: Slack resends it, and the resend is recorded', async () => {
    // Room for the resend's ack on a loaded machine: a second missed timeout would send it a third time.
    slack.emu.socketMode.configure({ ackTimeoutMs: 1500 });
    let failures = 1;
    const got: Submitted[] = [];
    const { r, warnings, metrics } = receiver(async (s) => {
      if (failures-- > 0) throw new Error('broker unreachable');
      got.push(s);
    });
    await r.start();
    slack.emu.postAsUser(alice.id, channel('inc-5002'), 'keep me');
    const [env] = await (async () => {
      await until('the envelope', () => slack.emu.socketMode.delivered().length === 1);
      return slack.emu.socketMode.delivered();
    })();
    await until('the ack of the resend', () => env!.ackedAt !== undefined);
    expect(env!.sends).to.equal(2);
    expect(got).to.have.length(1);
    expect(got[0]!.invocation.inputs.retry_attempt).to.equal(1);
    expect(warnings.join('\n')).to.match(/Could not record a Slack events_api envelope .* not acknowledged/);
    const text = await metrics.render();
    const count = (outcome: string) =>
      sampleValue(text, 'worker_plugin_slack_inbound_envelopes_total', {
        package: 'fn_slack',
        transport: 'socket_mode',
        type: 'events_api',
        outcome,
      });
    expect([count('not_recorded'), count('retry_recorded')]).to.deep.equal([1, 1]);
  });

  it('reconnects after refresh_requested and after a drop, logging each reason once', async () => {
    const got: Submitted[] = [];
    const { r, warnings, metrics } = receiver(async (s) => void got.push(s));
    await r.start();
    const ch = channel('inc-5003');
    for (let i = 0; i < 2; i++) {
      slack.emu.socketMode.disconnect('refresh_requested');
      await until('reconnected', () => slack.emu.socketMode.connectionsOpened === 2 + i && r.status().ready && slack.emu.socketMode.connectionCount === 1);
    }
    slack.emu.socketMode.drop();
    await until('reconnected after the drop', () => slack.emu.socketMode.connectionsOpened === 4 && r.status().ready);
    slack.emu.postAsUser(alice.id, ch, 'after all that');
    await until('the event', () => got.length === 1);
    expect(warnings.filter((w) => w.includes('refresh_requested'))).to.have.length(1);
    expect(warnings.filter((w) => w.includes('(dropped)'))).to.have.length(1);
    const text = await metrics.render();
    expect(sampleValue(text, 'worker_plugin_slack_socket_mode_disconnects_total', { package: 'fn_slack', reason: 'refresh_requested' })).to.equal(2);
    expect(sampleValue(text, 'worker_plugin_slack_socket_mode_disconnects_total', { package: 'fn_slack', reason: 'dropped' })).to.equal(1);
  });

  it('refused past the connection limit (too_many_websockets): not ready, retries with backoff, connects when a slot frees', async () => {
    slack.emu.socketMode.configure({ maxConnections: 1 });
    const first = receiver(async () => undefined);
    await first.r.start();
    const second = receiver(async () => undefined);
    const started = second.r.start();
    await until('refused twice', () => slack.emu.socketMode.connectionsOpened >= 3);
    expect(second.r.status().ready).to.equal(false);
    expect(second.r.status().detail).to.contain('too_many_websockets');
    expect(second.warnings.join('\n')).to.contain('too_many_websockets');
    await first.r.stop();
    await started;
    await until('the second connects', () => second.r.status().ready);
  });

  it('refuses at start an app token Slack will never accept, saying what to fix', async () => {
    slack.emu.addAppToken('xapp-1-A0-nope', []);
    const { r } = receiver(async () => undefined, undefined, 'xapp-1-A0-nope');
    const err = await r.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as Error).message).to.contain('lacks the scope connections:write');
  });
});
