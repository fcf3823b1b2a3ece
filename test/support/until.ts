/**
 * Polling for a condition in tests: wait for what the code under test does, with a
 * deadline that only decides how long a failing test takes to say so, never a timed
 * assertion. Each file binds its own deadline and poll interval once.
 */
export type Until = (what: string, ok: () => boolean | Promise<boolean>, timeoutMs?: number) => Promise<void>;

/** An `until(what, ok, timeoutMs?)` polling `ok` every `everyMs` until it holds, failing with "timed out waiting for <what>". */
export function poller(defaults: { timeoutMs: number; everyMs: number }): Until {
  return async (what, ok, timeoutMs = defaults.timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, defaults.everyMs));
    }
  };
}
