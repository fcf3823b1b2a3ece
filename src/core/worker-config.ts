/**
 * The `[worker]` section: its schema, its defaults and the typed options built from it.
 *
 * Kept apart from the Worker class (as Temporal keeps WorkerOptions apart from Worker)
 * so that tests and embedders can build options without a file.
 */
import type { JsonSchema } from './plugin.js';
import { expandHome, validateSection, type LoadedConfig } from './config.js';

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
      default: 'fn_slack',
      description: 'message destinations (queues) to consume, comma-separated',
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
  },
};

/** Validates `[worker]` and expands `~` in its paths. */
export function readWorkerSection(config: LoadedConfig): WorkerSection {
  const section = validateSection<WorkerSection>(config, 'worker', WORKER_SECTION_SCHEMA);
  for (const key of ['platform_dir', 'logdir', 'lock_file', 'ca_file', 'cert_file', 'key_file'] as const) {
    const value = section[key];
    if (typeof value === 'string' && value) section[key] = expandHome(value);
  }
  if (!/^postgres(ql)?:\/\//.test(section.store)) section.store = expandHome(section.store);
  return section;
}

/** The destinations as a list. */
export function destinationList(section: Pick<WorkerSection, 'destinations'>): string[] {
  return section.destinations
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean);
}
