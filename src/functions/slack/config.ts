/**
 * The `[fn_slack]` config section.
 */
import { ConfigError } from '../../core/runtime/errors.js';
import type { JsonSchema, SectionOf } from '../../core/runtime/plugin.js';

export const SLACK_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['api_token'],
  properties: {
    api_token: {
      type: 'string',
      pattern: '^xox[bp]-',
      // Annotation read by `worker config -c/-u`: the variable a new config refers to.
      'x-env': 'SLACK_BOT_TOKEN',
      description: 'a bot token (xoxb-…); use $SLACK_BOT_TOKEN to keep it out of the file',
    },
    api_url: { type: 'string', pattern: '^https?://', default: 'https://slack.com/api/', description: 'Slack Web API base URL' },
    // The inbound half (DESIGN.md "The inbound half"): all off unless app_token or events_port is set.
    app_token: {
      type: 'string',
      default: '',
      'x-env': 'SLACK_APP_TOKEN',
      description: 'an app-level token (xapp-…, scope connections:write): receive Slack events over Socket Mode; empty: outbound only',
    },
    mirror: {
      type: 'string',
      enum: ['all', 'off'],
      default: 'all',
      description: 'all: human messages in a channel associated with an incident become notes on it; off: none',
    },
    command: {
      type: 'string',
      pattern: '^/[a-z0-9_-]{1,31}$',
      default: '/soar',
      description: 'the slash command the worker answers (as named in the Slack app)',
    },
    signing_secret: {
      type: 'string',
      default: '',
      'x-env': 'SLACK_SIGNING_SECRET',
      description: "the app's signing secret: verifies requests to the HTTP Events API receiver (needed with events_port)",
    },
    events_port: {
      type: 'integer',
      minimum: 0,
      maximum: 65535,
      default: 0,
      description: 'port of the HTTP Events API receiver (the Request URL, behind a TLS proxy); 0: off',
    },
    events_host: {
      type: 'string',
      default: '127.0.0.1',
      description: 'address the HTTP Events API receiver listens on (127.0.0.1: behind a reverse proxy on this host)',
    },
    inbound_reorder_ms: {
      type: 'integer',
      minimum: 0,
      maximum: 10000,
      default: 1000,
      description:
        "milliseconds a received message waits before it is handled, so that one channel's messages recorded by several workers in another order are handled in Slack's order; 0: queue order",
    },
    inbound_queue: {
      type: 'string',
      pattern: '^[A-Za-z0-9_.:-]{1,200}$',
      default: 'fn_slack.inbound',
      description: 'durable queue where received Slack events wait to be handled (with its own .dlx and .dead)',
    },
    username: { type: 'string', default: '', description: 'name shown on posts when slack_username is not given (needs chat:write.customize)' },
    soar_url: {
      type: 'string',
      default: '',
      description: 'link back to the incident: a template with {incident_id} and {task_id}',
    },
    template_file: { type: 'string', default: '', description: 'Jinja2-compatible template overriding the export format' },
    max_upload_mb: { type: 'number', exclusiveMinimum: 0, maximum: 1024, default: 100, description: 'larger attachments are refused' },
    timeout: { type: 'number', minimum: 1, default: 30, description: 'seconds per Slack request' },
    retry_budget: {
      type: 'number',
      minimum: 0,
      default: 120,
      description: 'seconds one Slack call may wait on rate limits and outages before a retryable error',
    },
    time_zone: {
      type: 'string',
      format: 'time-zone',
      default: 'UTC',
      description: 'time zone of dates in messages and exports (an IANA name, e.g. Europe/Paris)',
    },
    channel_cache_size: {
      type: 'integer',
      minimum: 0,
      default: 10000,
      description: 'channels remembered (name → id, and info and members by id)',
    },
    // 300 s: conversations.info (Tier 3, 50/min) and conversations.members (Tier 4,
    // 100/min) are workspace-wide; looked up on every post they, not chat.postMessage's
    // 1/s per channel, would bound posting. Five minutes keeps a busy incident channel to
    // one lookup of each per five minutes while a change made in Slack (privacy, members)
    // shows within a few minutes; an archived or left channel is noticed at once because
    // the post fails and the entry is dropped. 0 turns the info and member cache off.
    channel_cache_ttl: {
      type: 'integer',
      minimum: 0,
      default: 300,
      description: 'seconds channel info (privacy, archived, membership) and member lists are reused before Slack is asked again; 0 = ask every time',
    },
    // Defaults follow Slack's documented limits (rate-limiter.ts cites them): a workspace
    // that Slack granted more can raise them; nothing here exceeds what Slack promises.
    rate_limits: {
      type: 'string',
      enum: ['on', 'off'],
      default: 'on',
      description: "on: pace Slack calls to stay within Slack's rate limits (per method, and per channel for posts); off: call at once and rely on Retry-After",
    },
    rate_limit_overrides: {
      type: 'string',
      default: '',
      description: 'calls per minute per method where Slack grants other limits than its documented tiers, e.g. conversations.create:50, users.lookupByEmail:100',
    },
    rate_limit_burst: {
      type: 'integer',
      minimum: 1,
      default: 5,
      description: 'calls of one method Slack lets go back to back before they must be spaced at its rate (the worker keeps half a call in reserve against timing jitter)',
    },
    channel_posts_per_second: {
      type: 'number',
      exclusiveMinimum: 0,
      default: 1,
      description: 'messages and files posted per second into one channel (Slack: about 1)',
    },
    ask_sweep_interval: {
      type: 'number',
      minimum: 0.1,
      default: 30,
      description: 'seconds between sweeps that expire due slack_ask questions and finish asks a stopped worker left unfinished',
    },
    ask_lease: {
      type: 'number',
      minimum: 0.1,
      default: 60,
      description: 'seconds the worker that ends an ask holds it to finish (update the question, note, final reply) before a sweeper takes over',
    },
    channel_post_burst: {
      type: 'integer',
      minimum: 1,
      default: 3,
      description: 'posts to one channel Slack lets go back to back before they must be spaced (the worker keeps half a call in reserve against timing jitter)',
    },
  },
} as const satisfies JsonSchema;

/** `[fn_slack]` as the plugin sees it: every default applied (see SectionOf). */
export type SlackConfig = SectionOf<typeof SLACK_CONFIG_SCHEMA>;

/** A method name as Slack writes them: dotted words, e.g. `users.lookupByEmail`. */
const METHOD_NAME = /^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9_]*)+$/;

/**
 * Parses `rate_limit_overrides` (`method:perMinute, method:perMinute`). A bad entry
 * stops the worker with an error naming it and showing the expected form.
 */
export function parseRateLimitOverrides(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const m = /^([^:\s]+)\s*:\s*(\S+)$/.exec(entry);
    const where = `[fn_slack] rate_limit_overrides: ${JSON.stringify(entry)}`;
    if (!m) throw new ConfigError(`${where} is not method:perMinute (e.g. conversations.create:50)`);
    const [, method, value] = m;
    if (!METHOD_NAME.test(method)) throw new ConfigError(`${where}: ${JSON.stringify(method)} is not a Slack method name (e.g. conversations.create)`);
    const perMinute = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value) || !(perMinute > 0)) {
      throw new ConfigError(`${where}: the calls per minute must be a positive number (got ${JSON.stringify(value)})`);
    }
    if (method in out) throw new ConfigError(`${where}: ${method} is listed twice`);
    out[method] = perMinute;
  }
  return out;
}

