/**
 * What can go wrong under the SQLite store, in one place:
 *
 * - {@link classifySqliteError}: the one mapping from a better-sqlite3 failure to the
 *   worker's taxonomy. Transient (another process holds the lock, disk full, an I/O
 *   error) becomes a {@link RetryableError}: the invocation is handed back as for any
 *   outage. Permanent (read-only, not permitted, cannot open, corrupt) becomes a
 *   {@link StoreUnusableError}: waiting will not fix it, so the worker stops.
 * - {@link FileIdentity}: SQLite keeps reading and writing an unlinked inode, so a store
 *   file deleted (or replaced) under a running worker goes unnoticed by SQLite itself,
 *   and everything written after that is lost when the worker stops. The identity taken
 *   at open is compared with the path's before writes and in the readiness check.
 * - The "created" marker ({@link storeMarkerPath}): written next to the file once a
 *   worker has migrated it, so that a later start that finds the marker but not the file
 *   knows the store was lost (not a first run) and refuses to start with an empty one.
 */
import fs from 'node:fs';
import { errorCode, RetryableError, StoreUnusableError, WorkerError } from '../runtime/errors.js';

/** Text appended to every "unusable" message: what the operator does next. */
const RESTART = 'then start the worker again';

/** Maps a failure of the SQLite store at `location` to the worker's taxonomy (see the file comment). */
export function classifySqliteError(err: unknown, location: string): unknown {
  if (err instanceof WorkerError) return err;
  const code = errorCode(err);
  if (code === undefined || !code.startsWith('SQLITE_')) return err;
  const raw = err instanceof Error ? err.message : String(err);
  const details = { store: location, sqliteCode: code };
  if (code === 'SQLITE_READONLY_DBMOVED') return deletedError(location, 'was moved or deleted');
  if (code.startsWith('SQLITE_READONLY')) {
    return new StoreUnusableError(
      `The SQLite store ${location} is read-only (${raw}): make the file, the -wal and -shm files next to it and ` +
        `their folder writable by the user the worker runs as (or set [worker] store to a writable path); ${RESTART}`,
      details,
      err,
    );
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_AUTH')) {
    return new StoreUnusableError(
      `The SQLite store ${location} cannot be opened or is not permitted (${raw}): check that it and its folder exist ` +
        `and that the user the worker runs as may read and write them (or set [worker] store to another path); ${RESTART}`,
      details,
      err,
    );
  }
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new StoreUnusableError(
      `The SQLite store ${location} is corrupt or not a database (${raw}): stop every worker using it, restore it ` +
        `from a backup (or move it aside to start empty, losing its ledger and channel associations); ${RESTART}`,
      details,
      err,
    );
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new RetryableError(`The SQLite store ${location} is locked by another process: ${raw}`, 'store_busy', details, err);
  }
  if (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR')) {
    // Disk full and I/O errors may pass (space freed, a network disk back); the invocation
    // is handed back and retried up to max_attempts like any outage.
    return new RetryableError(`The SQLite store ${location} cannot write now: ${raw}`, 'store_unavailable', details, err);
  }
  return err;
}

function deletedError(location: string, what: string): StoreUnusableError {
  return new StoreUnusableError(
    `The SQLite store ${location} ${what} while the worker had it open: what it writes now would be lost. ` +
      `Restore the file from a backup if there is one (a restart would otherwise start with an empty ledger ` +
      `and no channel associations), ${RESTART}`,
    { store: location },
  );
}

/** The device and inode a store file had when it was opened (see the file comment). */
export class FileIdentity {
  private constructor(
    private readonly location: string,
    private readonly dev: number,
    private readonly ino: number,
  ) {}

  /** Undefined for `:memory:` or a file that cannot be stat'ed (nothing to compare). */
  static of(location: string): FileIdentity | undefined {
    if (location === ':memory:') return undefined;
    const st = fs.statSync(location, { throwIfNoEntry: false });
    return st ? new FileIdentity(location, st.dev, st.ino) : undefined;
  }

  /** Throws a {@link StoreUnusableError} when the path no longer names the file that was opened. */
  check(): void {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(this.location, { throwIfNoEntry: false });
    } catch (err) {
      throw new StoreUnusableError(
        `The SQLite store ${this.location} cannot be checked (${(err as Error).message}): make its folder readable ` +
          `by the user the worker runs as; ${RESTART}`,
        { store: this.location },
        err,
      );
    }
    if (st === undefined) throw deletedError(this.location, 'was deleted');
    if (st.ino !== this.ino || st.dev !== this.dev) throw deletedError(this.location, 'was replaced by another file');
  }
}

/** The marker that says a worker has used the store at `location` (see the file comment). */
export function storeMarkerPath(location: string): string {
  return `${location}.created`;
}

/**
 * Before a missing store file is created: throws when its marker says a worker used a
 * store there before, so the ledger and associations were lost rather than never made.
 */
export function refuseLostStore(location: string): void {
  const marker = storeMarkerPath(location);
  let since: string;
  try {
    since = fs.readFileSync(marker, 'utf8').trim().split('\n')[0] ?? '';
  } catch {
    return; // no marker: a first run
  }
  throw new StoreUnusableError(
    `The SQLite store ${location} is missing, but ${marker} says a worker has used a store there (since ${since || 'an unknown time'}): ` +
      `its invocation ledger and channel associations are gone, and starting with an empty one could repeat finished ` +
      `invocations and create channels again. Restore ${location} from a backup; or, to start over with an empty store ` +
      `on purpose, delete ${marker}; ${RESTART}`,
    { store: location, marker },
  );
}

/**
 * Records that a worker uses the store at `location` (idempotent; private to its user).
 * Best effort: a folder that takes the database but not a new file only loses this
 * protection, so the failure is returned for a warning, not thrown.
 */
export function writeStoreMarker(location: string): Error | undefined {
  const marker = storeMarkerPath(location);
  try {
    fs.writeFileSync(
      marker,
      `${new Date().toISOString()}\nsoar-slack-worker: a worker uses the store ${location}. If that file goes missing, the ` +
        'worker refuses to start with an empty one; delete this marker to allow it.\n',
      { mode: 0o600, flag: 'wx' },
    );
  } catch (err) {
    if (errorCode(err) !== 'EEXIST') return err as Error;
  }
  return undefined;
}
