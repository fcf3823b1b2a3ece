/**
 * slack_ask: posts a question with one button per answer (in the incident's channel, or a
 * direct message to each of slack_user_emails), stores the pending ask, and acks the
 * invocation without a final reply (DEFERRED): the answer may take hours, longer than
 * RabbitMQ lets a delivery stay unacked. The final reply is sent when the first allowed
 * click or the deadline ends the ask (ask-answer.ts, ask-sweeper.ts), by whichever worker
 * sees it.
 *
 * The question is posted once per invocation: each post is recorded as a step right
 * after it (a rerun skips it), and the window between the post and the step is closed by
 * the post's metadata, which a redelivery looks for before posting. The ask id is derived
 * from the invocation id, so the buttons of a resumed post carry the same ids.
 */
import { createHash } from 'node:crypto';
import { FunctionError } from '../../../core/runtime/errors.js';
import { DEFERRED, type DeferredResult, type DeferredTicket } from '../../../core/runtime/deferred.js';
import type { FunctionContext } from '../../../core/runtime/plugin.js';
import { normaliseChannelName, recordAssociation, withResolvedChannel, type ChannelDeps, type ChannelInfo } from '../channels/index.js';
import { renderSlackText } from '../format/index.js';
import { boolInput, channelInputs, emailsInput, intInput, strInput } from '../inputs.js';
import { findEarlierPosts, postMetadata } from '../reconcile.js';
import { channelDeps, type SlackState } from '../state.js';
import { usersByEmail } from '../verbs.js';
import { MAX_ANSWER_CHARS, MAX_ANSWERS, MAX_QUESTION_BLOCKS, questionBlocks } from './ask-blocks.js';
import type { AskPost, QuestionContent } from './ask-table.js';

/** The ask id of an invocation: stable across its deliveries, safe in an action_id. */
export function askIdOf(invocationId: string): string {
  return createHash('sha256').update(invocationId).digest('hex').slice(0, 24);
}

/** `slack_answers` as button labels: 1–25 distinct labels of at most 75 characters. */
export function parseAnswers(raw: string): string[] {
  const answers = raw
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  if (answers.length === 0)
    throw new FunctionError('slack_answers is empty: give comma-separated button labels, e.g. "Approve,Reject"', 'invalid_answers');
  if (answers.length > MAX_ANSWERS)
    throw new FunctionError(`slack_answers has ${answers.length} labels; Slack shows at most ${MAX_ANSWERS} buttons`, 'invalid_answers');
  const long = answers.find((a) => [...a].length > MAX_ANSWER_CHARS);
  if (long)
    throw new FunctionError(
      `The answer "${long.slice(0, 40)}…" is longer than Slack's ${MAX_ANSWER_CHARS} characters for a button`,
      'invalid_answers',
    );
  const dup = answers.find((a, i) => answers.indexOf(a) !== i);
  if (dup) throw new FunctionError(`slack_answers lists "${dup}" twice: each answer must be a different label`, 'invalid_answers');
  return answers;
}

function renderQuestion(ctx: FunctionContext, state: SlackState): QuestionContent {
  const incidentId = intInput(ctx.inputs, 'incident_id') as number;
  const taskId = intInput(ctx.inputs, 'task_id');
  let parts;
  try {
    parts = renderSlackText(String(ctx.inputs.slack_question ?? ''), {
      mrkdwn: boolInput(ctx.inputs, 'slack_mrkdwn') ?? true,
      incidentId,
      ...(taskId ? { taskId } : {}),
      ...(state.config.soar_url ? { soarUrlTemplate: state.config.soar_url } : {}),
      timeZone: state.config.time_zone,
    });
  } catch (err) {
    throw new FunctionError((err as Error).message.replace(/slack_text/g, 'slack_question'), 'invalid_slack_question');
  }
  const first = parts[0]!;
  if (parts.length > 1 || first.blocks.length > MAX_QUESTION_BLOCKS) {
    throw new FunctionError('slack_question is too long for one Slack message with buttons: shorten it', 'slack_question_too_long');
  }
  return { text: first.text, blocks: first.blocks };
}

/** Slack ids of slack_allowed_responders; null when empty (anyone who sees the question). */
async function allowedResponders(ctx: FunctionContext, deps: ChannelDeps): Promise<string[] | null> {
  if (!strInput(ctx.inputs, 'slack_allowed_responders')) return null;
  const emails = emailsInput(ctx.inputs, 'slack_allowed_responders');
  const { found, unknown } = await usersByEmail(deps, emails);
  for (const e of unknown) await ctx.status(`Warning: No Slack user has the email ${e}; they cannot answer`);
  if (found.length === 0) {
    throw new FunctionError(
      `No one in slack_allowed_responders is a Slack user (${unknown.join(', ')}): nobody could answer`,
      'slack_user_not_found',
    );
  }
  return found.map((u) => u.id);
}

function checkEscalationChannel(ref: string | undefined): string | null {
  if (!ref) return null;
  const trimmed = ref.trim();
  if (/^[CG][A-Z0-9]{2,}$/.test(trimmed)) return trimmed;
  try {
    return `#${normaliseChannelName(trimmed)}`;
  } catch (err) {
    throw new FunctionError(`slack_escalation_channel: ${(err as Error).message}`, 'invalid_channel_name');
  }
}

interface Poster {
  ctx: FunctionContext;
  state: SlackState;
  deps: ChannelDeps;
  text: string;
  blocks: string;
}

/** Posts the question to `channelId` once per invocation (step, else the post's metadata on a redelivery). */
async function postOnce(p: Poster, channelId: string, label: string): Promise<AskPost> {
  const step = `ask-post:${channelId}`;
  const done = p.ctx.steps.get<AskPost>(step);
  if (done) return done;
  let ts = p.ctx.attempt > 1 ? (await findEarlierPosts(p.deps, channelId, p.ctx.invocationId)).get(0) : undefined;
  if (!ts) {
    const res = await p.state.client.call(
      'chat.postMessage',
      {
        channel: channelId,
        text: p.text,
        blocks: p.blocks,
        unfurl_links: false,
        unfurl_media: false,
        metadata: postMetadata(p.ctx.invocationId, 0, 1),
      },
      { ...p.deps.callOpts, what: label },
    );
    ts = String(res.ts);
  }
  const { permalink } = await p.state.client.call('chat.getPermalink', { channel: channelId, message_ts: ts }, p.deps.callOpts);
  const post: AskPost = { channel_id: channelId, channel: label, ts, url: String(permalink ?? '') };
  await p.ctx.steps.record(step, post);
  return post;
}

async function postToChannel(p: Poster): Promise<AskPost[]> {
  const target = channelInputs(p.ctx.inputs);
  const { resolved, value } = await withResolvedChannel(p.ctx, p.deps, target, async ({ channel }: { channel: ChannelInfo }) =>
    postOnce(p, channel.id, `#${channel.name}`),
  );
  await recordAssociation(p.ctx, p.state.conversations, target, resolved.channel, value.url || null, resolved.association);
  return [value];
}

async function postToPeople(p: Poster): Promise<AskPost[]> {
  const { found, unknown } = await usersByEmail(p.deps, emailsInput(p.ctx.inputs, 'slack_user_emails'));
  for (const e of unknown) await p.ctx.status(`Warning: No Slack user has the email ${e}; not asking them`);
  if (found.length === 0) throw new FunctionError(`No Slack user has the email ${unknown.join(', ')}: nobody to ask`, 'slack_user_not_found');
  const posts: AskPost[] = [];
  for (const u of found) {
    const opened = await p.state.client.call('conversations.open', { users: u.id }, { ...p.deps.callOpts, what: u.email });
    posts.push(await postOnce(p, String((opened.channel as { id: string }).id), `@${u.email}`));
  }
  return posts;
}

export async function slackAsk(ctx: FunctionContext, state: SlackState): Promise<DeferredResult> {
  const rt = state.asks;
  const ticket: DeferredTicket | undefined = ctx.deferral;
  if (!rt || !ticket) {
    throw new FunctionError(
      'slack_ask needs a running worker (`worker run`) with its store: the answer arrives after the invocation is acked',
      'ask_unavailable',
    );
  }
  const { inputs } = ctx;
  const toPeople = strInput(inputs, 'slack_user_emails');
  if (toPeople && (strInput(inputs, 'slack_channel') || strInput(inputs, 'slack_channel_id'))) {
    throw new FunctionError('Give either slack_user_emails (direct messages) or slack_channel/slack_channel_id, not both', 'conflicting_inputs');
  }
  const answers = parseAnswers(String(inputs.slack_answers ?? ''));
  const question = renderQuestion(ctx, state);
  const escalationChannel = checkEscalationChannel(strInput(inputs, 'slack_escalation_channel'));
  const askId = askIdOf(ctx.invocationId);

  const existing = await rt.table.get(askId);
  if (existing) {
    // A redelivery of an invocation whose question is out: it waits (or is being finished) as it was.
    await ctx.status(
      `The question was posted before (ask ${askId}); ${existing.state === 'pending' ? `still waiting until ${new Date(existing.deadline).toISOString()}` : existing.state}`,
    );
    return DEFERRED;
  }

  const timeoutSeconds = intInput(inputs, 'slack_ask_timeout') ?? 3600;
  let deadline = ctx.steps.get<number>('ask-deadline');
  if (deadline === undefined) {
    deadline = rt.now() + timeoutSeconds * 1000;
    await ctx.steps.record('ask-deadline', deadline);
  }
  const deps = channelDeps(ctx, state);
  const allowed = await allowedResponders(ctx, deps);
  const poster: Poster = {
    ctx,
    state,
    deps,
    text: question.text,
    blocks: JSON.stringify(questionBlocks(askId, question, answers, deadline, allowed)),
  };
  const posts = toPeople ? await postToPeople(poster) : await postToChannel(poster);

  const defaultAnswer =
    typeof inputs.slack_default_answer === 'string' && inputs.slack_default_answer.trim() !== '' ? inputs.slack_default_answer.trim() : null;
  await rt.table.insert({
    askId,
    invocationId: ctx.invocationId,
    incidentId: intInput(inputs, 'incident_id') as number,
    taskId: intInput(inputs, 'task_id') ?? null,
    ticket,
    question,
    answers,
    defaultAnswer,
    allowed,
    escalationChannel,
    posts,
    deadline,
    createdAt: rt.now(),
  });
  if (!state.config.app_token && !state.config.events_port) {
    await ctx.status(
      'Warning: [fn_slack] app_token (Socket Mode) and events_port (HTTP) are not set here, so this worker receives no clicks: only a worker with one of them can take the answer',
    );
  }
  const where = posts.map((p) => p.channel).join(', ');
  await ctx.status(`Question posted to ${where}; waiting for an answer until ${new Date(deadline).toISOString()} (ask ${askId})`);
  return DEFERRED;
}
