/**
 * Files the worker creates are private to its user whatever the umask it inherits: the
 * store (it holds every invocation's inputs and reply), the logs, the lock, exports.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { CLI_TS, deleteDestination, REPO_ROOT, runCli, tempDir, writeConfig, type TestConfig } from '../support/harness.js';

function mode(p: string): string {
  return (fs.statSync(p).mode & 0o777).toString(8);
}

/** Runs `script` under bash with umask 000, as a careless service manager would. */
function underUmask000(command: string, env: NodeJS.ProcessEnv = {}): { output: () => string; stop: () => Promise<void>; done: Promise<number | null> } {
  const child = spawn('bash', ['-c', `umask 000; exec ${command}`], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    output: () => output,
    stop: async () => {
      child.kill('SIGTERM');
      await done;
    },
    done,
  };
}

describe('file modes under umask 000 (spawned)', function () {
  this.timeout(90_000);
  let cfg: TestConfig;
  after(async () => {
    if (cfg) await deleteDestination(cfg.destination);
  });

  it('worker run: store, its WAL, logs and lock are 0600 in 0700 folders', async () => {
    const dir = tempDir();
    const base = path.join(dir, 'state'); // created by the worker
    cfg = writeConfig({
      worker: {
        store: path.join(base, 'db', 'worker.db'),
        logdir: path.join(base, 'logs'),
        lock_file: path.join(base, 'run', 'worker.lock'),
        platform_dir: path.join(base, 'files'),
      },
    });
    const cli = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(CLI_TS)}`;
    const worker = underUmask000(`${cli} run --config-file ${JSON.stringify(cfg.file)}`);
    try {
      const deadline = Date.now() + 30_000;
      while (!worker.output().includes('Worker ready')) {
        if (Date.now() > deadline) throw new Error(`worker not ready:\n${worker.output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const res = await runCli(['invoke', 'test_echo', '--config-file', cfg.file, '-i', 'text=secret inputs']);
      expect(res.code, res.stderr).to.equal(0);
      expect(mode(path.join(base, 'run', 'worker.lock'))).to.equal('600');
      expect(mode(path.join(base, 'run'))).to.equal('700');
      expect(mode(path.join(base, 'db', 'worker.db'))).to.equal('600');
      expect(mode(path.join(base, 'db', 'worker.db-wal'))).to.equal('600');
      expect(mode(path.join(base, 'db'))).to.equal('700');
      expect(mode(path.join(base, 'logs', 'app.log'))).to.equal('600');
      expect(mode(path.join(base, 'logs'))).to.equal('700');
    } finally {
      await worker.stop();
    }
  });

  it('the local platform saves an export 0600 in 0700 folders', async () => {
    const root = tempDir();
    fs.mkdirSync(path.join(root, 'incidents', '2103'), { recursive: true });
    const source = path.join(tempDir(), 'export.txt');
    fs.writeFileSync(source, 'the conversation');
    const script = [
      `import { LocalPlatform } from ${JSON.stringify(path.join(REPO_ROOT, 'src', 'platforms', 'local', 'local-platform.ts'))};`,
      `const saved = await new LocalPlatform(${JSON.stringify(root)}).saveExport({ incidentId: 2103 }, 'export.txt', ${JSON.stringify(source)});`,
      'process.stdout.write(saved.location);',
    ].join('\n');
    const file = path.join(tempDir(), 'save.mts');
    fs.writeFileSync(file, script);
    const run = underUmask000(`${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(file)}`);
    expect(await run.done, run.output()).to.equal(0);
    const location = run.output();
    expect(fs.readFileSync(location, 'utf8')).to.equal('the conversation');
    expect(mode(location)).to.equal('600');
    expect(mode(path.dirname(location))).to.equal('700');
    expect(mode(path.join(root, 'incidents', '2103', 'attachments'))).to.equal('700');
  });
});
