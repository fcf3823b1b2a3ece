/**
 * The lock file: one `worker run` per lock.
 *
 * A lock file of core/file-lock.ts (created with O_EXCL, 0600, holding `{host, pid, token}`,
 * refreshed while held), taken with its stale-takeover protocol: a lock whose pid no longer
 * runs on this host (the worker was killed) is taken over, so a crash never needs a person
 * to delete the file before systemd can restart the service; two workers starting at once
 * after a crash cannot both take it over. Unlike a critical section's lock, a live holder is
 * not waited for (the second worker stops), and a holder on this host whose pid runs is live
 * however old its file: a stopped worker is still a worker, and the previous release wrote
 * just `<pid>\n` and never refreshed it. Another host's lock (a shared volume) is taken over
 * once it has not been refreshed for a minute.
 */
import { hostname } from 'node:os';
import { takeLockFile, type StalePolicy } from './file-lock.js';
import { LockError } from './runtime/errors.js';

export interface LockHandle {
  file: string;
  release(): void;
}

const RUN_LOCK_POLICY: StalePolicy = { staleAfterMs: 60_000, ageOutRunningHolders: false, makeDir: true };
/**
 * How long a lock file may stay unsettled (empty, or being taken over by another starting
 * worker) before this one gives up: long enough for an empty file left by a worker killed
 * while writing it to become stale, and for a `.break` file left by a killed one to expire.
 */
const UNSETTLED_WAIT_MS = RUN_LOCK_POLICY.staleAfterMs + 15_000;

/** Takes the lock or throws a {@link LockError} naming the file and the holder's pid. */
export async function acquireLock(file: string): Promise<LockHandle> {
  let attempt;
  try {
    attempt = await takeLockFile(file, RUN_LOCK_POLICY, { waitMs: UNSETTLED_WAIT_MS, waitForLiveHolder: false });
  } catch (err) {
    throw new LockError(`Cannot create the lock file ${file}: ${(err as Error).message}`);
  }
  if (attempt.kind === 'taken') {
    const lock = attempt.lock;
    return { file, release: () => lock.release() };
  }
  if (attempt.kind === 'held') {
    const { host, pid } = attempt.holder;
    const where = host === hostname() ? '' : ` on host ${host} (taken over once it has not been refreshed for a minute)`;
    throw new LockError(`Another worker (pid ${pid}) holds the lock file ${file}${where}; stop it first, or give this one another lock_file`);
  }
  throw new LockError(`Could not take the lock file ${file}: it keeps changing; is another worker starting?`);
}
