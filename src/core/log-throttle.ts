/**
 * Rate limit for a log line that can repeat many times a second (a reply queue that
 * refuses every publish, a reply connection that keeps failing). Without it one bad
 * caller fills the disk with identical lines and costs the worker CPU; with it the
 * first line of a kind is logged at once, later ones at most once per interval, each
 * saying how many were suppressed in between.
 */

export interface LogThrottleOptions {
  /** Minimum time between two lines of one key. Default 10 s. */
  intervalMs?: number;
  /** Keys remembered at most (the oldest is forgotten first). Default 1000. */
  maxKeys?: number;
  /** Clock, for tests. */
  now?: () => number;
}

interface KeyState {
  lastLoggedAt: number;
  suppressed: number;
}

export class LogThrottle {
  private readonly intervalMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  private readonly keys = new Map<string, KeyState>();

  constructor(opts: LogThrottleOptions = {}) {
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.maxKeys = opts.maxKeys ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Returns the line to log for `message` (of kind `key`), with the count of lines
   * suppressed since the last one appended, or undefined when this one is suppressed.
   */
  pass(key: string, message: string): string | undefined {
    const now = this.now();
    const state = this.keys.get(key);
    if (state && now - state.lastLoggedAt < this.intervalMs) {
      state.suppressed++;
      return undefined;
    }
    const suppressed = state?.suppressed ?? 0;
    // Re-insert so that Map order is least recently logged first, for eviction.
    this.keys.delete(key);
    this.keys.set(key, { lastLoggedAt: now, suppressed: 0 });
    if (this.keys.size > this.maxKeys) this.keys.delete(this.keys.keys().next().value!);
    if (suppressed === 0) return message;
    const seconds = Math.round((now - state!.lastLoggedAt) / 1000);
    return `${message} (${suppressed} more like this suppressed in the last ${seconds}s)`;
  }
}
