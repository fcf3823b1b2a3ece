/**
 * The triage card: the blocks `slack_post_message` adds with `slack_triage_buttons`, and
 * how the card is redrawn after an action.
 *
 * The card's own blocks carry block ids starting `triage` so that a redraw replaces just
 * them and leaves the posted message above untouched:
 * - `triage-state:<incident>`: severity, status and owner (added by the first action);
 * - `triage-last:<incident>`: who did what last (escaped);
 * - `triage:<incident>`: the actions, "Assign to me" (`triage:assign`), the severity
 *   select (`triage:severity`) and "Close…" (`triage:close`), each with the incident id
 *   as its value. A closed incident's card has no actions left.
 */
import type { IncidentSeverity, IncidentSummary } from '../../../platforms/platform.js';
import { INCIDENT_SEVERITIES } from '../../../platforms/incident-change.js';
import { FunctionError } from '../../../core/runtime/errors.js';
import { SLACK_LIMITS } from '../format/index.js';
import { safeText, stateFields } from './incident-blocks.js';

type Block = Record<string, unknown>;

export const TRIAGE_PREFIX = 'triage';
export const ACTION_ASSIGN = 'triage:assign';
export const ACTION_SEVERITY = 'triage:severity';
export const ACTION_CLOSE = 'triage:close';

function option(label: string): Block {
  return { text: { type: 'plain_text', text: label }, value: label };
}

/** The actions block; the select shows the incident's severity when it is known. */
export function actionsBlock(incidentId: number, severity?: IncidentSeverity | null): Block {
  const select: Block = {
    type: 'static_select',
    action_id: ACTION_SEVERITY,
    placeholder: { type: 'plain_text', text: 'Severity' },
    options: INCIDENT_SEVERITIES.map(option),
  };
  if (severity) select.initial_option = option(severity);
  return {
    type: 'actions',
    block_id: `${TRIAGE_PREFIX}:${incidentId}`,
    elements: [
      { type: 'button', action_id: ACTION_ASSIGN, text: { type: 'plain_text', text: 'Assign to me' }, value: String(incidentId) },
      select,
      { type: 'button', action_id: ACTION_CLOSE, text: { type: 'plain_text', text: 'Close…' }, style: 'danger', value: String(incidentId) },
    ],
  };
}

/** The card as first posted: only the actions (the state shows once someone acts). */
export function initialCardBlocks(incidentId: number): Block[] {
  return [actionsBlock(incidentId)];
}

/** Adds the card to a rendered message's blocks, within Slack's 50 blocks. */
export function withCard(blocks: Block[], incidentId: number): Block[] {
  const card = initialCardBlocks(incidentId);
  if (blocks.length + card.length > SLACK_LIMITS.blocksPerMessage) {
    throw new FunctionError(
      `The message's first part fills Slack's ${SLACK_LIMITS.blocksPerMessage} blocks, leaving no room for the triage card: ` +
        'shorten slack_text or post without slack_triage_buttons',
      'invalid_slack_text',
    );
  }
  return [...blocks, ...card];
}

/** The card's blocks for the incident's current state, with what was done last. */
export function cardBlocks(inc: IncidentSummary, lastChange: string | undefined): Block[] {
  const blocks: Block[] = [{ type: 'section', block_id: `triage-state:${inc.id}`, fields: stateFields(inc) }];
  if (lastChange) {
    blocks.push({ type: 'context', block_id: `triage-last:${inc.id}`, elements: [{ type: 'mrkdwn', text: safeText(lastChange, 1000) }] });
  }
  if (inc.status !== 'Closed') blocks.push(actionsBlock(inc.id, inc.severity));
  return blocks;
}

function isCardBlock(block: Block): boolean {
  const id = typeof block.block_id === 'string' ? block.block_id : '';
  return id.startsWith(`${TRIAGE_PREFIX}:`) || id.startsWith(`${TRIAGE_PREFIX}-`);
}

/**
 * The message's blocks with its card redrawn for `inc` (the card goes where it was, at
 * the end). Within Slack's 50 blocks: a full message drops the last-change line, then the
 * state, before it would drop anything of the message itself.
 */
export function redrawCard(messageBlocks: Block[], inc: IncidentSummary, lastChange: string | undefined): Block[] {
  const message = messageBlocks.filter((b) => !isCardBlock(b));
  let card = cardBlocks(inc, lastChange);
  const room = SLACK_LIMITS.blocksPerMessage - message.length;
  if (card.length > room) card = card.filter((b) => b.type === 'actions' || (room >= 2 && b.type === 'section'));
  return [...message, ...card.slice(0, Math.max(0, room))];
}

/** The incident id a card's action carries, or undefined when it is not a positive integer. */
export function incidentIdOf(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^[1-9][0-9]{0,15}$/.test(value)) return undefined;
  const id = Number(value);
  return Number.isSafeInteger(id) ? id : undefined;
}
