/**
 * Slack's Socket Mode, as the emulator serves it (https://api.slack.com/apis/socket-mode).
 *
 * `apps.connections.open`, called with an app-level token (`xapp-…`, scope
 * `connections:write`), answers a one-use `ws://` URL; the WebSocket it opens gets
 * `{"type":"hello"}` and then envelopes:
 *
 *   {"envelope_id", "type": "events_api" | "interactive" | "slash_commands",
 *    "payload", "accepts_response_payload", "retry_attempt", "retry_reason"}
 *
 * which the client acknowledges by sending `{"envelope_id", "payload"?}` back. Behaviour
 * kept from Slack's documentation:
 * - each envelope goes to ONE of the app's open connections (round robin here, or the
 *   one a test chose with routeNext);
 * - an `events_api` envelope not acknowledged within the ack timeout (3 s) is sent again,
 *   up to 3 retries, with `retry_attempt` counting up and `retry_reason: "timeout"`, to
 *   any open connection; interactive and slash command envelopes are not retried (Slack
 *   shows the user an error instead);
 * - at most 10 connections per app: the 11th gets `{"type":"disconnect","reason":
 *   "too_many_websockets"}` and is closed;
 * - Slack refreshes connections: `disconnect({reason: "refresh_requested"})` tells a
 *   client to reconnect; the server pings every `pingIntervalMs` (the client's
 *   serverPingTimeout expects it).
 * Envelopes raised while no connection is open wait for one (Slack keeps retrying an
 * event for a while; this is the simple, lossless reading of that).
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

export type EnvelopeType = 'events_api' | 'interactive' | 'slash_commands';

export interface DeliveredEnvelope {
  envelopeId: string;
  type: EnvelopeType;
  payload: Record<string, unknown>;
  /** Sends so far (1 = delivered once). */
  sends: number;
  ackedAt?: number;
  /**
   * Milliseconds from the first send to the ack (high resolution, one clock): what
   * Slack waits before it sees the envelope acknowledged.
   */
  ackLatencyMs?: number;
  /** What the client sent back with its ack (`payload`), if anything. */
  response?: Record<string, unknown>;
  /** Ids of the connections it was sent to, in order. */
  sentTo: number[];
  /** When each send left (ms since the epoch), in order: ack latency is ackedAt minus the last. */
  sentAt: number[];
  /** Acks of it the emulator lost on purpose (see SocketModeServer.loseAcks). */
  acksLost?: number;
  acceptsResponsePayload: boolean;
}

export interface SocketModeOptions {
  /** How long Slack waits for an ack before it retries an events_api envelope. Default 3000 ms. */
  ackTimeoutMs?: number;
  /** Retries of an unacknowledged events_api envelope. Default 3. */
  maxRetries?: number;
  /** Open connections allowed per app. Default 10. */
  maxConnections?: number;
  /** Server ping interval. Default 10,000 ms. */
  pingIntervalMs?: number;
}

interface Connection {
  id: number;
  socket: WebSocket;
  appId: string;
}

const PATH_PREFIX = '/link/';

export class SocketModeServer {
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly tickets = new Map<string, string>(); // ticket -> appId
  private readonly open = new Map<number, Connection>();
  private readonly envelopes = new Map<string, DeliveredEnvelope>();
  private readonly waiting: DeliveredEnvelope[] = [];
  /** performance.now() of each unacknowledged envelope's first send (see ackLatencyMs). */
  private readonly firstSent = new Map<string, number>();
  private paused = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly pinger: NodeJS.Timeout;
  private nextConnectionId = 1;
  private roundRobin = 0;
  private readonly opts: Required<SocketModeOptions>;
  /** Connections ever opened (including refused ones), for tests. */
  connectionsOpened = 0;
  /** Acks still to be lost (see loseAcks). */
  private acksToLose = 0;
  /** Connections the next sends go to, one send each (see routeNext). */
  private readonly routes: number[] = [];

  constructor(
    private readonly baseWsUrl: string,
    opts: SocketModeOptions = {},
  ) {
    this.opts = {
      ackTimeoutMs: opts.ackTimeoutMs ?? 3000,
      maxRetries: opts.maxRetries ?? 3,
      maxConnections: opts.maxConnections ?? 10,
      pingIntervalMs: opts.pingIntervalMs ?? 10_000,
    };
    this.pinger = setInterval(() => {
      for (const c of this.open.values()) c.socket.ping();
    }, this.opts.pingIntervalMs);
    this.pinger.unref();
  }

  /** Changes the ack timeout, retries or limits from now on. */
  configure(opts: SocketModeOptions): void {
    Object.assign(this.opts, Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)));
  }

  /** A one-use WebSocket URL for `appId` (what `apps.connections.open` answers). */
  issueUrl(appId: string): string {
    const ticket = randomBytes(12).toString('hex');
    this.tickets.set(ticket, appId);
    return `${this.baseWsUrl}${PATH_PREFIX}?ticket=${ticket}&app_id=${appId}`;
  }

  /** Handles an HTTP upgrade; false when the path is not a Socket Mode link. */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://emulator');
    if (url.pathname !== PATH_PREFIX) return false;
    const ticket = url.searchParams.get('ticket') ?? '';
    const appId = this.tickets.get(ticket);
    if (!appId) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
      return true;
    }
    this.tickets.delete(ticket);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, appId));
    return true;
  }

  private accept(socket: WebSocket, appId: string): void {
    this.connectionsOpened++;
    const id = this.nextConnectionId++;
    const ofApp = [...this.open.values()].filter((c) => c.appId === appId).length;
    if (ofApp >= this.opts.maxConnections) {
      socket.send(JSON.stringify({ type: 'disconnect', reason: 'too_many_websockets', debug_info: { host: 'emulator' } }));
      socket.close(1008, 'too_many_websockets');
      return;
    }
    const conn: Connection = { id, socket, appId };
    this.open.set(id, conn);
    socket.on('message', (data) => this.onClientMessage(data.toString()));
    socket.on('close', () => this.open.delete(id));
    socket.on('error', () => this.open.delete(id));
    socket.send(
      JSON.stringify({
        type: 'hello',
        num_connections: ofApp + 1,
        debug_info: { host: 'emulator', approximate_connection_time: 18_060 },
        connection_info: { app_id: appId },
      }),
    );
    this.flushWaiting();
  }

  private onClientMessage(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return; // Slack ignores what it cannot read
    }
    if (typeof msg !== 'object' || msg === null) return;
    const { envelope_id: envelopeId, payload } = msg as { envelope_id?: unknown; payload?: unknown };
    if (typeof envelopeId !== 'string') return;
    const env = this.envelopes.get(envelopeId);
    if (!env || env.ackedAt !== undefined) return;
    if (this.acksToLose > 0) {
      this.acksToLose--;
      env.acksLost = (env.acksLost ?? 0) + 1;
      return;
    }
    env.ackedAt = Date.now();
    const sentAt = this.firstSent.get(env.envelopeId);
    if (sentAt !== undefined) env.ackLatencyMs = performance.now() - sentAt;
    this.firstSent.delete(env.envelopeId);
    if (payload && typeof payload === 'object' && Object.keys(payload).length > 0) env.response = payload as Record<string, unknown>;
  }

  /** Sends an envelope to one open connection of the app (or holds it until one opens). */
  deliver(type: EnvelopeType, payload: Record<string, unknown>, opts: { acceptsResponsePayload?: boolean } = {}): DeliveredEnvelope {
    const env: DeliveredEnvelope = {
      envelopeId: `${randomBytes(4).toString('hex')}-${randomBytes(2).toString('hex')}-${randomBytes(6).toString('hex')}`,
      type,
      payload,
      sends: 0,
      sentTo: [],
      sentAt: [],
      acceptsResponsePayload: opts.acceptsResponsePayload ?? type !== 'events_api',
    };
    this.envelopes.set(env.envelopeId, env);
    this.send(env);
    return env;
  }

  /** `whilePaused`: a held envelope being released by {@link release}, sent although still paused. */
  private send(env: DeliveredEnvelope, whilePaused = false): void {
    const conns = [...this.open.values()];
    if (conns.length === 0 || (this.paused && !whilePaused)) {
      this.waiting.push(env);
      return;
    }
    const routed = this.routes.length > 0 ? this.open.get(this.routes.shift()!) : undefined;
    const conn = routed ?? (conns[this.roundRobin++ % conns.length] as Connection);
    const attempt = env.sends;
    if (attempt === 0) this.firstSent.set(env.envelopeId, performance.now());
    env.sends++;
    env.sentTo.push(conn.id);
    env.sentAt.push(Date.now());
    conn.socket.send(
      JSON.stringify({
        envelope_id: env.envelopeId,
        type: env.type,
        payload: env.payload,
        accepts_response_payload: env.acceptsResponsePayload,
        ...(env.type === 'events_api' ? { retry_attempt: attempt, retry_reason: attempt === 0 ? '' : 'timeout' } : {}),
      }),
    );
    if (env.type !== 'events_api') return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (env.ackedAt === undefined && env.sends <= this.opts.maxRetries) this.send(env);
    }, this.opts.ackTimeoutMs);
    this.timers.add(timer);
  }

  /**
   * Holds envelopes from now on instead of sending them, as while no connection is
   * open: {@link resume} then sends them all at once, the way Slack sends a backlog.
   * Lets a test raise many events and have them sent in one tight burst.
   */
  pause(): void {
    this.paused = true;
  }

  /** Sends every envelope held since {@link pause}, in order, and stops holding. */
  resume(): void {
    this.paused = false;
    // One write per connection for the whole backlog, not one per envelope (the
    // WebSocket's TCP socket is corked meanwhile): a server sending a backlog does not
    // make a system call per message either, and the burst leaves at once.
    const sockets = [...this.open.values()].map((c) => (c.socket as unknown as { _socket?: Duplex })._socket).filter((s): s is Duplex => s !== undefined);
    for (const s of sockets) s.cork();
    try {
      this.flushWaiting();
    } finally {
      for (const s of sockets) s.uncork();
    }
  }

  /**
   * Sends the envelopes held since {@link pause} one at a time, `spacingMs` apart (each
   * its own WebSocket write, as Slack sends events as they happen), then stops holding.
   * Resolves when the last one is sent. Each envelope's ack latency counts from its own
   * send. Envelopes raised meanwhile are held and sent after these, in order.
   */
  async release(spacingMs: number): Promise<void> {
    const held = this.waiting.splice(0);
    const started = performance.now();
    let sent = 0;
    while (sent < held.length) {
      // Timers fire late on a busy machine: send every envelope whose time has come.
      const due = Math.min(held.length, Math.floor((performance.now() - started) / spacingMs) + 1);
      while (sent < due) this.send(held[sent++]!, true);
      if (sent < held.length) await new Promise((r) => setTimeout(r, Math.max(0, started + sent * spacingMs - performance.now())));
    }
    this.paused = false;
    this.flushWaiting();
  }

  private flushWaiting(): void {
    if (this.paused) return;
    const held = this.waiting.splice(0);
    for (const env of held) this.send(env);
  }

  /** Every envelope delivered so far, oldest first. */
  delivered(): DeliveredEnvelope[] {
    return [...this.envelopes.values()];
  }

  envelope(envelopeId: string): DeliveredEnvelope | undefined {
    return this.envelopes.get(envelopeId);
  }

  /** Ids of the open connections, in the order they opened. */
  connectionIds(): number[] {
    return [...this.open.keys()];
  }

  /**
   * The next sends go to these connections, one send each, in order; then round robin
   * again. Slack chooses the connection of each envelope; this lets a test make that
   * choice, e.g. give two clicks of one moment to two workers. A connection no longer
   * open is skipped (its send goes round robin).
   */
  routeNext(...connectionIds: number[]): void {
    this.routes.push(...connectionIds);
  }

  /** Open connections (all apps). */
  get connectionCount(): number {
    return this.open.size;
  }

  /** Slack asks each open connection to reconnect (`refresh_requested`, or `warning`/`link_disabled`). */
  disconnect(reason = 'refresh_requested'): void {
    for (const c of this.open.values()) c.socket.send(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'emulator' } }));
  }

  /**
   * The next `n` acks sent by clients are lost, as if the client had died (or its
   * socket broken) after deciding to ack: Slack then resends the event after the ack
   * timeout, as it does for any envelope it did not hear back about.
   */
  loseAcks(n: number): void {
    this.acksToLose += n;
  }

  /** Drops every connection without a word (a network cut). */
  drop(): void {
    for (const c of this.open.values()) c.socket.terminate();
    this.open.clear();
  }

  async close(): Promise<void> {
    clearInterval(this.pinger);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.open.values()) c.socket.terminate();
    this.open.clear();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
