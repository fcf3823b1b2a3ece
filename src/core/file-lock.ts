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

interface Holder {
  host: string;
  pid: number;
  token: string;
}

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

function parseHolder(text: string): Holder | undefined {
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    return typeof h.host === 'string' && Number.isInteger(h.pid) && typeof h.token === 'string' ? (h as Holder) : undefined;
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
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
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

function isStale(seen: { text: string; ageMs: number }, staleAfterMs: number): boolean {
  if (seen.ageMs > staleAfterMs) return true;
  const holder = parseHolder(seen.text);
  // Empty or cut short: being written now (or its writer was killed, which only age tells).
  if (!holder || holder.host !== HOST) return false;
  return holder.pid === process.pid ? !heldHere.has(holder.token) : !isRunning(holder.pid);
}

/** Removes the lock file if it still holds `staleText`, under the `.break` lock (see the file comment). */
async function breakStale(path: string, staleText: string): Promise<void> {
  const guard = `${path}.break`;
  if (!createExclusive(guard, JSON.stringify({ host: HOST, pid: process.pid, token: randomBytes(8).toString('hex') }))) {
    const left = await readLock(guard);
    if (left && left.ageMs > BREAK_STALE_MS) await rm(guard, { force: true });
    return;
  }
  try {
    const now = await readLock(path);
    if (now?.text === staleText) await rm(path, { force: true });
  } finally {
    await rm(guard, { force: true });
  }
}

/** Runs `fn` holding the lock file `path` (beside what it protects; its folder must exist unless `makeDir`). */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, opts: FileLockOptions = {}): Promise<T> {
  const waitMs = opts.waitMs ?? 300_000;
  const staleAfterMs = opts.staleAfterMs ?? 60_000;
  const token = randomBytes(12).toString('hex');
  const text = JSON.stringify({ host: HOST, pid: process.pid, token } satisfies Holder);
  // Known as held before the file can exist: another caller in this process must never see it as a predecessor's.
  heldHere.add(token);
  try {
    const giveUpAt = Date.now() + waitMs;
    let pause = 5;
    while (!createExclusive(path, text, opts.makeDir)) {
      const seen = await readLock(path);
      if (seen && isStale(seen, staleAfterMs)) {
        await breakStale(path, seen.text);
        continue;
      }
      if (Date.now() >= giveUpAt) {
        const what = opts.what ? ` (${opts.what})` : '';
        throw new RetryableError(`The lock ${path}${what} was still held after ${Math.round(waitMs / 1000)} s; try again`, 'lock_timeout');
      }
      await sleep(pause + Math.random() * pause);
      pause = Math.min(100, pause * 2);
    }
    const refresh = setInterval(() => {
      const now = new Date();
      void utimes(path, now, now).catch(() => undefined);
    }, staleAfterMs / 4);
    refresh.unref();
    try {
      return await fn();
    } finally {
      clearInterval(refresh);
      if (readIfThere(path) === text) rmSync(path, { force: true });
    }
  } finally {
    heldHere.delete(token);
  }
}
