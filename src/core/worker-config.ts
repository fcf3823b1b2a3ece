/**
 * The `[worker]` section: its schema, its defaults and the typed options built from it.
 *
 * Kept apart from the Worker class (as Temporal keeps WorkerOptions apart from Worker)
 * so that tests and embedders can build options without a file.
 */
import type { JsonSchema } from './runtime/plugin.js';
import { expandHome, validateSection, type LoadedConfig } from './config.js';
import { ConfigError } from './runtime/errors.js';

/** `[worker] queue_type`: where the broker keeps the worker's queues. */
export type QueueType = 'classic' | 'quorum';

export interface WorkerSection {
  amqp_url: string;
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  destinations: string;
  num_workers: number;
  store: string;
  platform: 'local' | 'soar';
  platform_dir: string;
  logdir: string;
  loglevel: string;
  log_max_bytes: number;
  log_backup_count: number;
  plugins: string;
  shutdown_timeout: number;
  lock_file: string;
  metrics_port?: number;
  metrics_host: string;
  max_attempts: number;
  max_message_bytes: number;
  reconnect_max_delay: number;
  ledger_retention_days: number;
  store_timeout: number;
  heartbeat: number;
  queue_type: QueueType;
}

/** Comments per key, used by the schema's descriptions and by `worker config -c`. */
export const WORKER_SECTION_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    amqp_url: {
      type: 'string',
      pattern: '^amqps?://',
      default: 'amqp://guest:guest@localhost:5672',
      description: 'RabbitMQ URL; amqps:// with ca_file, cert_file, key_file for TLS',
    },
    ca_file: { type: 'string', description: 'CA bundle for amqps://' },
    cert_file: { type: 'string', description: 'client certificate for amqps:// (optional)' },
    key_file: { type: 'string', description: 'client key for amqps:// (optional)' },
    destinations: {
      type: 'string',
      pattern: '^\\s*[A-Za-z0-9_.:-]+(\\s*,\\s*[A-Za-z0-9_.:-]+)*\\s*$',
      // No default here: left out, it is every loaded package's own destination (see
      // pluginDestinations), so core names no package.
      description: 'message destinations (queues) to consume, comma-separated; default: the destination of each loaded package',
    },
    num_workers: {
      type: 'integer',
      minimum: 1,
      maximum: 1000,
      default: 25,
      description: 'invocations in flight at once (the AMQP prefetch)',
    },
    store: { type: 'string', minLength: 1, default: '~/.worker/worker.db', description: 'SQLite file, or postgres://user@host/db' },
    platform: { type: 'string', enum: ['local', 'soar'], default: 'local', description: 'local | soar' },
    platform_dir: { type: 'string', minLength: 1, default: '~/.worker/files', description: 'root of the local platform' },
    logdir: { type: 'string', default: '~/.worker/logs', description: 'folder of app.log (rotated by size)' },
    loglevel: {
      type: 'string',
      enum: ['DEBUG', 'INFO', 'WARNING', 'WARN', 'ERROR', 'CRITICAL', 'debug', 'info', 'warning', 'warn', 'error', 'critical'],
      default: 'INFO',
      description: 'DEBUG | INFO | WARNING | ERROR',
    },
    log_max_bytes: { type: 'integer', minimum: 1024, default: 10_000_000, description: 'rotate app.log at this size' },
    log_backup_count: { type: 'integer', minimum: 0, default: 10, description: 'rotated log files kept' },
    plugins: { type: 'string', default: '', description: 'extra plugin modules or paths, comma-separated' },
    shutdown_timeout: {
      type: 'number',
      minimum: 0,
      default: 30,
      description: 'seconds to let in-flight invocations finish on stop',
    },
    lock_file: { type: 'string', default: '~/.worker/worker.lock', description: 'stops a second worker with the same lock' },
    metrics_port: { type: 'integer', minimum: 1, maximum: 65535, description: 'health and metrics listener; off when empty' },
    metrics_host: { type: 'string', default: '127.0.0.1', description: 'address of the metrics listener' },
    max_attempts: {
      type: 'integer',
      minimum: 1,
      maximum: 100,
      default: 5,
      description: 'deliveries of one invocation before it is dead-lettered',
    },
    max_message_bytes: {
      type: 'integer',
      minimum: 1024,
      default: 1_048_576,
      description: 'larger request bodies are refused before parsing',
    },
    reconnect_max_delay: {
      type: 'number',
      minimum: 0.1,
      default: 30,
      description: 'cap, in seconds, of the broker reconnect backoff',
    },
    ledger_retention_days: {
      type: 'number',
      minimum: 1,
      default: 30,
      description: 'finished ledger entries older than this are pruned',
    },
    store_timeout: {
      type: 'number',
      minimum: 0.1,
      maximum: 300,
      default: 10,
      description: 'seconds a PostgreSQL store may take to connect or to answer one statement',
    },
    heartbeat: {
      type: 'integer',
      minimum: 1,
      maximum: 600,
      default: 10,
      description: 'AMQP heartbeat, seconds: a silent broker is noticed within two; /readyz fails after one',
    },
    queue_type: {
      type: 'string',
      enum: ['classic', 'quorum'],
      default: 'classic',
      description: 'classic | quorum (replicated; the broker also caps deliveries at max_attempts)',
    },
  },
};

/**
 * `[worker] destinations` when the config leaves it out: the destination of each loaded
 * package, in load order, once each.
 */
export function pluginDestinations(plugins: readonly { destination: string }[]): string {
  return [...new Set(plugins.map((p) => p.destination))].join(', ');
}

/**
 * Validates `[worker]` and expands `~` in its paths. A `destinations` left out is ''
 * here: the plugins are not loaded yet (`[worker] plugins` names them); the caller fills
 * it in with {@link pluginDestinations}.
 */
export function readWorkerSection(config: LoadedConfig): WorkerSection {
  const section = validateSection<WorkerSection>(config, 'worker', WORKER_SECTION_SCHEMA);
  section.destinations ??= '';
  for (const key of ['platform_dir', 'logdir', 'lock_file', 'ca_file', 'cert_file', 'key_file'] as const) {
    const value = section[key];
    if (typeof value === 'string' && value) section[key] = expandHome(value);
  }
  if (/^\s*postgres(ql)?:\/\//.test(section.store)) checkPostgresUrl(config.file, section.store.trim());
  else section.store = expandHome(section.store);
  checkAmqpUrl(config.file, section.amqp_url);
  return section;
}

/** True for addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/**
 * The warning for a metrics listener other machines can reach, or undefined on loopback:
 * /metrics and /readyz have no authentication, so exposing them should be a choice.
 */
export function metricsHostWarning(section: Pick<WorkerSection, 'metrics_host' | 'metrics_port'>): string | undefined {
  if (section.metrics_port === undefined || isLoopbackHost(section.metrics_host)) return undefined;
  return (
    `[worker] metrics_host = ${section.metrics_host}: the health and metrics listener (no authentication) is reachable ` +
    'from other machines; keep it on 127.0.0.1 unless a firewall or a reverse proxy limits who can reach it'
  );
}

/**
 * Parses a URL from the config, or says what is wrong with it. The value is never
 * echoed: it may hold a password.
 */
function parseConfigUrl(file: string, key: string, value: string, example: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${file}: [worker] ${key}: not a valid URL; expected the form ${example} (percent-encode @ : / % in the user and password)`);
  }
  for (const [part, raw] of [
    ['user name', url.username],
    ['password', url.password],
    ['path', url.pathname],
  ] as const) {
    try {
      decodeURIComponent(raw);
    } catch {
      throw new ConfigError(`${file}: [worker] ${key}: the ${part} holds a % that is not a percent-escape; write % as %25`);
    }
  }
  return url;
}

/**
 * Checks `[worker] amqp_url` at load, so a typo exits with the config code instead of
 * being retried by systemd as if the broker were down.
 */
function checkAmqpUrl(file: string, value: string): void {
  const url = parseConfigUrl(file, 'amqp_url', value, 'amqp://user:password@host:5672/vhost');
  if (url.protocol !== 'amqp:' && url.protocol !== 'amqps:') {
    throw new ConfigError(`${file}: [worker] amqp_url: the scheme must be amqp:// or amqps:// (got ${url.protocol}//)`);
  }
  if (!url.hostname) throw new ConfigError(`${file}: [worker] amqp_url: no host; expected amqp://user:password@host:5672/vhost`);
  // The heartbeat decides when /readyz fails; one value, one place.
  if (url.searchParams.has('heartbeat')) {
    throw new ConfigError(`${file}: [worker] amqp_url: remove ?heartbeat= from the URL and set [worker] heartbeat instead`);
  }
  const vhostPath = url.pathname.replace(/^\//, '');
  if (vhostPath.includes('/')) {
    throw new ConfigError(`${file}: [worker] amqp_url: the vhost has a /; write it as %2F (e.g. amqp://host/%2Fprod)`);
  }
}

/** Checks a `postgres://` store URL at load, for the same reason as the broker URL. */
function checkPostgresUrl(file: string, value: string): void {
  // An empty host (`postgres://user@/db?host=/run/postgresql`) is valid for pg (a socket,
  // or PGHOST) but not for the WHATWG parser: parse it with a stand-in host.
  const parsable = value.replace(/^(postgres(?:ql)?:\/\/(?:[^/?#@]*@)?)(?=[/?#]|$)/, '$1localhost');
  parseConfigUrl(file, 'store', parsable, 'postgres://user:password@host:5432/database');
}

/** The destinations as a list. */
export function destinationList(section: Pick<WorkerSection, 'destinations'>): string[] {
  return section.destinations
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean);
}
