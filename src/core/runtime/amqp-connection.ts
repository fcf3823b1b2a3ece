/**
 * Opening a broker connection: socket and TLS options, the heartbeat, errors that say
 * in words why the broker could not be reached, and a record of when the broker was
 * last heard from (for `/readyz`).
 */
import fs from 'node:fs';
import os from 'node:os';
import amqp from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { BrokerUnavailableError, ConfigError, errorCode } from './errors.js';
import type { Logger } from '../logging.js';
import { redact } from '../redact.js';

export interface TransportTls {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

/**
 * `[worker] heartbeat` default, seconds. The server's own default (60 s) let a
 * blackholed connection go unnoticed for about three minutes; amqplib closes the
 * connection after two silent heartbeats, so 10 s means about 20–30 s.
 */
export const DEFAULT_HEARTBEAT_SECONDS = 10;

/** Reads a TLS file named by a `[worker]` key; a failure names the key and the file. */
function readTlsFile(key: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(`[worker] ${key}: cannot read ${file} (${code})`, err);
  }
}

/**
 * The time a connection attempt (TCP, TLS and the AMQP handshake) may take. Tied to the
 * heartbeat: a broker that does not finish the handshake within two heartbeats would
 * be declared dead by them anyway, and a reconnect through a path that still drops
 * packets must fail quickly to try again.
 */
export function connectTimeoutMs(heartbeatSeconds: number): number {
  return Math.min(10_000, Math.max(2_000, heartbeatSeconds * 2_000));
}

/**
 * Socket options for amqplib: Nagle off (request/reply is latency-bound) and the TLS
 * files (used by amqplib for `amqps://` URLs): the CA that signed the broker's
 * certificate, and the client certificate and key when the broker asks for one.
 */
export function socketOptions(tls?: TransportTls, timeoutMs = 10_000): Record<string, unknown> {
  const opts: Record<string, unknown> = { noDelay: true, timeout: timeoutMs };
  if (tls?.caFile) opts.ca = [readTlsFile('ca_file', tls.caFile)];
  if (tls?.certFile) opts.cert = readTlsFile('cert_file', tls.certFile);
  if (tls?.keyFile) opts.key = readTlsFile('key_file', tls.keyFile);
  return opts;
}

/** The URL amqplib gets: the configured one with the heartbeat we ask the broker for. */
export function urlWithHeartbeat(url: string, heartbeatSeconds: number): string {
  const u = new URL(url);
  u.searchParams.set('heartbeat', String(heartbeatSeconds));
  return u.toString();
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|EPROTO$|HOSTNAME_MISMATCH)/;

/** Why a connection attempt failed, in words a person can act on. */
export function describeConnectError(err: unknown, url: string): string {
  const message = redact(err instanceof Error ? err.message : String(err));
  const code = errorCode(err) ?? '';
  let host = 'the broker';
  try {
    const u = new URL(url);
    host = `${u.hostname}:${u.port || (u.protocol === 'amqps:' ? '5671' : '5672')}`;
  } catch {
    // validated at config load; keep the generic name otherwise
  }
  if (code === 'ECONNREFUSED') return `connection refused by ${host} (is RabbitMQ running and listening there?)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') return `host name not found (DNS) for ${host}`;
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `no route to ${host} (network unreachable)`;
  if (code === 'ETIMEDOUT' || /ETIMEDOUT|timed? ?out/i.test(message)) {
    return `timed out connecting to ${host} (a firewall dropping packets, or the broker too busy to answer)`;
  }
  if (TLS_CODES.test(code) || /certificate|self.signed|SSL|TLS/i.test(message)) {
    return `TLS failed with ${host}: ${message} (check ca_file, cert_file, key_file and that the port speaks TLS)`;
  }
  if (/ACCESS.REFUSED|Login was refused|403/.test(message)) {
    return `authentication refused by ${host}: check the user name and password in the URL (${message})`;
  }
  if (/NOT.ALLOWED|530|vhost/i.test(message)) return `${host} refused the vhost: ${message} (does it exist, may this user use it?)`;
  if (code === 'ECONNRESET' || /Socket closed abruptly|closed.*handshake/i.test(message)) {
    return `${host} closed the connection during the handshake (not an AMQP port, or amqp:// to a TLS port?): ${message}`;
  }
  return message;
}

/** The time the broker last sent anything on each open connection. */
const lastHeard = new WeakMap<ChannelModel, number>();

/**
 * Milliseconds since the broker last sent anything (a frame or a heartbeat) on this
 * connection; 0 for a connection not opened by {@link openConnection}.
 */
export function silentForMs(connection: ChannelModel, now = Date.now()): number {
  const at = lastHeard.get(connection);
  return at === undefined ? 0 : now - at;
}

/**
 * The name this process gives its broker connections (AMQP client property
 * `connection_name`): the broker shows it in `rabbitmqctl list_connections
 * client_properties` and the management UI, so an operator (or a test) can tell which
 * worker, on which host, a connection belongs to, and close that one alone.
 * `purpose` tells the other connections (replies, other commands) apart from the one
 * `worker run` consumes on.
 */
export function connectionName(purpose?: string): string {
  return `worker@${os.hostname()} pid ${process.pid}${purpose ? ` (${purpose})` : ''}`;
}

/**
 * Opens a connection with the worker's socket options, the heartbeat, an error handler,
 * and activity tracking. A failure is a {@link BrokerUnavailableError} naming
 * `[worker] amqp_url` (password hidden) and the reason; config problems (a TLS file)
 * stay {@link ConfigError}s.
 */
export async function openConnection(
  url: string,
  tls: TransportTls | undefined,
  log: Logger,
  heartbeatSeconds = DEFAULT_HEARTBEAT_SECONDS,
  purpose?: string,
): Promise<ChannelModel> {
  const sockopts = { ...socketOptions(tls, connectTimeoutMs(heartbeatSeconds)), clientProperties: { connection_name: connectionName(purpose) } };
  let connection: ChannelModel;
  try {
    connection = await amqp.connect(urlWithHeartbeat(url, heartbeatSeconds), sockopts);
  } catch (err) {
    throw new BrokerUnavailableError(`[worker] amqp_url ${redact(url)}: ${describeConnectError(err, url)}`, err);
  }
  connection.on('error', (err: Error) => log.warn(`Broker connection error: ${redact(err.message)}`));
  // amqplib reads frames on 'readable'; one more listener only observes that bytes
  // arrived (it reads nothing), which is what "the broker is not silent" means.
  const stream = (connection as unknown as { connection?: { stream?: NodeJS.EventEmitter } }).connection?.stream;
  if (stream) {
    lastHeard.set(connection, Date.now());
    stream.on('readable', () => lastHeard.set(connection, Date.now()));
  }
  return connection;
}
