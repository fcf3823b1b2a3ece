/**
 * slack_get_conversation: a channel's messages as data for the workflow: the newest
 * `slack_limit` top-level messages (since `slack_oldest`), oldest first, each with its
 * author's name and email and, with `slack_include_replies`, its thread replies (at most
 * `slack_limit` per thread). Pages come from the client's `paginate`, and paging stops as
 * soon as the limit is reached: a busy channel is not read whole.
 */
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import type { ChannelDeps } from './channels/index.js';
import type { SlackMessage } from './slack-types.js';
import type { SlackState } from './state.js';
import { onChannel } from './verbs.js';
import { boolInput, intInput, strInput } from './inputs.js';
import { isSlackError } from './slack-errors.js';

const DEFAULT_LIMIT = 100;
/** Slack's largest page for conversations.history and replies. */
const PAGE = 200;

interface Author {
  id: string | null;
  name: string | null;
  email: string | null;
}

/** Looks each author up once per invocation (users.info), bots by their profile. */
class Authors {
  private readonly known = new Map<string, Author>();
  constructor(private readonly deps: ChannelDeps) {}

  async of(m: SlackMessage): Promise<Author> {
    if (!m.user) return { id: m.bot_id ?? null, name: m.username ?? m.bot_profile?.name ?? null, email: null };
    const id = String(m.user);
    let a = this.known.get(id);
    if (!a) {
      try {
        const { user } = await this.deps.client.call('users.info', { user: id }, this.deps.callOpts);
        a = { id, name: String(user.real_name || user.name || id), email: typeof user.profile?.email === 'string' ? user.profile.email : null };
      } catch (err) {
        // A user of another workspace (a shared channel) is not found: keep the id.
        if (!isSlackError(err, 'user_not_found', 'users_not_found')) throw err;
        a = { id, name: null, email: null };
      }
      this.known.set(id, a);
    }
    return a;
  }
}

function files(m: SlackMessage): Record<string, unknown>[] {
  return (m.files ?? []).map((f) => ({ id: f.id, name: f.name ?? null, title: f.title ?? null, url: f.permalink ?? f.url_private ?? null }));
}

export async function getConversation(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const limit = intInput(ctx.inputs, 'slack_limit') ?? DEFAULT_LIMIT;
  const oldest = strInput(ctx.inputs, 'slack_oldest');
  const withReplies = boolInput(ctx.inputs, 'slack_include_replies') ?? false;

  const { channel, value } = await onChannel(ctx, state, async (channel, deps) => {
    const top: SlackMessage[] = [];
    let hasMore = false;
    const params: Record<string, unknown> = { channel: channel.id, limit: Math.min(PAGE, limit) };
    if (oldest) params.oldest = oldest;
    for await (const page of state.client.paginate('conversations.history', params, { ...deps.callOpts, what: `#${channel.name}` })) {
      const msgs = page.messages ?? [];
      const taken = msgs.slice(0, limit - top.length);
      top.push(...taken);
      if (top.length >= limit) {
        hasMore = taken.length < msgs.length || Boolean(page.has_more);
        break;
      }
    }
    return { top, hasMore, deps };
  });

  const authors = new Authors(value.deps);
  const messages: Record<string, unknown>[] = [];
  // Slack gives the newest first; the workflow reads the conversation oldest first.
  for (const m of [...value.top].reverse()) {
    const out: Record<string, unknown> = {
      ts: m.ts,
      author: await authors.of(m),
      text: m.text ?? '',
      thread_ts: m.thread_ts ?? null,
      reply_count: m.reply_count ?? 0,
      files: files(m),
    };
    if (withReplies) out.replies = Number(m.reply_count ?? 0) > 0 ? await replies(state, value.deps, channel.id, String(m.ts), limit, authors) : [];
    messages.push(out);
  }
  await ctx.status(`Read ${messages.length} message(s) from #${channel.name}${value.hasMore ? ' (there are more)' : ''}`);
  return { content: { channel: channel.name, channel_id: channel.id, messages, has_more: value.hasMore } };
}

async function replies(state: SlackState, deps: ChannelDeps, channelId: string, ts: string, limit: number, authors: Authors): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const page of state.client.paginate('conversations.replies', { channel: channelId, ts, limit: Math.min(PAGE, limit) }, deps.callOpts)) {
    // Each page starts with the thread's parent: it is the message itself, not a reply.
    for (const r of page.messages ?? []) {
      if (r.ts === ts || out.length >= limit) continue;
      out.push({ ts: r.ts, author: await authors.of(r), text: r.text ?? '', files: files(r) });
    }
    if (out.length >= limit) break;
  }
  return out;
}
