/**
 * slack_archive_channel: exports a channel's whole conversation to the incident or
 * task, then archives the channel and marks its association archived.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FunctionError } from '../../core/errors.js';
import type { FunctionContext, FunctionResult } from '../../core/plugin.js';
import { channelById, describeTarget, ensureMember, resId } from './channels.js';
import type { Template } from 'nunjucks';
import { compileTemplate, exportConversation } from './export.js';
import { channelDeps, intInput, strInput, type SlackState } from './state.js';
import { SlackApiError } from './slack-errors.js';
import { findEarlierPosts, POST_EVENT_TYPE } from './post-message.js';

export const ARCHIVE_NOTICE = 'This channel has been set to be archived';

/** The export's file name, as fn_slack names it. */
export function exportFileName(channelName: string): string {
  return `slack_msg_export_channel_${channelName}.txt`;
}

export async function archiveChannel(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const { inputs } = ctx;
  const incidentId = intInput(inputs, 'incident_id') as number;
  const taskId = intInput(inputs, 'task_id');
  const key = resId(incidentId, taskId);
  const targetText = describeTarget(incidentId, taskId);
  const deps = channelDeps(ctx, state);

  const association = await ctx.store.conversations.get(key);
  const channelId = strInput(inputs, 'slack_channel_id') ?? association?.channelId;
  if (!channelId) {
    throw new FunctionError(
      `No Slack channel is associated with ${targetText}: give slack_channel_id to archive a channel`,
      'slack_no_channel',
    );
  }
  // Before anything happens in Slack: an export for an unknown incident or task could
  // never be saved, and a notice posted for it would be posted again by the re-run.
  await ctx.platform.checkExportTarget({ incidentId, taskId });
  // A bad template is a config error: report it before anything happens in Slack.
  let template: Template | undefined;
  if (state.config.template_file) {
    let source: string;
    try {
      source = fs.readFileSync(state.config.template_file, 'utf8');
    } catch (err) {
      throw new FunctionError(
        `Cannot read [fn_slack] template_file ${state.config.template_file}: ${(err as Error).message}`,
        'export_template_unreadable',
      );
    }
    try {
      template = await compileTemplate(source);
    } catch (err) {
      throw new FunctionError(`[fn_slack] template_file ${state.config.template_file}: ${(err as Error).message}`, 'export_template_invalid');
    }
  }
  const channel = await channelById(deps, channelId);
  if (channel.isArchived) {
    if (association?.channelId === channel.id && !association.archived) await ctx.store.conversations.markArchived(key, new Date());
    throw new FunctionError(`Slack channel #${channel.name} is already archived; nothing to do`, 'slack_channel_already_archived');
  }
  await ctx.status(`Found channel #${channel.name}`);
  await ensureMember(deps, channel);

  // A redelivery whose earlier attempt already posted the notice does not post it again.
  const noticed = ctx.attempt > 1 && (await findEarlierPosts(deps, channel.id, ctx.invocationId)).has(0);
  if (!noticed) await state.client.call(
    'chat.postMessage',
    {
      channel: channel.id,
      text: ARCHIVE_NOTICE,
      metadata: JSON.stringify({ event_type: POST_EVENT_TYPE, event_payload: { invocation_id: ctx.invocationId, part: 0, parts: 1 } }),
    },
    { ...deps.callOpts, what: `#${channel.name}` },
  );
  await ctx.status(`Posted "${ARCHIVE_NOTICE}" to #${channel.name}`);

  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slack-export-'));
  const fileName = exportFileName(channel.name);
  const outFile = path.join(workDir, fileName);
  try {
    await ctx.status(`Exporting the conversation of #${channel.name}`);
    let result;
    try {
      result = await exportConversation((method, params) => state.client.call(method, params, deps.callOpts), {
        channel: { id: channel.id, name: channel.name },
        outFile,
        tmpDir: workDir,
        timeZone: state.config.time_zone,
        ...(template !== undefined ? { template } : {}),
        signal: ctx.signal,
        onProgress: (p) => ctx.status(`Exported ${p.messages} messages and ${p.replies} replies so far`),
      });
    } catch (err) {
      if (err instanceof SlackApiError || err instanceof FunctionError) throw err;
      if (/template/i.test((err as Error).message)) throw new FunctionError((err as Error).message, 'export_template_invalid');
      throw err;
    }
    await ctx.status(`Exported ${result.messages} messages and ${result.replies} replies (${result.bytes} bytes)`);
    const saved = await ctx.platform.saveExport({ incidentId, taskId }, fileName, outFile);
    await ctx.status(`Saved ${fileName} on ${targetText}`);

    await state.client.call('conversations.archive', { channel: channel.id }, { ...deps.callOpts, what: `#${channel.name}` });
    const now = new Date();
    for (const row of await ctx.store.conversations.findByChannelId(channel.id)) {
      if (!row.archived) await ctx.store.conversations.markArchived(row.resId, now);
    }
    await ctx.status(`Archived #${channel.name}`);
    return {
      content: {
        channel: channel.name,
        channel_id: channel.id,
        archived: true,
        export_file: fileName,
        export_location: saved.location,
        export_attachment_id: saved.attachmentId ?? null,
        messages: result.messages,
        replies: result.replies,
        threads: result.threads,
        files: result.files,
        bytes: result.bytes,
      },
    };
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}
