import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { acquireLock } from '../../../src/core/lock.js';
import { LockError } from '../../../src/core/runtime/errors.js';

/** The pid of a process that has exited (and was reaped), so no process runs with it now. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

async function lockErrorOf(file: string): Promise<Error> {
  try {
    await acquireLock(file);
  } catch (err) {
    expect(err).to.be.instanceOf(LockError);
    return err as Error;
  }
  throw new Error(`acquireLock(${file}) took a lock that is held`);
}

/** Node processes that each try acquireLock on the file named by each line sent to them (`<start at> <file>`), and keep what they win. */
class Contenders {
  private readonly children: ChildProcessByStdio<Writable, Readable, null>[] = [];
  private readonly lines: AsyncIterator<string>[] = [];

  async start(count: number): Promise<void> {
    const moduleUrl = pathToFileURL(fileURLToPath(new URL('../../../src/core/lock.ts', import.meta.url))).href;
    const code = `
      const { acquireLock } = await import(${JSON.stringify(moduleUrl)});
      const { createInterface } = await import('node:readline');
      process.stdout.write('ready\\n');
      for await (const line of createInterface({ input: process.stdin })) {
        const [startAt, file] = [Number(line.slice(0, line.indexOf(' '))), line.slice(line.indexOf(' ') + 1)];
        while (Date.now() < startAt); // all start at the same instant, each on a core while it spins
        try {
          await acquireLock(file);
          process.stdout.write('won\\n');
        } catch (err) {
          process.stdout.write('lost ' + err.name + ': ' + err.message.replace(/\\n/g, ' ') + '\\n');
        }
      }
    `;
    for (let i = 0; i < count; i++) {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
      this.children.push(child);
      this.lines.push(createInterface({ input: child.stdout })[Symbol.asyncIterator]());
    }
    expect(await this.nextLines()).to.deep.equal(this.children.map(() => 'ready'));
  }

  /** Each contender's answer to `file`, in the order of {@link pids}; they all try at one instant. */
  async race(file: string): Promise<string[]> {
    const startAt = Date.now() + 50;
    for (const child of this.children) child.stdin.write(`${startAt} ${file}\n`);
    return this.nextLines();
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid!);
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map((child) => {
        if (child.exitCode !== null || child.signalCode !== null) return undefined;
        const exited = new Promise((r) => child.on('exit', r));
        child.kill('SIGKILL');
        return exited;
      }),
    );
  }

  private async nextLines(): Promise<string[]> {
    return Promise.all(
      this.lines.map(async (it, i) => {
        const next = await it.next();
        if (next.done) throw new Error(`contender ${this.children[i].pid} ended early`);
        return next.value;
      }),
    );
  }
}

describe('acquireLock (the worker run lock file)', function () {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'run-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a private lock file in a private folder, refuses a second holder and removes its own file on release', async () => {
    const file = join(dir, 'run', 'worker.lock');
    const lock = await acquireLock(file);
    expect(lock.file).to.equal(file);
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
    expect((await stat(join(dir, 'run'))).mode & 0o777).to.equal(0o700);
    expect(JSON.parse(await readFile(file, 'utf8'))).to.include({ host: hostname(), pid: process.pid });
    // Another acquire in this process (a second Worker) is refused too: its token is held here.
    const err = await lockErrorOf(file);
    expect(err.message).to.equal(
      `Another worker (pid ${process.pid}) holds the lock file ${file}; stop it first, or give this one another lock_file`,
    );
    lock.release();
    lock.release();
    expect(await readdir(join(dir, 'run'))).to.deep.equal([]);
  });

  it('says which lock file it cannot create, and why', async () => {
    await writeFile(join(dir, 'not-a-folder'), '');
    const file = join(dir, 'not-a-folder', 'worker.lock');
    const err = await lockErrorOf(file);
    expect(err.message).to.match(new RegExp(`^Cannot create the lock file ${file}: ENOTDIR`));
  });

  it("release leaves a lock file that is no longer this worker's", async () => {
    const file = join(dir, 'worker.lock');
    const lock = await acquireLock(file);
    await writeFile(file, JSON.stringify({ host: hostname(), pid: 1, token: 'someone-else' }));
    lock.release();
    expect(JSON.parse(await readFile(file, 'utf8'))).to.deep.equal({ host: hostname(), pid: 1, token: 'someone-else' });
  });

  it('reads the previous release\'s lock file ("<pid>\\n"): refused while that worker runs, taken over once it is gone', async function () {
    const file = join(dir, 'worker.lock');
    const oldWorker = spawn(process.execPath, ['-e', 'setInterval(() => undefined, 1000)'], { stdio: 'ignore' });
    try {
      await writeFile(file, `${oldWorker.pid}\n`, { mode: 0o600 });
      // Old and unrefreshed (that release never refreshed it), yet its worker runs: held.
      const old = new Date(Date.now() - 3_600_000);
      await utimes(file, old, old);
      const err = await lockErrorOf(file);
      expect(err.message).to.equal(
        `Another worker (pid ${oldWorker.pid}) holds the lock file ${file}; stop it first, or give this one another lock_file`,
      );
    } finally {
      const exited = new Promise((r) => oldWorker.on('exit', r));
      oldWorker.kill('SIGKILL');
      await exited;
    }
    const lock = await acquireLock(file);
    expect(JSON.parse(await readFile(file, 'utf8'))).to.include({ pid: process.pid });
    lock.release();
  });

  it("takes over a lock file naming this process's pid that it does not hold (a restarted container's predecessor), old or new format", async () => {
    const file = join(dir, 'worker.lock');
    for (const text of [`${process.pid}\n`, JSON.stringify({ host: hostname(), pid: process.pid, token: 'before-the-restart' })]) {
      await writeFile(file, text, { mode: 0o600 });
      const lock = await acquireLock(file);
      expect(await readFile(file, 'utf8')).to.not.equal(text);
      lock.release();
      expect(await readdir(dir)).to.deep.equal([]);
    }
  });

  it("refuses another host's lock while it is refreshed and names the host; takes it over once it is not", async () => {
    const file = join(dir, 'worker.lock');
    const host = `not-${hostname()}`;
    await writeFile(file, JSON.stringify({ host, pid: 4242, token: 'theirs' }), { mode: 0o600 });
    const err = await lockErrorOf(file);
    expect(err.message).to.match(/^Another worker \(pid 4242\) holds the lock file .*worker\.lock/);
    expect(err.message).to.contain(`host ${host}`);
    const old = new Date(Date.now() - 120_000);
    await utimes(file, old, old);
    const lock = await acquireLock(file);
    expect(JSON.parse(await readFile(file, 'utf8'))).to.include({ host: hostname(), pid: process.pid });
    lock.release();
  });

  it('takes over a long-empty lock file (its writer was killed while writing it)', async () => {
    const file = join(dir, 'worker.lock');
    await writeFile(file, '', { mode: 0o600 });
    const old = new Date(Date.now() - 120_000);
    await utimes(file, old, old);
    const lock = await acquireLock(file);
    expect(JSON.parse(await readFile(file, 'utf8'))).to.include({ pid: process.pid });
    lock.release();
  });

  it('of processes racing to take over a stale lock file (its pid is dead), exactly one wins and the others name it', async function () {
    this.timeout(120_000);
    const contenders = new Contenders();
    try {
      // One more than this machine's two cores: at least two really run at once.
      await contenders.start(3);
      const dead = await deadPid();
      const winners: number[] = [];
      for (let round = 0; round < 30; round++) {
        const file = join(dir, `worker-${round}.lock`);
        // Half the rounds with the previous release's format, half with the current one.
        const stale = round % 2 ? `${dead}\n` : JSON.stringify({ host: hostname(), pid: dead, token: 'crashed' });
        await writeFile(file, stale, { mode: 0o600 });
        const answers = await contenders.race(file);
        const won = answers.flatMap((a, i) => (a === 'won' ? [contenders.pids[i]] : []));
        winners.push(won.length);
        if (won.length !== 1) continue;
        expect(await readFile(file, 'utf8')).to.contain(`"pid":${won[0]},`);
        for (const answer of answers.filter((a) => a !== 'won')) {
          expect(answer).to.equal(
            `lost LockError: Another worker (pid ${won[0]}) holds the lock file ${file}; stop it first, or give this one another lock_file`,
          );
        }
      }
      expect(winners).to.deep.equal(winners.map(() => 1));
    } finally {
      await contenders.stop();
    }
  });
});
