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

type InboundConfig = Pick<SlackConfig, 'app_token' | 'events_port' | 'signing_secret' | 'inbound_queue'>;

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

export function inboundQueues(config: InboundConfig): PluginQueue[] {
  return inboundEnabled(config) ? [{ name: config.inbound_queue, singleActiveConsumer: true }] : [];
}

export function inboundListeners(state: SlackState, ctx: ListenerContext): PluginListener[] {
  const { config } = state;
  if (!inboundEnabled(config)) return [];
  checkInboundConfig(config);
  const recorder = new EnvelopeRecorder(config.inbound_queue, ctx);
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
