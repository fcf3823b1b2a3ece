/**
 * The HTTP transport under fn_slack's WebClient: @slack/web-api 8's `fetch` option (its
 * `FetchFunction` contract: `status`, `statusText`, `url`, `headers.get/entries`,
 * `text/json/arrayBuffer`) implemented on node:http / node:https with keep-alive agents.
 *
 * Why not the SDK's default, Node's global fetch: fetch goes through undici's WHATWG
 * layers (a Request and a Response object, web streams for both bodies, a Headers list)
 * for every call. Measured in the post benchmark (README: Benchmarks, 2a), that path was
 * 42-47 % of the worker's busy time, and each call left ~16 KB of garbage that only a
 * full collection frees (4). A Slack Web API call is a small form POST with a small
 * JSON answer, which node:http does with a fraction of that work.
 *
 * What it keeps from fetch, as the SDK relies on it:
 * - the caller's AbortSignal (the SDK's per-request timeout) ends the request at any
 *   point, headers or body, and the call rejects with the signal's reason (a
 *   `TimeoutError`), as fetch does;
 * - a failure without an answer rejects with `TypeError('fetch failed')` whose `cause`
 *   is the socket's error (`ECONNREFUSED`, `ENOTFOUND`, TLS codes…), fetch's shape, so
 *   network-failure.ts names the cause the same way;
 * - answers compressed with gzip, deflate or br are decoded (fetch asks for them too);
 * - redirects are not followed (the SDK asks fetch for `redirect: 'error'`): a 3xx is
 *   handed to the SDK as the answer, which fails the call with its HTTP status (fetch
 *   failed it as a bare "fetch failed", which said less about a misconfigured api_url);
 * - TLS as Node's defaults (system CAs, NODE_EXTRA_CA_CERTS, certificate and host name
 *   checked). Neither path reads proxy variables on Node 20.
 * A body that is not a string (the SDK's multipart FormData for binary arguments, which
 * fn_slack does not send: uploads stream through SlackClient.uploadFile) goes to the
 * global fetch unchanged.
 */
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import type { FetchFunction } from '@slack/web-api';

type FetchResponse = Awaited<ReturnType<FetchFunction>>;
type FetchRequestInit = NonNullable<Parameters<FetchFunction>[1]>;

/**
 * How long an idle connection is kept for the next call: undici's default, which the
 * global fetch used. A server's shorter `Keep-Alive: timeout=N` wins (Node closes the
 * socket a second before it), so a call is not sent on a connection the server is closing.
 */
const IDLE_SOCKET_MS = 4_000;

/** Parsed request targets, by URL: a worker calls a few dozen methods on one API URL. */
const TARGET_CACHE_LIMIT = 256;

interface Target {
  secure: boolean;
  hostname: string;
  port: string;
  path: string;
}

/** A response's headers as the SDK reads them (`get`, `entries`), over Node's lower-cased header object. */
class ResponseHeaders {
  constructor(private readonly raw: http.IncomingHttpHeaders) {}

  get(name: string): string | null {
    const value = this.raw[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }

  has(name: string): boolean {
    return this.raw[name.toLowerCase()] !== undefined;
  }

  *entries(): IterableIterator<[string, string]> {
    for (const name of Object.keys(this.raw).sort()) yield [name, this.get(name)!];
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

/** A whole answer, read before the call resolves (Slack's answers are small JSON documents). */
class BufferedResponse implements FetchResponse {
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly url: string,
    readonly headers: ResponseHeaders,
    private readonly body: Buffer,
  ) {}

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  async text(): Promise<string> {
    const text = this.body.toString('utf8');
    // fetch's text() decodes UTF-8 without the byte order mark.
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return new Uint8Array(this.body).buffer;
  }
}

function fetchFailed(cause: unknown): TypeError {
  return new TypeError('fetch failed', { cause });
}

/** Decodes a body sent with Content-Encoding gzip, deflate or br; any other coding is passed on as it came, as fetch does. */
function decode(body: Buffer, encoding: string | undefined, done: (err: Error | null, decoded: Buffer) => void): void {
  const coding = encoding?.trim().toLowerCase();
  if (!coding || coding === 'identity' || body.length === 0) return done(null, body);
  if (coding === 'gzip' || coding === 'x-gzip') return zlib.gunzip(body, { finishFlush: zlib.constants.Z_SYNC_FLUSH }, done);
  // "deflate" is the zlib format by the HTTP spec; some servers send raw deflate (fetch accepts both).
  if (coding === 'deflate') return zlib.unzip(body, { finishFlush: zlib.constants.Z_SYNC_FLUSH }, (err, out) => (err ? zlib.inflateRaw(body, done) : done(null, out)));
  if (coding === 'br') return zlib.brotliDecompress(body, done);
  done(null, body);
}

/**
 * A `fetch` for WebClient's `fetch` option. Its connections stay open for the next call
 * (one per call in flight, closed after {@link IDLE_SOCKET_MS} idle; idle ones never
 * keep the process alive).
 */
export function createHttpTransport(): FetchFunction {
  const agents = {
    http: new http.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS }),
    https: new https.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS }),
  };
  const targets = new Map<string, Target>();

  function targetOf(input: string | URL): Target {
    const key = String(input);
    let target = targets.get(key);
    if (!target) {
      const url = typeof input === 'string' ? new URL(input) : input;
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fetchFailed(new Error(`unsupported protocol ${url.protocol} in ${key}`));
      target = {
        secure: url.protocol === 'https:',
        // new URL keeps an IPv6 address in brackets; the socket wants it bare.
        hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: url.port,
        path: `${url.pathname}${url.search}`,
      };
      if (targets.size >= TARGET_CACHE_LIMIT) targets.clear();
      targets.set(key, target);
    }
    return target;
  }

  return (input: string | URL, init: FetchRequestInit = {}): Promise<FetchResponse> => {
    const body = init.body;
    if (body !== undefined && typeof body !== 'string') return globalThis.fetch(input, init as RequestInit);
    let target: Target;
    try {
      target = targetOf(input);
    } catch (err) {
      return Promise.reject(err);
    }
    const signal = init.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const url = String(input);
    return new Promise<FetchResponse>((resolve, reject) => {
      let settled = false;
      const settle = (err: unknown, res?: FetchResponse): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (err === undefined) resolve(res!);
        else reject(err);
      };
      const headers: http.OutgoingHttpHeaders = { ...init.headers, 'Accept-Encoding': 'gzip, deflate, br' };
      if (body !== undefined) headers['Content-Length'] = Buffer.byteLength(body);
      const req = (target.secure ? https : http).request(
        {
          hostname: target.hostname,
          port: target.port,
          path: target.path,
          method: init.method ?? 'GET',
          headers,
          agent: target.secure ? agents.https : agents.http,
        },
        (res) => {
          const status = res.statusCode ?? 0;
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (err) => settle(fetchFailed(err)));
          res.on('close', () => {
            if (!res.complete) settle(fetchFailed(Object.assign(new Error('the connection closed before the whole answer arrived'), { code: 'ECONNRESET' })));
          });
          res.on('end', () =>
            decode(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), res.headers['content-encoding'], (err, decoded) =>
              err ? settle(fetchFailed(err)) : settle(undefined, new BufferedResponse(status, res.statusMessage ?? '', url, new ResponseHeaders(res.headers), decoded)),
            ),
          );
        },
      );
      const onAbort = (): void => {
        req.destroy();
        settle(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err) => settle(fetchFailed(err)));
      if (!target.secure) {
        req.end(body);
      } else {
        // On a new TLS connection, send only after the handshake: written before it, a
        // failed handshake surfaces as the write's EPROTO instead of OpenSSL's reason
        // (ERR_SSL_WRONG_VERSION_NUMBER, certificate errors), which fetch reports.
        req.once('socket', (socket) => (req.reusedSocket ? req.end(body) : socket.once('secureConnect', () => req.end(body))));
      }
    });
  };
}
