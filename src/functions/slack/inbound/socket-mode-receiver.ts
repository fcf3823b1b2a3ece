/**
 * The Socket Mode receiver: Slack's own client (`@slack/socket-mode`) connected with
 * `[fn_slack] app_token` at `api_url`, each envelope recorded durably
 * ({@link EnvelopeRecorder}) before it is acknowledged.
 *
 * Reconnecting is done here, not by the client (its own reconnect waits a fixed
 * multiple of its ping timeout and hides why): Slack refreshes connections
 * (`disconnect` with `refresh_requested`, reconnected at once), drops them, and refuses
 * an app's 11th (`too_many_websockets`); each is retried with capped exponential
 * backoff and jitter, and each reason is logged once per ten minutes, not per event.
 * The connection state is on `/readyz` and in metrics.
 */
import { LogLevel, SocketModeClient, type Logger as SlackLogger } from '@slack/socket-mode';
import { backoffDelay, type BackoffPolicy } from '../../../core/backoff.js';
import { LogThrottle } from '../../../core/log-throttle.js';
import type { Logger } from '../../../core/logging.js';
import { ConfigError } from '../../../core/runtime/errors.js';
import type { ListenerStatus, PluginCounter, PluginGauge, PluginListener, PluginMetrics } from '../../../core/runtime/plugin.js';
import { describeAppTokenError, isAppTokenError, slackErrorCode } from './app-token.js';
import { ENVELOPE_KINDS } from './inbound-function.js';
import type { EnvelopeRecorder } from './recorder.js';
import type { EnvelopeKind } from './router.js';

/** 0.5 s doubling to 30 s, ±20 %: several workers refused together do not return in lock-step. */
export const SOCKET_MODE_RECONNECT: BackoffPolicy = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 };

/** Why a connection ended, as counted in metrics (a bounded set). */
const KNOWN_REASONS = new Set(['refresh_requested', 'link_disabled', 'warning', 'too_many_websockets', 'dropped']);

export interface SocketModeReceiverOptions {
  appToken: string;
  apiUrl: string;
  recorder: EnvelopeRecorder;
  log: Logger;
  metrics: PluginMetrics;
  reconnect?: BackoffPolicy;
  /** How long the client waits for Slack's pong (and between its pings); default 5000 ms. */
  clientPingTimeoutMs?: number;
}

type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'stopped';

interface SlackEventArgs {
  ack: (response?: Record<string, unknown>) => Promise<void>;
  envelope_id: string;
  type: string;
  body: unknown;
  retry_num?: number;
}

/** The client's own log lines are not wanted: this receiver logs what matters, once. */
function quietLogger(log: Logger): SlackLogger {
  return {
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: (...msg: unknown[]) => log.debug(`socket-mode client: ${msg.map(String).join(' ')}`),
    setLevel: () => undefined,
    getLevel: () => LogLevel.INFO,
    setName: () => undefined,
  };
}

export class SocketModeReceiver implements PluginListener {
  readonly name = 'socket-mode';
  private readonly client: SocketModeClient;
  private state: ConnectionState = 'connecting';
  private stopping = false;
  private connecting = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastReason: string | undefined;
  /** Why the receiver is not connected (for /readyz), until it connects again. */
  private problem: string | undefined;
  private readonly reasons = new LogThrottle({ intervalMs: 10 * 60_000 });
  private readonly inFlight = new Set<Promise<void>>();
  private readonly connectedGauge: PluginGauge;
  private readonly disconnects: PluginCounter;

  constructor(private readonly opts: SocketModeReceiverOptions) {
    this.client = new SocketModeClient({
      appToken: opts.appToken,
      // The worker reconnects itself (see the file comment); the Web API call that asks
      // for a URL is not retried by the client either, for the same reason.
      autoReconnectEnabled: false,
      clientPingTimeout: opts.clientPingTimeoutMs ?? 5000,
      logger: quietLogger(opts.log),
      clientOptions: { slackApiUrl: opts.apiUrl, retryConfig: { retries: 0 } },
    });
    this.connectedGauge = opts.metrics.gauge('slack_socket_mode_connected', '1 while the Slack Socket Mode connection is open, else 0');
    this.disconnects = opts.metrics.counter(
      'slack_socket_mode_disconnects_total',
      'Slack Socket Mode connections that ended, by reason (refresh_requested, too_many_websockets, dropped, …)',
      ['reason'],
    );
    this.connectedGauge.set({}, 0);
    this.client.on('ws_message', (data: unknown, isBinary: boolean) => {
      if (isBinary) return;
      const text = typeof data === 'string' ? data : String(data);
      // Every envelope passes here too, and the client parses each itself: only a message
      // that can be Slack's disconnect (it names one) is parsed a second time.
      if (!text.includes('"disconnect"')) return;
      try {
        const msg = JSON.parse(text) as { type?: unknown; reason?: unknown };
        if (msg.type === 'disconnect') this.lastReason = typeof msg.reason === 'string' ? msg.reason : 'disconnect';
      } catch {
        // the client ignores what it cannot parse; so does this
      }
    });
    this.client.on('connected', () => {
      this.state = 'connected';
      this.attempt = 0;
      this.problem = undefined;
      this.connectedGauge.set({}, 1);
    });
    this.client.on('disconnected', () => this.onClosed());
    this.client.on('slack_event', (e: SlackEventArgs) => {
      const work = this.onEnvelope(e, Date.now());
      this.inFlight.add(work);
      void work.finally(() => this.inFlight.delete(work));
    });
  }

  status(): ListenerStatus {
    if (this.state === 'connected') return { ready: true, detail: 'connected' };
    const why = this.problem;
    return { ready: false, detail: `Slack Socket Mode ${this.state}${why ? ` (${why})` : ''}` };
  }

  /** Connects; rejects with a ConfigError when the app token can never work. */
  async start(): Promise<void> {
    this.stopping = false;
    await this.connect(true);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.race([this.client.disconnect().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    // What is being recorded now is either confirmed (and acked if the socket still is
    // open) or not: either way Slack's retry and the ledger settle it.
    await Promise.allSettled([...this.inFlight]);
    this.state = 'stopped';
    this.connectedGauge.set({}, 0);
  }

  private async connect(first: boolean): Promise<void> {
    this.connecting = true;
    this.lastReason = undefined;
    try {
      await this.client.start();
    } catch (err) {
      const code = slackErrorCode(err);
      if (isAppTokenError(code)) {
        const message = describeAppTokenError(code!);
        // At start: stop here with what to fix. Later (a token revoked meanwhile): keep
        // trying slowly, with readiness failing and saying why.
        if (first) throw new ConfigError(message, err);
        this.problem = message;
        this.logOnce(`token:${code}`, `${message}; retrying`);
      } else {
        const reason = this.lastReason ?? (err instanceof Error ? err.message : String(err));
        this.problem = reason;
        this.logOnce(`connect:${this.lastReason ?? 'error'}`, `Could not open a Slack Socket Mode connection (${reason}); retrying with backoff`);
        if (this.lastReason) this.disconnects.inc({ reason: KNOWN_REASONS.has(this.lastReason) ? this.lastReason : 'other' });
      }
      this.connecting = false;
      this.scheduleReconnect();
      return;
    }
    this.connecting = false;
    // Closed between hello and here: the close handler ran while connecting; go again.
    if (this.state !== 'connected' && !this.stopping) this.scheduleReconnect();
  }

  private onClosed(): void {
    this.connectedGauge.set({}, 0);
    if (this.stopping || this.connecting) return; // start() reports it (or nobody cares)
    const reason = this.lastReason ?? 'dropped';
    this.problem = reason;
    this.disconnects.inc({ reason: KNOWN_REASONS.has(reason) ? reason : 'other' });
    this.state = 'reconnecting';
    const what =
      reason === 'refresh_requested'
        ? 'Slack refreshed the Socket Mode connection (refresh_requested); reconnecting'
        : reason === 'too_many_websockets'
          ? 'Slack refused the Socket Mode connection: the app already has 10 open (too_many_websockets); retrying with backoff'
          : `The Slack Socket Mode connection ended (${reason}); reconnecting with backoff`;
    this.logOnce(`closed:${reason}`, what);
    // A refresh is Slack's routine: reconnect at once. Anything else backs off.
    if (reason === 'refresh_requested' && this.attempt === 0) this.reconnectIn(0);
    else this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.timer) return;
    this.state = 'reconnecting';
    this.attempt++;
    this.reconnectIn(backoffDelay(this.opts.reconnect ?? SOCKET_MODE_RECONNECT, this.attempt));
  }

  private reconnectIn(ms: number): void {
    if (this.stopping || this.timer) return;
    this.state = 'reconnecting';
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopping) void this.connect(false);
    }, ms);
  }

  private logOnce(key: string, line: string): void {
    const text = this.reasons.pass(key, line);
    if (text) this.opts.log.warn(text);
  }

  /** Records, then acknowledges; an envelope not recorded is not acknowledged. */
  private async onEnvelope(e: SlackEventArgs, receivedAt: number): Promise<void> {
    if (!ENVELOPE_KINDS.includes(e.type as EnvelopeKind) || !e.body || typeof e.body !== 'object') {
      await e.ack().catch(() => undefined); // nothing here handles it; Slack need not resend it
      return;
    }
    const env = { kind: e.type as EnvelopeKind, payload: e.body as Record<string, unknown>, retryAttempt: Number(e.retry_num ?? 0) };
    try {
      await this.opts.recorder.record(env, 'socket_mode');
    } catch {
      return; // the recorder said why; Slack resends what is not acknowledged
    }
    try {
      await e.ack();
      this.opts.recorder.acknowledged('socket_mode', receivedAt);
    } catch (err) {
      // Recorded, but the socket went away: Slack resends it and the ledger absorbs the copy.
      this.logOnce('ack', `Could not acknowledge a recorded Slack envelope (${(err as Error).message}); Slack's resend will be absorbed`);
    }
  }
}
