/**
 * The SOAR target of `worker customize` (`[worker] platform = soar`): imports function
 * definitions, message destinations and data tables into SOAR over its REST API, through
 * {@link planSoarImport} / {@link applySoarImport}, so `customize.ts` stays free of HTTP.
 *
 * Plans only read (GETs), so a dry run changes nothing in SOAR and a second run reports
 * `unchanged`. Workflows and rules are not imported: SOAR stores a workflow as a BPMN
 * diagram (plus the scripts), which the packaged example files do not carry, and a rule
 * needs that workflow and its conditions — importing a half would be unfaithful.
 *
 * Every SOAR failure (401 bad key, 403 missing permission, 404 wrong org, unreachable,
 * TLS) becomes a {@link TargetError} with the platform exit code, its message naming the
 * `[soar]` key or the API key permission to fix. The secret never appears: the client
 * never puts it in a message and server text is redacted.
 */
import type { LoadedConfig } from '../../core/config.js';
import { CustomizationError, type CustomizationItem } from '../../core/commands/customizations.js';
import { CUSTOMIZE_EXIT, TargetError, type CustomizeTarget, type Plan } from '../../core/commands/customize-target.js';
import { FunctionError, WorkerError } from '../../core/runtime/errors.js';
import { redact } from '../../core/redact.js';
import { SoarClient, clientOptionsFromSection } from './soar-client.js';
import { readSoarSection } from './soar-config.js';
import { applySoarImport, planSoarImport, type SoarImportItem } from './soar-customize.js';

/** Why workflows and rules stay examples even with SOAR configured (shown per item). */
export const SOAR_EXAMPLE_DETAIL: Record<'workflow' | 'rule', string> = {
  workflow: "SOAR keeps a workflow as a BPMN diagram, which this file does not carry; build it in SOAR's workflow editor from this file",
  rule: 'a rule runs workflows this package ships only as examples; create it in SOAR once its workflows exist',
};

/** The SOAR import item for a customization item; undefined for kinds SOAR does not take from us. */
export function soarImportItem(item: CustomizationItem): SoarImportItem | undefined {
  // A plugin's own queue (fed by its listeners, read by the worker) is none of SOAR's business.
  if (item.kind === 'message_destination' && item.definition.worker_queue) return undefined;
  if (item.kind === 'function' || item.kind === 'message_destination' || item.kind === 'data_table') {
    return { kind: item.kind, name: item.name, definition: item.definition as unknown as Record<string, unknown> };
  }
  return undefined;
}

export class SoarTarget implements CustomizeTarget {
  readonly name = 'SOAR';
  /** `SOAR org 201 at https://soar.example.com`: never the key, never URL credentials. */
  private readonly where: string;

  constructor(private readonly client: SoarClient) {
    this.where = `SOAR org ${client.orgId} at ${new URL(client.baseUrl).origin}`;
  }

  /**
   * Reads `[soar]` (a missing or invalid section is a config error, exit 2) and checks
   * that SOAR answers and the API key belongs to the org (exit 3), with a GET only.
   */
  static async connect(config: LoadedConfig): Promise<SoarTarget> {
    let client: SoarClient;
    try {
      client = new SoarClient(clientOptionsFromSection(readSoarSection(config)));
    } catch (err) {
      throw new TargetError(redact((err as Error).message), CUSTOMIZE_EXIT.config, err);
    }
    const target = new SoarTarget(client);
    try {
      await target.checkSession();
    } catch (err) {
      client.close();
      throw target.failure(err);
    }
    return target;
  }

  /** `GET /rest/session`: the key is accepted and is a member of `[soar] org_id`. */
  private async checkSession(): Promise<void> {
    const session = await this.client.getJson<{ orgs?: { id?: number; name?: string }[] }>('/rest/session', {
      what: 'the session of the API key',
    });
    const orgs = Array.isArray(session?.orgs) ? session.orgs : [];
    if (!orgs.some((o) => o.id === this.client.orgId)) {
      const known = orgs.map((o) => `${o.id} (${o.name ?? '?'})`).join(', ') || 'none';
      throw new FunctionError(
        `the API key is not a member of SOAR org ${this.client.orgId}: check [soar] org_id (the key's orgs: ${known})`,
        'soar_org_not_found',
      );
    }
  }

  /** A SOAR error as this target's failure; a bad packaged definition stays a config error. */
  private failure(err: unknown): Error {
    if (err instanceof TargetError || err instanceof CustomizationError) return err;
    const message = redact(err instanceof Error ? err.message : String(err));
    if (err instanceof WorkerError && err.code === 'invalid_customization') return new CustomizationError(message, err);
    const hint = err instanceof WorkerError && err.code === 'not_found' ? '; check [soar] base_url and org_id' : '';
    // Connection errors already say "SOAR at <url>"; the others get it in front.
    const origin = new URL(this.client.baseUrl).origin;
    const prefix = message.includes(origin) ? '' : `SOAR at ${origin}: `;
    return new TargetError(`${prefix}${message}${hint}`, CUSTOMIZE_EXIT.platform, err);
  }

  async plan(item: CustomizationItem): Promise<Plan> {
    const soarItem = soarImportItem(item);
    if (!soarItem) {
      if (item.kind === 'message_destination') return { action: 'not-applicable', detail: "the worker's own queue; SOAR does not publish to it" };
      return { action: 'not-applicable', detail: SOAR_EXAMPLE_DETAIL[item.kind as 'workflow' | 'rule'] };
    }
    let action;
    try {
      action = await planSoarImport(this.client, soarItem);
    } catch (err) {
      throw this.failure(err);
    }
    const detail = { create: `not in ${this.where}`, update: `differs in ${this.where}`, unchanged: this.where }[action];
    return { action, detail };
  }

  async apply(item: CustomizationItem): Promise<string> {
    const soarItem = soarImportItem(item);
    if (!soarItem) {
      throw new TargetError(`SOAR: ${item.kind} ${item.name} is not imported (${SOAR_EXAMPLE_DETAIL[item.kind as 'workflow' | 'rule']})`, CUSTOMIZE_EXIT.failed);
    }
    let done;
    try {
      done = await applySoarImport(this.client, soarItem);
    } catch (err) {
      throw this.failure(err);
    }
    return { create: `created in ${this.where}`, update: `updated in ${this.where}`, unchanged: `already current in ${this.where}` }[done];
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
