/**
 * The inbound contract: what Slack sends the worker (Socket Mode envelopes, or the same
 * payloads posted to the HTTP Events API), the key that makes each one take effect once,
 * and how a recorded envelope reaches the code that handles it.
 *
 * The receivers (Socket Mode, HTTP) record an envelope durably before acknowledging it;
 * a worker then takes it from that record and calls {@link routeEnvelope}. Mirroring,
 * asks, triage and commands each contribute one {@link InboundHandlers} set.
 */
import type { Logger } from '../../../core/logging.js';
import type { InvocationSteps } from '../../../core/runtime/plugin.js';
import type { Store } from '../../../core/store/store.js';
import type { Platform } from '../../../platforms/platform.js';
import type { SlackState } from '../state.js';

/** The three kinds of Socket Mode envelope (the HTTP Events API posts the same payloads). */
export type EnvelopeKind = 'events_api' | 'interactive' | 'slash_commands';

/** What Slack sent, as recorded before it was acknowledged. */
export interface InboundEnvelope {
  kind: EnvelopeKind;
  /** The envelope's `payload` (Events API: the `event_callback`; interactive: the interaction). */
  payload: Record<string, unknown>;
  /** Slack's retry count for this envelope: 0 the first time. */
  retryAttempt: number;
}

/** What a handler gets besides the payload. */
export interface InboundContext {
  state: SlackState;
  platform: Platform;
  store: Store;
  log: Logger;
  /** The envelope's dedupe key ({@link envelopeKey}). */
  key: string;
  /** 1 on the first delivery of the recorded envelope; higher after a crash or a retry. */
  attempt: number;
  /** Effects an earlier delivery of this same envelope completed (resume after them). */
  steps: InvocationSteps;
  signal: AbortSignal;
}

/** One element of a `block_actions` payload's `actions`. */
export interface BlockAction {
  type: string;
  action_id: string;
  block_id?: string;
  value?: string;
  selected_option?: { value: string; text?: { text?: string } };
  action_ts: string;
}

export type EventHandler = (event: Record<string, unknown>, ctx: InboundContext) => Promise<void>;
export type ActionHandler = (action: BlockAction, payload: Record<string, unknown>, ctx: InboundContext) => Promise<void>;
export type PayloadHandler = (payload: Record<string, unknown>, ctx: InboundContext) => Promise<void>;

/** The handlers one inbound feature contributes. */
export interface InboundHandlers {
  /** Events API handlers by the event's `type` (`message`, `app_mention`); every matching one runs. */
  events?: Record<string, EventHandler>;
  /** `block_actions` handlers by the action_id's prefix before the first `:` (`ask:…`, `triage:…`). */
  actions?: Record<string, ActionHandler>;
  /** `view_submission` handlers by the view's `callback_id` prefix before the first `:`. */
  views?: Record<string, PayloadHandler>;
  /** The slash command (`[fn_slack] command`). */
  command?: PayloadHandler;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function prefix(id: string): string {
  const i = id.indexOf(':');
  return i < 0 ? id : id.slice(0, i);
}

/**
 * The key under which an envelope takes effect once, or undefined when the payload
 * carries nothing that identifies it (it is then refused, never run twice by guess):
 * - an event: `event:<event_id>` (the same for Slack's retries and for a copy sent to a
 *   second connection);
 * - a click: `action:<action_ts>:<user>`;
 * - a modal submission: `view:<view id>:<view hash>`;
 * - a slash command: `command:<trigger_id>` (one per use of the command).
 */
export function envelopeKey(env: Pick<InboundEnvelope, 'kind' | 'payload'>): string | undefined {
  const p = env.payload;
  if (env.kind === 'events_api') {
    const id = str(p.event_id);
    return id && `event:${id}`;
  }
  if (env.kind === 'slash_commands') {
    const trigger = str(p.trigger_id);
    return trigger && `command:${trigger}`;
  }
  const user = str((p.user as Record<string, unknown> | undefined)?.id);
  if (p.type === 'block_actions') {
    const first = Array.isArray(p.actions) ? (p.actions[0] as Record<string, unknown> | undefined) : undefined;
    const ts = str(first?.action_ts);
    return ts && user ? `action:${ts}:${user}` : undefined;
  }
  if (p.type === 'view_submission') {
    const view = p.view as Record<string, unknown> | undefined;
    const id = str(view?.id);
    const hash = str(view?.hash);
    return id && hash ? `view:${id}:${hash}` : undefined;
  }
  return undefined;
}

/**
 * Hands a recorded envelope to the handlers that want it. Returns how many ran: 0 means
 * nothing here handles it (an event type, action or view this worker does not know),
 * which is logged by the caller and acknowledged, never retried.
 */
export async function routeEnvelope(env: InboundEnvelope, sets: readonly InboundHandlers[], ctx: InboundContext): Promise<number> {
  const p = env.payload;
  let ran = 0;
  if (env.kind === 'events_api') {
    const event = p.event as Record<string, unknown> | undefined;
    const type = str(event?.type);
    if (!event || !type) return 0;
    for (const set of sets) {
      const handler = set.events?.[type];
      if (handler) {
        await handler(event, ctx);
        ran++;
      }
    }
    return ran;
  }
  if (env.kind === 'slash_commands') {
    const handler = sets.find((s) => s.command)?.command;
    if (!handler) return 0;
    await handler(p, ctx);
    return 1;
  }
  if (p.type === 'block_actions') {
    for (const raw of Array.isArray(p.actions) ? p.actions : []) {
      const action = raw as BlockAction;
      const id = str(action?.action_id);
      const handler = id ? sets.find((s) => s.actions?.[prefix(id)])?.actions?.[prefix(id)] : undefined;
      if (handler) {
        await handler(action, p, ctx);
        ran++;
      }
    }
    return ran;
  }
  if (p.type === 'view_submission') {
    const callback = str((p.view as Record<string, unknown> | undefined)?.callback_id);
    const handler = callback ? sets.find((s) => s.views?.[prefix(callback)])?.views?.[prefix(callback)] : undefined;
    if (!handler) return 0;
    await handler(p, ctx);
    return 1;
  }
  return 0;
}
