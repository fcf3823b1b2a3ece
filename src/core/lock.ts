/**
 * The lock file: one `worker run` per lock.
 *
 * Created with O_EXCL and holding the owner's pid. A lock whose pid is no longer
 * running (the worker was killed) is stale and taken over, so a crash never needs a
 * person to delete the file before systemd can restart the service.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isRunning } from './file-lock.js';
import { LockError } from './runtime/errors.js';

export interface LockHandle {
  file: string;
  release(): void;
}

/** Takes the lock or throws a {@link LockError} naming the file and the holder's pid. */
export function acquireLock(file: string): LockHandle {
  // Private whatever the umask: the lock names this user's worker and nobody else's business.
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  for (let tries = 0; tries < 3; tries++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o600);
      fs.fchmodSync(fd, 0o600); // the mode given to open is cut by the umask; this is not
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      let released = false;
      return {
        file,
        release() {
          if (released) return;
          released = true;
          try {
            if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file);
          } catch {
            // already gone
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new LockError(`Cannot create the lock file ${file}: ${(err as Error).message}`);
      }
      let holder = NaN;
      try {
        holder = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
      } catch {
        continue; // removed meanwhile: try again
      }
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isRunning(holder)) {
        throw new LockError(
          `Another worker (pid ${holder}) holds the lock file ${file}; stop it first, or give this one another lock_file`,
        );
      }
      try {
        fs.unlinkSync(file); // stale: its owner is gone
      } catch {
        // someone else removed it first
      }
    }
  }
  throw new LockError(`Could not take the lock file ${file}: it keeps changing; is another worker starting?`);
}
