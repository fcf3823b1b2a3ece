/**
 * What `worker customize` imports into: the target contract, its failure and the exit
 * codes a failure stands for. Kept apart from customize.ts so that a platform's target
 * (src/platforms/soar/soar-target.ts) implements it without importing the command.
 */
import type { CustomizationItem } from './customizations.js';
import { WorkerError } from '../runtime/errors.js';
import { EXIT } from '../exit-codes.js';

/**
 * The exit codes `worker customize` uses, from the one table (README: Troubleshooting):
 * `platform` is SOAR refusing or not answering when `[worker] platform = soar`.
 */
export const CUSTOMIZE_EXIT = {
  ok: EXIT.ok,
  failed: EXIT.failed,
  config: EXIT.config,
  platform: EXIT.platform,
  broker: EXIT.broker,
  store: EXIT.store,
} as const;

export type PlanAction = 'create' | 'update' | 'unchanged' | 'not-applicable';

export interface Plan {
  action: PlanAction;
  /** What exists or would change, for a person. */
  detail: string;
}

/**
 * Somewhere items are imported into. `plan` must not change anything; `apply` makes
 * the target match the item and returns what it did. A target answers
 * `not-applicable` for kinds it does not hold.
 */
export interface CustomizeTarget {
  /** Shown in prompts and reports: "broker", "store", "SOAR". */
  readonly name: string;
  plan(item: CustomizationItem): Promise<Plan>;
  apply(item: CustomizationItem): Promise<string>;
  close(): Promise<void>;
}

/** A failure of one target, carrying the exit code it stands for. */
export class TargetError extends WorkerError {
  constructor(
    message: string,
    readonly exitCode: number,
    cause?: unknown,
  ) {
    super(message, { code: 'customize_failed', cause });
  }
}
