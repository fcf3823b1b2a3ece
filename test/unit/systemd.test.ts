/**
 * systemd/worker.service.
 *
 * What is checked:
 * - by parsing the unit here: the settings the worker relies on (user, config file,
 *   directories, restart policy, a stop timeout longer than the default shutdown_timeout)
 *   and that each hardening directive is present with the intended value;
 * - by `systemd-analyze verify` (when installed): that systemd itself accepts every
 *   directive and value — no unknown key, no unparsable value, no bad section. A
 *   negative control (a copy with a bogus key and a bad value) proves the check bites.
 *
 * - that the README's install steps ("Operating it under systemd") agree with the unit:
 *   the same user, binary path, directories, owners and modes.
 *
 * The unit is verified exactly as shipped; the one complaint allowed is that ExecStart's
 * /usr/local/bin/worker does not exist, and only on a host where it does not (after the
 * README's `npm install -g --prefix /usr/local` it must pass with no complaint at all).
 * A copy that runs /bin/true as root is verified too, so that the directives are checked
 * whatever is installed. What is not checked: that the service starts, nor the sandbox
 * (ProtectSystem and friends need a running systemd); unrelated warnings about other
 * units on the host are ignored.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { WORKER_SECTION_SCHEMA } from '../../src/core/worker-config.js';

const UNIT_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../systemd/worker.service');
const SYSTEMD_ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => fs.existsSync(p));

type Unit = Record<string, Record<string, string[]>>;

/** A simple parse: sections, `Key=value` (repeatable), `#`/`;` comment lines. */
function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section: Record<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = unit[header[1]!] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0 || !section) throw new Error(`unexpected line in unit: ${raw}`);
    (section[line.slice(0, eq).trim()] ??= []).push(line.slice(eq + 1).trim());
  }
  return unit;
}

/** systemd time span in seconds ("45", "45s", "1min 30s"). */
function seconds(span: string): number {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h)?/g;
  for (let m = re.exec(span); m; m = re.exec(span)) {
    const n = Number(m[1]);
    const unit = m[2] ?? 's';
    total += unit === 'ms' ? n / 1000 : unit === 'm' || unit === 'min' ? n * 60 : unit === 'h' ? n * 3600 : n;
  }
  return total;
}

describe('systemd/worker.service', () => {
  const text = fs.readFileSync(UNIT_FILE, 'utf8');
  const unit = parseUnit(text);
  const service = unit.Service!;
  const one = (key: string): string | undefined => {
    const values = service[key];
    return values ? values[values.length - 1] : undefined;
  };

  it('has [Unit], [Service] and [Install]', () => {
    expect(Object.keys(unit)).to.deep.equal(['Unit', 'Service', 'Install']);
    expect(unit.Unit!.After!.join(' ').split(/\s+/)).to.include.members(['network-online.target', 'rabbitmq-server.service']);
    expect(unit.Unit!.Wants).to.deep.equal(['network-online.target']);
    expect(unit.Install!.WantedBy).to.deep.equal(['multi-user.target']);
  });

  it('runs `worker run` as the unprivileged integration user with the /etc config', () => {
    expect(one('User')).to.equal('integration');
    expect(one('Group')).to.equal('integration');
    expect(one('ExecStart')).to.match(/^\/\S+\/worker run$/);
    expect(service.Environment).to.include('APP_CONFIG_FILE=/etc/soar-slack-worker/app.config');
    expect(one('EnvironmentFile')).to.equal('-/etc/soar-slack-worker/env');
  });

  it('gives the worker its directories and documents the paths to set in app.config', () => {
    expect(one('RuntimeDirectory')).to.equal('soar-slack-worker');
    expect(one('StateDirectory')).to.equal('soar-slack-worker');
    expect(one('LogsDirectory')).to.equal('soar-slack-worker');
    expect(text).to.match(/^#\s+lock_file\s*=\s*\/run\/soar-slack-worker\/worker\.lock/m);
    expect(text).to.match(/^#\s+logdir\s*=\s*\/var\/log\/soar-slack-worker/m);
  });

  it('sizes the V8 heap for memory (not as a tight cap) through NODE_OPTIONS', () => {
    // README "Benchmarks" (export): at >= 2 GB V8 lets the old generation grow to ~4x its
    // live size; young-generation halves grow to 16 MB by default.
    const nodeOptions = (service.Environment ?? []).filter((e) => /^"?NODE_OPTIONS=/.test(e));
    expect(nodeOptions).to.have.length(1);
    const flag = (name: string): number => {
      const m = new RegExp(`--${name}=(\\d+)\\b`).exec(nodeOptions[0]!);
      expect(m, `${name} in ${nodeOptions[0]}`).to.not.equal(null);
      return Number(m![1]);
    };
    const oldSpace = flag('max-old-space-size');
    expect(oldSpace).to.be.at.least(512);
    expect(oldSpace).to.be.below(2048);
    const semiSpace = flag('max-semi-space-size');
    expect(semiSpace).to.be.at.least(4);
    expect(semiSpace).to.be.below(16);
  });

  it('restarts, and waits longer than the default shutdown_timeout on stop', () => {
    expect(one('Restart')).to.equal('always');
    expect(seconds(one('RestartSec')!)).to.equal(5);
    expect(one('KillSignal')).to.equal('SIGTERM');
    const shutdownTimeout = (WORKER_SECTION_SCHEMA.properties as Record<string, { default: number }>).shutdown_timeout!.default;
    expect(shutdownTimeout).to.equal(30);
    expect(seconds(one('TimeoutStopSec')!)).to.be.greaterThan(shutdownTimeout);
  });

  it('is hardened', () => {
    const expected: Record<string, string> = {
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      PrivateTmp: 'yes',
      ProtectHome: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectControlGroups: 'yes',
      RestrictSUIDSGID: 'yes',
      LockPersonality: 'yes',
      RestrictRealtime: 'yes',
      CapabilityBoundingSet: '',
      SystemCallArchitectures: 'native',
      UMask: '0077',
    };
    for (const [key, value] of Object.entries(expected)) {
      expect(one(key), key).to.equal(value);
    }
    const writable = service.ReadWritePaths!.join(' ').split(/\s+/);
    expect(writable).to.have.members(['/var/lib/soar-slack-worker', '/var/log/soar-slack-worker']);
    // V8's JIT needs writable+executable memory.
    expect(service).not.to.have.property('MemoryDenyWriteExecute');
  });

  describe('README "Operating it under systemd" agrees with the unit', () => {
    const readme = fs.readFileSync(path.resolve(path.dirname(UNIT_FILE), '..', 'README.md'), 'utf8');
    const start = readme.indexOf('## Operating it under systemd');
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
    const user = one('User')!;
    const state = `/var/lib/${one('StateDirectory')}`;
    const logs = `/var/log/${one('LogsDirectory')}`;

    it('installs `worker` where ExecStart runs it, from a packed tarball (the package is not on the registry)', () => {
      const binary = one('ExecStart')!.split(/\s+/)[0]!;
      expect(binary).to.equal('/usr/local/bin/worker');
      expect(section).to.contain('npm pack');
      expect(section).to.match(/^npm install -g --prefix \/usr\/local \.\/soar-slack-worker-[\d.]+\.tgz$/m);
      for (const doc of [section, text]) expect(doc).not.to.match(/npm install -g soar-slack-worker/);
    });

    it('creates the service user, whose home is the state directory', () => {
      const useradd = /^useradd ([^\n]*\\\n)*[^\n]*$/m.exec(section)?.[0].replace(/\\\n\s*/g, '');
      expect(useradd, 'a useradd line').to.be.a('string');
      expect(useradd!.trim().split(/\s+/).pop()).to.equal(user);
      expect(useradd).to.contain(`--home-dir ${state} `);
      expect(useradd).to.contain('--user-group');
      expect(one('Group')).to.equal(user);
    });

    it('creates the state and log directories before customize/selftest, with the modes systemd keeps', () => {
      const mkdirs = new RegExp(`^install -d -o ${user} -g ${user} -m (\\d+) (.*)$`, 'm').exec(section);
      expect(mkdirs, 'an install -d line for the state and log directories').to.not.equal(null);
      expect(mkdirs![2]!.split(/\s+/)).to.have.members([state, logs]);
      expect(mkdirs![1]).to.equal(one('StateDirectoryMode'));
      expect(mkdirs![1]).to.equal(one('LogsDirectoryMode'));
      expect(one('RuntimeDirectoryMode')).to.equal('0700');
      expect(section.indexOf(mkdirs![0])).to.be.lessThan(section.indexOf('as_service customize'));
    });

    it('installs app.config for the service user only (the worker warns when anyone else can read it) and env for root', () => {
      const config = service.Environment!.find((e) => e.startsWith('APP_CONFIG_FILE='))!.slice('APP_CONFIG_FILE='.length);
      expect(section).to.match(new RegExp(`^install -o ${user} -g ${user} -m 0600 \\S+ ${config}$`, 'm'));
      const env = one('EnvironmentFile')!.replace(/^-/, '');
      expect(section).to.match(new RegExp(`^install -o root -g root -m 0600 /dev/null ${env}$`, 'm'));
      expect(section).to.match(new RegExp(`^install -d -o root -g ${user} -m 0750 ${path.dirname(config)}$`, 'm'));
      // The unit's own comment says the same, and no longer 0640.
      expect(text).to.contain('0600');
      expect(text).not.to.contain('0640');
    });

    it('runs customize and selftest as the service user, with the binary ExecStart runs', () => {
      expect(section).to.contain(`runuser -u ${user} -- ${one('ExecStart')!.split(/\s+/)[0]} "$@"`);
      expect(section).to.match(/^as_service customize -y$/m);
      expect(section).to.match(/^as_service selftest$/m);
    });
  });

  describe('systemd-analyze verify', function () {
    let dir: string;
    before(function () {
      // .ci/run installs systemd when systemd-analyze is missing, so this never passes vacuously.
      if (!SYSTEMD_ANALYZE) throw new Error('systemd-analyze not found: install the systemd package');
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unit-verify-'));
    });
    after(() => {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    /** Verifies `content` saved as `name`; returns the output lines about that file. */
    function verifyText(name: string, content: string): string[] {
      const file = path.join(dir, name);
      fs.writeFileSync(file, content);
      const res = spawnSync(SYSTEMD_ANALYZE!, ['verify', '--man=no', file], { encoding: 'utf8', timeout: 20_000 });
      if (res.error) throw res.error;
      return `${res.stdout}\n${res.stderr}`
        .split('\n')
        .filter((line) => line.includes(file) || line.includes(name));
    }

    /** Verifies a runnable copy (ExecStart=/bin/true, as root) with `extra` directives. */
    function verify(name: string, extra = ''): string[] {
      const copy = text
        .replace(/^ExecStart=.*$/m, 'ExecStart=/bin/true')
        .replace(/^User=.*$/m, 'User=root')
        .replace(/^Group=.*$/m, 'Group=root')
        .replace(/^\[Service\]$/m, `[Service]\n${extra}`);
      return verifyText(name, copy);
    }

    it('accepts the unit exactly as shipped', () => {
      const binary = one('ExecStart')!.split(/\s+/)[0]!;
      const problems = verifyText('soar-slack-worker.service', text);
      const missingBinary = `soar-slack-worker.service: Command ${binary} is not executable: No such file or directory`;
      expect(problems.filter((line) => !(line.trim() === missingBinary && !fs.existsSync(binary)))).to.deep.equal([]);
    });

    it('accepts every directive and value', () => {
      expect(verify('soar-slack-worker.service')).to.deep.equal([]);
    });

    it('reports a bad directive (negative control)', () => {
      const problems = verify('bad-copy.service', 'Bogus=1\nRestart=sometimes\n');
      expect(problems.join('\n')).to.match(/Unknown key.*Bogus/).and.to.match(/sometimes/);
    });
  });
});
