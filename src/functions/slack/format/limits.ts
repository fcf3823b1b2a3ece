/** Slack's Block Kit limits and the renderer's options and output types. */

/** Slack limits this renderer keeps to (characters are counted in UTF-16 code units). */
export const SLACK_LIMITS = {
  sectionText: 3000,
  blocksPerMessage: 50,
  messageText: 40000,
  fieldText: 2000,
  fieldsPerSection: 10,
  headerText: 150,
} as const;

export interface RenderOptions {
  /** slack_mrkdwn (default true by caller); false → plain_text objects / mrkdwn:false */
  mrkdwn: boolean;
  /** e.g. https://soar.example.com/#incidents/{incident_id} ({task_id} is also available) */
  soarUrlTemplate?: string;
  incidentId: number;
  taskId?: number;
  /** IANA time zone for datetime values; default 'UTC' */
  timeZone?: string;
}

export interface RenderedMessage {
  /** Plain-text/mrkdwn fallback (notification text) carrying the same content as `blocks`. */
  text: string;
  blocks: Record<string, unknown>[];
}

export type Block = Record<string, unknown>;

/** One block of every message is kept free for the "(continued k/N)" marker. */
export const CONTENT_BLOCKS = SLACK_LIMITS.blocksPerMessage - 1;
/** Room kept in every message's fallback text for the marker line. */
const MARKER_RESERVE = 64;
export const TEXT_BUDGET = SLACK_LIMITS.messageText - MARKER_RESERVE;
