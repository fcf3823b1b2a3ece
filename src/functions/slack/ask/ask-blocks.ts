/**
 * How an ask looks in Slack: the question with one button per answer, the same question
 * once answered or expired (no buttons left, who answered and when), and the escalation
 * post. Pure functions: what is posted, never how.
 */
import { escapeSlackText } from '../format/escape.js';
import type { AskPost, AskRow, QuestionContent, Responder } from './ask-table.js';

/** The action_id prefix the inbound router hands to the ask handlers. */
export const ASK_ACTION_PREFIX = 'ask';

/** Slack's limits on a button (text at most 75 characters) and on an actions block (25 elements). */
export const MAX_ANSWER_CHARS = 75;
export const MAX_ANSWERS = 25;
/** Slack allows 50 blocks per message; the question keeps two for its context and buttons. */
export const MAX_QUESTION_BLOCKS = 48;

export function answerActionId(askId: string, index: number): string {
  return `${ASK_ACTION_PREFIX}:${askId}:${index}`;
}

/** `ask:<ask id>:<answer index>` → its parts, or undefined for anything else. */
export function parseAnswerActionId(actionId: string): { askId: string; index: number } | undefined {
  const m = /^ask:([A-Za-z0-9_-]{1,64}):(\d{1,2})$/.exec(actionId);
  return m ? { askId: m[1]!, index: Number(m[2]) } : undefined;
}

/** A time Slack shows in each reader's own time zone, with a UTC fallback. */
export function slackTime(epochMs: number): string {
  const fallback = `${new Date(epochMs).toISOString().replace('T', ' ').slice(0, 16)} UTC`;
  return `<!date^${Math.floor(epochMs / 1000)}^{date_short_pretty} {time}|${fallback}>`;
}

function context(text: string): Record<string, unknown> {
  return { type: 'context', elements: [{ type: 'mrkdwn', text }] };
}

function who(r: Responder): string {
  return `<@${r.id}>${r.name ? ` (${escapeSlackText(r.name)})` : ''}`;
}

/** The question as first posted: its content, who may answer until when, and the buttons. */
export function questionBlocks(
  askId: string,
  q: QuestionContent,
  answers: string[],
  deadline: number,
  allowed: string[] | null,
): Record<string, unknown>[] {
  const whoMay = allowed ? ` Only ${allowed.map((id) => `<@${id}>`).join(', ')} may answer.` : '';
  return [
    ...q.blocks,
    context(`Waiting for an answer until ${slackTime(deadline)}.${whoMay}`),
    {
      type: 'actions',
      block_id: `ask:${askId}`,
      elements: answers.map((label, i) => ({
        type: 'button',
        action_id: answerActionId(askId, i),
        text: { type: 'plain_text', text: label, emoji: true },
        value: String(i),
        ...(i === 0 ? { style: 'primary' } : {}),
      })),
    },
  ];
}

/** One line saying how the ask ended. */
export function endingLine(row: Pick<AskRow, 'state' | 'answer' | 'responder' | 'endedAt' | 'deadline'>): string {
  const at = slackTime(row.endedAt ?? row.deadline);
  if (row.state === 'answered' && row.responder) {
    return `:white_check_mark: *${escapeSlackText(row.answer ?? '')}*, answered by ${who(row.responder)} at ${at}`;
  }
  const fallback = row.answer === null ? 'no answer was given' : `the default answer *${escapeSlackText(row.answer)}* was given`;
  return `:hourglass: Expired at ${at} without an answer: ${fallback}`;
}

/** The question once ended: the same content, how it ended, no buttons. */
export function endedBlocks(row: AskRow): Record<string, unknown>[] {
  return [...row.question.blocks, { type: 'section', text: { type: 'mrkdwn', text: endingLine(row) } }];
}

/** A mrkdwn line as plain text for notifications and notes: dates as their UTC fallback, no emoji code or bold. */
export function plainLine(line: string): string {
  return line
    .replace(/<!date\^\d+\^[^|]*\|([^>]*)>/g, '$1')
    .replace(/^:[a-z_]+: /, '')
    .replace(/\*/g, '');
}

export function endedText(row: AskRow): string {
  return `${row.question.text}\n${plainLine(endingLine(row))}`;
}

/** What goes to slack_escalation_channel when an ask expires: the question, its state, where it waited. */
export function escalationBlocks(row: AskRow): Record<string, unknown>[] {
  const where = row.posts.map((p: AskPost) => (p.url ? `<${p.url}|${escapeSlackText(p.channel)}>` : escapeSlackText(p.channel))).join(', ');
  const target = row.taskId ? `task ${row.taskId} of incident ${row.incidentId}` : `incident ${row.incidentId}`;
  return [
    { type: 'section', text: { type: 'mrkdwn', text: `:rotating_light: A question on ${target} got no answer (asked in ${where}):` } },
    ...row.question.blocks,
    { type: 'section', text: { type: 'mrkdwn', text: endingLine(row) } },
  ];
}

export function escalationText(row: AskRow): string {
  const target = row.taskId ? `task ${row.taskId} of incident ${row.incidentId}` : `incident ${row.incidentId}`;
  return `A question on ${target} got no answer: ${row.question.text}`;
}
