/**
 * Notes on the `local` platform: one JSON file per note under the incident's (or task's)
 * `notes/` folder, as DESIGN.md gives:
 *
 * ```
 * <root>/incidents/<id>/notes/<created>-<key slug>-<key hash>.json
 * <root>/incidents/<id>/tasks/<task>/notes/…
 * {"text", "author": {"id", "name", "email"}, "created", "source": "slack",
 *  "slack": {"channel_id", "ts", "thread_ts", "permalink"}, "key"}
 * ```
 *
 * - Names start with the note's `created` time in UTC (`20261207T112541.123Z`), so a
 *   listing in name order is the order things happened in the channel (a mirrored
 *   message's `created` is its Slack ts); the key's slug breaks ties in the same ms.
 * - One file per key, whatever `created` a retry brings: a claim file
 *   `notes/.keys/<sha-256 of the key>` holds the note's file name. It is linked into place
 *   complete (link fails if it exists), so of two writers of one key only one names the
 *   file; a writer that stopped between claim and note leaves a claim that the next
 *   attempt completes.
 * - A note is written to a hidden temporary file, then renamed: a reader never sees half
 *   a note. Files are 0600, folders 0700 (notes hold what responders said).
 * - Names starting with `.` are not notes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from '../../core/runtime/errors.js';
import { checkNote } from '../note-check.js';
import type { AddedNote, NewNote } from '../platform.js';

/** What local-notes needs from the platform: folders resolved inside its root. */
export interface LocalDirs {
  requireDir(segments: string[], what: string, base?: string): Promise<string>;
}

const KEYS_DIR = '.keys';
const MAX_SLUG = 80;

/** `2026-12-07T11:25:41.123Z` → `20261207T112541.123Z`: sortable, no `:` in names. */
export function timeStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '');
}

/** The key as far as it is safe in a file name, for people reading the folder. */
function slug(key: string): string {
  return key.replace(/[^A-Za-z0-9._]+/g, '_').slice(0, MAX_SLUG);
}

function keyHash(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The file name a note gets when its key is first written. */
export function noteFileName(note: Pick<NewNote, 'key' | 'created'>): string {
  return `${timeStamp(note.created)}-${slug(note.key)}-${keyHash(note.key).slice(0, 12)}.json`;
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/**
 * The folder `name` in `parent`, created if missing, resolved inside the root (a symlink
 * out of it is refused before anything is changed there), then made 0700 whatever the umask.
 */
async function privateDir(dirs: LocalDirs, parent: string, name: string, what: string): Promise<string> {
  await mkdir(join(parent, name), { recursive: true, mode: 0o700 });
  const real = await dirs.requireDir([name], what, parent);
  await chmod(real, 0o700);
  return real;
}

/** Writes `content` to a hidden temporary file in `dir` (0600) and returns its path. */
async function writeTemp(dir: string, content: string): Promise<string> {
  const temp = join(dir, `.partial-${randomBytes(6).toString('hex')}`);
  await writeFile(temp, content, { flag: 'wx', mode: 0o600 });
  await chmod(temp, 0o600);
  return temp;
}

/**
 * Claims `key` for `name`: returns the name the key's note has (ours, or the one an
 * earlier writer claimed).
 */
async function claim(keysDir: string, key: string, name: string): Promise<string> {
  const claimPath = join(keysDir, keyHash(key));
  const temp = await writeTemp(keysDir, `${name}\n`);
  try {
    await link(temp, claimPath);
    return name;
  } catch (err) {
    if (errorCode(err) !== 'EEXIST') throw err;
    const earlier = (await readFile(claimPath, 'utf8')).trim();
    // Claims are linked complete, so this holds a name; anything else was not written here.
    if (!/^[^./\\][^/\\]*\.json$/.test(earlier))
      throw new Error(`The note claim ${claimPath} is damaged; remove it to write the note again`);
    return earlier;
  } finally {
    await rm(temp, { force: true });
  }
}

/** Adds `note` as a file; idempotent on `note.key` (see the module comment). */
export async function addLocalNote(dirs: LocalDirs, note: NewNote): Promise<AddedNote> {
  const { incidentId, taskId } = checkNote(note);
  let ownerDir = await dirs.requireDir(['incidents', String(incidentId)], `Incident ${incidentId}`);
  if (taskId !== undefined) {
    ownerDir = await dirs.requireDir(['tasks', String(taskId)], `Task ${taskId} of incident ${incidentId}`, ownerDir);
  }
  const notesDir = await privateDir(dirs, ownerDir, 'notes', 'The notes folder');
  const keysDir = await privateDir(dirs, notesDir, KEYS_DIR, 'The note keys folder');

  const name = await claim(keysDir, note.key, noteFileName(note));
  const path = join(notesDir, name);
  if (await exists(path)) return { id: name, created: false };

  const body = {
    text: note.text,
    author: { id: note.author.id, name: note.author.name, email: note.author.email },
    created: note.created.toISOString(),
    source: note.source,
    ...(note.slack
      ? {
          slack: {
            channel_id: note.slack.channel_id,
            ts: note.slack.ts,
            thread_ts: note.slack.thread_ts ?? null,
            permalink: note.slack.permalink ?? null,
          },
        }
      : {}),
    key: note.key,
  };
  const temp = await writeTemp(notesDir, `${JSON.stringify(body, null, 2)}\n`);
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  return { id: name, created: true };
}
