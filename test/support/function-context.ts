/**
 * Runs a function handler directly (without the broker) with a real store and platform:
 * the unit-level way to test fn_slack against the Slack emulator.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { ledgerSteps, type FunctionContext, type FunctionDefinition, type FunctionResult } from '../../src/core/runtime/plugin.js';
import { silentLogger } from '../../src/core/logging.js';
import { PluginRegistry } from '../../src/core/runtime/registry.js';
import { withoutNulls } from '../../src/core/runtime/messages.js';
import { isDeferred } from '../../src/core/runtime/deferred.js';
import { SqliteStore } from '../../src/core/store/sqlite-store.js';
import { LocalPlatform } from '../../src/platforms/local/local-platform.js';
import type { Store } from '../../src/core/store/store.js';
import type { Platform } from '../../src/platforms/platform.js';
import { slackPlugin } from '../../src/functions/slack/index.js';
import type { SlackConfig } from '../../src/functions/slack/config.js';
import { createSlackState, type SlackState } from '../../src/functions/slack/state.js';
import { SqlConversationTable } from '../../src/functions/slack/store/conversations.js';
import { validateSection } from '../../src/core/config.js';
import { expect } from 'chai';

export interface SlackFixture {
  store: Store;
  platform: LocalPlatform;
  platformDir: string;
  state: SlackState;
  config: SlackConfig;
  registry: PluginRegistry;
  close(): Promise<void>;
}

/** A SQLite store in a temp file, a local platform in a temp dir, fn_slack state pointed at `apiUrl`. */
export async function slackFixture(apiUrl: string, token: string, overrides: Record<string, string> = {}): Promise<SlackFixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fn-slack-test-'));
  const store = SqliteStore.open(path.join(dir, 'worker.db'), { tables: slackPlugin.tables ?? [] });
  await store.migrate();
  const platformDir = path.join(dir, 'files');
  fs.mkdirSync(platformDir, { recursive: true });
  const platform = new LocalPlatform(platformDir);
  const config = validateSection<SlackConfig>(
    // Pacing off unless a test asks for it: tests that are not about rate limits would
    // otherwise wait at Slack's real per-minute rates (the rate-limit tests turn it on).
    { file: 'test.config', sections: { fn_slack: { api_token: token, api_url: apiUrl, retry_budget: '10', rate_limits: 'off', ...overrides } } },
    'fn_slack',
    slackPlugin.configSchema,
  );
  const state = createSlackState(config, silentLogger(), new SqlConversationTable(store.sql));
  const registry = new PluginRegistry();
  registry.add(slackPlugin);
  return {
    store,
    platform,
    platformDir,
    state,
    config,
    registry,
    async close() {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface InvocationRun {
  result?: FunctionResult;
  /** True when the handler deferred its result (core/runtime/deferred.ts). */
  deferred?: boolean;
  error?: Error & { code?: string; retryable?: boolean };
  progress: string[];
}

/** Validates inputs with the function's schema (as the runner does) and runs its handler. */
export async function runFunction(
  fx: { store: Store; platform: Platform; state: SlackState; registry: PluginRegistry },
  name: string,
  rawInputs: Record<string, unknown>,
  opts: { invocationId?: string; attempt?: number; signal?: AbortSignal } = {},
): Promise<InvocationRun> {
  const fn = fx.registry.get(name);
  if (!fn) throw new Error(`no function ${name}`);
  const progress: string[] = [];
  const run: InvocationRun = { progress };
  let inputs: Record<string, unknown>;
  try {
    inputs = fx.registry.validateInputs(fn, withoutNulls({ ...rawInputs }));
  } catch (err) {
    run.error = err as Error;
    return run;
  }
  const invocationId = opts.invocationId ?? randomUUID();
  // As the runner does: the ledger holds the invocation, and its steps (ctx.steps) come
  // from there, so a second run with the same invocationId resumes like a redelivery.
  const begun = await fx.store.ledger.begin(invocationId, name);
  const ctx: FunctionContext = {
    invocationId,
    functionName: name,
    inputs,
    origin: {},
    attempt: opts.attempt ?? 1,
    status: async (m) => {
      progress.push(m);
    },
    log: silentLogger(),
    store: fx.store,
    platform: fx.platform,
    steps: ledgerSteps(fx.store.ledger, invocationId, begun.entry.steps),
    signal: opts.signal ?? new AbortController().signal,
  };
  try {
    const out = await (fn.definition as FunctionDefinition<SlackState>).handler(ctx, fx.state);
    if (isDeferred(out)) run.deferred = true;
    else run.result = out;
  } catch (err) {
    run.error = err as Error;
  }
  return run;
}

/** Asserts the run succeeded and returns its result content. */
export function expectOk(run: InvocationRun): Record<string, any> {
  expect(run.error, run.error?.message).to.equal(undefined);
  return run.result!.content as Record<string, any>;
}

/** Asserts the run failed with `code` and returns the error. */
export function expectFailure(run: InvocationRun, code: string): NonNullable<InvocationRun['error']> {
  expect(run.result, 'expected the function to fail').to.equal(undefined);
  expect(run.error, 'expected an error').to.not.equal(undefined);
  expect(run.error!.code, run.error!.message).to.equal(code);
  return run.error!;
}

/** {@link expectFailure}, returning the error's message. */
export function expectFailureMessage(run: InvocationRun, code: string): string {
  return expectFailure(run, code).message;
}

export { createSlackState };
