/**
 * Broker faults that hurt only what the test owns.
 *
 * The broker on 127.0.0.1:5672 is shared with other test runs and with workers a
 * developer left running, so no test may close every connection on it or stop it:
 * - `closeConnectionsNamed` closes only the connections whose client-provided name
 *   (`connection_name`, which the worker sets to `worker@HOST pid N`) matches;
 * - `ThrowawayRabbit` starts a RabbitMQ node of the test's own (own node name, ports,
 *   data and log directory, no plugins) that the test may stop and start at will;
 * - `Bystander` is a connection to the shared broker opened before a fault, which a
 *   test checks is still open after it: proof that the fault stayed within the test.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import amqp, { type ChannelModel } from 'amqplib';
import { AMQP_URL } from './harness.js';
import { freePort } from './prometheus.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `rabbitmqctl` against the shared broker (the packaged wrapper: as root it runs as the rabbitmq user). */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 60_000 });
  return stdout;
}

/**
 * A virtual host of the test's own on the shared broker, for a test that must declare a
 * fixed name (a package's own destination, such as fn_slack): another run on this machine
 * may declare or delete that name in the default virtual host at any moment, and never
 * sees this one. `drop` deletes it with everything in it.
 */
export async function privateVhost(prefix: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`;
  const url = new URL(AMQP_URL);
  await rabbitmqctl('add_vhost', name);
  await rabbitmqctl('set_permissions', '-p', name, decodeURIComponent(url.username) || 'guest', '.*', '.*', '.*');
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: async () => void (await rabbitmqctl('delete_vhost', name)) };
}

/** The name the worker gives its broker connection (src/core/runtime/amqp-transport.ts connectionName). */
export function workerConnectionName(pid: number, purpose?: string): string {
  return `worker@${os.hostname()} pid ${pid}${purpose ? ` (${purpose})` : ''}`;
}

/**
 * Closes the shared broker's connections whose client-provided name is `name`, with
 * `reason`, and returns how many. Throws when there is none: a test that meant to cut
 * a connection and cut nothing would prove nothing.
 */
export async function closeConnectionsNamed(name: string, reason: string): Promise<number> {
  // rabbitmqctl 3.10 has no user_provided_name column: read connection_name from the
  // client properties, printed as Erlang terms ({"connection_name","…"}).
  const out = await rabbitmqctl('list_connections', 'pid', 'client_properties', '--quiet', '--no-table-headers');
  const pids = out
    .split('\n')
    .map((line) => [line.slice(0, line.indexOf('\t')), /\{"connection_name","((?:[^"\\]|\\.)*)"\}/.exec(line)?.[1]] as const)
    .filter(([pid, provided]) => pid && provided === name)
    .map(([pid]) => pid);
  if (pids.length === 0) throw new Error(`no broker connection is named "${name}"; the broker has:\n${out}`);
  for (const pid of pids) await rabbitmqctl('close_connection', pid, reason);
  return pids.length;
}

/** A connection to the shared broker that must survive the test's faults. */
export class Bystander {
  private closedWith: string | undefined;

  private constructor(private readonly connection: ChannelModel) {
    connection.on('error', () => undefined);
    connection.on('close', (err?: Error) => (this.closedWith = err?.message ?? 'closed without a reason'));
  }

  static async open(url = AMQP_URL): Promise<Bystander> {
    return new Bystander(await amqp.connect(url, { clientProperties: { connection_name: `test bystander pid ${process.pid}` } }));
  }

  /** Throws when the connection was closed, or cannot be used any more. */
  async expectOpen(): Promise<void> {
    if (this.closedWith) throw new Error(`the shared broker closed a bystander connection: ${this.closedWith}`);
    const ch = await this.connection.createChannel();
    await ch.close();
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }
}

/** Where the RabbitMQ scripts are: the packaged ones under /usr/lib run as the caller, unlike the /usr/sbin wrappers. */
function rabbitScript(name: string): string {
  const packaged = path.join('/usr/lib/rabbitmq/bin', name);
  return fs.existsSync(packaged) ? packaged : name;
}

/**
 * A free port outside the range RabbitMQ's CLI tools take for their own Erlang
 * distribution (35672-35682): a node listening there fails with eaddrinuse as soon
 * as a `rabbitmqctl` runs at the same moment.
 */
async function freeBrokerPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port < 35672 || port > 35682) return port;
  }
}

/**
 * A RabbitMQ node of the test's own: node name `test-…@localhost`, its AMQP and Erlang
 * distribution ports free ones on 127.0.0.1, its data, logs, Erlang cookie (HOME),
 * config and enabled-plugins file (empty: no management listener) in a temp dir, and
 * none of /etc/rabbitmq read. `stop()` halts it and removes the dir.
 */
export class ThrowawayRabbit {
  /** The node's OS process, read from its pid file once it runs (`stop` removes that file before the process ends). */
  private pid: number | undefined;

  private constructor(
    readonly node: string,
    readonly port: number,
    readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  static async start(): Promise<ThrowawayRabbit> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rabbit-node-'));
    const port = await freeBrokerPort();
    let distPort = await freeBrokerPort();
    while (distPort === port) distPort = await freeBrokerPort();
    const node = `test-${process.pid}-${Math.random().toString(36).slice(2, 8)}@localhost`;
    for (const sub of ['mnesia', 'log']) fs.mkdirSync(path.join(dir, sub));
    fs.writeFileSync(path.join(dir, 'enabled_plugins'), '');
    fs.writeFileSync(path.join(dir, 'rabbitmq-env.conf'), '');
    fs.writeFileSync(path.join(dir, 'rabbitmq.conf'), `listeners.tcp.1 = 127.0.0.1:${port}\n`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: dir,
      RABBITMQ_NODENAME: node,
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'),
      RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(dir, 'log'),
      RABBITMQ_PID_FILE: path.join(dir, 'rabbit.pid'),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
    const rabbit = new ThrowawayRabbit(node, port, dir, env);
    try {
      await run(rabbitScript('rabbitmq-server'), ['-detached'], { env, cwd: dir, timeout: 60_000 });
      await rabbit.ctl('wait', path.join(dir, 'rabbit.pid'), '--timeout', '90');
      rabbit.pid = Number(fs.readFileSync(path.join(dir, 'rabbit.pid'), 'utf8').trim());
      // A test run that ends without its after hook (mocha interrupted, a crash) must not
      // leave the node running: kill it and remove its directory on the way out.
      process.once('exit', rabbit.onExit);
      await rabbit.waitForConnections();
    } catch (err) {
      const log = path.join(dir, 'log', `${node}.log`);
      const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-3000) : '(no log)';
      await rabbit.stop();
      throw new Error(`cannot start a throwaway RabbitMQ node: ${(err as Error).message}\n${tail}`);
    }
    return rabbit;
  }

  /** Runs `rabbitmqctl -n NODE …` against this node only. */
  async ctl(...args: string[]): Promise<string> {
    const { stdout } = await run(rabbitScript('rabbitmqctl'), ['-n', this.node, ...args], { env: this.env, cwd: this.dir, timeout: 90_000 });
    return stdout;
  }

  async stopApp(): Promise<void> {
    await this.ctl('stop_app');
  }

  /** Starts the application again (a no-op when it runs) and waits until it takes connections. */
  async startApp(): Promise<void> {
    await this.ctl('start_app');
    await this.waitForConnections();
  }

  private async waitForConnections(): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const c = await amqp.connect(this.url);
        await c.close();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(250);
      }
    }
  }

  /** Halts the node (killing it if it does not halt) and removes its directory. */
  private readonly onExit = (): void => {
    if (this.pid && alive(this.pid)) process.kill(this.pid, 'SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  };

  async stop(): Promise<void> {
    process.removeListener('exit', this.onExit);
    await this.ctl('stop').catch(() => undefined);
    const pidFile = path.join(this.dir, 'rabbit.pid');
    const pid = this.pid ?? (fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8').trim()) : NaN);
    if (Number.isInteger(pid) && pid > 0) {
      const deadline = Date.now() + 15_000;
      while (alive(pid) && Date.now() < deadline) await sleep(100);
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
