/**
 * Waiting between tries: named backoff policies as data, and one abortable sleep.
 *
 * Every retry loop in the worker (delayed retries, broker reconnect, SOAR requests, and the
 * plugins' own, which declare their policies with the same type) computes its delay here,
 * so the shapes can be compared in one place and each is tested once.
 */

export interface BackoffPolicy {
  /** Delay before the first retry (attempt 1). */
  initialMs: number;
  /** No delay exceeds this (before jitter). */
  maxMs: number;
  /** Growth per attempt; 2 doubles. */
  factor: number;
  /**
   * Spreads clients that failed together so they do not come back in lock-step:
   * `none`; `equal`, half fixed and half random (the delay lies in [d/2, d]); or a
   * ratio r, the delay lies in [d·(1−r), d·(1+r)].
   */
  jitter: 'none' | 'equal' | number;
}

/** The worker core's policies. */
export const BACKOFF = {
  /**
   * How long a message waits in its destination's retry queue before it comes back: after
   * a retryable failure (by attempt), a final reply that failed (by failed replies), or
   * a ledger that could not be reached. 1 s, 2 s, 4 s … capped at 30 s, long enough for
   * a broker or Slack blip to pass. No jitter: one retry queue holds every waiting
   * message and releases them in order (see amqp-topology.ts), so equal attempts should
   * wait equally.
   */
  retry: { initialMs: 1000, maxMs: 30_000, factor: 2, jitter: 'none' },
  /** Reconnecting to the broker: 250 ms doubling to 30 s, ±20 %. */
  reconnect: { initialMs: 250, maxMs: 30_000, factor: 2, jitter: 0.2 },
  /** A SOAR request that failed on the connection or with a 5xx (base and cap come from [soar]). */
  soarRequest: { initialMs: 500, maxMs: 8000, factor: 2, jitter: 'equal' },
} as const satisfies Record<string, BackoffPolicy>;

/**
 * The delay before retry number `attempt` (1 for the first retry). `random` is
 * injectable so tests see exact values.
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(attempt));
  const base = Math.min(policy.maxMs, policy.initialMs * policy.factor ** (n - 1));
  if (policy.jitter === 'none') return base;
  if (policy.jitter === 'equal') return base / 2 + random() * (base / 2);
  return Math.max(0, Math.round(base * (1 - policy.jitter + random() * 2 * policy.jitter)));
}

/**
 * Waits `ms`, or less when `signal` aborts. By default it then resolves (the caller looks at
 * the signal); with `rejectWith` it rejects with that error instead, so a loop that must not
 * go on after an abort cannot forget to check.
 */
export function sleep(ms: number, signal?: AbortSignal, rejectWith?: () => Error): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const stop = (): void => (rejectWith ? reject(rejectWith()) : resolve());
    if (signal?.aborted) return stop();
    if (ms <= 0) return resolve();
    const onAbort = (): void => {
      clearTimeout(timer);
      stop();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
