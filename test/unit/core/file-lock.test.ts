import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { withFileLock } from '../../../src/core/file-lock.js';
import { RetryableError } from '../../../src/core/runtime/errors.js';

describe('withFileLock', function () {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'file-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("returns fn's value, leaves a private lock file while held and nothing after", async function () {
    const file = join(dir, 'x.lock');
    const value = await withFileLock(file, async () => {
      expect((await stat(file)).mode & 0o777).to.equal(0o600);
      return 7;
    });
    expect(value).to.equal(7);
    expect(await readdir(dir)).to.deep.equal([]);
  });

  it('a holder on another host is waited for until its file is stale, then taken over', async function () {
    const file = join(dir, 'x.lock');
    await writeFile(file, JSON.stringify({ host: `not-${hostname()}`, pid: 1, token: 'theirs' }), { mode: 0o600 });
    let caught: unknown;
    try {
      await withFileLock(file, async () => 'mine', { waitMs: 200, staleAfterMs: 60_000, what: 'the test' });
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(RetryableError);
    expect((caught as Error).message).to.match(/^The lock .*x\.lock \(the test\) was still held after 0 s; try again$/);
    const old = new Date(Date.now() - 120_000);
    await utimes(file, old, old);
    expect(await withFileLock(file, async () => 'mine', { waitMs: 5_000, staleAfterMs: 60_000 })).to.equal('mine');
    expect(await readdir(dir)).to.deep.equal([]);
  });

  it('a holder that was killed is taken over at once: its pid no longer runs', async function () {
    this.timeout(30_000);
    const file = join(dir, 'x.lock');
    const moduleUrl = pathToFileURL(fileURLToPath(new URL('../../../src/core/file-lock.ts', import.meta.url))).href;
    const code = `
      const { withFileLock } = await import(${JSON.stringify(moduleUrl)});
      await withFileLock(${JSON.stringify(file)}, async () => {
        process.stdout.write('held\\n');
        await new Promise(() => setInterval(() => undefined, 1000));
      });
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res, rej) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('held') && res());
      child.on('error', rej);
      child.on('exit', (status) => rej(new Error(`child exited ${status} before holding the lock`)));
    });
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await exited;
    // A fresh file (not older than staleAfterMs): only the dead pid makes it stale.
    expect(await withFileLock(file, async () => 'after', { waitMs: 5_000, staleAfterMs: 600_000 })).to.equal('after');
    expect(await readdir(dir)).to.deep.equal([]);
  });

  it("a file naming this process's pid with a token it does not hold (a restarted container's predecessor) is taken over at once", async function () {
    const file = join(dir, 'x.lock');
    await writeFile(file, JSON.stringify({ host: hostname(), pid: process.pid, token: 'before-the-restart' }), { mode: 0o600 });
    expect(await withFileLock(file, async () => 'mine', { waitMs: 5_000, staleAfterMs: 600_000 })).to.equal('mine');
    expect(await readdir(dir)).to.deep.equal([]);
  });

  it('never lets two holders in this process overlap, and waits rather than fails', async function () {
    const file = join(dir, 'x.lock');
    let active = 0;
    let maxActive = 0;
    await Promise.all(
      Array.from({ length: 5 }, () =>
        withFileLock(file, async () => {
          active++;
          maxActive = Math.max(maxActive, active);
          await new Promise((r) => setTimeout(r, 10));
          active--;
        }),
      ),
    );
    expect(maxActive).to.equal(1);
  });

  it('a lock file it could not write (a full disk) is not left behind to bar the next taker', async function () {
    this.timeout(30_000);
    const file = join(dir, 'x.lock');
    const moduleUrl = pathToFileURL(fileURLToPath(new URL('../../../src/core/file-lock.ts', import.meta.url))).href;
    // RLIMIT_FSIZE 0 fails every write to a file (EFBIG once SIGXFSZ is handled) while
    // creating it still works, as a full disk does; tsx's cache is off so loading writes nothing.
    const code = `
      process.on('SIGXFSZ', () => undefined);
      const { withFileLock } = await import(${JSON.stringify(moduleUrl)});
      try {
        await withFileLock(${JSON.stringify(file)}, async () => undefined, { waitMs: 1_000 });
        process.stdout.write('taken\\n');
      } catch (err) {
        process.stdout.write(err.code + '\\n');
      }
    `;
    const child = spawn('sh', ['-c', 'ulimit -f 0 && exec "$0" --import tsx --input-type=module -e "$1"', process.execPath, code], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TSX_DISABLE_CACHE: '1' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const status = await new Promise((r) => child.on('exit', r));
    expect({ status, out: out.trim() }).to.deep.equal({ status: 0, out: 'EFBIG' });
    expect(await readdir(dir)).to.deep.equal([]);
    expect(await withFileLock(file, async () => 'next', { waitMs: 1_000 })).to.equal('next');
  });

  it("a stale empty file replaced, just before it is removed, by another taker's new one (not yet written) leaves that one alone", async function () {
    const file = join(dir, 'x.lock');
    // Left empty by a holder killed while writing it, and old: stale.
    await writeFile(file, '', { mode: 0o600 });
    const old = new Date(Date.now() - 120_000);
    await utimes(file, old, old);
    // The second read of the lock file is the look under `.break` before removing it: just
    // then, another taker (which removed the stale file first) has created its own and not
    // yet written it. file-lock.ts reads through node:fs/promises, hence the hook there.
    const fsp = createRequire(import.meta.url)('node:fs/promises') as { readFile: (...args: unknown[]) => Promise<unknown> };
    const realReadFile = fsp.readFile;
    let reads = 0;
    fsp.readFile = (...args: unknown[]) => {
      if (args[0] === file && ++reads === 2) {
        rmSync(file);
        closeSync(openSync(file, 'wx', 0o600));
      }
      return realReadFile(...args);
    };
    syncBuiltinESMExports();
    let outcome: unknown;
    try {
      outcome = await withFileLock(file, async () => 'taken', { waitMs: 300, staleAfterMs: 60_000 }).catch((err: unknown) => err);
    } finally {
      fsp.readFile = realReadFile;
      syncBuiltinESMExports();
    }
    expect(reads).to.be.greaterThan(1);
    expect(outcome).to.be.instanceOf(RetryableError);
    expect(readFileSync(file, 'utf8')).to.equal('');
  });
});
