/**
 * fn_slack's per-worker state, built once by `setup` from `[fn_slack]`.
 */
import type { FunctionContext } from '../../core/runtime/plugin.js';
import type { Logger } from '../../core/logging.js';
import { ChannelCache } from './channels/cache.js';
import type { ChannelDeps } from './channels/lookup.js';
import { parseRateLimitOverrides, type SlackConfig } from './config.js';
import { RateLimiter, methodBudgets, type Clock } from './rate-limiter.js';
import { SlackClient, type CallOptions } from './slack-client.js';
import type { AskRuntime } from './ask/ask-finish.js';
import type { ConversationTable } from './store/conversations.js';
import { SlackPeople } from './people.js';
import { ReceiveActivity } from './inbound/receive-activity.js';

export interface SlackState {
  config: SlackConfig;
  client: SlackClient;
  /** Paces every Slack call of the process; absent with `rate_limits = off`. */
  limiter?: RateLimiter;
  channels: ChannelCache;
  /** Who Slack users are (users.info), remembered for every reader (people.ts). */
  people: SlackPeople;
  /** The incident/task ↔ channel associations (`slack_conversations_db` in the worker's store). */
  conversations: ConversationTable;
  /** The bot's own user id (from auth.test), learnt on first use. */
  botUserId?: string;
  /**
   * The workspace URL (auth.test's `url`, e.g. `https://acme.slack.com/`), learnt by the
   * same call as the user id: permalinks are built from it (permalink.ts). Null when
   * auth.test gave none; undefined until asked.
   */
  workspaceUrl?: string | null;
  /** The auth.test under way, shared by every caller that needs its answer meanwhile. */
  authTestPending?: Promise<SlackIdentity>;
  log: Logger;
  /** slack_ask's store table, deferred replies and sweeper; set up by `worker run` only (see index.ts). */
  asks?: AskRuntime;
  /** The inbound receivers' envelopes being recorded, which handling gives way to (inbound/receive-activity.ts). */
  receiving: ReceiveActivity;
}

/** What auth.test says about the bot, asked once per process and shared. */
export interface SlackIdentity {
  userId: string | undefined;
  workspaceUrl: string | null;
}

export interface SlackStateOptions {
  /** The rate limiter's clock (tests use a fake one). */
  clock?: Clock;
  /** Wall-clock ms for the channel cache's expiry (tests move it). */
  now?: () => number;
}

/** The rate limiter `[fn_slack]` asks for, or undefined with `rate_limits = off`. */
export function createRateLimiter(config: SlackConfig, clock?: Clock): RateLimiter | undefined {
  if (config.rate_limits === 'off') return undefined;
  return new RateLimiter({
    perMinute: methodBudgets(parseRateLimitOverrides(config.rate_limit_overrides)),
    burst: config.rate_limit_burst,
    channelPostsPerSecond: config.channel_posts_per_second,
    channelBurst: config.channel_post_burst,
    ...(clock ? { clock } : {}),
  });
}

export function createSlackState(
  config: SlackConfig,
  log: Logger,
  conversations: ConversationTable,
  onRateLimited?: (method: string, seconds: number) => void,
  options: SlackStateOptions = {},
): SlackState {
  const limiter = createRateLimiter(config, options.clock);
  const client = new SlackClient({
    token: config.api_token,
    apiUrl: config.api_url,
    log,
    timeoutMs: config.timeout * 1000,
    retryBudgetMs: config.retry_budget * 1000,
    ...(onRateLimited ? { onRateLimited } : {}),
    ...(limiter ? { limiter } : {}),
  });
  return {
    config,
    client,
    ...(limiter ? { limiter } : {}),
    channels: new ChannelCache(config.channel_cache_size, config.channel_cache_ttl * 1000, options.now),
    people: new SlackPeople(client, options.now),
    conversations,
    log,
    receiving: new ReceiveActivity(),
  };
}

/**
 * Pacing reports per invocation are at most one per this many ms: an export that makes
 * hundreds of paced calls says why it is slow without flooding the caller.
 */
const SCHEDULED_REPORT_INTERVAL_MS = 30_000;
const lastScheduledReport = new WeakMap<FunctionContext, number>();

/** Call options that report each rate-limit wait to the caller as a progress message. */
export function callOptionsFor(ctx: FunctionContext): CallOptions {
  return {
    signal: ctx.signal,
    onWait: (w) => {
      if (w.reason === 'scheduled') {
        const now = Date.now();
        const last = lastScheduledReport.get(ctx);
        if (last !== undefined && now - last < SCHEDULED_REPORT_INTERVAL_MS) return;
        lastScheduledReport.set(ctx, now);
        return ctx.status(`Pacing Slack calls to stay within Slack's rate limits: ${w.method} waits about ${w.seconds}s`);
      }
      return ctx.status(
        w.reason === 'rate_limited'
          ? `Slack is rate-limiting ${w.method}: waiting ${w.seconds}s`
          : `Slack ${w.method} is unavailable${w.cause ? ` (${w.cause})` : ''}: retrying in ${w.seconds}s`,
      );
    },
  };
}

export function channelDeps(ctx: FunctionContext, state: SlackState): ChannelDeps {
  return { client: state.client, cache: state.channels, callOpts: callOptionsFor(ctx), conversations: state.conversations };
}

/**
 * The bot's user id and the workspace URL from one auth.test, asked on first use.
 * Callers that start together (a worker's first prefetch, a burst of events) share one
 * call instead of each asking before the first answer arrives; a failure is not kept, so
 * the next caller asks again.
 */
export async function slackIdentity(state: SlackState, callOpts: CallOptions = {}): Promise<SlackIdentity> {
  if (state.workspaceUrl !== undefined) return { userId: state.botUserId, workspaceUrl: state.workspaceUrl };
  state.authTestPending ??= state.client
    .call('auth.test', {}, callOpts)
    .then((res) => {
      const workspaceUrl = typeof res.url === 'string' && /^https?:\/\//.test(res.url) ? res.url : null;
      state.botUserId = typeof res.user_id === 'string' ? res.user_id : undefined;
      state.workspaceUrl = workspaceUrl;
      return { userId: state.botUserId, workspaceUrl };
    })
    .finally(() => {
      delete state.authTestPending;
    });
  return state.authTestPending;
}

/** The bot's user id, so that inviting "everyone" never tries to invite the bot itself. */
export async function botUserId(state: SlackState, ctx: FunctionContext): Promise<string | undefined> {
  return (await slackIdentity(state, callOptionsFor(ctx))).userId;
}
