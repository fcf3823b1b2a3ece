/**
 * What can go wrong with the PostgreSQL store, in one place: which driver failures mean
 * "retry later" (connection lost, timed out), "fix the config" (wrong URL, user,
 * database at open) and "the store is unusable until someone acts" (rights revoked, a
 * read-only server, corrupt data); and the URL redaction that keeps the password out of
 * every message.
 */
import { ConfigError, errorCode, RetryableError, StoreUnusableError } from '../runtime/errors.js';

/** Returns the URL with any password (and password-like query parameters) replaced by `***`. */
export function redactPostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) {
      if (/pass|secret|token|sslkey/i.test(key)) u.searchParams.set(key, '***');
    }
    return u.toString();
  } catch {
    return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@').replace(/(password=)[^&\s]*/gi, '$1***');
  }
}

export interface Endpoint {
  hostPort: string;
  database: string;
  password: string;
}

export function describeEndpoint(url: string): Endpoint {
  try {
    const u = new URL(url);
    const host = u.searchParams.get('host') || u.hostname || process.env.PGHOST || 'localhost';
    const port = u.searchParams.get('port') || u.port || process.env.PGPORT || '5432';
    const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || u.username || 'postgres';
    const password = u.searchParams.get('password') || decodeURIComponent(u.password);
    return { hostPort: `${host}:${port}`, database, password };
  } catch {
    return { hostPort: 'unknown host', database: 'unknown', password: '' };
  }
}

const CONNECTION_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EPIPE',
]);
/** SQLSTATEs meaning "the server cannot serve us now" (retry later). */
const CONNECTION_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '53400']);
/** SQLSTATEs meaning "the configured URL is wrong" (retrying will not help). */
const CONFIG_SQLSTATES = new Set(['28000', '28P01', '3D000', '42501']);
/**
 * SQLSTATEs of a store that will not take our work until someone acts: the role lost its
 * rights, the server or transaction is read-only (a standby), data or an index is corrupt.
 */
const UNUSABLE_SQLSTATES = new Set([...CONFIG_SQLSTATES, '25006', 'XX001', 'XX002']);
/** query_canceled: `statement_timeout` (or a cancel) ended the statement; the connection is fine. */
export const STATEMENT_TIMEOUT = '57014';


export function isConnectionError(err: unknown): boolean {
  const code = errorCode(err);
  if (code !== undefined && (CONNECTION_NODE_CODES.has(code) || CONNECTION_SQLSTATES.has(code) || code.startsWith('08'))) {
    return true;
  }
  const message = err instanceof Error ? err.message : String(err);
  return /Connection terminated|timeout exceeded when trying to connect|connection timeout|Client has encountered a connection error|Query read timeout/i.test(
    message,
  );
}

/** Where a PostgreSQL failure happened, for {@link classifyPgError}. */
export interface PgFailureContext {
  /** `host:port (database d, schema s)`. */
  where: string;
  details: Record<string, unknown>;
  /** True while opening: a refused login is then a config error (exit 2 before any work). */
  opening: boolean;
}

/**
 * The one classification of PostgreSQL failures (see the file comment). `raw` is the
 * driver's message with the password removed. Returns undefined for anything else (a
 * constraint, a bug): the caller passes it on unchanged.
 */
export function classifyPgError(err: unknown, raw: string, ctx: PgFailureContext): Error | undefined {
  const code = errorCode(err);
  if (isConnectionError(err)) {
    return new RetryableError(`Cannot reach the PostgreSQL store at ${ctx.where}: ${raw}`, 'store_unavailable', ctx.details);
  }
  if (code === STATEMENT_TIMEOUT) {
    return new RetryableError(`The PostgreSQL store at ${ctx.where} did not finish in time: ${raw}`, 'store_timeout', ctx.details);
  }
  if (code !== undefined && CONFIG_SQLSTATES.has(code) && ctx.opening) {
    return new ConfigError(`The PostgreSQL store at ${ctx.where} refused the connection: ${raw}`);
  }
  if (code !== undefined && UNUSABLE_SQLSTATES.has(code)) {
    return new StoreUnusableError(
      `The PostgreSQL store at ${ctx.where} refuses the worker's writes (${raw}, SQLSTATE ${code}): give the role in ` +
        '[worker] store its rights on the schema back, point the URL at the primary (not a read-only standby), or ' +
        'repair the database; then start the worker again',
      ctx.details,
    );
  }
  return undefined;
}
