/**
 * The ask sweeper: a timer in every worker (started in the plugin's setup, stopped in its
 * teardown, and run once at start) that
 * - expires pending asks whose deadline passed (a deadline that passed while every worker
 *   was down is expired by the first one to start), with the same conditional UPDATE a
 *   click uses, so a click and the deadline at the same moment end the ask once;
 * - finishes ended asks whose ender died or failed before finishing (its hold lapsed):
 *   the questions updated, the note, the final reply. Nothing ended is left unanswered.
 * - prunes, hourly, asks that finished longer ago than the worker's retention (pending and
 *   unfinished ones are never pruned).
 * Runs never overlap within a worker; across workers the conditional UPDATEs decide.
 */
import { expireAsk, finishOrLeave, type AskRuntime } from './ask-finish.js';

/** Pruning deletes rows days old: once an hour is plenty (as core prunes its ledger). */
const PRUNE_EVERY_MS = 3_600_000;

export class AskSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private prunedAt: number | undefined;

  constructor(
    private readonly rt: AskRuntime,
    private readonly intervalMs: number,
  ) {}

  /** Runs once now, then every interval. */
  start(): void {
    this.stopped = false;
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a run under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private tick(): Promise<void> {
    if (this.running) return this.running;
    if (this.stopped) return Promise.resolve();
    const run: Promise<void> = this.sweepOnce().then(
      () => undefined,
      (err: Error) => void this.rt.log.warn(`Ask sweep failed: ${err.message}; trying again in ${Math.round(this.intervalMs / 1000)}s`),
    );
    const running = run.finally(() => {
      this.running = undefined;
    });
    this.running = running;
    return running;
  }

  /** One pass: expire what is due, finish what was left unfinished, prune what finished long ago (hourly). */
  async sweepOnce(): Promise<{ expired: number; finished: number; pruned: number }> {
    const { rt } = this;
    let expired = 0;
    for (const row of await rt.table.due(rt.now())) {
      if (this.stopped) break;
      if (!(await expireAsk(rt, row))) continue; // answered (or expired elsewhere) meanwhile
      expired++;
      await finishOrLeave(rt, (await rt.table.get(row.askId))!);
    }
    let finished = 0;
    const now = rt.now();
    for (const row of await rt.table.claimUnfinished(now, now + rt.leaseMs)) {
      if (this.stopped) break;
      rt.log.info(`Ask ${row.askId}: finishing what its ${row.state === 'answered' ? 'answer' : 'expiry'} left undone`);
      await finishOrLeave(rt, row);
      finished++;
    }
    return { expired, finished, pruned: await this.pruneIfDue() };
  }

  private async pruneIfDue(): Promise<number> {
    const { rt } = this;
    const now = rt.now();
    if (rt.retentionMs === undefined || this.stopped) return 0;
    if (this.prunedAt !== undefined && now - this.prunedAt < PRUNE_EVERY_MS) return 0;
    this.prunedAt = now;
    const pruned = await rt.table.prune(now - rt.retentionMs);
    if (pruned > 0) rt.log.info(`Pruned ${pruned} finished asks older than ${Math.round(rt.retentionMs / 86_400_000)} days`);
    return pruned;
  }
}
