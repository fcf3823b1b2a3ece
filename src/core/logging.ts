/**
 * Logging: winston to the console and to a size-rotated file in `logdir`.
 *
 * Every line passes through {@link redact}, so a token that slips into a message or
 * its metadata is masked before any transport sees it.
 */
import fs from 'node:fs';
import path from 'node:path';
import winston from 'winston';
import { redact, redactValue } from './redact.js';

/** The logging surface core and plugins use; winston's logger satisfies it. */
export interface Logger {
  error(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  info(message: string, meta?: Record<string, unknown>): unknown;
  debug(message: string, meta?: Record<string, unknown>): unknown;
  child(meta: Record<string, unknown>): Logger;
}

export interface LoggingOptions {
  /** Python-style names are accepted too (WARNING, CRITICAL), as in resilient-circuits. */
  level: string;
  logdir?: string | undefined;
  /** Rotate when the file reaches this size. */
  maxBytes?: number;
  /** Rotated files kept. */
  backupCount?: number;
  /** Console output; off for commands whose stdout is their product. */
  console?: boolean;
  fileName?: string;
}

const LEVELS: Record<string, string> = {
  CRITICAL: 'error',
  ERROR: 'error',
  WARNING: 'warn',
  WARN: 'warn',
  INFO: 'info',
  DEBUG: 'debug',
};

/** Maps a config log level to winston's, or undefined when unknown. */
export function winstonLevel(level: string): string | undefined {
  return LEVELS[level.toUpperCase()];
}

const scrub = winston.format((info) => {
  const out = info as winston.Logform.TransformableInfo & Record<string | symbol, unknown>;
  if (typeof out.message === 'string') out.message = redact(out.message);
  for (const key of Object.keys(out)) {
    if (key === 'level' || key === 'message') continue;
    out[key] = redactValue(out[key]);
  }
  return out;
});

const lineFormat = winston.format.printf((info) => {
  const { level, message, timestamp, ...meta } = info as Record<string, unknown>;
  const extras = Object.keys(meta).length ? ` ${JSON.stringify(meta)}` : '';
  return `${String(timestamp)} ${String(level).toUpperCase()} ${String(message)}${extras}`;
});

export function createLogger(opts: LoggingOptions): Logger {
  const level = winstonLevel(opts.level) ?? 'info';
  const transports: winston.transport[] = [];
  if (opts.console !== false) {
    transports.push(new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] }));
  }
  if (opts.logdir) {
    // Logs name incidents, channels and people: private to the worker's user, whatever
    // the umask (the CLI also narrows the umask, which covers the files rotation creates).
    fs.mkdirSync(opts.logdir, { recursive: true, mode: 0o700 });
    const filename = path.join(opts.logdir, opts.fileName ?? 'app.log');
    fs.closeSync(fs.openSync(filename, 'a', 0o600));
    fs.chmodSync(filename, 0o600);
    transports.push(
      new winston.transports.File({
        filename,
        maxsize: opts.maxBytes ?? 10_000_000,
        maxFiles: (opts.backupCount ?? 10) + 1,
        tailable: true,
      }),
    );
  }
  if (transports.length === 0) transports.push(new winston.transports.Console({ silent: true }));
  return skipDisabledLevels(
    winston.createLogger({
      level,
      format: winston.format.combine(scrub(), winston.format.timestamp(), lineFormat),
      transports,
    }),
  );
}

/**
 * winston runs the logger's format (here: redaction, timestamp, line) on every line and
 * only then lets each transport drop the lines below its level, so a DEBUG line at INFO
 * costs nearly what a written one does (a worker sends a DEBUG line per progress
 * message). The level methods are wrapped to return at once when their level is off;
 * child loggers inherit the wrappers (winston makes a child with Object.create).
 */
function skipDisabledLevels(logger: winston.Logger): winston.Logger {
  for (const name of ['debug', 'info', 'warn'] as const) {
    const method = logger[name] as (...args: unknown[]) => winston.Logger;
    (logger as unknown as Record<string, unknown>)[name] = function (this: winston.Logger, ...args: unknown[]) {
      if (!this.isLevelEnabled(name)) return this;
      return method.apply(this, args);
    };
  }
  return logger;
}

/** A logger that drops everything (tests, commands that print their own output). */
export function silentLogger(): Logger {
  return winston.createLogger({ transports: [new winston.transports.Console({ silent: true })] });
}
