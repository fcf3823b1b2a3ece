/**
 * The HTTP Events API receiver: the alternative to Socket Mode for a site that gives
 * the worker a Request URL (`[fn_slack] events_port`, behind a TLS-terminating proxy,
 * since Slack posts only to https URLs). One URL takes what Slack posts there:
 *
 * - Events API (`application/json`): `url_verification` is answered with its
 *   challenge; an `event_callback` is recorded;
 * - interactivity (`application/x-www-form-urlencoded`, a `payload` field of JSON);
 * - slash commands (`application/x-www-form-urlencoded`, `command`, `text`, …).
 *
 * Every request must carry a valid `X-Slack-Signature` (HMAC-SHA256 with the signing
 * secret over `v0:<X-Slack-Request-Timestamp>:<raw body>`, compared in constant time)
 * and a timestamp within 5 minutes of now: anything else gets 401 and has no effect
 * (nothing is parsed or recorded). A verified envelope is answered 200 only after it is
 * recorded durably ({@link EnvelopeRecorder}); if it cannot be, 500, and Slack retries
 * events (`X-Slack-Retry-Num` is the retry count).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../../core/logging.js';
import { ConfigError } from '../../../core/runtime/errors.js';
import type { ListenerStatus, PluginListener } from '../../../core/runtime/plugin.js';
import type { EnvelopeRecorder } from './recorder.js';
import type { InboundEnvelope } from './router.js';

/** Slack refuses to act on requests older than this; so does the worker (replay protection). */
export const MAX_CLOCK_SKEW_SECONDS = 5 * 60;
/** Slack's payloads are a few KB; a larger body is refused before it is verified. */
const MAX_BODY_BYTES = 1_048_576;

export interface HttpReceiverOptions {
  host: string;
  /** 0 picks a free port (tests); see {@link HttpEventsReceiver.port}. */
  port: number;
  signingSecret: string;
  recorder: EnvelopeRecorder;
  log: Logger;
  /** Seconds since the epoch (tests move it). */
  now?: () => number;
}

/** The signature Slack sends for `body` at `timestamp`: `v0=<hex>`. */
export function slackSignature(signingSecret: string, timestamp: string, body: string | Buffer): string {
  return `v0=${createHmac('sha256', signingSecret).update(`v0:${timestamp}:`).update(body).digest('hex')}`;
}

/** Why a request is not Slack's (a reason for the log), or undefined when it is. */
export function verifyRequest(signingSecret: string, headers: http.IncomingHttpHeaders, body: Buffer, nowSeconds: number): string | undefined {
  const timestamp = headers['x-slack-request-timestamp'];
  const signature = headers['x-slack-signature'];
  if (typeof timestamp !== 'string' || !/^\d{1,12}$/.test(timestamp)) return 'no valid X-Slack-Request-Timestamp';
  if (typeof signature !== 'string') return 'no X-Slack-Signature';
  if (Math.abs(nowSeconds - Number(timestamp)) > MAX_CLOCK_SKEW_SECONDS) {
    return `its timestamp is ${Math.round(nowSeconds - Number(timestamp))} s off (more than ${MAX_CLOCK_SKEW_SECONDS} s: a replay, or a wrong clock)`;
  }
  const expected = Buffer.from(slackSignature(signingSecret, timestamp, body));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'its signature does not match the signing secret';
  return undefined;
}

/** The envelope a verified request carries; 'challenge' for url_verification; undefined when it is none. */
export function parseRequest(contentType: string, body: string, retryNum: number): InboundEnvelope | { challenge: string } | undefined {
  if (contentType.startsWith('application/json')) {
    const json = JSON.parse(body) as Record<string, unknown>;
    if (json.type === 'url_verification' && typeof json.challenge === 'string') return { challenge: json.challenge };
    if (json.type === 'event_callback') return { kind: 'events_api', payload: json, retryAttempt: retryNum };
    return undefined; // app_rate_limited and the like: nothing to record
  }
  if (contentType.startsWith('application/x-www-form-urlencoded')) {
    const form = new URLSearchParams(body);
    const payload = form.get('payload');
    if (payload !== null) return { kind: 'interactive', payload: JSON.parse(payload) as Record<string, unknown>, retryAttempt: retryNum };
    if (form.get('command') !== null) return { kind: 'slash_commands', payload: Object.fromEntries(form), retryAttempt: retryNum };
  }
  return undefined;
}

export class HttpEventsReceiver implements PluginListener {
  readonly name = 'http-events';
  private server: http.Server | undefined;
  private listening = false;

  constructor(private readonly opts: HttpReceiverOptions) {}

  /** The port listened on (after start). */
  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  status(): ListenerStatus {
    return this.listening ? { ready: true, detail: `listening on ${this.opts.host}:${this.port}` } : { ready: false, detail: 'not listening' };
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        this.opts.log.warn(`Slack Events API request failed: ${err.message}`);
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end();
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new ConfigError(
            `[fn_slack] events_port = ${this.opts.port}: cannot listen on ${this.opts.host}:${this.opts.port} (${err.code ?? err.message}); choose a free port, or 0 to turn the HTTP receiver off`,
            err,
          ),
        ),
      );
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.listening = true;
    this.opts.log.info(`Slack Events API receiver on http://${this.opts.host}:${this.port}/ (put the proxy's https URL in the Slack app)`);
  }

  async stop(): Promise<void> {
    this.listening = false;
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    // Requests in flight finish (their record is under way); idle keep-alives are dropped.
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    if (req.method !== 'POST') {
      res.writeHead(405, { Allow: 'POST', 'Content-Type': 'text/plain' });
      res.end('POST Slack events here\n');
      return;
    }
    const body = await readBody(req);
    if (!body) {
      res.writeHead(413, { 'Content-Type': 'text/plain' });
      res.end();
      return;
    }
    const now = (this.opts.now ?? (() => Date.now() / 1000))();
    const problem = verifyRequest(this.opts.signingSecret, req.headers, body, now);
    if (problem) {
      this.opts.log.warn(`Refused a request to the Slack Events API receiver from ${req.socket.remoteAddress ?? '?'}: ${problem}`);
      res.writeHead(401, { 'Content-Type': 'text/plain' });
      res.end('invalid signature\n');
      return;
    }
    const retry = Number(req.headers['x-slack-retry-num'] ?? 0);
    let parsed: ReturnType<typeof parseRequest>;
    try {
      parsed = parseRequest(String(req.headers['content-type'] ?? ''), body.toString('utf8'), Number.isInteger(retry) && retry > 0 ? retry : 0);
    } catch (err) {
      res.writeHead(400, { 'Content-Type': 'text/plain' });
      res.end(`not a Slack payload: ${(err as Error).message}\n`);
      return;
    }
    if (parsed && 'challenge' in parsed) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ challenge: parsed.challenge }));
      return;
    }
    if (parsed) {
      try {
        await this.opts.recorder.record(parsed, 'http');
      } catch {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end('not recorded; retry\n');
        return;
      }
    }
    res.writeHead(200);
    res.end();
    if (parsed) this.opts.recorder.acknowledged('http', receivedAt);
  }
}

/** The request body, or undefined when it exceeds MAX_BODY_BYTES. */
async function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
