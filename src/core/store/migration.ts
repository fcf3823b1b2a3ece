/** One schema version: its SQL steps, applied in one transaction. */
export interface Migration {
  version: number;
  description: string;
  steps: string[];
}
