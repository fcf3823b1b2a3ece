/**
 * The answer to a look-up command, as Block Kit with a plain-text fallback: the
 * incident's summary (incident-blocks.ts escapes what the platform says), or why there
 * is none, or the help. Look-ups answer only people matched to a platform user (the
 * same rule as triage); the help answers anyone.
 */
import { WorkerError } from '../../../../core/runtime/errors.js';
import { escapeSlackText } from '../../format/index.js';
import { incidentSummaryBlocks, summaryText } from '../../triage/incident-blocks.js';
import { matchActor } from '../../triage/people.js';
import type { InboundContext } from '../router.js';
import type { Command } from './parse.js';

export interface Answer {
  text: string;
  blocks: Record<string, unknown>[];
}

function plain(text: string): Answer {
  const safe = escapeSlackText(text);
  return { text: safe, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: safe } }] };
}

/** The help, naming the slash command as configured and the bot as people mention it. */
export function helpAnswer(slashCommand: string, prefix = ''): Answer {
  const cmd = escapeSlackText(slashCommand);
  const lines = [
    '*Commands*',
    `• \`${cmd} incident 2103\` or \`@bot incident 2103\`: the incident's summary (id, name, severity, status, owner, link)`,
    `• \`${cmd} incident\` in an incident's channel: that incident's summary`,
    `• \`${cmd} help\`: this list`,
    'Triage cards (posted with slack_triage_buttons) take *Assign to me*, a severity and *Close…*.',
  ];
  const text = `${prefix ? `${escapeSlackText(prefix)}\n` : ''}${lines.join('\n')}`;
  return { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] };
}

/** The incident the channel is associated with (the incident's own row before a task's). */
async function channelIncident(ctx: InboundContext, channelId: string): Promise<number | undefined> {
  const rows = (await ctx.state.conversations.findByChannelId(channelId)).filter((r) => !r.archived);
  return (rows.find((r) => r.taskId === null) ?? rows[0])?.incidentId;
}

export async function answerCommand(cmd: Command, ctx: InboundContext, where: { channelId: string; userId: string }): Promise<Answer> {
  const slash = ctx.state.config.command;
  if (cmd.kind === 'help') return helpAnswer(slash);
  if (cmd.kind === 'unknown') return helpAnswer(slash, "I don't know that one.");
  if (cmd.kind === 'bad_id') {
    return plain(`"${cmd.given}" is not an incident id: an id is a positive number, e.g. incident 2103.`);
  }
  const match = await matchActor(ctx.state, ctx.platform, where.userId, { signal: ctx.signal });
  if (!match.ok) return plain(`You cannot look up incidents: ${match.reason}.`);
  let incidentId: number | undefined;
  if (cmd.kind === 'incident') incidentId = cmd.incidentId;
  else {
    incidentId = await channelIncident(ctx, where.channelId);
    if (incidentId === undefined) return plain('This channel belongs to no incident: ask for one by id, e.g. incident 2103.');
  }
  try {
    const inc = await ctx.platform.getIncident(incidentId);
    return { text: summaryText(inc), blocks: incidentSummaryBlocks(inc, ctx.state.config.soar_url || undefined) };
  } catch (err) {
    if (err instanceof WorkerError && err.code === 'not_found') return plain(`Incident ${incidentId} was not found.`);
    if (err instanceof WorkerError && !err.retryable) return plain(`Incident ${incidentId} could not be read: ${err.message}`);
    throw err;
  }
}
