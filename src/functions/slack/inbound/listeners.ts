/**
 * What fn_slack adds to `worker run` for the inbound half, from `[fn_slack]`:
 * - `app_token` set → the Socket Mode receiver;
 * - `events_port` set → the HTTP Events API receiver (needs `signing_secret`);
 * - either → the durable queue `inbound_queue` they record envelopes on, consumed by
 *   every worker with a single active consumer (the queue's order is kept across workers).
 * Neither → nothing: the worker stays outbound-only.
 */
import { ConfigError } from '../../../core/runtime/errors.js';
import type { ListenerContext, PluginListener, PluginQueue } from '../../../core/runtime/plugin.js';
import type { SlackConfig } from '../config.js';
import type { SlackState } from '../state.js';
import { appTokenShapeProblem } from './app-token.js';
import { HttpEventsReceiver } from './http-receiver.js';
import { EnvelopeRecorder } from './recorder.js';
import { SocketModeReceiver } from './socket-mode-receiver.js';

type InboundConfig = Pick<SlackConfig, 'app_token' | 'events_port' | 'signing_secret' | 'inbound_queue' | 'inbound_reorder_ms'>;

export function inboundEnabled(config: InboundConfig): boolean {
  return config.app_token !== '' || config.events_port > 0;
}

/** Stops `worker run` with what to fix when the inbound settings cannot work. */
export function checkInboundConfig(config: InboundConfig): void {
  if (config.app_token !== '') {
    const problem = appTokenShapeProblem(config.app_token);
    if (problem) throw new ConfigError(problem);
  }
  if (config.events_port > 0 && config.signing_secret === '') {
    throw new ConfigError(
      `[fn_slack] events_port = ${config.events_port} needs signing_secret (the app's Basic Information → Signing Secret), ` +
        'so that only Slack can post events; or set events_port = 0',
    );
  }
}

/**
 * Messages of the inbound queue one worker holds at once. Most of them wait (for their
 * channel's turn, or out the reorder window) rather than run: only one message per
 * channel runs at a time, so this bounds memory, not concurrency. At
 * `inbound_reorder_ms` = 1 s it lets one worker handle up to this many messages a second.
 */
export const INBOUND_PREFETCH = 1000;

/**
 * The inbound queue. Why a reorder window (`[fn_slack] inbound_reorder_ms`): each worker's
 * receiver records the envelopes its connection gets, concurrently with the others, so a
 * busy worker may record a channel's message after the next one that another worker
 * recorded; held that long, they are handled in Slack's order (`ts`). It delays the
 * handling only, never the acknowledgement to Slack.
 */
export function inboundQueues(config: InboundConfig): PluginQueue[] {
  if (!inboundEnabled(config)) return [];
  return [{ name: config.inbound_queue, singleActiveConsumer: true, reorderWindowMs: config.inbound_reorder_ms, prefetch: INBOUND_PREFETCH }];
}

export function inboundListeners(state: SlackState, ctx: ListenerContext): PluginListener[] {
  const { config } = state;
  if (!inboundEnabled(config)) return [];
  checkInboundConfig(config);
  const recorder = new EnvelopeRecorder(config.inbound_queue, ctx, state.receiving);
  const listeners: PluginListener[] = [];
  if (config.app_token !== '') {
    listeners.push(new SocketModeReceiver({ appToken: config.app_token, apiUrl: config.api_url, recorder, log: ctx.log, metrics: ctx.metrics }));
  }
  if (config.events_port > 0) {
    listeners.push(
      new HttpEventsReceiver({ host: config.events_host, port: config.events_port, signingSecret: config.signing_secret, recorder, log: ctx.log }),
    );
  }
  return listeners;
}
