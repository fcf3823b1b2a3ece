#!/usr/bin/env node
/**
 * The `worker` command. Thin on purpose: each subcommand parses its arguments and calls
 * into src/core/commands (or src/core/runtime for `run`); plugins add their own commands
 * (src/core/commands/plugin-commands.ts). Exit codes come from the one table,
 * src/core/exit-codes.ts, documented in the README.
 */
import './heap-flags.js';
import fs from 'node:fs';
import yargs, { type Argv, type Options } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { builtinPlugins } from './functions/index.js';
import { PLATFORM_CONFIG_SECTIONS } from './platforms/index.js';
import { ConfigError, LockError, PluginLoadError, StoreUnusableError, WorkerError } from './core/runtime/errors.js';
import { silentLogger } from './core/logging.js';
import { invokeFunction, parseInputPairs } from './core/commands/invoke.js';
import { redact } from './core/redact.js';
import { loadEnvironment, Worker } from './core/runtime/worker.js';
import { destinationList } from './core/worker-config.js';
import { runSelftest } from './core/commands/selftest.js';
import { runCustomize } from './core/commands/customize.js';
import { listFunctions } from './core/commands/functions-list.js';
import { linePrompt } from './core/commands/prompt.js';
import { configSectionsFor, configTodo, configuredPlatform, createConfig, updateConfig } from './core/commands/config-writer.js';
import { resolveConfigPath } from './core/config.js';
import { EXIT } from './core/exit-codes.js';
import { commandContext, commandPlugins, configFileArgument, pluginCommands } from './core/commands/plugin-commands.js';
import type { CommandOptionsBuilder, Plugin } from './core/runtime/plugin.js';

// The one table of exit codes shared by every command (README: Troubleshooting). It
// lives in core because selftest and customize decide theirs there.
export { EXIT };

function fail(err: unknown): never {
  const message = redact(err instanceof Error ? err.message : String(err));
  process.stderr.write(`worker: ${message}\n`);
  // An unusable store (read-only, not permitted, deleted) needs an operator like a bad config does.
  if (err instanceof ConfigError || err instanceof PluginLoadError || err instanceof StoreUnusableError) process.exit(EXIT.config);
  if (err instanceof LockError) process.exit(EXIT.lock);
  if (err instanceof WorkerError && err.code === 'timeout') process.exit(EXIT.timeout);
  if (err instanceof WorkerError && err.code === 'broker_unavailable') process.exit(EXIT.broker);
  process.exit(EXIT.failed);
}

async function runCommand(configFile: string | undefined): Promise<void> {
  const worker = await Worker.create({ configFile, builtins: builtinPlugins });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      worker.log.warn(`${signal} again: exiting now; unfinished invocations will be redelivered`);
      process.exit(130);
    }
    worker.stop(signal).then(
      () => process.exit(EXIT.ok),
      () => process.exit(EXIT.ok),
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await worker.start();
  } catch (err) {
    const message = (err as Error).message;
    worker.log.error(`Could not start: ${message}`);
    if (err instanceof WorkerError) fail(err);
    fail(new WorkerError(`Could not start: ${message}`, { code: 'broker_unavailable' }));
  }
  await worker.waitUntilStopped();
  // Stopped by itself: the store became unusable (the reason was logged as an ERROR).
  if (worker.fatalError) fail(worker.fatalError);
}

/** The inputs a function's schema declares as plain strings. */
function textInputs(schema: Record<string, unknown> | undefined): Set<string> {
  const props = (schema?.properties ?? {}) as Record<string, { type?: unknown }>;
  return new Set(Object.keys(props).filter((k) => props[k]?.type === 'string'));
}

/**
 * `worker invoke … | head -n 1`: once the reader has gone, further writes fail with
 * EPIPE, which Node raises as an unhandled 'error' event (a stack trace). The reader
 * asked for no more output, so stop quietly; the invocation itself is already published.
 */
function exitQuietlyOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.ok);
    throw err;
  });
}

async function invokeCommand(args: {
  configFile?: string | undefined;
  function: string;
  input: string[];
  inputsJson?: string | undefined;
  timeout: number;
  destination?: string | undefined;
  messageId?: string | undefined;
  json: boolean;
}): Promise<void> {
  exitQuietlyOnClosedStdout();
  const env = await loadEnvironment(args.configFile, builtinPlugins, silentLogger(), false, { validatePluginConfigs: false });
  let inputs: Record<string, unknown> = {};
  if (args.inputsJson) {
    try {
      inputs = JSON.parse(fs.readFileSync(args.inputsJson, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new WorkerError(`--inputs-json ${args.inputsJson}: ${(err as Error).message}`, { code: 'invalid_arguments' });
    }
  }
  const fn = env.registry.get(args.function);
  Object.assign(inputs, parseInputPairs(args.input, textInputs(fn?.definition.inputSchema)));
  // The queue the configured worker consumes: [worker] destinations, preferring the
  // function's own package destination when it is one of them. The package default alone
  // would publish to a queue this config's worker never reads.
  const configured = destinationList(env.section);
  const own = fn?.plugin.destination;
  const destination = args.destination ?? (own && configured.includes(own) ? own : configured[0]) ?? own;
  if (!destination) {
    throw new WorkerError(`${args.function} is not a loaded function and [worker] destinations is empty: give --destination QUEUE`, {
      code: 'invalid_arguments',
    });
  }
  const reply = await invokeFunction({
    url: env.section.amqp_url,
    tls: { caFile: env.section.ca_file, certFile: env.section.cert_file, keyFile: env.section.key_file },
    destination,
    functionName: args.function,
    inputs,
    timeoutMs: args.timeout * 1000,
    log: silentLogger(),
    onWarning: (message) => process.stderr.write(`WARN ${message}\n`),
    ...(args.messageId ? { messageId: args.messageId } : {}),
    onProgress: (p) => process.stdout.write(args.json ? `${JSON.stringify(p)}\n` : `status: ${p.message}\n`),
  });
  if (args.json) {
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  } else if (reply.message_type === 0) {
    process.stdout.write(`result: ${JSON.stringify(reply.results, null, 2)}\n`);
  } else {
    process.stdout.write(`error (${reply.error.code}${reply.error.retryable ? ', retryable' : ''}): ${reply.message}\n`);
  }
  process.exit(reply.message_type === 0 ? EXIT.ok : EXIT.failed);
}

async function functionsCommand(configFile: string | undefined): Promise<void> {
  const env = await loadEnvironment(configFile, builtinPlugins, silentLogger(), false, { validatePluginConfigs: false });
  process.stdout.write(await listFunctions(env.registry, env.section.store));
}

async function customizeCommand(args: { configFile?: string | undefined; list: string[]; yes: boolean; dryRun: boolean }): Promise<void> {
  const prompt = args.yes || args.dryRun ? undefined : linePrompt(process.stdin, (t) => process.stdout.write(t));
  let exitCode: number;
  try {
    const report = await runCustomize({
      configFile: args.configFile,
      builtins: builtinPlugins,
      packages: args.list,
      yes: args.yes,
      dryRun: args.dryRun,
      ask: prompt ? prompt.ask : async () => false,
      print: (t) => process.stdout.write(t),
    });
    exitCode = report.exitCode;
  } finally {
    prompt?.close();
  }
  process.exit(exitCode);
}

/** The commands cli.ts defines itself; a plugin command may not take one of these names. */
const BUILTIN_COMMANDS = ['run', 'invoke', 'selftest', 'customize', 'config', 'functions', 'help'];

/** A plugin's option declarations, applied to the yargs command being built. */
function optionsBuilder(y: Argv): CommandOptionsBuilder {
  const builder: CommandOptionsBuilder = {
    option(name, spec) {
      // Only the keys the plugin gave: yargs would print `[default: undefined]` for the others.
      y.option(name, Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined)) as Options);
      return builder;
    },
    example(command, description) {
      y.example(command, description);
      return builder;
    },
  };
  return builder;
}

/** Registers each plugin's commands; the handler's exit code comes from the one table. */
function withPluginCommands(y: Argv, plugins: Plugin<any, any>[]): Argv {
  for (const { plugin, command } of pluginCommands(plugins, BUILTIN_COMMANDS)) {
    y.command(
      command.name,
      command.description,
      (b) => {
        command.options?.(optionsBuilder(b));
        return b;
      },
      async (args) => {
        const ctx = commandContext(plugin, args, args.configFile as string | undefined, (t) => process.stdout.write(t));
        process.exitCode = (await command.handler(ctx)) ?? EXIT.ok;
      },
    );
  }
  return y;
}

export async function main(argv: string[]): Promise<void> {
  // Every file the worker creates (store, logs, lock, exports) is for its user only,
  // whatever umask the shell or service manager handed down; this also covers files
  // that libraries create (SQLite's -wal/-shm, the log files rotation opens).
  process.umask(0o077);
  // Commands come from the plugins too, so those of [worker] plugins are loaded first.
  const { plugins, problem } = await commandPlugins(configFileArgument(argv), builtinPlugins);
  const packages = plugins.map((p) => p.packageName);
  const exampleFunction = plugins.flatMap((p) => p.functions).find((fn) => !fn.internal)?.name ?? 'my_function';
  const cli = yargs(argv)
    .scriptName('worker')
    .usage(`$0 <command> [options]\n\nRuns SOAR function invocations from RabbitMQ with the function packages ${packages.join(', ')}.`)
    .option('config-file', {
      type: 'string',
      describe: 'app.config to use (default: $APP_CONFIG_FILE, else ~/.worker/app.config)',
      global: true,
    })
    .command(
      'run',
      'Consume invocations until stopped (foreground; systemd runs this)',
      (y) => y.example('$0 run --config-file /etc/worker/app.config', 'run with an explicit config'),
      (args) => runCommand(args.configFile as string | undefined),
    )
    .command(
      'invoke <function>',
      'Act as a caller: publish one invocation, print progress and the result',
      (y) =>
        y
          .positional('function', { type: 'string', describe: `function name, e.g. ${exampleFunction} (see \`worker functions\`)`, demandOption: true })
          .option('input', {
            alias: 'i',
            type: 'string',
            array: true,
            default: [] as string[],
            describe: 'an input as name=value (JSON values are parsed: incident_id=2103; an input the function declares as a string takes the value as written, so a JSON container stays text); repeat it',
          })
          .option('inputs-json', { type: 'string', describe: 'a JSON file with the inputs object (--input wins)' })
          .option('timeout', { type: 'number', default: 60, describe: 'seconds to wait for the final reply' })
          .option('destination', { type: 'string', describe: "queue to publish to (default: from [worker] destinations, the function's package queue if listed)" })
          .option('message-id', { type: 'string', describe: 'invocation id (default: a new UUID); reuse it to test idempotency' })
          .option('json', { type: 'boolean', default: false, describe: 'print each reply as raw JSON' })
          .example(`$0 invoke ${exampleFunction} -i incident_id=2103`, 'one -i per input'),
      (args) =>
        invokeCommand({
          configFile: args.configFile as string | undefined,
          function: args.function as string,
          input: (args.input as string[]) ?? [],
          inputsJson: args.inputsJson as string | undefined,
          timeout: args.timeout as number,
          destination: args.destination as string | undefined,
          messageId: args.messageId as string | undefined,
          json: args.json as boolean,
        }),
    )
    .command(
      'selftest',
      "Check the config, the store, the broker and each package (the package's own check); exit non-zero on failure",
      (y) =>
        y
          .option('list', { alias: 'l', type: 'string', array: true, default: [] as string[], describe: `only these packages, e.g. -l ${packages[0]}` })
          .epilogue('Exit codes: 0 all passed, 2 config, 6 store, 4 broker, 3 SOAR (platform = soar), 7 a package failed.'),
      async (args) => {
        const report = await runSelftest(args.configFile as string | undefined, builtinPlugins, (args.list as string[]) ?? [], (t) =>
          process.stdout.write(t),
        );
        process.exit(report.exitCode);
      },
    )
    .command(
      'customize',
      "Import the packages' definitions: message destinations (broker queues), data tables (store), functions (store); with platform = soar also into SOAR",
      (y) =>
        y
          .option('yes', { alias: 'y', type: 'boolean', default: false, describe: 'import without asking' })
          .option('list', { alias: 'l', type: 'string', array: true, default: [] as string[], describe: `only these packages, e.g. -l ${packages[0]}` })
          .option('dry-run', { type: 'boolean', default: false, describe: 'show what would be imported; change nothing' })
          .example('$0 customize -y', 'import everything without asking')
          .example("printf 'y\\nn\\n' | $0 customize", 'answer the questions from a pipe (end of input answers no)')
          .epilogue('Exit codes: 0 done (or nothing to do), 2 config or a packaged file invalid, 3 SOAR (platform = soar), 6 store, 4 broker, 1 other.'),
      (args) =>
        customizeCommand({
          configFile: args.configFile as string | undefined,
          list: (args.list as string[]) ?? [],
          yes: Boolean(args.yes),
          dryRun: Boolean(args.dryRun),
        }),
    )
    .command(
      'config [file]',
      'Write a new commented app.config (-c), or add the sections and keys a config lacks (-u)',
      (y) =>
        y
          .option('create', { alias: 'c', type: 'boolean', describe: 'write a complete app.config with defaults and comments' })
          .option('update', { alias: 'u', type: 'boolean', describe: 'add missing sections and keys; keep every existing value and comment' })
          .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'with -c: overwrite an existing file' })
          .option('platform', {
            type: 'string',
            choices: ['local', 'soar'],
            describe: 'with -c: the [worker] platform to write; soar writes an active [soar] section (default: local, [soar] commented out)',
          })
          .positional('file', { type: 'string', describe: 'the config file' })
          .usage('$0 config -c|-u [FILE]   (FILE defaults to --config-file, $APP_CONFIG_FILE, ~/.worker/app.config)')
          .conflicts('create', 'update')
          .check((a) => {
            if (!a.create && !a.update) throw new Error('Give -c (create) or -u (update)');
            if (a.update && a.platform !== undefined) {
              throw new Error('--platform goes with -c only; -u follows the [worker] platform already in the file');
            }
            return true;
          }),
      (args) => {
        const fileArg = (args.file as string | undefined) ?? (args.configFile as string | undefined);
        const file = resolveConfigPath(fileArg);
        if (args.create) {
          const sections = configSectionsFor(builtinPlugins, { platform: args.platform as string | undefined, platformSections: PLATFORM_CONFIG_SECTIONS });
          const written = createConfig(file, sections, { overwrite: Boolean(args.force) });
          const todo = configTodo(sections);
          process.stdout.write(`Wrote ${written}; ${todo ? `${todo}, then ` : ''}run \`worker selftest\`\n`);
        } else {
          const sections = configSectionsFor(builtinPlugins, { platform: configuredPlatform(file), platformSections: PLATFORM_CONFIG_SECTIONS });
          const { added } = updateConfig(file, sections);
          if (added.length === 0) process.stdout.write(`${file} already has every section and key\n`);
          for (const a of added) {
            const how = a.commentedOut ? ' (commented out: [worker] platform is not soar)' : '';
            process.stdout.write(a.newSection ? `Added section [${a.section}]${how}\n` : `Added to [${a.section}]${how}: ${a.keys.join(', ')}\n`);
          }
        }
      },
    )
    .command(
      'functions',
      'List the functions with their inputs: as recorded by `worker customize`, else as loaded',
      (y) => y,
      (args) => functionsCommand(args.configFile as string | undefined),
    );
  await withPluginCommands(cli, plugins)
    .demandCommand(1, 'Name a command; see --help')
    .strict()
    .recommendCommands()
    .fail((msg, err) => {
      if (err) fail(err);
      // An unknown command may be one of a plugin that did not load: say why it is missing.
      const why = problem && /^Unknown (argument|command)/.test(msg) ? `\nThe commands of [worker] plugins are missing: ${redact(problem)}` : '';
      process.stderr.write(`worker: ${msg}${why}\nRun \`worker --help\` for usage.\n`);
      process.exit(EXIT.config);
    })
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .parseAsync();
}

main(hideBin(process.argv)).catch(fail);
