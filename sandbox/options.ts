/**
 * Options of the sandbox, kept apart from the code that runs it (as the worker keeps
 * its section apart from the Worker class), so tests and the command line build them
 * the same way.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../src/core/logging.js';
import { redact } from '../src/core/redact.js';

export interface SandboxOptions {
  /** RabbitMQ to use. The sandbox only ever touches its own queue there. */
  amqpUrl: string;
  /**
   * The queue the sandbox's worker consumes and the printed commands publish to. Default:
   * a new `fn_slack_sandbox_<hex>` per run, so a sandbox never takes invocations meant
   * for a real worker (on `fn_slack`) or for another sandbox; that generated queue is
   * deleted at the end when it is empty.
   */
  destination: string;
  /** True when `destination` was generated here, so the sandbox owns the queue and may delete it. */
  ownsDestination: boolean;
  /**
   * Folder for the config, store, logs and platform files. Default: a new temporary
   * folder, removed at the end unless `keep`. A given folder must be new or empty: the
   * emulated workspace starts empty each run, and a previous run's store would point
   * incidents at channels that no longer exist.
   */
  dir: string | undefined;
  /** Keep the folder (config, store, logs, exports) after stopping. */
  keep: boolean;
  /** Port of the Slack emulator; 0: any free one. */
  slackPort: number;
  /** Port of the view of what landed (where people click); 0: any free one. */
  viewPort: number;
  /** The command printed lines use to run the CLI (run from the repo root). */
  cli: string;
  /** Replaces the worker's configured logger (console and app.log); tests pass a silent one. */
  log?: Logger;
}

export const DEFAULT_AMQP_URL = 'amqp://guest:guest@localhost:5672';

/** A fresh queue name per run. */
export function generatedDestination(): string {
  return `fn_slack_sandbox_${randomBytes(4).toString('hex')}`;
}

/**
 * Builds the options, checking the given ones here with messages that name the flag:
 * left to the worker, a bad value would be reported against the generated app.config,
 * a file the user never wrote.
 */
export function sandboxOptions(given: Partial<Omit<SandboxOptions, 'ownsDestination'>> = {}): SandboxOptions {
  const amqpUrl = given.amqpUrl ?? DEFAULT_AMQP_URL;
  if (!/^amqps?:\/\/\S+$/.test(amqpUrl)) {
    throw new Error(`--amqp-url must be an amqp:// or amqps:// URL, e.g. ${DEFAULT_AMQP_URL} (got "${redact(amqpUrl)}")`);
  }
  const destination = given.destination ?? generatedDestination();
  if (!/^[A-Za-z0-9_.:-]+$/.test(destination)) {
    throw new Error(`--destination must be a queue name of letters, digits and _ . : - (got "${destination}")`);
  }
  for (const [flag, port] of [
    ['--slack-port', given.slackPort],
    ['--view-port', given.viewPort],
  ] as const) {
    if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
      throw new Error(`${flag} must be a port number from 1 to 65535, or 0 for any free port (got ${String(port)})`);
    }
  }
  return {
    amqpUrl,
    destination,
    ownsDestination: given.destination === undefined,
    dir: given.dir,
    keep: given.keep ?? false,
    slackPort: given.slackPort ?? 0,
    viewPort: given.viewPort ?? 0,
    cli: given.cli ?? 'npx tsx src/cli.ts',
    ...(given.log ? { log: given.log } : {}),
  };
}
