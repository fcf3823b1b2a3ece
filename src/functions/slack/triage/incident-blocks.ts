/**
 * An incident's summary as Block Kit: what the look-up commands answer and what the
 * triage card shows as its state. Every text from the platform (name, owner, resolution
 * summary) is escaped, so an incident named `<!channel>` or `<https://evil|SOAR>` shows
 * as typed and mentions or links no one; the only link is the one built from
 * `[fn_slack] soar_url` (checked there to be a plain http(s) URL).
 */
import type { IncidentSummary } from '../../../platforms/platform.js';
import { escapeSlackText } from '../format/index.js';
import { buildSoarLink } from '../format/values.js';

type Block = Record<string, unknown>;

/** Section text stays well inside Slack's 3000: a very long name is shortened, never split. */
const MAX_NAME = 500;
const MAX_SUMMARY = 1000;

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Escaped, shortened, single-line: safe inside mrkdwn. */
export function safeText(text: string, max = MAX_NAME): string {
  return escapeSlackText(shorten(text.replace(/\s+/g, ' ').trim(), max));
}

/** The link back to SOAR, or undefined when no (valid) soar_url is configured. */
export function soarLink(incidentId: number, soarUrlTemplate: string | undefined): { url: string; label: string } | undefined {
  if (!soarUrlTemplate) return undefined;
  return buildSoarLink({ type: 'incident', data: incidentId }, { mrkdwn: true, incidentId, soarUrlTemplate }) ?? undefined;
}

/** The owner as shown: the name, with the email when it differs. */
export function ownerText(inc: IncidentSummary): string {
  if (!inc.owner) return 'Unassigned';
  const { name, email } = inc.owner;
  return safeText(email && name !== email ? `${name} (${email})` : name || email, 200);
}

/** "Severity / Status / Owner" fields, shared by the summary and the triage card. */
export function stateFields(inc: IncidentSummary): Block[] {
  const status = inc.status === 'Closed' && inc.resolution ? `Closed (${inc.resolution})` : inc.status;
  return [
    { type: 'mrkdwn', text: `*Severity:*\n${inc.severity ?? 'Not set'}` },
    { type: 'mrkdwn', text: `*Status:*\n${safeText(status, 100)}` },
    { type: 'mrkdwn', text: `*Owner:*\n${ownerText(inc)}` },
  ];
}

/** The plain-text fallback of a summary (notifications, screen readers). */
export function summaryText(inc: IncidentSummary): string {
  const owner = inc.owner ? inc.owner.name || inc.owner.email : 'unassigned';
  return safeText(`Incident ${inc.id}: ${inc.name} (severity ${inc.severity ?? 'not set'}, ${inc.status}, owner ${owner})`, 1500);
}

/** The summary the look-up commands answer with. */
export function incidentSummaryBlocks(inc: IncidentSummary, soarUrlTemplate: string | undefined): Block[] {
  const blocks: Block[] = [
    { type: 'section', text: { type: 'mrkdwn', text: `*Incident ${inc.id}:* ${safeText(inc.name)}` } },
    { type: 'section', fields: stateFields(inc) },
  ];
  if (inc.status === 'Closed' && inc.resolution_summary) {
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: `*Resolution summary:* ${safeText(inc.resolution_summary, MAX_SUMMARY)}` },
    });
  }
  const link = soarLink(inc.id, soarUrlTemplate);
  if (link) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `<${link.url}|${link.label}>` }] });
  return blocks;
}
