/**
 * A small client of the IBM SOAR REST API, on node:http/node:https.
 *
 * - API key auth: HTTP Basic with the key id and secret on every request (what IBM's
 *   resilient Python client does with `set_api_key`); no session cookie.
 * - One keep-alive agent per client; TLS checked against `[soar] cafile` (or the
 *   system CAs), or not at all with `cafile = false`.
 * - A proxy is reached with an HTTP CONNECT tunnel for https and with absolute-URI
 *   requests for plain http.
 * - Retries with capped exponential backoff (with jitter) for 5xx answers and
 *   connection errors, on idempotent requests (GET, PUT) only. A POST is retried only
 *   when it never connected (ECONNREFUSED), so nothing is created twice.
 * - Every failure becomes a typed WorkerError naming the object and, for 403, the
 *   permission the API key lacks. Messages never hold the key or the secret (they are
 *   never put in one, and server text is passed through `redact`).
 * - Response bodies can be streamed (attachment contents) rather than buffered.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex, Readable } from 'node:stream';
import { BACKOFF, backoffDelay, sleep } from '../../core/backoff.js';
import { ConfigError, errorCode, FunctionError, RetryableError, WorkerError } from '../../core/runtime/errors.js';
import { redact } from '../../core/redact.js';
import type { SoarSection } from './soar-config.js';
import { verifyDisabled } from './soar-config.js';

export interface SoarClientOptions {
  baseUrl: string;
  orgId: number;
  apiKeyId: string;
  apiKeySecret: string;
  /** PEM CA file; undefined: the system CAs. */
  caFile?: string | undefined;
  /** False turns certificate verification off. */
  verify?: boolean;
  /** Milliseconds of silence (connect or transfer) before a request fails. */
  timeoutMs?: number;
  proxy?: string | undefined;
  retries?: number;
  /** First backoff delay; doubled per retry up to `retryMaxMs`. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/** What a request is about, for error messages: "attachment 5 of incident 2103". */
export interface RequestContext {
  what: string;
  /** The SOAR API key permission this request needs, named in 403 errors. */
  permission?: string;
}

export interface RequestOptions extends RequestContext {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** `/incidents/1` (relative to the org) or `/rest/session` (absolute, starts with /rest/). */
  path: string;
  query?: Record<string, string | number | boolean>;
  json?: unknown;
  /** A body produced afresh for each attempt (so a retry can resend it). */
  body?: () => { stream: Readable; length: number; contentType: string };
}

/** A response with its body still unread. */
export interface StreamedResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
}

/** Default first backoff delay: short enough for a blip, long enough not to hammer. */
const DEFAULT_RETRY_BASE_MS = 500;
/** Error bodies are read for their message only; more than this is not worth keeping. */
const MAX_ERROR_BODY = 64 * 1024;
/** JSON answers larger than this are refused rather than buffered (lists of types stay far below). */
const MAX_JSON_BODY = 32 * 1024 * 1024;

const CONNECTION_ERRORS = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ECONNABORTED',
  'soar_timeout',
]);


/** TLS failures: certificate checks and handshakes. */
export function isTlsError(err: unknown): boolean {
  const code = errorCode(err) ?? '';
  return /CERT|SSL|TLS|UNABLE_TO_(GET|VERIFY)|SELF_SIGNED|HOSTNAME|ALTNAME/.test(code);
}

/** Builds the client's options from a validated `[soar]` section. */
export function clientOptionsFromSection(section: SoarSection): SoarClientOptions {
  const opts: SoarClientOptions = {
    baseUrl: section.base_url,
    orgId: section.org_id,
    apiKeyId: section.api_key_id,
    apiKeySecret: section.api_key_secret,
    verify: !verifyDisabled(section),
    timeoutMs: section.timeout * 1000,
    retries: section.retries,
    retryMaxMs: section.retry_max_delay * 1000,
  };
  if (section.cafile && !verifyDisabled(section)) opts.caFile = section.cafile;
  if (section.proxy) opts.proxy = section.proxy;
  return opts;
}

/**
 * An https agent that opens each connection through an HTTP proxy's CONNECT tunnel,
 * then runs TLS over it. Keep-alive applies to the tunnelled sockets as usual.
 */
class TunnelAgent extends https.Agent {
  constructor(
    private readonly proxy: URL,
    options: https.AgentOptions,
    /** How long the proxy may take to answer the CONNECT (the request's own timeout starts after). */
    private readonly timeoutMs: number,
  ) {
    super(options);
  }

  override createConnection(
    requestOptions: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const options = requestOptions as tls.ConnectionOptions & { host?: string; port?: number; servername?: string };
    const target = `${options.host}:${options.port}`;
    const headers: http.OutgoingHttpHeaders = { host: target };
    if (this.proxy.username) {
      const user = decodeURIComponent(this.proxy.username);
      const pass = decodeURIComponent(this.proxy.password);
      headers['proxy-authorization'] = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    }
    const connect = http.request({
      host: this.proxy.hostname,
      port: Number(this.proxy.port || 80),
      method: 'CONNECT',
      path: target,
      headers,
      timeout: this.timeoutMs,
    });
    connect.once('timeout', () => {
      const err = new Error(`the proxy ${this.proxy.host} did not answer the tunnel request to ${target} in time`) as Error & { code: string };
      err.code = 'soar_timeout';
      connect.destroy(err);
    });
    connect.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        const err = new Error(`the proxy ${this.proxy.host} refused the tunnel to ${target} (HTTP ${res.statusCode})`) as Error & {
          code: string;
        };
        err.code = 'EPROXY';
        callback?.(err, socket);
        return;
      }
      const secure = tls.connect({ ...options, socket, servername: options.servername ?? options.host });
      callback?.(null, secure);
    });
    connect.once('error', (err) => callback?.(err, connect.socket as net.Socket));
    connect.end();
    return undefined;
  }
}

export class SoarClient {
  readonly baseUrl: string;
  readonly orgId: number;
  private readonly url: URL;
  private readonly auth: string;
  private readonly agent: http.Agent;
  private readonly proxy: URL | undefined;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly caFile: string | undefined;
  private readonly verify: boolean;

  constructor(opts: SoarClientOptions) {
    this.url = new URL(opts.baseUrl);
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.orgId = opts.orgId;
    this.auth = `Basic ${Buffer.from(`${opts.apiKeyId}:${opts.apiKeySecret}`).toString('base64')}`;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.retries = opts.retries ?? 3;
    this.retryBaseMs = opts.retryBaseMs ?? DEFAULT_RETRY_BASE_MS;
    this.retryMaxMs = opts.retryMaxMs ?? 10_000;
    this.verify = opts.verify ?? true;
    this.caFile = opts.caFile;
    this.proxy = opts.proxy ? new URL(opts.proxy) : undefined;

    const agentOptions: https.AgentOptions = { keepAlive: true };
    if (this.url.protocol === 'https:') {
      agentOptions.rejectUnauthorized = this.verify;
      if (this.caFile) {
        try {
          agentOptions.ca = fs.readFileSync(this.caFile);
        } catch (err) {
          throw new ConfigError(`[soar] cafile = ${this.caFile} cannot be read (${errorCode(err) ?? (err as Error).message})`, err);
        }
      }
      this.agent = this.proxy ? new TunnelAgent(this.proxy, agentOptions, this.timeoutMs) : new https.Agent(agentOptions);
    } else {
      this.agent = new http.Agent({ keepAlive: true });
    }
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  /** The full URL of an API path (org-relative unless it starts with /rest/). */
  urlOf(path: string, query?: RequestOptions['query']): URL {
    const full = path.startsWith('/rest/') ? path : `/rest/orgs/${this.orgId}${path}`;
    const url = new URL(full, this.url);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, String(v));
    return url;
  }

  /** GET and parse JSON. */
  async getJson<T>(path: string, ctx: RequestContext, query?: RequestOptions['query']): Promise<T> {
    return this.json<T>({ ...ctx, method: 'GET', path, ...(query ? { query } : {}) });
  }

  async postJson<T>(path: string, payload: unknown, ctx: RequestContext, query?: RequestOptions['query']): Promise<T> {
    return this.json<T>({ ...ctx, method: 'POST', path, json: payload, ...(query ? { query } : {}) });
  }

  async putJson<T>(path: string, payload: unknown, ctx: RequestContext): Promise<T> {
    return this.json<T>({ ...ctx, method: 'PUT', path, json: payload });
  }

  /** PATCH is not retried after an ambiguous failure (like POST): a versioned patch can conflict with itself. */
  async patchJson<T>(path: string, payload: unknown, ctx: RequestContext): Promise<T> {
    return this.json<T>({ ...ctx, method: 'PATCH', path, json: payload });
  }

  /** Sends a request and parses its JSON answer (a 2xx; anything else throws). */
  async json<T>(opts: RequestOptions): Promise<T> {
    const res = await this.request(opts);
    let text: string;
    try {
      text = await readText(res.body, MAX_JSON_BODY, `${opts.what}: SOAR's answer`);
    } catch (err) {
      throw this.connectionError(err, opts);
    }
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new RetryableError(`SOAR answered ${opts.method} ${opts.what} with something that is not JSON`, 'soar_bad_response');
    }
  }

  /**
   * Sends a request with retries and returns the 2xx response with its body unread
   * (the caller streams it). Non-2xx answers become typed errors.
   */
  async request(opts: RequestOptions): Promise<StreamedResponse> {
    const idempotent = opts.method === 'GET' || opts.method === 'PUT' || opts.method === 'DELETE';
    for (let attempt = 0; ; attempt++) {
      let res: http.IncomingMessage;
      try {
        res = await this.once(opts);
      } catch (err) {
        const code = errorCode(err);
        const retryable = code !== undefined && CONNECTION_ERRORS.has(code) && (idempotent || code === 'ECONNREFUSED');
        if (retryable && attempt < this.retries) {
          await sleep(this.backoff(attempt));
          continue;
        }
        throw this.connectionError(err, opts);
      }
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) return { status, headers: res.headers, body: res };
      const text = await readText(res, MAX_ERROR_BODY, '').catch(() => '');
      if (status >= 500 && idempotent && attempt < this.retries) {
        await sleep(this.backoff(attempt));
        continue;
      }
      throw this.statusError(status, text, opts, attempt);
    }
  }

  /** The soarRequest policy with [soar]'s base and cap; `attempt` counts from 0 here. */
  private backoff(attempt: number): number {
    return backoffDelay({ ...BACKOFF.soarRequest, initialMs: this.retryBaseMs, maxMs: this.retryMaxMs }, attempt + 1);
  }

  /** One attempt: resolves with the response (any status) once its headers arrive. */
  private once(opts: RequestOptions): Promise<http.IncomingMessage> {
    const target = this.urlOf(opts.path, opts.query);
    const headers: http.OutgoingHttpHeaders = {
      authorization: this.auth,
      accept: 'application/json',
      'user-agent': 'soar-slack-worker',
    };
    let payload: Buffer | undefined;
    let body: ReturnType<NonNullable<RequestOptions['body']>> | undefined;
    if (opts.json !== undefined) {
      payload = Buffer.from(JSON.stringify(opts.json));
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    } else if (opts.body) {
      body = opts.body();
      headers['content-type'] = body.contentType;
      headers['content-length'] = body.length;
    }

    const secure = target.protocol === 'https:';
    let reqOptions: https.RequestOptions;
    if (this.proxy && !secure) {
      // Plain http through a proxy: the request line carries the absolute URI.
      if (this.proxy.username) {
        const user = decodeURIComponent(this.proxy.username);
        const pass = decodeURIComponent(this.proxy.password);
        headers['proxy-authorization'] = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
      }
      headers.host = target.host;
      reqOptions = {
        host: this.proxy.hostname,
        port: Number(this.proxy.port || 80),
        path: target.href,
        method: opts.method,
        headers,
        agent: this.agent,
      };
    } else {
      reqOptions = {
        protocol: target.protocol,
        host: target.hostname,
        port: target.port || (secure ? 443 : 80),
        path: `${target.pathname}${target.search}`,
        method: opts.method,
        headers,
        agent: this.agent,
      };
    }

    return new Promise((resolve, reject) => {
      const mod = secure ? https : http;
      const req = mod.request(reqOptions, (res) => {
        // From here the timeout guards the body: a stalled transfer errors the stream.
        res.setTimeout(this.timeoutMs, () => {
          const err = new Error(`SOAR sent nothing for ${this.timeoutMs / 1000}s`) as Error & { code: string };
          err.code = 'soar_timeout';
          res.destroy(err);
        });
        resolve(res);
      });
      req.setTimeout(this.timeoutMs, () => {
        const err = new Error(`no answer within ${this.timeoutMs / 1000}s`) as Error & { code: string };
        err.code = 'soar_timeout';
        req.destroy(err);
      });
      req.once('error', (err) => {
        body?.stream.destroy();
        reject(err);
      });
      if (payload) {
        req.end(payload);
      } else if (body) {
        const stream = body.stream;
        stream.once('error', (err) => req.destroy(err));
        stream.pipe(req);
      } else {
        req.end();
      }
    });
  }

  private connectionError(err: unknown, opts: RequestOptions): WorkerError {
    if (err instanceof WorkerError) return err;
    const code = errorCode(err);
    const reason = redact((err as Error)?.message ?? String(err));
    if (isTlsError(err)) {
      const trust = !this.verify
        ? 'certificate checks are off'
        : this.caFile
          ? `the certificate was checked against the CA in [soar] cafile = ${this.caFile}`
          : 'the certificate was checked against the system CAs; set [soar] cafile to the CA that signed it';
      return new FunctionError(`TLS failure talking to SOAR at ${this.baseUrl} (${code}: ${reason}): ${trust}`, 'soar_tls', {
        tls_code: code,
      });
    }
    if (code === 'soar_timeout') {
      return new RetryableError(`SOAR at ${this.baseUrl} did not answer ${opts.method} ${opts.what} in time: ${reason}`, 'soar_timeout');
    }
    const via = this.proxy ? ` through the proxy ${this.proxy.host}` : '';
    return new RetryableError(
      `Cannot reach SOAR at ${this.baseUrl}${via} for ${opts.what} (${code ?? 'error'}: ${reason})`,
      'soar_unreachable',
      code ? { error: code } : undefined,
      err,
    );
  }

  private statusError(status: number, text: string, opts: RequestOptions, attempt: number): WorkerError {
    const said = serverMessage(text);
    const suffix = said ? `; SOAR said: ${said}` : '';
    const details = { status };
    if (status === 401) {
      return new FunctionError(
        `SOAR rejected the API key (401) for ${opts.what}: check [soar] api_key_id and api_key_secret${suffix}`,
        'soar_unauthorized',
        details,
      );
    }
    if (status === 403) {
      const need = opts.permission ? `: the API key needs the permission ${opts.permission}` : ': the API key lacks a permission';
      return new FunctionError(`SOAR refused access (403) to ${opts.what}${need}${suffix}`, 'soar_forbidden', {
        ...details,
        ...(opts.permission ? { permission: opts.permission } : {}),
      });
    }
    if (status === 404) {
      return new FunctionError(`${capitalise(opts.what)} not found in SOAR org ${this.orgId} (404)${suffix}`, 'not_found', details);
    }
    if (status === 429 || status >= 500) {
      const tries = attempt + 1;
      return new RetryableError(
        `SOAR answered ${status} for ${opts.what}${tries > 1 ? ` after ${tries} attempts` : ''}${suffix}`,
        'soar_unavailable',
        details,
      );
    }
    return new FunctionError(`SOAR refused ${opts.method} ${opts.what} (${status})${suffix}`, 'soar_request_refused', details);
  }
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** SOAR error bodies are JSON with `message` (and `title`); keep it short and redacted. */
function serverMessage(text: string): string {
  if (!text) return '';
  let message = text;
  try {
    const parsed = JSON.parse(text) as { message?: unknown; title?: unknown };
    if (typeof parsed.message === 'string' && parsed.message) message = parsed.message;
    else if (typeof parsed.title === 'string' && parsed.title) message = parsed.title;
  } catch {
    // not JSON: use the text itself
  }
  message = message.replace(/\s+/g, ' ').trim();
  return redact(message.length > 300 ? `${message.slice(0, 300)}…` : message);
}

/** Reads a whole (bounded) body as text. */
function readText(stream: Readable, limit: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        stream.destroy();
        if (what) reject(new FunctionError(`${what} is larger than ${limit} bytes`, 'soar_bad_response'));
        else resolve(Buffer.concat(chunks).toString('utf8'));
        return;
      }
      chunks.push(chunk);
    });
    stream.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.once('error', reject);
  });
}
