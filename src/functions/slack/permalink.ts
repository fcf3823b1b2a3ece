/**
 * Message permalinks, built locally in the shape Slack documents and chat.getPermalink
 * returns:
 *
 *   https://<workspace>.slack.com/archives/<channel>/p<ts without the dot>
 *   …?thread_ts=<thread ts>&cid=<channel>                           (a thread reply)
 *
 * The workspace URL is auth.test's `url`, asked once per process and shared with the bot
 * user id (state.ts). Building the link saves a Slack call per post and its share of the
 * rate limits; chat.getPermalink is asked only when auth.test gave no URL.
 */
import type { CallOptions } from './slack-client.js';
import { slackIdentity, type SlackState } from './state.js';

/** A message: its channel, its ts, and for a thread reply the ts of the thread's parent. */
export interface MessageRef {
  channelId: string;
  ts: string;
  threadTs?: string | undefined;
}

/** The permalink of `msg` in the workspace at `workspaceUrl` (e.g. `https://acme.slack.com/`). */
export function buildPermalink(workspaceUrl: string, msg: MessageRef): string {
  const base = `${workspaceUrl.replace(/\/+$/, '')}/archives/${encodeURIComponent(msg.channelId)}/p${msg.ts.replace('.', '')}`;
  if (!msg.threadTs || msg.threadTs === msg.ts) return base;
  return `${base}?thread_ts=${encodeURIComponent(msg.threadTs)}&cid=${encodeURIComponent(msg.channelId)}`;
}

/** The permalink of `msg`: built from the workspace URL, or asked of Slack when there is none. */
export async function messagePermalink(state: SlackState, msg: MessageRef, callOpts: CallOptions = {}): Promise<string> {
  const { workspaceUrl } = await slackIdentity(state, callOpts);
  if (workspaceUrl) return buildPermalink(workspaceUrl, msg);
  const res = await state.client.call('chat.getPermalink', { channel: msg.channelId, message_ts: msg.ts }, callOpts);
  return String(res.permalink);
}
