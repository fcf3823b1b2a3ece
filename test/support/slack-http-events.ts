/**
 * Slack's side of the HTTP Events API (https://api.slack.com/apis/events-api): posts
 * what Slack posts to an app's Request URL, signed as Slack signs it
 * (https://api.slack.com/authentication/verifying-requests-from-slack):
 * `X-Slack-Request-Timestamp` (seconds) and `X-Slack-Signature: v0=<hex HMAC-SHA256 of
 * "v0:<timestamp>:<raw body>" with the app's signing secret>`; a retry carries
 * `X-Slack-Retry-Num` and `X-Slack-Retry-Reason`. Events are JSON; interactions are a
 * form with a `payload` field of JSON; slash commands are a form of their fields.
 */
import { createHmac } from 'node:crypto';

export interface SignedPostOptions {
  /** Seconds since the epoch to sign with (default now): a stale one tests replay refusal. */
  timestamp?: number;
  /** Sign with this secret instead (a wrong one tests signature refusal). */
  secret?: string;
  retryNum?: number;
  retryReason?: string;
}

export interface PostResult {
  status: number;
  body: string;
}

export class SlackHttpEventsSender {
  constructor(
    readonly requestUrl: string,
    readonly signingSecret: string,
  ) {}

  /** The headers Slack sends with `body` (exported for tests that tamper with them). */
  sign(body: string, o: SignedPostOptions = {}): Record<string, string> {
    const timestamp = String(o.timestamp ?? Math.floor(Date.now() / 1000));
    const signature = `v0=${createHmac('sha256', o.secret ?? this.signingSecret)
      .update(`v0:${timestamp}:${body}`)
      .digest('hex')}`;
    return {
      'X-Slack-Request-Timestamp': timestamp,
      'X-Slack-Signature': signature,
      ...(o.retryNum ? { 'X-Slack-Retry-Num': String(o.retryNum), 'X-Slack-Retry-Reason': o.retryReason ?? 'http_timeout' } : {}),
    };
  }

  async post(body: string, contentType: string, o: SignedPostOptions = {}, extraHeaders: Record<string, string> = {}): Promise<PostResult> {
    const res = await fetch(this.requestUrl, {
      method: 'POST',
      headers: { 'Content-Type': contentType, 'User-Agent': 'Slackbot 1.0 (+https://api.slack.com/robots)', ...this.sign(body, o), ...extraHeaders },
      body,
    });
    return { status: res.status, body: await res.text() };
  }

  /** An Events API request: the `event_callback` (or `url_verification`) as JSON. */
  event(payload: Record<string, unknown>, o: SignedPostOptions = {}): Promise<PostResult> {
    return this.post(JSON.stringify(payload), 'application/json', o);
  }

  /** The `url_verification` handshake Slack sends when the Request URL is saved. */
  urlVerification(challenge: string, o: SignedPostOptions = {}): Promise<PostResult> {
    return this.event({ token: 'emulated-verification-token', challenge, type: 'url_verification' }, o);
  }

  /** An interaction (block_actions, view_submission…): a form with `payload`. */
  interaction(payload: Record<string, unknown>, o: SignedPostOptions = {}): Promise<PostResult> {
    return this.post(new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), 'application/x-www-form-urlencoded', o);
  }

  /** A slash command: its fields as a form. */
  slashCommand(fields: Record<string, string>, o: SignedPostOptions = {}): Promise<PostResult> {
    return this.post(new URLSearchParams(fields).toString(), 'application/x-www-form-urlencoded', o);
  }
}
