/**
 * A lock between processes of one host: a lock file, for critical sections that must not
 * overlap across workers sharing files (a SQLite store, the local platform's folders).
 *
 * - The file is created with O_EXCL (fails when the name exists) and holds
 *   `{host, pid, token}`; the token is new for each hold, so a release removes only its own
 *   file. A reader that finds it still empty (being written) waits, as for any holder.
 * - Waiting is polling with a growing pause (5 ms to 100 ms), up to `waitMs`; then a
 *   {@link RetryableError} (the holder is busy, the work can be tried again).
 * - A holder that died leaves its file, which is then stale:
 *   - its pid no longer runs on this host (a killed worker), or it is this process's pid
 *     with a token this process does not hold (a container restarted with the pid its
 *     killed predecessor had): taken over at once;
 *   - otherwise (a holder on another host, as containers sharing a volume are, whose pids
 *     mean nothing here; a file left empty by a holder killed while writing it) once it was
 *     not refreshed for `staleAfterMs`; a holder refreshes it (mtime) every quarter of that.
 *   A stale file is removed under a short second lock (`<file>.break`) after reading it
 *   again, so two waiters that both saw the same stale holder cannot remove a live
 *   holder's file that replaced it.
 * - Files are 0600 (a lock names a pid and a host, nobody else's business).
 *
 * {@link takeLockFile} is that protocol on its own, shared with the `worker run` lock
 * (core/lock.ts), which does not wait for a live holder and judges a holder on this host by
 * its pid alone (see {@link StalePolicy}).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { readFile, rm, stat, utimes } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errorCode, RetryableError } from './runtime/errors.js';

export interface FileLockOptions {
  /** How long to wait for another holder before giving up (ms). Default 300 s. */
  waitMs?: number;
  /** A holder whose file was not refreshed for this long is taken for dead (ms). Default 60 s. */
  staleAfterMs?: number;
  /** What the lock protects, for the error when the wait runs out. */
  what?: string;
  /** Make the lock file's folder (0700) when it is missing, instead of failing. */
  makeDir?: boolean;
}

/** What a lock file holds: who holds it. */
export interface LockFileHolder {
  host: string;
  pid: number;
  token: string;
}

/** When a lock file in the way is a dead holder's. */
export interface StalePolicy {
  /** A holder whose file was not refreshed for this long is taken for dead (ms); a holder refreshes it every quarter of that. */
  staleAfterMs: number;
  /**
   * Whether a holder on this host whose pid still runs is stale too once its file is that old
   * (a pid reused by an unrelated process then frees the lock); false: such a holder is live
   * however old its file (a stopped or busy process, or a previous release's, which never refreshed).
   */
  ageOutRunningHolders: boolean;
  /** Make the lock file's folder (0700) when it is missing, instead of failing. */
  makeDir?: boolean;
}

/** A lock file this process holds: refreshed while held; `release` removes it if it is still this hold's. */
export interface HeldLockFile {
  readonly path: string;
  release(): void;
}

/**
 * The last try at a lock file: taken; held by a live holder; or unsettled (an empty file
 * being written, a stale one another process is removing, one gone a moment ago).
 */
export type LockAttempt = { kind: 'taken'; lock: HeldLockFile } | { kind: 'held'; holder: LockFileHolder } | { kind: 'unsettled' };

const HOST = hostname();
/** The tokens of the locks this process holds now. */
const heldHere = new Set<string>();
/** A `.break` file older than this was left by a process that died while removing a stale lock. */
const BREAK_STALE_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True when a process with this pid runs on this host (EPERM: it runs, as another user). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === 'EPERM';
  }
}

function parseHolder(text: string): LockFileHolder | undefined {
  // The run lock of releases before the token: "<pid>\n", by a worker on this host. Its empty
  // token is never held here, so naming this process's pid it is a predecessor's.
  const legacyPid = /^\s*([1-9]\d*)\s*$/.exec(text);
  if (legacyPid) return { host: HOST, pid: Number(legacyPid[1]), token: '' };
  try {
    const h = JSON.parse(text) as Partial<LockFileHolder>;
    return typeof h.host === 'string' && Number.isInteger(h.pid) && h.pid! > 0 && typeof h.token === 'string' ? (h as LockFileHolder) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Creates `path` holding `content` (0600); false when the name exists. Synchronous on
 * purpose, as the release is: a few tiny system calls on a local file, where a round trip
 * through libuv's thread pool for each cost a millisecond or more on a busy host.
 */
function createExclusive(path: string, content: string, makeDir = false): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600); // 0600 less the umask: never more than 0600
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return false;
    if (errorCode(err) !== 'ENOENT' || !makeDir) throw err;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    return createExclusive(path, content);
  }
  let written = false;
  try {
    writeSync(fd, content);
    written = true;
  } finally {
    try {
      closeSync(fd);
    } finally {
      // A full disk (ENOSPC) makes the name but not its content: an empty file left behind
      // would bar every taker until it aged into a stale one (a minute of refusals).
      if (!written) rmSync(path, { force: true });
    }
  }
  return true;
}

/** The holder's file text and age, or undefined when there is no file. */
async function readLock(path: string): Promise<{ text: string; ageMs: number } | undefined> {
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, ageMs: Date.now() - st.mtimeMs };
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

function readIfThere(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function isStale(seen: { text: string; ageMs: number }, policy: StalePolicy): boolean {
  const aged = seen.ageMs > policy.staleAfterMs;
  const holder = parseHolder(seen.text);
  // Empty or cut short (being written now, or its writer was killed), or another host's
  // (its pid means nothing here): only age tells.
  if (!holder || holder.host !== HOST) return aged;
  if (aged && policy.ageOutRunningHolders) return true;
  return holder.pid === process.pid ? !heldHere.has(holder.token) : !isRunning(holder.pid);
}

/** Removes the lock file if it still holds the stale holder's text and is still stale, under the `.break` lock (see the file comment). */
async function breakStale(path: string, stale: { text: string; ageMs: number }, policy: StalePolicy): Promise<void> {
  const guard = `${path}.break`;
  if (!createExclusive(guard, JSON.stringify({ host: HOST, pid: process.pid, token: randomBytes(8).toString('hex') }))) {
    const left = await readLock(guard);
    if (left && left.ageMs > BREAK_STALE_MS) await rm(guard, { force: true });
    return;
  }
  try {
    const now = await readLock(path);
    // The same text and still stale: an empty text alone may be a new holder's file that
    // is being written now (created, not yet written), which is young.
    if (now && now.text === stale.text && isStale(now, policy)) await rm(path, { force: true });
  } finally {
    await rm(guard, { force: true });
  }
}

/** Creates the lock file for a new hold; undefined when the name exists. */
function claim(path: string, policy: StalePolicy): HeldLockFile | undefined {
  const token = randomBytes(12).toString('hex');
  const text = JSON.stringify({ host: HOST, pid: process.pid, token } satisfies LockFileHolder);
  // Known as held before the file can exist: another caller in this process must never see it as a predecessor's.
  heldHere.add(token);
  let created = false;
  try {
    created = createExclusive(path, text, policy.makeDir);
  } finally {
    if (!created) heldHere.delete(token);
  }
  if (!created) return undefined;
  const refresh = setInterval(() => {
    const now = new Date();
    void utimes(path, now, now).catch(() => undefined);
  }, policy.staleAfterMs / 4);
  refresh.unref();
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      clearInterval(refresh);
      try {
        if (readIfThere(path) === text) rmSync(path, { force: true });
      } finally {
        heldHere.delete(token);
      }
    },
  };
}

/** One try: create the lock file, or remove a stale holder's (under `.break`) and create it then. */
async function tryTakeLockFile(path: string, policy: StalePolicy): Promise<LockAttempt> {
  const taken = claim(path, policy);
  if (taken) return { kind: 'taken', lock: taken };
  const seen = await readLock(path);
  if (!seen) return { kind: 'unsettled' };
  if (!isStale(seen, policy)) {
    const holder = parseHolder(seen.text);
    return holder ? { kind: 'held', holder } : { kind: 'unsettled' };
  }
  await breakStale(path, seen, policy);
  const after = claim(path, policy);
  return after ? { kind: 'taken', lock: after } : { kind: 'unsettled' };
}

/**
 * Takes the lock file `path`, taking over a stale holder's, and tries again after a growing
 * pause (5 ms to 100 ms) while it is unsettled, or held when `waitForLiveHolder`; up to `waitMs`.
 * Returns the last try: taken, or what was in the way when it stopped.
 */
export async function takeLockFile(path: string, policy: StalePolicy, wait: { waitMs: number; waitForLiveHolder: boolean }): Promise<LockAttempt> {
  const giveUpAt = Date.now() + wait.waitMs;
  let pause = 5;
  for (;;) {
    const attempt = await tryTakeLockFile(path, policy);
    if (attempt.kind === 'taken' || (attempt.kind === 'held' && !wait.waitForLiveHolder) || Date.now() >= giveUpAt) return attempt;
    await sleep(pause + Math.random() * pause);
    pause = Math.min(100, pause * 2);
  }
}

/** Runs `fn` holding the lock file `path` (beside what it protects; its folder must exist unless `makeDir`). */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, opts: FileLockOptions = {}): Promise<T> {
  const waitMs = opts.waitMs ?? 300_000;
  const policy: StalePolicy = { staleAfterMs: opts.staleAfterMs ?? 60_000, ageOutRunningHolders: true, makeDir: opts.makeDir };
  const attempt = await takeLockFile(path, policy, { waitMs, waitForLiveHolder: true });
  if (attempt.kind !== 'taken') {
    const what = opts.what ? ` (${opts.what})` : '';
    throw new RetryableError(`The lock ${path}${what} was still held after ${Math.round(waitMs / 1000)} s; try again`, 'lock_timeout');
  }
  try {
    return await fn();
  } finally {
    attempt.lock.release();
  }
}
