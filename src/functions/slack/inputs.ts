/**
 * Reading the functions' inputs: typed values, email lists, the channel inputs and
 * `slack_text`. The runner has validated each input's type against the function's
 * schema; what is left here is what a schema cannot say (an address list, a text that
 * must lay out as Slack messages).
 */
import { FunctionError } from '../../core/runtime/errors.js';
import type { ChannelInputs } from './channels/resolve.js';
import type { SlackConfig } from './config.js';
import { renderSlackText, type RenderedMessage } from './format/index.js';

/** Reads an optional integer input (the runner has validated its type). */
export function intInput(inputs: Record<string, unknown>, name: string): number | undefined {
  const v = inputs[name];
  return typeof v === 'number' ? v : undefined;
}

/** Reads an optional text input; blank counts as not given. */
export function strInput(inputs: Record<string, unknown>, name: string): string | undefined {
  const v = inputs[name];
  return typeof v === 'string' && v.trim() !== '' ? v : undefined;
}

export function boolInput(inputs: Record<string, unknown>, name: string): boolean | undefined {
  const v = inputs[name];
  return typeof v === 'boolean' ? v : undefined;
}

/** Splits `a@x.com, b@y.com; c@z.com` into distinct addresses. */
export function parseEmails(raw: string | undefined): { emails: string[]; invalid: string[] } {
  const emails: string[] = [];
  const invalid: string[] = [];
  for (const part of (raw ?? '').split(/[,;\s]+/)) {
    const email = part.trim();
    if (!email) continue;
    if (!/^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$/.test(email)) invalid.push(email);
    else if (!emails.some((e) => e.toLowerCase() === email.toLowerCase())) emails.push(email);
  }
  return { emails, invalid };
}

/**
 * The addresses in an emails input, refusing a value with none or with something that is
 * not an address (acting on part of a list by mistake is worse than asking to fix it).
 */
export function emailsInput(inputs: Record<string, unknown>, name: string): string[] {
  const { emails, invalid } = parseEmails(typeof inputs[name] === 'string' ? (inputs[name] as string) : undefined);
  if (invalid.length) {
    throw new FunctionError(
      `${name} has ${invalid.map((e) => `"${e}"`).join(', ')}, which ${invalid.length > 1 ? 'are not email addresses' : 'is not an email address'}: give comma-separated addresses`,
      'invalid_email',
    );
  }
  if (emails.length === 0) throw new FunctionError(`${name} is empty: give one or more comma-separated email addresses`, 'missing_emails');
  return emails;
}

/** The channel inputs of slack_post_message and slack_post_attachment. */
export function channelInputs(inputs: Record<string, unknown>): ChannelInputs {
  return {
    incidentId: intInput(inputs, 'incident_id') as number,
    taskId: intInput(inputs, 'task_id'),
    slackChannel: strInput(inputs, 'slack_channel'),
    slackChannelId: strInput(inputs, 'slack_channel_id'),
    isPrivate: boolInput(inputs, 'slack_is_channel_private'),
  };
}

/** The channel inputs of a verb: as slack_post_message's, but the channel is never created. */
export function verbChannelInputs(inputs: Record<string, unknown>): ChannelInputs {
  return { ...channelInputs(inputs), create: false };
}

/** `slack_text` laid out as Slack messages (one or more parts), as slack_post_message lays it out. */
export function renderTextInput(inputs: Record<string, unknown>, config: SlackConfig): RenderedMessage[] {
  const incidentId = intInput(inputs, 'incident_id');
  const taskId = intInput(inputs, 'task_id');
  try {
    return renderSlackText(String(inputs.slack_text ?? ''), {
      mrkdwn: boolInput(inputs, 'slack_mrkdwn') ?? true,
      // 0 is no incident: the container's SOAR link is left out.
      incidentId: incidentId ?? 0,
      ...(taskId ? { taskId } : {}),
      ...(config.soar_url ? { soarUrlTemplate: config.soar_url } : {}),
      timeZone: config.time_zone,
    });
  } catch (err) {
    throw new FunctionError((err as Error).message, 'invalid_slack_text');
  }
}
