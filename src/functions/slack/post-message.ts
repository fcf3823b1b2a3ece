/**
 * slack_post_message: posts incident or task data to a channel.
 */
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import { channelMembers, inviteParticipants, recordAssociation, withResolvedChannel, type ChannelInfo } from './channels/index.js';
import { stripBidiControls } from './bidi.js';
import { boolInput, channelInputs, renderTextInput, strInput } from './inputs.js';
import { findEarlierPosts, postMetadata } from './reconcile.js';
import { botUserId, channelDeps, type SlackState } from './state.js';
import { messagePermalink } from './permalink.js';
import { withCard } from './triage/card.js';

export async function postMessage(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const { inputs } = ctx;
  const target = channelInputs(inputs);
  const mrkdwn = boolInput(inputs, 'slack_mrkdwn') ?? true;
  const parts = renderTextInput(inputs, state.config);
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
    return res.ts;
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

  const permalink = await messagePermalink(state, { channelId: channel.id, ts }, deps.callOpts);
  await recordAssociation(ctx, state.conversations, target, channel, permalink, association);
  const members = await channelMembers(deps, channel.id);
  return {
    content: {
      channel: channel.name,
      channel_id: channel.id,
      ts,
      url: permalink,
      members,
      is_private: channel.isPrivate,
      thread_ts: parts.length > 1 ? ts : null,
      continuation_ts: timestamps.slice(1),
    },
  };
}
