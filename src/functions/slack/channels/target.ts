/**
 * How an incident or task is named: as the association's key and in messages.
 */

/** The data table key: `RES-<incident>` or `RES-<incident>-<task>`. */
export function resId(incidentId: number, taskId?: number): string {
  return taskId ? `RES-${incidentId}-${taskId}` : `RES-${incidentId}`;
}

/** "incident 2103" or "task 7 of incident 2103", for messages. */
export function describeTarget(incidentId: number, taskId?: number): string {
  return taskId ? `task ${taskId} of incident ${incidentId}` : `incident ${incidentId}`;
}
