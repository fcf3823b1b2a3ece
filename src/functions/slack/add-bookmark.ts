/**
 * slack_add_bookmark: adds a link to the channel's bookmarks bar, by default the
 * incident's page in SOAR ([fn_slack] soar_url). Slack has no "already bookmarked"
 * error, so the channel's bookmarks are listed first: one with the same title and link
 * (an earlier attempt's) is the bookmark, and none is added twice.
 */
import { FunctionError } from '../../core/runtime/errors.js';
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import type { SlackState } from './state.js';
import { onChannel } from './verbs.js';
import { intInput, strInput } from './inputs.js';

/** The incident's (or task's) page in SOAR from `[fn_slack] soar_url`, or undefined. */
export function soarLink(template: string, incidentId: number, taskId?: number): string | undefined {
  let url = template.trim();
  if (!url) return undefined;
  url = url.split('{incident_id}').join(String(incidentId));
  if (url.includes('{task_id}')) {
    if (!taskId) return undefined;
    url = url.split('{task_id}').join(String(taskId));
  }
  return url;
}

function checkLink(link: string, from: string): string {
  let ok = false;
  try {
    const u = new URL(link);
    ok = u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    ok = false;
  }
  if (!ok) throw new FunctionError(`${from} "${link}" is not an http(s) URL`, 'invalid_link');
  return link;
}

export async function addBookmark(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const { inputs } = ctx;
  const title = (strInput(inputs, 'slack_bookmark_title') as string).trim();
  const given = strInput(inputs, 'slack_bookmark_link')?.trim();
  let link: string;
  if (given) {
    link = checkLink(given, 'slack_bookmark_link');
  } else {
    const fromConfig = soarLink(state.config.soar_url ?? '', intInput(inputs, 'incident_id') as number, intInput(inputs, 'task_id'));
    if (!fromConfig) {
      throw new FunctionError(
        'Give slack_bookmark_link, or set [fn_slack] soar_url so that the bookmark can link to the incident',
        'missing_link',
      );
    }
    link = checkLink(fromConfig, '[fn_slack] soar_url gives');
  }

  const { channel, value } = await onChannel(ctx, state, async (channel, deps) => {
    const opts = { ...deps.callOpts, what: `#${channel.name}` };
    const { bookmarks } = await state.client.call('bookmarks.list', { channel_id: channel.id }, opts);
    const existing = (bookmarks ?? []).find((b) => b.title === title && b.link === link);
    if (existing) return { id: String(existing.id), already: true };
    const res = await state.client.call('bookmarks.add', { channel_id: channel.id, title, type: 'link', link }, opts);
    return { id: String(res.bookmark.id), already: false };
  });
  await ctx.status(value.already ? `#${channel.name} already has the bookmark "${title}"` : `Bookmarked "${title}" in #${channel.name}`);
  return { content: { channel: channel.name, channel_id: channel.id, bookmark_id: value.id, title, link, already_bookmarked: value.already } };
}
