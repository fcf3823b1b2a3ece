/**
 * The Slack Web API client the fn_slack functions use: `@slack/web-api`'s WebClient
 * with the worker's retry rules on top.
 *
 * Why not WebClient's own retries: they retry any call after a 5xx or a dropped
 * connection, which can post a message twice. Here:
 * - 429 (rate limited) is retried for every method after `Retry-After`: Slack did not
 *   run the call. Each wait is reported (a progress message) and counted against a
 *   budget; past the budget the call fails with a retryable error.
 * - 5xx and connection errors are retried only for methods that have no effect when
 *   repeated (reads), or when the connection was refused (nothing was sent).
 * - A Slack error code becomes a {@link SlackApiError} with an actionable message.
 *
 * With a {@link RateLimiter} (the default, `rate_limits = on`), every call first waits
 * for its turn there, so that 429s are the exception. The limiter's own waits do not
 * count against the retry budget, which is for waits Slack imposes (Retry-After,
 * outages); a post keeps its channel's lane across its retries, so order is kept.
 */
import { Readable } from 'node:stream';
import { describeNetworkFailure, networkErrorCode } from './network-failure.js';
import * as slackWebApiNs from '@slack/web-api';
import type { WebClient as WebClientType } from '@slack/web-api';
import { backoffDelay, sleep, type BackoffPolicy } from '../../core/backoff.js';
import { createHttpTransport } from './http-transport.js';
import type { Logger } from '../../core/logging.js';
import type { Lease, RateLimiter } from './rate-limiter.js';
import { FunctionError } from '../../core/runtime/errors.js';
import { SlackUnavailableError, slackError, stoppedWaitingError } from './slack-errors.js';
import type { SlackPagedMethod, SlackResponse } from './slack-types.js';

// @slack/web-api is CommonJS. Node's ESM loader exposes it as `default` (and detects
// only some named exports); loaders that transpile to CommonJS expose the names
// directly. Take each value from whichever is there. test/integration/dist.test.ts
// checks the built output under plain Node.
const slackWebApi = ((slackWebApiNs as unknown as { default?: typeof slackWebApiNs }).default ?? slackWebApiNs) as typeof slackWebApiNs;
const { WebClient, ErrorCode, LogLevel } = slackWebApi;

/** Methods with no effect when repeated: safe to retry after an ambiguous failure. */
const IDEMPOTENT = new Set([
  'auth.test',
  'users.info',
  'users.lookupByEmail',
  'conversations.info',
  'conversations.list',
  'conversations.members',
  'conversations.history',
  'conversations.replies',
  'chat.getPermalink',
  'files.info',
  'files.getUploadURLExternal',
  'team.info',
]);

/**
 * Waiting before a Slack call or upload is tried again after a 5xx, a 408 or a connection
 * failure that sent nothing: 1 s doubling to 30 s (no jitter), all within `retry_budget`.
 */
export const SLACK_UNAVAILABLE_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 30_000, factor: 2, jitter: 'none' };

/** Connection errors that prove the request never reached Slack. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

export interface WaitInfo {
  method: string;
  seconds: number;
  /**
   * rate_limited: Slack answered 429; unavailable: a 5xx or connection failure;
   * scheduled: the worker's own pacing (rate limiter) holds the call back.
   */
  reason: 'rate_limited' | 'unavailable' | 'scheduled';
  /** For `unavailable`: what failed (DNS, refused, TLS, timeout, HTTP 503), for a person. */
  cause?: string;
}

export interface CallOptions {
  /** Overrides the per-method default (reads are idempotent). */
  idempotent?: boolean;
  /** Told before each wait, e.g. to send a progress message. */
  onWait?: (info: WaitInfo) => void | Promise<void>;
  signal?: AbortSignal;
  /** Names the object in error messages, e.g. "#inc-2103". */
  what?: string;
}

export interface SlackClientOptions {
  token: string;
  apiUrl: string;
  log: Logger;
  /** Per-request timeout. */
  timeoutMs: number;
  /** Total time one call may spend waiting for rate limits and outages. */
  retryBudgetMs: number;
  /** First back-off after a 5xx; doubles each time (default: {@link SLACK_UNAVAILABLE_BACKOFF}'s). */
  backoffMs?: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Observes every rate-limit wait (metrics). */
  onRateLimited?: (method: string, seconds: number) => void;
  /** Paces calls within Slack's limits; shared by every invocation. None: no pacing. */
  limiter?: RateLimiter;
}

export interface UploadRequest {
  channelId: string;
  filename: string;
  title?: string;
  size: number;
  /** Opens the content; called again if the upload must be retried. */
  open: () => Promise<Readable>;
  initialComment?: string;
  threadTs?: string;
}

/** Slack's answer to a method slack-types.ts does not list: its fields are to be checked where read. */
export type SlackResult = SlackResponse<string>;

/** Calls one Web API method: {@link SlackClient.call} with its options bound, or a test's fake. */
export type SlackCall = <M extends string>(method: M, params: Record<string, unknown>) => Promise<SlackResponse<M>>;

/** What @slack/web-api's errors carry (its `ErrorCode`s), read only here, where they become the worker's errors. */
interface WebApiErrorFields {
  code?: string;
  retryAfter?: number;
  statusCode?: number;
  data?: Record<string, unknown>;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(ms, signal, stoppedWaitingError);
}

/**
 * Pages through a cursor-paginated method (Slack's `cursor` / `response_metadata.next_cursor`),
 * yielding each page as Slack answered it. Pages are fetched one at a time as the caller
 * asks, so a caller that has enough stops (`break`) without fetching the rest. Every
 * cursor loop of fn_slack goes through here; {@link SlackClient.paginate} is this with
 * the client's `call`.
 */
export async function* paginate<M extends SlackPagedMethod>(
  call: SlackCall,
  method: M,
  params: Record<string, unknown> = {},
): AsyncGenerator<SlackResponse<M>> {
  let cursor: string | undefined;
  do {
    const page = await call(method, cursor ? { ...params, cursor } : params);
    yield page;
    cursor = page.response_metadata?.next_cursor || undefined;
  } while (cursor);
}

export class SlackClient {
  readonly web: WebClientType;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly unavailableBackoff: BackoffPolicy;

  constructor(private readonly opts: SlackClientOptions) {
    this.web = new WebClient(opts.token, {
      slackApiUrl: opts.apiUrl.endsWith('/') ? opts.apiUrl : `${opts.apiUrl}/`,
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      // node:http with keep-alive instead of the global fetch: the same calls for a
      // fraction of the CPU and garbage (http-transport.ts says what it keeps).
      fetch: createHttpTransport(),
      timeout: opts.timeoutMs,
      logLevel: LogLevel.ERROR,
      logger: {
        debug: () => undefined,
        info: () => undefined,
        warn: (...m: unknown[]) => opts.log.debug(`slack sdk: ${m.join(' ')}`),
        error: (...m: unknown[]) => opts.log.debug(`slack sdk: ${m.join(' ')}`),
        setLevel: () => undefined,
        getLevel: () => LogLevel.ERROR,
        setName: () => undefined,
      },
    }) as WebClientType;
    this.sleep = opts.sleep ?? defaultSleep;
    this.unavailableBackoff = { ...SLACK_UNAVAILABLE_BACKOFF, initialMs: opts.backoffMs ?? SLACK_UNAVAILABLE_BACKOFF.initialMs };
  }

  /**
   * Calls a Web API method with the retry rules above. Resolves with Slack's body, typed
   * by slack-types.ts; rejects with a {@link SlackApiError} (Slack's answer), a
   * {@link SlackUnavailableError} (no answer) or the abort's error, never the SDK's own.
   */
  async call<M extends string>(method: M, params: Record<string, unknown> = {}, callOpts: CallOptions = {}): Promise<SlackResponse<M>> {
    const limiter = this.opts.limiter;
    const onWait = callOpts.onWait;
    const lease: Lease | undefined = limiter
      ? await limiter.acquire(method, params, {
          ...(callOpts.signal ? { signal: callOpts.signal } : {}),
          ...(onWait ? { onWait: (w) => onWait({ method: w.method, seconds: w.seconds, reason: 'scheduled' }) } : {}),
        })
      : undefined;
    try {
      return (await this.attempts(method, params, callOpts, lease)) as SlackResponse<M>;
    } finally {
      lease?.release();
    }
  }

  private async attempts(method: string, params: Record<string, unknown>, callOpts: CallOptions, lease: Lease | undefined): Promise<unknown> {
    const idempotent = callOpts.idempotent ?? IDEMPOTENT.has(method);
    // Only waits that Slack imposes (Retry-After, outages) count against the budget.
    let waitedMs = 0;
    let outages = 0;
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1 && lease) await lease.again(callOpts.signal ? { signal: callOpts.signal } : {});
      try {
        return await this.web.apiCall(method, params);
      } catch (err) {
        const e = err as WebApiErrorFields;
        let waitMs: number;
        let reason: WaitInfo['reason'];
        let pausedByLimiter = false;
        let cause: string | undefined;
        if (e.code === ErrorCode.PlatformError) {
          const data = e.data ?? {};
          throw slackError(method, String(data.error ?? 'unknown_error'), data, callOpts.what);
        } else if (e.code === ErrorCode.RateLimitedError) {
          waitMs = Math.max(1, e.retryAfter ?? 1) * 1000;
          reason = 'rate_limited';
          // Every caller of this method (or poster to this channel) waits, not only us.
          if (lease) pausedByLimiter = lease.rateLimited(waitMs / 1000);
        } else if (e.code === ErrorCode.HTTPError || e.code === ErrorCode.RequestError) {
          const net = networkErrorCode(err);
          const status = e.statusCode;
          const what = status ? `HTTP ${status}` : describeNetworkFailure(err, this.opts.timeoutMs) ?? net ?? (err as Error).message;
          cause = what;
          const retryable = status === undefined || status >= 500 || status === 408;
          if (!retryable) throw new SlackUnavailableError(`Slack ${method} failed: ${what}`, 'slack_http_error', err);
          if (!idempotent && !(net && NOT_SENT.has(net))) {
            // It may have taken effect: do not repeat it here. The runner's redelivery
            // and the function's own checks decide what happens next.
            throw new SlackUnavailableError(`Slack ${method} failed (${what}); not repeated here because it may have taken effect`, 'slack_unavailable', err);
          }
          waitMs = backoffDelay(this.unavailableBackoff, ++outages);
          reason = 'unavailable';
        } else {
          throw err;
        }
        if (waitedMs + waitMs > this.opts.retryBudgetMs) {
          throw new SlackUnavailableError(
            reason === 'rate_limited'
              ? `Slack kept rate-limiting ${method} beyond the retry budget of ${Math.round(this.opts.retryBudgetMs / 1000)}s`
              : `Slack ${method} kept failing (${cause}) for longer than the retry budget of ${Math.round(this.opts.retryBudgetMs / 1000)}s`,
            reason === 'rate_limited' ? 'slack_rate_limited' : 'slack_unavailable',
            err,
          );
        }
        waitedMs += waitMs;
        // Reported only once we know we will wait (a 429 past the budget is not a wait).
        if (reason === 'rate_limited') this.opts.onRateLimited?.(method, waitMs / 1000);
        if (reason === 'unavailable') {
          // An outage is worth a line at the default level, with its cause: the final error
          // comes only after the retry budget.
          this.opts.log.warn(`Slack ${method} unavailable (${cause}): retrying in ${waitMs} ms (attempt ${attempt})`);
        } else {
          this.opts.log.debug(`Slack ${method}: ${reason}, waiting ${waitMs} ms (attempt ${attempt})`);
        }
        await callOpts.onWait?.({ method, seconds: Math.ceil(waitMs / 1000), reason, ...(cause ? { cause } : {}) });
        // A pause in the limiter is waited out by lease.again() before the next attempt.
        if (!pausedByLimiter) await this.sleep(waitMs, callOpts.signal);
      }
    }
  }

  /** {@link paginate} with this client's calls and `callOpts`. */
  paginate<M extends SlackPagedMethod>(method: M, params: Record<string, unknown> = {}, callOpts: CallOptions = {}): AsyncGenerator<SlackResponse<M>> {
    return paginate((m, p) => this.call(m, p, callOpts), method, params);
  }

  /**
   * Uploads one file with Slack's external upload flow: `files.getUploadURLExternal`,
   * the bytes streamed to the returned URL, then `files.completeUploadExternal` sharing
   * it to the channel. The content is streamed, never held whole in memory.
   */
  async uploadFile(req: UploadRequest, callOpts: CallOptions = {}): Promise<{ fileId: string }> {
    const { upload_url: uploadUrl, file_id: fileId } = await this.call(
      'files.getUploadURLExternal',
      { filename: req.filename, length: req.size },
      callOpts,
    );
    const deadline = Date.now() + this.opts.retryBudgetMs;
    for (let outages = 1; ; outages++) {
      const stream = await req.open();
      let status: number | undefined;
      let failure: unknown;
      try {
        const res = await fetch(uploadUrl, {
          method: 'POST',
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(req.size) },
          body: Readable.toWeb(stream) as unknown as ReadableStream,
          duplex: 'half',
          signal: AbortSignal.timeout(Math.max(this.opts.timeoutMs, 60_000)),
        } as RequestInit);
        status = res.status;
        await res.arrayBuffer();
        if (res.ok) break;
      } catch (err) {
        failure = err;
      } finally {
        stream.destroy();
      }
      if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
        // Slack refused these bytes (too large, URL expired or unknown, malformed): the
        // same upload gets the same answer, so neither this loop nor the runner repeats
        // it (each repeat would send the whole file again).
        throw new FunctionError(
          `Slack refused the upload of ${req.filename} (HTTP ${status}); it is not retried: ` +
            "check the file (its size against Slack's limits and [fn_slack] max_upload_mb) and run the function again",
          'slack_upload_refused',
          { http_status: status },
        );
      }
      const net = status === undefined ? networkErrorCode(failure) : undefined;
      if (status === undefined && !(net && NOT_SENT.has(net))) {
        // Cut off mid-body (connection dropped, timeout): not repeated here. The runner's
        // redelivery retries it within max_attempts, and first looks for an upload an
        // earlier attempt completed (slack_post_attachment's reconcile).
        // The message promises no retry: on the last attempt it is the caller's final error.
        throw new SlackUnavailableError(
          `Uploading ${req.filename} to Slack was cut off (${(failure as Error)?.message ?? 'connection lost'}); not repeated within this attempt`,
          'slack_upload_interrupted',
          failure,
        );
      }
      // A 5xx, 408 or 429 (Slack took nothing), or a connection refused (nothing was
      // sent): the same URL may be tried again within the retry budget.
      const backoff = backoffDelay(this.unavailableBackoff, outages);
      if (Date.now() + backoff > deadline) {
        throw new SlackUnavailableError(
          `Uploading ${req.filename} to Slack failed (${status ? `HTTP ${status}` : describeNetworkFailure(failure) ?? (failure as Error)?.message ?? 'error'})`,
          'slack_upload_failed',
          failure,
        );
      }
      const cause = status ? `HTTP ${status}` : describeNetworkFailure(failure, Math.max(this.opts.timeoutMs, 60_000));
      await callOpts.onWait?.({ method: 'file upload', seconds: Math.ceil(backoff / 1000), reason: 'unavailable', ...(cause ? { cause } : {}) });
      await this.sleep(backoff, callOpts.signal);
    }
    const params: Record<string, unknown> = {
      files: JSON.stringify([{ id: fileId, title: req.title ?? req.filename }]),
      channel_id: req.channelId,
    };
    if (req.initialComment) params.initial_comment = req.initialComment;
    if (req.threadTs) params.thread_ts = req.threadTs;
    await this.call('files.completeUploadExternal', params, callOpts);
    return { fileId };
  }
}
