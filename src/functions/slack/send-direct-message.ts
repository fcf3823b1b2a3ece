/**
 * slack_send_direct_message: one direct message to each person given by email, once per
 * invocation. Each post carries the invocation id in its metadata, as slack_post_message's
 * do, so that a redelivery finds what its earlier attempt sent and sends only the rest.
 */
import { FunctionError } from '../../core/runtime/errors.js';
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import type { SlackState } from './state.js';
import { botUserId, channelDeps } from './state.js';
import { usersByEmail } from './verbs.js';
import { emailsInput, renderTextInput } from './inputs.js';
import { findEarlierPosts, postMetadata } from './reconcile.js';

export async function sendDirectMessage(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const emails = emailsInput(ctx.inputs, 'slack_user_emails');
  const parts = renderTextInput(ctx.inputs, state.config);
  const deps = channelDeps(ctx, state);
  const bot = await botUserId(state, ctx);
  const { found, unknown } = await usersByEmail(deps, emails);
  if (found.length === 0) throw new FunctionError(`No Slack user has the email ${unknown.join(', ')}`, 'slack_user_not_found');
  const self = found.find((u) => u.id === bot);
  if (self) throw new FunctionError(`${self.email} is the Slack app itself: leave it out of slack_user_emails`, 'slack_cant_dm_self');

  const sent: Record<string, unknown>[] = [];
  for (const u of found) {
    const opened = await state.client.call('conversations.open', { users: u.id }, { ...deps.callOpts, what: u.email });
    const dm = opened.channel.id;
    const earlier = ctx.attempt > 1 ? await findEarlierPosts(deps, dm, ctx.invocationId) : new Map<number, string>();
    const timestamps: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      const done = earlier.get(i);
      if (done) {
        timestamps.push(done);
        continue;
      }
      const params: Record<string, unknown> = {
        channel: dm,
        text: parts[i]!.text,
        blocks: JSON.stringify(parts[i]!.blocks),
        unfurl_links: false,
        unfurl_media: false,
        metadata: postMetadata(ctx.invocationId, i, parts.length),
      };
      // A long text continues in the first message's thread, as a post does.
      if (i > 0) params.thread_ts = timestamps[0];
      const res = await state.client.call('chat.postMessage', params, { ...deps.callOpts, what: `the direct message to ${u.email}` });
      timestamps.push(String(res.ts));
    }
    await ctx.status(earlier.has(0) ? `${u.email} already had the message (an earlier attempt sent it)` : `Sent the message to ${u.email}`);
    sent.push({ email: u.email, user_id: u.id, channel_id: dm, ts: timestamps[0] });
  }
  for (const e of unknown) await ctx.status(`Warning: No Slack user has the email ${e}`);
  return { content: { messages: sent, not_found: unknown } };
}
