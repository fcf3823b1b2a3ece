/**
 * The one durable step both receivers share: an envelope Slack sent becomes a message on
 * `[fn_slack] inbound_queue`, confirmed by the broker, before it is acknowledged to
 * Slack. What the broker confirmed survives the worker; what it did not is not
 * acknowledged, so Slack sends it again (events) or tells the user it failed
 * (interactions, commands).
 *
 * - message_id: the envelope's dedupe key (`envelopeKey`): a retry or a copy has the
 *   same key, and the ledger lets only the first take effect;
 * - ordering key: the channel, so that one channel's envelopes are handled in the order
 *   Slack sent them (see README "Inbound guarantees");
 * - an envelope without a dedupe key is refused (acknowledged, never run), because it
 *   could not be kept from running twice.
 */
import type { ListenerContext, PluginCounter, PluginHistogram } from '../../../core/runtime/plugin.js';
import { LogThrottle } from '../../../core/log-throttle.js';
import { envelopeInputs, INBOUND_FUNCTION } from './inbound-function.js';
import { ReceiveActivity } from './receive-activity.js';
import { envelopeKey, type InboundEnvelope } from './router.js';

/** Where an envelope came in: the label of the receiver's metrics. */
export type InboundTransport = 'socket_mode' | 'http';

export type RecordOutcome = 'recorded' | 'refused';

/**
 * Seconds from receiving an envelope to acknowledging it. Slack retries after 3 s, so
 * the buckets are fine below that: a confirmed publish takes a few milliseconds.
 */
const ACK_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5];

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The channel an envelope belongs to, which orders it; undefined when it has none (a modal). */
export function orderingKey(env: Pick<InboundEnvelope, 'kind' | 'payload'>): string | undefined {
  const p = env.payload;
  if (env.kind === 'events_api') {
    const event = p.event as Record<string, unknown> | undefined;
    const channel = event?.channel;
    // Most events name the channel by id; a few (channel_created…) carry an object.
    return str(channel) ?? str((channel as Record<string, unknown> | undefined)?.id);
  }
  if (env.kind === 'slash_commands') return str(p.channel_id);
  return str((p.channel as Record<string, unknown> | undefined)?.id) ?? str((p.container as Record<string, unknown> | undefined)?.channel_id);
}

/**
 * A message's place in its channel: Slack's `ts` (seconds.microseconds, assigned in the
 * channel's order) as whole microseconds, which fit a double exactly for centuries.
 */
export function orderingSeq(env: Pick<InboundEnvelope, 'kind' | 'payload'>): number | undefined {
  if (env.kind !== 'events_api') return undefined;
  const event = env.payload.event as Record<string, unknown> | undefined;
  const ts = str(event?.ts) ?? str(event?.event_ts);
  const m = ts ? /^(\d{1,12})\.(\d{1,6})$/.exec(ts) : null;
  return m ? Number(m[1]) * 1_000_000 + Number(m[2]!.padEnd(6, '0')) : undefined;
}

export class EnvelopeRecorder {
  private readonly envelopes: PluginCounter;
  private readonly ackLatency: PluginHistogram;
  private readonly warnings = new LogThrottle({ intervalMs: 60_000 });

  constructor(
    private readonly queue: string,
    private readonly ctx: ListenerContext,
    /** Where handling learns that envelopes are waiting for their record (see receive-activity.ts). */
    private readonly activity = new ReceiveActivity(),
  ) {
    this.envelopes = ctx.metrics.counter(
      'slack_inbound_envelopes_total',
      'Slack envelopes received, by transport, envelope type and outcome (recorded, retry_recorded, refused, not_recorded)',
      ['transport', 'type', 'outcome'],
    );
    this.ackLatency = ctx.metrics.histogram(
      'slack_inbound_ack_seconds',
      'Seconds from receiving a Slack envelope to acknowledging it (after its durable record), by transport',
      ACK_BUCKETS,
      ['transport'],
    );
  }

  /**
   * Records `env` durably. Resolves `recorded` once the broker confirmed it, `refused`
   * when it carries no dedupe key (acknowledge it; it never runs); rejects when it could
   * not be recorded (do not acknowledge).
   */
  async record(env: InboundEnvelope, transport: InboundTransport): Promise<RecordOutcome> {
    const key = envelopeKey(env);
    if (!key) {
      this.count(transport, env, 'refused');
      const line = this.warnings.pass(`refused:${env.kind}`, `Refused a Slack ${env.kind} envelope that carries no id to keep it from running twice`);
      if (line) this.ctx.log.warn(line);
      return 'refused';
    }
    try {
      await this.activity.track(() =>
        this.ctx.submit(
          this.queue,
          { function: { name: INBOUND_FUNCTION }, inputs: envelopeInputs(env) },
          { messageId: key, orderingKey: orderingKey(env), orderingSeq: orderingSeq(env) },
        ),
      );
    } catch (err) {
      this.count(transport, env, 'not_recorded');
      const line = this.warnings.pass(
        `failed:${transport}`,
        `Could not record a Slack ${env.kind} envelope on ${this.queue} (${(err as Error).message}); not acknowledged, so Slack sends events again`,
      );
      if (line) this.ctx.log.warn(line);
      throw err;
    }
    this.count(transport, env, env.retryAttempt > 0 ? 'retry_recorded' : 'recorded');
    return 'recorded';
  }

  /** Reports the time from receipt (`receivedAt`, ms) to the acknowledgement just sent. */
  acknowledged(transport: InboundTransport, receivedAt: number): void {
    this.ackLatency.observe({ transport }, Math.max(0, Date.now() - receivedAt) / 1000);
  }

  private count(transport: InboundTransport, env: InboundEnvelope, outcome: string): void {
    this.envelopes.inc({ transport, type: env.kind, outcome });
  }
}
