/**
 * slack_post_attachment: uploads an incident, task or artifact file to a channel.
 */
import { sleep } from '../../core/backoff.js';
import { FunctionError } from '../../core/runtime/errors.js';
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import { inviteParticipants, recordAssociation, withResolvedChannel } from './channels/index.js';
import { escapeSlackText } from './format/index.js';
import { hasBidiControls, stripBidiControls } from './bidi.js';
import { channelInputs, intInput, strInput } from './inputs.js';
import { findEarlierUpload, invocationStart } from './reconcile.js';
import { botUserId, channelDeps, type SlackState } from './state.js';
import { messagePermalink } from './permalink.js';
import type { SlackClient, CallOptions } from './slack-client.js';
import { SlackUnavailableError, stoppedWaitingError } from './slack-errors.js';

/** Artifacts of this type are never sent to Slack. */
export const MALWARE_ARTIFACT_TYPE = 'Malware Sample';

/** How long to wait for Slack to show the file's share (it appears a moment late). */
const SHARE_WAIT_MS = [100, 200, 400, 800, 1600, 3200];

/**
 * Polls files.info until the share of `fileId` in `channelId` shows: the ts of the
 * sharing message, if it appeared, and the file's own permalink (the fallback link).
 */
async function findShare(
  client: SlackClient,
  fileId: string,
  channelId: string,
  opts: CallOptions,
): Promise<{ ts: string | undefined; filePermalink: string }> {
  let filePermalink = '';
  for (const delay of [0, ...SHARE_WAIT_MS]) {
    if (delay) await sleep(delay, opts.signal, stoppedWaitingError);
    const { file } = await client.call('files.info', { file: fileId }, opts);
    filePermalink = String(file?.permalink ?? '');
    const shares = file?.shares ?? {};
    for (const kind of ['public', 'private'] as const) {
      const ts = shares[kind]?.[channelId]?.[0]?.ts;
      if (ts) return { ts: String(ts), filePermalink };
    }
  }
  return { ts: undefined, filePermalink };
}

export async function postAttachment(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const { inputs } = ctx;
  const target = channelInputs(inputs);
  const attachmentId = intInput(inputs, 'attachment_id');
  const artifactId = intInput(inputs, 'artifact_id');
  if ((attachmentId === undefined) === (artifactId === undefined)) {
    throw new FunctionError('Give exactly one of attachment_id or artifact_id', 'invalid_inputs');
  }
  const info = await ctx.platform.getAttachment({
    incidentId: target.incidentId,
    taskId: target.taskId,
    attachmentId,
    artifactId,
  });
  if (info.artifactType === MALWARE_ARTIFACT_TYPE) {
    throw new FunctionError(`Artifact ${artifactId} is a ${MALWARE_ARTIFACT_TYPE}; it is never uploaded to Slack`, 'malware_refused');
  }
  // The name Slack stores and shows: without bidi controls, which could disguise the
  // file's type (see bidi.ts). Also what the redelivery's reconcile looks for.
  const name = stripBidiControls(info.name).trim() || 'attachment';
  if (hasBidiControls(info.name)) {
    await ctx.status(`The file name holds Unicode direction controls; uploading it as ${name}`);
  }
  const maxBytes = state.config.max_upload_mb * 1024 * 1024;
  if (info.size > maxBytes) {
    throw new FunctionError(
      `${name} is ${(info.size / 1048576).toFixed(1)} MB, over [fn_slack] max_upload_mb = ${state.config.max_upload_mb}`,
      'attachment_too_large',
    );
  }
  if (strInput(inputs, 'slack_username')) {
    await ctx.status('slack_username does not apply to file uploads: Slack shows them as posted by the app');
  }

  const deps = channelDeps(ctx, state);
  // Everything up to the upload's share acts on the channel as resolved (maybe from the
  // cache): a stale cache entry surfaces here and the channel is looked up again.
  const {
    resolved: { channel, association },
    value: { fileId, ts, filePermalink },
  } = await withResolvedChannel(ctx, deps, target, async ({ channel }) => {
    await inviteParticipants(ctx, deps, channel, strInput(inputs, 'slack_participant_emails'), await botUserId(state, ctx));

    // A redelivery after an interrupted attempt: the upload may have reached Slack already.
    const since = ctx.attempt > 1 ? await invocationStart(ctx) : undefined;
    const earlier = since
      ? await findEarlierUpload(state.client, deps.callOpts, {
          channelId: channel.id,
          since,
          botUserId: await botUserId(state, ctx),
          name,
          size: info.size,
        })
      : undefined;
    if (earlier) {
      await ctx.status(`Found ${name} uploaded to #${channel.name} by an earlier attempt; not uploading it again`);
      return earlier;
    }
    await ctx.status(`Uploading ${name} (${info.size} bytes) to #${channel.name}`);
    const text = strInput(inputs, 'slack_text');
    const { fileId } = await state.client
      .uploadFile(
        {
          channelId: channel.id,
          filename: name,
          title: name,
          size: info.size,
          open: () => info.open(),
          ...(text ? { initialComment: escapeSlackText(text) } : {}),
        },
        { ...deps.callOpts, what: `#${channel.name}` },
      )
      .catch(async (err: unknown) => {
        throw await cutOffOnce(ctx, err, name, info.size);
      });
    return { fileId, ...(await findShare(state.client, fileId, channel.id, deps.callOpts)) };
  });
  let url: string;
  if (ts) {
    url = await messagePermalink(state, { channelId: channel.id, ts }, deps.callOpts);
  } else {
    url = filePermalink;
    await ctx.status('Slack has not shown the file in the channel yet; the link points at the file instead of the message');
  }
  await ctx.status(`Uploaded ${name} to #${channel.name}`);
  await recordAssociation(ctx, state.conversations, target, channel, url || null, association);
  return {
    content: {
      channel: channel.name,
      channel_id: channel.id,
      file_id: fileId,
      ts: ts ?? null,
      url,
      file_name: name,
      size: info.size,
    },
  };
}

/** Recorded when an upload was cut off, so the next one cut off knows it is the second. */
const UPLOAD_CUT_OFF_STEP = 'upload_cut_off';

/**
 * A cut-off upload gets one more attempt (a dropped link is often a blip), never more:
 * each attempt sends the whole file again, and a link or proxy that cuts large bodies
 * cuts them every time (24 uploads of 1 GB in one case). Other errors pass through.
 */
async function cutOffOnce(ctx: FunctionContext, err: unknown, name: string, size: number): Promise<unknown> {
  if (!(err instanceof SlackUnavailableError) || err.code !== 'slack_upload_interrupted') return err;
  if (ctx.steps.get(UPLOAD_CUT_OFF_STEP) === undefined) {
    await ctx.steps.record(UPLOAD_CUT_OFF_STEP, { attempt: ctx.attempt });
    return err;
  }
  return new FunctionError(
    `Uploading ${name} (${size} bytes) to Slack was cut off again on attempt ${ctx.attempt}; it is not tried again, ` +
      'since each try sends the whole file: check the network path to Slack (a proxy limiting body size or time) and run the function again',
    'slack_upload_interrupted',
    { attempt: ctx.attempt },
    err,
  );
}
