/**
 * The "Close…" modal: a resolution select and a resolution summary, opened with the
 * click's `trigger_id` (which Slack honours for 3 seconds), and read back from its
 * `view_submission`. The card it belongs to travels in `private_metadata`.
 */
import { INCIDENT_RESOLUTIONS, MAX_RESOLUTION_SUMMARY } from '../../../platforms/incident-change.js';
import type { IncidentResolution } from '../../../platforms/platform.js';

export const CLOSE_CALLBACK = 'triage:close';
const RESOLUTION_BLOCK = 'resolution';
const SUMMARY_BLOCK = 'summary';
const VALUE = 'value';

/** The card the modal closes the incident of. */
export interface CloseTarget {
  incidentId: number;
  channelId: string;
  /** The card message's ts (to redraw it). */
  ts: string;
}

export function closeModal(target: CloseTarget): Record<string, unknown> {
  return {
    type: 'modal',
    callback_id: CLOSE_CALLBACK,
    private_metadata: JSON.stringify({ incident_id: target.incidentId, channel_id: target.channelId, ts: target.ts }),
    title: { type: 'plain_text', text: 'Close incident' },
    submit: { type: 'plain_text', text: 'Close incident' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `Close incident *${target.incidentId}*.` } },
      {
        type: 'input',
        block_id: RESOLUTION_BLOCK,
        label: { type: 'plain_text', text: 'Resolution' },
        element: {
          type: 'static_select',
          action_id: VALUE,
          placeholder: { type: 'plain_text', text: 'Choose a resolution' },
          options: INCIDENT_RESOLUTIONS.map((r) => ({ text: { type: 'plain_text', text: r }, value: r })),
        },
      },
      {
        type: 'input',
        block_id: SUMMARY_BLOCK,
        label: { type: 'plain_text', text: 'Resolution summary' },
        element: { type: 'plain_text_input', action_id: VALUE, multiline: true, max_length: MAX_RESOLUTION_SUMMARY },
      },
    ],
  };
}

/** A modal that only says something (no submit): when closing cannot go ahead. */
export function noticeModal(text: string): Record<string, unknown> {
  return {
    type: 'modal',
    title: { type: 'plain_text', text: 'Close incident' },
    close: { type: 'plain_text', text: 'OK' },
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }],
  };
}

export interface CloseSubmission {
  target: CloseTarget;
  resolution: IncidentResolution;
  summary: string;
}

/** One input's state in a view submission: a select's choice or a text field's value. */
interface SubmittedValue {
  selected_option?: { value?: unknown } | null;
  value?: unknown;
}

/** Reads a submission; a string says what is wrong with it (a forged or stale view). */
export function readCloseSubmission(view: Record<string, unknown> | undefined): CloseSubmission | string {
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(String(view?.private_metadata ?? '')) as Record<string, unknown>;
  } catch {
    return 'the form carries no incident';
  }
  const incidentId = meta?.incident_id;
  if (typeof incidentId !== 'number' || !Number.isSafeInteger(incidentId) || incidentId <= 0) return 'the form names no valid incident';
  if (typeof meta.channel_id !== 'string' || !/^[CGD][A-Z0-9]+$/.test(meta.channel_id)) return 'the form names no valid channel';
  if (typeof meta.ts !== 'string' || !/^\d+\.\d+$/.test(meta.ts)) return 'the form names no valid message';
  // view.state.values[block_id][action_id], as Slack sends a submission (see closeModal).
  const values = ((view?.state as { values?: unknown } | undefined)?.values ?? {}) as Record<string, Record<string, SubmittedValue> | undefined>;
  const chosen = values[RESOLUTION_BLOCK]?.[VALUE]?.selected_option?.value;
  const resolution = INCIDENT_RESOLUTIONS.find((r) => r === chosen);
  if (!resolution) return `choose a resolution (${INCIDENT_RESOLUTIONS.join(', ')})`;
  const summary = values[SUMMARY_BLOCK]?.[VALUE]?.value;
  if (typeof summary !== 'string' || summary.trim() === '') return 'write a resolution summary';
  if (summary.length > MAX_RESOLUTION_SUMMARY) return `the resolution summary is longer than ${MAX_RESOLUTION_SUMMARY} characters`;
  return { target: { incidentId, channelId: meta.channel_id, ts: meta.ts }, resolution, summary: summary.trim() };
}
