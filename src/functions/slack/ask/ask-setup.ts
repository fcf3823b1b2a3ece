/**
 * Wires slack_ask into the plugin's lifecycle: at setup (with `worker run`'s deferred
 * replies and the store's SQL) the ask runtime and its sweeper, which runs at once (so a
 * deadline that passed while every worker was down is met now) and then on a timer, and
 * prunes finished asks older than the worker's retention (`ctx.retentionDays`); at
 * teardown the sweeper stops. Without deferred replies (selftest, other commands) there
 * are no asks, and slack_ask refuses with a clear error.
 */
import type { PluginSetupContext } from '../../../core/runtime/plugin.js';
import type { SlackConfig } from '../config.js';
import type { SlackState } from '../state.js';
import { AskSweeper } from './ask-sweeper.js';
import { AskTable } from './ask-table.js';

const sweepers = new WeakMap<SlackState, AskSweeper>();

export function startAsks(state: SlackState, ctx: PluginSetupContext<SlackConfig>): void {
  if (!ctx.deferred) return;
  state.asks = {
    table: new AskTable(ctx.store.sql),
    client: state.client,
    channels: state.channels,
    conversations: state.conversations,
    deferred: ctx.deferred,
    platform: ctx.platform,
    log: ctx.log,
    leaseMs: ctx.config.ask_lease * 1000,
    // The plugin owns its table's retention: finished asks are kept as long as the worker
    // keeps finished ledger entries.
    ...(ctx.retentionDays === undefined ? {} : { retentionMs: ctx.retentionDays * 86_400_000 }),
    now: Date.now,
    withLock: (key, fn) => ctx.store.withLock(key, fn),
  };
  const sweeper = new AskSweeper(state.asks, ctx.config.ask_sweep_interval * 1000);
  sweepers.set(state, sweeper);
  sweeper.start();
}

export async function stopAsks(state: SlackState): Promise<void> {
  await sweepers.get(state)?.stop();
  sweepers.delete(state);
}
