/**
 * `npm run sandbox`: try the worker with RabbitMQ but no Slack workspace.
 *
 * Runs from a checkout through tsx (a dev dependency, so after `npm ci`), because the
 * Slack emulator it starts is the test suite's (test/support/), which the built package
 * does not ship. See sandbox.ts for what it starts and README "Trying it without Slack".
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { redact } from '../src/core/redact.js';
import { banner } from './banner.js';
import { DEFAULT_AMQP_URL, sandboxOptions } from './options.js';
import { Sandbox } from './sandbox.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function main(): Promise<void> {
  // Everything this process writes (config, store, logs, exports, the worker's files
  // included) is for this user only, whatever the shell's umask.
  process.umask(0o077);
  const args = await yargs(hideBin(process.argv))
    .scriptName('npm run sandbox --')
    .usage(
      '$0 [options]\n\nStarts an emulated Slack workspace, a local platform with an incident, and the worker against them;\n' +
        'prints a ready-to-paste `worker invoke` line for each function. Ctrl-C stops everything.',
    )
    .option('amqp-url', { type: 'string', default: DEFAULT_AMQP_URL, describe: 'RabbitMQ to use (only the sandbox queue is touched)' })
    .option('destination', {
      type: 'string',
      describe: 'queue to consume (default: a new fn_slack_sandbox_<hex>, deleted at the end when empty)',
    })
    .option('dir', { type: 'string', describe: 'new or empty folder for config, store, logs, platform files (default: a temporary one)' })
    .option('keep', { type: 'boolean', default: false, describe: 'keep the temporary folder after stopping' })
    .option('slack-port', { type: 'number', default: 0, describe: 'port of the Slack emulator (default: any free one)' })
    .option('view-port', { type: 'number', default: 0, describe: 'port of the view page, where you see what landed and click (default: any free one)' })
    .strict()
    .help()
    .parseAsync();

  const opts = sandboxOptions({
    amqpUrl: args.amqpUrl,
    destination: args.destination,
    dir: args.dir,
    keep: args.keep,
    slackPort: args.slackPort,
    viewPort: args.viewPort,
  });
  const sandbox = await Sandbox.start(opts);
  process.stdout.write(banner(sandbox.info, REPO_ROOT, opts.keep || opts.dir !== undefined));

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`sandbox: ${signal} again: exiting now\n`);
      process.exit(130);
    }
    process.stdout.write(`\nsandbox: ${signal}: stopping\n`);
    sandbox.stop().then(
      () => {
        for (const what of sandbox.leftBehind) process.stdout.write(`sandbox: kept ${what}\n`);
        process.stdout.write('sandbox: stopped\n');
        process.exit(0);
      },
      (err: Error) => {
        process.stderr.write(`sandbox: stopping failed: ${redact(err.message)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

main().catch((err: unknown) => {
  process.stderr.write(`sandbox: ${redact(err instanceof Error ? err.message : String(err))}\n`);
  process.exit(1);
});
