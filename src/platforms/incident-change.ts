/**
 * What both platforms accept as an incident change from Slack, checked the same way
 * whichever platform applies it (a bad change is refused before anything is written).
 */
import { FunctionError } from '../core/runtime/errors.js';
import type { IncidentChange, IncidentResolution, IncidentSeverity } from './platform.js';

export const INCIDENT_SEVERITIES: readonly IncidentSeverity[] = Object.freeze(['Low', 'Medium', 'High']);
export const INCIDENT_RESOLUTIONS: readonly IncidentResolution[] = Object.freeze(['Resolved', 'Unresolved', 'Duplicate', 'Not an Issue']);

/** Longest resolution summary accepted (SOAR's text areas take far more; Slack's modal input stops at 3000). */
export const MAX_RESOLUTION_SUMMARY = 3000;

/** Throws `invalid_change` naming what to fix; returns the change when it can be applied. */
export function checkIncidentChange(change: IncidentChange): IncidentChange {
  const bad = (message: string): never => {
    throw new FunctionError(message, 'invalid_change');
  };
  if (change === null || typeof change !== 'object') bad('An incident change must be an object');
  const fields = ['owner', 'severity', 'status', 'resolution', 'resolution_summary'] as const;
  if (!fields.some((f) => change[f] !== undefined)) bad('An incident change must change something (owner, severity, status or resolution)');
  if (change.owner !== undefined && (typeof change.owner?.email !== 'string' || change.owner.email === '')) {
    bad('The new owner must be a platform user with an email');
  }
  if (change.severity !== undefined && !INCIDENT_SEVERITIES.includes(change.severity)) {
    bad(`Severity must be one of ${INCIDENT_SEVERITIES.join(', ')} (got ${JSON.stringify(change.severity)})`);
  }
  if (change.status !== undefined && change.status !== 'Active' && change.status !== 'Closed') {
    bad(`Status must be Active or Closed (got ${JSON.stringify(change.status)})`);
  }
  if (change.resolution !== undefined && !INCIDENT_RESOLUTIONS.includes(change.resolution)) {
    bad(`Resolution must be one of ${INCIDENT_RESOLUTIONS.join(', ')} (got ${JSON.stringify(change.resolution)})`);
  }
  if (change.status === 'Closed' && change.resolution === undefined) bad('Closing an incident needs a resolution');
  if (change.resolution_summary !== undefined) {
    if (typeof change.resolution_summary !== 'string') bad('The resolution summary must be text');
    if (change.resolution_summary.length > MAX_RESOLUTION_SUMMARY) {
      bad(`The resolution summary is longer than ${MAX_RESOLUTION_SUMMARY} characters`);
    }
  }
  return change;
}
