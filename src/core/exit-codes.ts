/**
 * The exit codes of every `worker` command, in one table.
 *
 * One number means one thing in every command, so a script or a systemd unit can act
 * on it without knowing which command ran. The README's table (Troubleshooting) is
 * checked against this one by test/unit/core/exit-codes.test.ts.
 */
export const EXIT = {
  /** Done: the command did what it was asked (invoke: a result reply). */
  ok: 0,
  /** Anything else: an error reply to `invoke`, an unexpected failure. */
  failed: 1,
  /** The config, a plugin, a packaged file or the command line is invalid. */
  config: 2,
  /** The SOAR platform refused or did not answer (`platform = soar`). */
  platform: 3,
  /** The broker is unreachable, or a queue exists with other arguments. */
  broker: 4,
  /** Another worker holds the lock file. */
  lock: 5,
  /** The store is unreachable or its schema is not current. */
  store: 6,
  /** A package's own selftest failed (Slack: bad token, missing scopes). */
  plugin: 7,
  /** `invoke` got no final reply before `--timeout`. */
  timeout: 8,
} as const;

export type ExitName = keyof typeof EXIT;
