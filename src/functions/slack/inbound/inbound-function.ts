/**
 * `slack_inbound`: the internal function that takes one recorded Slack envelope from
 * `[fn_slack] inbound_queue` and hands it to the inbound handlers (router.ts).
 *
 * The receivers (socket-mode-receiver.ts, http-receiver.ts) submit each envelope as an
 * invocation of this function whose message_id is the envelope's dedupe key
 * (`envelopeKey`), so the invocation ledger makes it take effect once: Slack's retries,
 * a copy sent to a second connection and a redelivery after a crash all find the key
 * finished and are acked without running again. It is internal: callers cannot reach it
 * on `fn_slack`, and it has no reply_to, so nothing is replied.
 */
import type { FunctionDefinition, JsonSchema } from '../../../core/runtime/plugin.js';
import type { SlackState } from '../state.js';
import { INBOUND_HANDLER_SETS } from './handlers.js';
import { routeEnvelope, type EnvelopeKind, type InboundEnvelope } from './router.js';

export const INBOUND_FUNCTION = 'slack_inbound';

export const ENVELOPE_KINDS: readonly EnvelopeKind[] = ['events_api', 'interactive', 'slash_commands'];

const INPUT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'payload'],
  properties: {
    kind: { type: 'string', enum: [...ENVELOPE_KINDS] },
    payload: { type: 'object' },
    retry_attempt: { type: 'integer', minimum: 0, default: 0 },
  },
} as const satisfies JsonSchema;

/** The inputs of the invocation that carries `env`. */
export function envelopeInputs(env: InboundEnvelope): Record<string, unknown> {
  return { kind: env.kind, payload: env.payload, retry_attempt: env.retryAttempt };
}

export const inboundFunction: FunctionDefinition<SlackState> = {
  name: INBOUND_FUNCTION,
  displayName: 'Slack inbound envelope',
  description: 'Internal: handles one Slack event, interaction or slash command recorded by the Socket Mode or HTTP receiver.',
  inputSchema: INPUT_SCHEMA,
  internal: true,
  async handler(ctx, state) {
    const env: InboundEnvelope = {
      kind: ctx.inputs.kind as EnvelopeKind,
      payload: ctx.inputs.payload as Record<string, unknown>,
      retryAttempt: Number(ctx.inputs.retry_attempt ?? 0),
    };
    // Envelopes still waiting for their record (and Slack for its ack) go first.
    await state.receiving.giveWay(ctx.signal);
    const ran = await routeEnvelope(env, INBOUND_HANDLER_SETS, {
      state,
      platform: ctx.platform,
      store: ctx.store,
      log: ctx.log,
      key: ctx.invocationId,
      attempt: ctx.attempt,
      steps: ctx.steps,
      signal: ctx.signal,
    });
    if (ran === 0) ctx.log.debug(`Slack ${env.kind} envelope ${ctx.invocationId}: no handler wants it`);
    return { content: { key: ctx.invocationId, kind: env.kind, handlers: ran } };
  },
};
