/**
 * slack_archive_channel: exports a channel's whole conversation to the incident or
 * task, then archives the channel and marks its association archived.
 *
 * Each effect is recorded in the invocation's steps (ctx.steps) as soon as it is done:
 * the notice posted (its ts), the export saved (where, as which attachment, what it
 * held), the channel archived. A redelivery (the worker died, or Slack failed and the
 * runner retried) resumes after the last recorded step, so the export is saved once and
 * the answer is the same success the first delivery would have given. A channel found
 * archived after our own export was saved is the archive our earlier attempt asked for
 * (Slack's answer was lost or late), not a reason to fail.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FunctionError } from '../../core/runtime/errors.js';
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import { channelById, describeTarget, ensureMember, resId, type ChannelInfo } from './channels/index.js';
import type { Template } from 'nunjucks';
import { compileTemplate, exportConversation } from './export.js';
import { boolInput, intInput, strInput } from './inputs.js';
import { findEarlierPosts, postMetadata } from './reconcile.js';
import { channelDeps, type SlackState } from './state.js';
import { isSlackError } from './slack-errors.js';
import type { CallOptions } from './slack-client.js';
import type { ConversationTable } from './store/conversations.js';

export const ARCHIVE_NOTICE = 'This channel has been set to be archived';

/** Step names in the invocation ledger (ctx.steps). */
export const ARCHIVE_STEPS = { notice: 'notice_posted', export: 'export_saved', archived: 'channel_archived' } as const;

/** What the export step records: enough to answer without exporting again. */
interface ExportStep {
  channel: string;
  channelId: string;
  fileName: string;
  location: string;
  attachmentId: number | null;
  messages: number;
  replies: number;
  threads: number;
  files: number;
  bytes: number;
}

/** The export's file name, as fn_slack names it. */
export function exportFileName(channelName: string): string {
  return `slack_msg_export_channel_${channelName}.txt`;
}

function resultOf(exported: ExportStep, noticeTs: string | undefined): FunctionResult {
  return {
    content: {
      channel: exported.channel,
      channel_id: exported.channelId,
      archived: true,
      export_file: exported.fileName,
      export_location: exported.location,
      export_attachment_id: exported.attachmentId,
      notice_ts: noticeTs ?? null,
      messages: exported.messages,
      replies: exported.replies,
      threads: exported.threads,
      files: exported.files,
      bytes: exported.bytes,
    },
  };
}

/** Marks every association of the channel archived (the first archive time is kept). */
async function markAssociationsArchived(conversations: ConversationTable, channelId: string): Promise<void> {
  const now = new Date();
  for (const row of await conversations.findByChannelId(channelId)) {
    if (!row.archived) await conversations.markArchived(row.resId, now);
  }
}

/**
 * A channel given by `slack_channel_id` that no post of this incident (or its tasks)
 * made its channel is someone else's: joining and archiving it needs
 * `slack_archive_unassociated = true`. Checked before any Slack call.
 */
async function checkAssociated(
  ctx: FunctionContext,
  conversations: ConversationTable,
  channelId: string,
  incidentId: number,
  targetText: string,
): Promise<void> {
  if (boolInput(ctx.inputs, 'slack_archive_unassociated') === true) return;
  const rows = await conversations.findByChannelId(channelId);
  if (rows.some((r) => r.incidentId === incidentId)) return;
  throw new FunctionError(
    `Slack channel ${channelId} is not associated with ${targetText}: ` +
      `to export it to ${targetText} and archive it anyway, set slack_archive_unassociated to true`,
    'slack_channel_not_associated',
  );
}

async function loadTemplate(state: SlackState): Promise<Template | undefined> {
  if (!state.config.template_file) return undefined;
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
    return await compileTemplate(source);
  } catch (err) {
    throw new FunctionError(`[fn_slack] template_file ${state.config.template_file}: ${(err as Error).message}`, 'export_template_invalid');
  }
}

export async function archiveChannel(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const { inputs } = ctx;
  const incidentId = intInput(inputs, 'incident_id') as number;
  const taskId = intInput(inputs, 'task_id');
  const key = resId(incidentId, taskId);
  const targetText = describeTarget(incidentId, taskId);
  const deps = channelDeps(ctx, state);

  const association = await state.conversations.get(key);
  const givenId = strInput(inputs, 'slack_channel_id');
  const channelId = givenId ?? association?.channelId;
  if (!channelId) {
    throw new FunctionError(
      `No Slack channel is associated with ${targetText}: give slack_channel_id to archive a channel`,
      'slack_no_channel',
    );
  }
  // Before anything happens in Slack: an export for an unknown incident or task could
  // never be saved, and a notice posted for it would be posted again by the re-run.
  await ctx.platform.checkExportTarget({ incidentId, taskId });
  if (givenId && givenId !== association?.channelId) await checkAssociated(ctx, state.conversations, givenId, incidentId, targetText);

  let exported = ctx.steps.get<ExportStep>(ARCHIVE_STEPS.export);
  let noticeTs = ctx.steps.get<string>(ARCHIVE_STEPS.notice);
  // An earlier delivery archived the channel and died before its answer was recorded.
  if (exported && ctx.steps.get(ARCHIVE_STEPS.archived) !== undefined) {
    await markAssociationsArchived(state.conversations, exported.channelId);
    await ctx.status(`#${exported.channel} was archived by an earlier attempt`);
    return resultOf(exported, noticeTs);
  }

  // A bad template is a config error: report it before anything happens in Slack.
  const template = exported ? undefined : await loadTemplate(state);
  const channel = await channelById(deps, channelId);
  if (channel.isArchived) {
    if (exported) {
      // Our own earlier attempt saved the export and asked Slack to archive; its answer
      // was lost or came too late. The work is done: answer as that attempt would have.
      await ctx.status(`#${channel.name} was archived by an earlier attempt of this invocation`);
      return finish(ctx, state, exported, noticeTs);
    }
    if (association?.channelId === channel.id && !association.archived) await state.conversations.markArchived(key, new Date());
    throw new FunctionError(`Slack channel #${channel.name} is already archived; nothing to do`, 'slack_channel_already_archived');
  }
  await ctx.status(`Found channel #${channel.name}`);
  await ensureMember(deps, channel);

  if (noticeTs === undefined) {
    // Without a recorded step, an attempt that died between the post and its record may
    // still have posted it: the message carries this invocation's id.
    noticeTs = ctx.attempt > 1 ? (await findEarlierPosts(deps, channel.id, ctx.invocationId)).get(0) : undefined;
    if (noticeTs === undefined) {
      const posted = await state.client.call(
        'chat.postMessage',
        {
          channel: channel.id,
          text: ARCHIVE_NOTICE,
          metadata: postMetadata(ctx.invocationId, 0, 1),
        },
        { ...deps.callOpts, what: `#${channel.name}` },
      );
      noticeTs = posted.ts;
    }
    await ctx.steps.record(ARCHIVE_STEPS.notice, noticeTs);
    await ctx.status(`Posted "${ARCHIVE_NOTICE}" to #${channel.name}`);
  }

  if (exported) {
    const as = exported.attachmentId === null ? '' : ` as attachment ${exported.attachmentId}`;
    await ctx.status(`${exported.fileName} was saved on ${targetText}${as} by an earlier attempt; not saving it again`);
  } else {
    exported = await exportAndSave(ctx, state, deps.callOpts, channel, template, { incidentId, taskId, targetText });
  }

  try {
    await state.client.call('conversations.archive', { channel: channel.id }, { ...deps.callOpts, what: `#${channel.name}` });
  } catch (err) {
    // Archived between our lookup and our call (by a person, or by our own earlier
    // attempt whose answer is late): the channel is archived, which is what was asked.
    if (!isSlackError(err, 'already_archived')) throw err;
    await ctx.status(`#${channel.name} was archived already`);
  }
  return finish(ctx, state, exported, noticeTs);
}

/** Records the archive, marks the associations and answers. */
async function finish(ctx: FunctionContext, state: SlackState, exported: ExportStep, noticeTs: string | undefined): Promise<FunctionResult> {
  await ctx.steps.record(ARCHIVE_STEPS.archived, { at: new Date().toISOString() });
  await markAssociationsArchived(state.conversations, exported.channelId);
  await ctx.status(`Archived #${exported.channel}`);
  return resultOf(exported, noticeTs);
}

/** Exports the conversation to a private temp dir, saves it on the target, records the step. */
async function exportAndSave(
  ctx: FunctionContext,
  state: SlackState,
  callOpts: CallOptions,
  channel: ChannelInfo,
  template: Template | undefined,
  target: { incidentId: number; taskId: number | undefined; targetText: string },
): Promise<ExportStep> {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slack-export-'));
  const fileName = exportFileName(channel.name);
  const outFile = path.join(workDir, fileName);
  try {
    await ctx.status(`Exporting the conversation of #${channel.name}`);
    let result;
    try {
      result = await exportConversation((method, params) => state.client.call(method, params, callOpts), {
        channel: { id: channel.id, name: channel.name },
        outFile,
        tmpDir: workDir,
        timeZone: state.config.time_zone,
        ...(template !== undefined ? { template } : {}),
        signal: ctx.signal,
        onProgress: (p) => ctx.status(`Exported ${p.messages} messages and ${p.replies} replies so far`),
      });
    } catch (err) {
      // Slack's answers (SlackApiError is one) and the worker's own errors say what to fix already.
      if (err instanceof FunctionError) throw err;
      if (/template/i.test((err as Error).message)) throw new FunctionError((err as Error).message, 'export_template_invalid');
      throw err;
    }
    await ctx.status(`Exported ${result.messages} messages and ${result.replies} replies (${result.bytes} bytes)`);
    const saved = await ctx.platform.saveExport({ incidentId: target.incidentId, taskId: target.taskId }, fileName, outFile);
    const step: ExportStep = {
      channel: channel.name,
      channelId: channel.id,
      fileName,
      location: saved.location,
      attachmentId: saved.attachmentId ?? null,
      messages: result.messages,
      replies: result.replies,
      threads: result.threads,
      files: result.files,
      bytes: result.bytes,
    };
    // Recorded at once: a redelivery from here on must not save a second export.
    await ctx.steps.record(ARCHIVE_STEPS.export, step);
    await ctx.status(`Saved ${fileName} on ${target.targetText}`);
    return step;
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}
