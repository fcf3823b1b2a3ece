/**
 * The redelivery reconcile: what an earlier attempt of the same invocation already did in
 * Slack, so that a redelivery does not do it twice.
 *
 * - Posts (slack_post_message, slack_send_direct_message, the archive notice) carry the
 *   invocation id and their part number in Slack message metadata ({@link postMetadata});
 *   {@link findEarlierPosts} finds them again.
 * - Uploads cannot carry metadata: {@link findEarlierUpload} looks for a message by the
 *   bot, since the invocation began, sharing a file of the same name and size.
 */
import type { FunctionContext } from '../../core/runtime/plugin.js';
import type { ChannelDeps } from './channels/lookup.js';
import type { CallOptions, SlackClient } from './slack-client.js';
import type { SlackMessage } from './slack-types.js';

/** Slack message metadata event type that marks the worker's own posts. */
export const POST_EVENT_TYPE = 'soar_worker_post';

/** How far back a redelivered invocation looks for the posts of its earlier attempt. */
const RECONCILE_HISTORY = 100;

/** The metadata that tags part `part` of `parts` of a post as this invocation's (see findEarlierPosts). */
export function postMetadata(invocationId: string, part: number, parts: number): string {
  return JSON.stringify({ event_type: POST_EVENT_TYPE, event_payload: { invocation_id: invocationId, part, parts } });
}

function partOf(message: SlackMessage, invocationId: string): number | undefined {
  const meta = message.metadata;
  if (meta?.event_type !== POST_EVENT_TYPE || meta.event_payload?.invocation_id !== invocationId) return undefined;
  const part = meta.event_payload.part;
  return typeof part === 'number' ? part : undefined;
}

/**
 * On a redelivery, finds the parts an earlier attempt already posted (tagged with this
 * invocation id in their metadata), so that they are not posted twice.
 */
export async function findEarlierPosts(deps: ChannelDeps, channelId: string, invocationId: string): Promise<Map<number, string>> {
  const found = new Map<number, string>();
  const history = await deps.client.call(
    'conversations.history',
    { channel: channelId, limit: RECONCILE_HISTORY, include_all_metadata: true },
    deps.callOpts,
  );
  const first = (history.messages ?? []).find((m) => partOf(m, invocationId) === 0);
  if (!first) return found;
  found.set(0, String(first.ts));
  if (Number(first.reply_count ?? 0) > 0) {
    const params = { channel: channelId, ts: first.ts, include_all_metadata: true, limit: 200 };
    for await (const page of deps.client.paginate('conversations.replies', params, deps.callOpts)) {
      for (const m of page.messages ?? []) {
        const part = partOf(m, invocationId);
        if (part !== undefined && part > 0) found.set(part, String(m.ts));
      }
    }
  }
  return found;
}

/**
 * How far before the invocation's first delivery an earlier attempt's upload may be
 * dated: Slack's clock and the worker's differ a little. Small, because a match inside
 * this window that is not ours (the same file uploaded by another invocation a moment
 * before) would be taken for ours.
 */
const RECONCILE_SKEW_SECONDS = 60;
/** Pages of channel history (200 messages each) searched for the earlier upload. */
const RECONCILE_PAGES = 5;

/** An upload found in the channel: the file and the message that shares it. */
export interface EarlierUpload {
  fileId: string;
  ts: string;
  filePermalink: string;
}

/**
 * On a redelivery, finds the upload an interrupted earlier attempt already made: a
 * message in the channel posted by the bot since the invocation began, sharing a file
 * with the same name and size. Uploads cannot carry message metadata, so this is the
 * closest Slack offers to the invocation tag that slack_post_message uses.
 */
export async function findEarlierUpload(
  client: SlackClient,
  opts: CallOptions,
  q: { channelId: string; since: Date; botUserId: string | undefined; name: string; size: number },
): Promise<EarlierUpload | undefined> {
  const oldest = (Math.floor(q.since.getTime() / 1000) - RECONCILE_SKEW_SECONDS).toFixed(6);
  let pages = 0;
  for await (const page of client.paginate('conversations.history', { channel: q.channelId, oldest, limit: 200 }, opts)) {
    // Newest first: the latest matching upload is the earlier attempt's.
    for (const m of page.messages ?? []) {
      if (!Array.isArray(m.files) || (q.botUserId && m.user !== q.botUserId)) continue;
      const file = m.files.find((f) => f.name === q.name && Number(f.size) === q.size);
      if (file?.id) return { fileId: String(file.id), ts: String(m.ts), filePermalink: String(file.permalink ?? '') };
    }
    if (++pages >= RECONCILE_PAGES) break;
  }
  return undefined;
}

/** When the invocation's first delivery began (the ledger's record); undefined if unknown. */
export async function invocationStart(ctx: FunctionContext): Promise<Date | undefined> {
  try {
    return (await ctx.store.ledger.get(ctx.invocationId))?.createdAt;
  } catch (err) {
    ctx.log.warn(`Could not read when the invocation began: ${(err as Error).message}`);
    return undefined;
  }
}
