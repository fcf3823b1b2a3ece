/**
 * slack_post_message: posts incident or task data to a channel.
 */
import { FunctionError } from '../../core/runtime/errors.js';
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import {
  channelMembers,
  inviteParticipants,
  recordAssociation,
  withResolvedChannel,
  type ChannelDeps,
  type ChannelInfo,
  type ChannelInputs,
} from './channels.js';
import { renderSlackText, type RenderedMessage } from './format/index.js';
import { stripBidiControls } from './bidi.js';
import type { SlackState } from './state.js';
import { withCard } from './triage/card.js';
import { boolInput, botUserId, channelDeps, intInput, strInput } from './state.js';

/** Slack message metadata event type that marks the worker's own posts. */
export const POST_EVENT_TYPE = 'soar_worker_post';

/** How far back a redelivered invocation looks for the posts of its earlier attempt. */
const RECONCILE_HISTORY = 100;

export function channelInputs(inputs: Record<string, unknown>): ChannelInputs {
  return {
    incidentId: intInput(inputs, 'incident_id') as number,
    taskId: intInput(inputs, 'task_id'),
    slackChannel: strInput(inputs, 'slack_channel'),
    slackChannelId: strInput(inputs, 'slack_channel_id'),
    isPrivate: boolInput(inputs, 'slack_is_channel_private'),
  };
}

/** The metadata that tags part `part` of `parts` of a post as this invocation's (see findEarlierPosts). */
export function postMetadata(invocationId: string, part: number, parts: number): string {
  return JSON.stringify({ event_type: POST_EVENT_TYPE, event_payload: { invocation_id: invocationId, part, parts } });
}

function partOf(message: Record<string, any>, invocationId: string): number | undefined {
  const meta = message.metadata as { event_type?: string; event_payload?: Record<string, unknown> } | undefined;
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
  const first = ((history.messages ?? []) as Record<string, any>[]).find((m) => partOf(m, invocationId) === 0);
  if (!first) return found;
  found.set(0, String(first.ts));
  if (Number(first.reply_count ?? 0) > 0) {
    let cursor: string | undefined;
    do {
      const params: Record<string, unknown> = { channel: channelId, ts: first.ts, include_all_metadata: true, limit: 200 };
      if (cursor) params.cursor = cursor;
      const res = await deps.client.call('conversations.replies', params, deps.callOpts);
      for (const m of (res.messages ?? []) as Record<string, any>[]) {
        const part = partOf(m, invocationId);
        if (part !== undefined && part > 0) found.set(part, String(m.ts));
      }
      cursor = (res.response_metadata?.next_cursor as string | undefined) || undefined;
    } while (cursor);
  }
  return found;
}

export async function postMessage(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const { inputs } = ctx;
  const target = channelInputs(inputs);
  const mrkdwn = boolInput(inputs, 'slack_mrkdwn') ?? true;
  let parts: RenderedMessage[];
  try {
    parts = renderSlackText(String(inputs.slack_text ?? ''), {
      mrkdwn,
      incidentId: target.incidentId,
      ...(target.taskId ? { taskId: target.taskId } : {}),
      ...(state.config.soar_url ? { soarUrlTemplate: state.config.soar_url } : {}),
      timeZone: state.config.time_zone,
    });
  } catch (err) {
    throw new FunctionError((err as Error).message, 'invalid_slack_text');
  }
  if (boolInput(inputs, 'slack_triage_buttons')) {
    // The card goes on the first (top-level) post, where people see it.
    parts[0] = { ...parts[0]!, blocks: withCard(parts[0]!.blocks, target.incidentId) };
  }
  if (boolInput(inputs, 'slack_as_user')) {
    await ctx.status('slack_as_user has no effect with a bot token: the message is posted by the app');
  }

  const deps = channelDeps(ctx, state);
  // Without bidi controls: a poster name must read as what it is (see bidi.ts).
  const rawUsername = strInput(inputs, 'slack_username') ?? (state.config.username || undefined);
  const username = rawUsername === undefined ? undefined : stripBidiControls(rawUsername).trim() || undefined;
  const postPart = async (channel: ChannelInfo, i: number, threadTs: string | undefined): Promise<string> => {
    const part = parts[i]!;
    const params: Record<string, unknown> = {
      channel: channel.id,
      text: part.text,
      blocks: JSON.stringify(part.blocks),
      mrkdwn,
      unfurl_links: false,
      unfurl_media: false,
      metadata: postMetadata(ctx.invocationId, i, parts.length),
    };
    if (username) params.username = username;
    if (threadTs) params.thread_ts = threadTs;
    const res = await state.client.call('chat.postMessage', params, { ...deps.callOpts, what: `#${channel.name}` });
    return String(res.ts);
  };

  // Everything up to the first part's post acts on the channel as resolved (maybe from
  // the cache): a stale cache entry surfaces here and is looked up again.
  const {
    resolved: { channel, association },
    value: earlier,
  } = await withResolvedChannel(ctx, deps, target, async ({ channel }) => {
    await inviteParticipants(ctx, deps, channel, strInput(inputs, 'slack_participant_emails'), await botUserId(state, ctx));
    const found = ctx.attempt > 1 ? await findEarlierPosts(deps, channel.id, ctx.invocationId) : new Map<number, string>();
    if (found.size) await ctx.status(`Found ${found.size} part(s) posted by an earlier attempt; not posting them again`);
    if (!found.has(0)) found.set(0, await postPart(channel, 0, undefined));
    return found;
  });

  const timestamps: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    timestamps.push(earlier.get(i) ?? (await postPart(channel, i, timestamps[0])));
  }
  const ts = timestamps[0]!;
  await ctx.status(
    parts.length > 1
      ? `Posted the message to #${channel.name} (${parts.length - 1} continuation(s) in its thread)`
      : `Posted the message to #${channel.name}`,
  );

  const { permalink } = await state.client.call('chat.getPermalink', { channel: channel.id, message_ts: ts }, deps.callOpts);
  await recordAssociation(ctx, target, channel, String(permalink), association);
  const members = await channelMembers(deps, channel.id);
  return {
    content: {
      channel: channel.name,
      channel_id: channel.id,
      ts,
      url: String(permalink),
      members,
      is_private: channel.isPrivate,
      thread_ts: parts.length > 1 ? ts : null,
      continuation_ts: timestamps.slice(1),
    },
  };
}
