/**
 * The SOAR API key permissions each operation needs, by the names SOAR's API key
 * permission list (and resilient-sdk's apikey_permissions.txt) uses.
 */
export const SOAR_PERMISSIONS = {
  readIncidents: 'read_all_incidents',
  readTasks: 'read_all_incidents (and read_all_private_tasks for a private task)',
  editIncidents: 'edit_all_incidents_fields',
  editTasks: 'edit_incident_public_task_fields (edit_incident_private_task_fields for a private task)',
  readData: 'read_data',
  editData: 'edit_data',
  readFunctions: 'read_function',
  createFunctions: 'create_function',
  editFunctions: 'edit_function',
} as const;
