/**
 * The plugin interface: how a function package (like fn_slack) plugs into the worker.
 *
 * Core knows nothing about any particular package. A plugin declares its package name,
 * its config section and that section's JSON Schema, its functions with their input
 * schemas, a selftest and optionally its own CLI commands, store tables, and long-running
 * listeners with the queues they feed. `setup` builds the plugin's state (clients, caches) from its
 * validated config once at start; every handler and the selftest receive that state.
 */
import type { Logger } from '../logging.js';
import type { PluginTable, Store } from '../store/store.js';

export type { PluginTable, PluginTableMigration, SqlExecutor } from '../store/store.js';
import type { Platform } from '../../platforms/platform.js';

/** A JSON Schema object (draft 2020-12 subset that ajv compiles). */
export type JsonSchema = Record<string, unknown>;

/** The TypeScript type of one property of a config section's schema (see {@link SectionOf}). */
type PropertyType<P> = P extends { enum: readonly (infer E)[] }
  ? E
  : P extends { type: 'string' }
    ? string
    : P extends { type: 'number' | 'integer' }
      ? number
      : P extends { type: 'boolean' }
        ? boolean
        : unknown;

/**
 * The validated section a flat config schema (`{properties: {...}}`, declared `as const`)
 * describes. Every key is present: the config loader applies each property's `default`,
 * and a key without one is `required`. So a default is written once, in the schema.
 */
export type SectionOf<S extends { properties: Record<string, unknown> }> = {
  -readonly [K in keyof S['properties']]: PropertyType<S['properties'][K]>;
};

/** Where a caller's invocation came from: the SOAR workflow and the person behind it. */
export interface InvocationOrigin {
  workflow?: { programmatic_name?: string } & Record<string, unknown>;
  workflow_instance?: { workflow_instance_id?: number } & Record<string, unknown>;
  principal?: { name?: string } & Record<string, unknown>;
}

/**
 * The steps an invocation completed, kept in the invocation ledger across deliveries.
 *
 * A handler with several effects (save a file, then change something upstream) records
 * each one as it completes; a redelivery after a crash or a retryable failure reads them
 * and resumes after the last, so no effect happens twice and the final answer is the
 * same as if the first delivery had finished. Values are JSON.
 */
export interface InvocationSteps {
  /** The value recorded for `name` by this or an earlier delivery; undefined if none. */
  get<T = unknown>(name: string): T | undefined;
  /** Records `name` as done with `value`; resolves once it is stored durably. */
  record(name: string, value: unknown): Promise<void>;
}

/** What a handler gets for one invocation. */
export interface FunctionContext {
  /** The invocation id (AMQP message_id): the idempotency key. */
  readonly invocationId: string;
  readonly functionName: string;
  /** Inputs after schema validation (defaults applied). */
  readonly inputs: Record<string, unknown>;
  readonly origin: InvocationOrigin;
  /** 1 on the first delivery; higher when the broker redelivered the invocation. */
  readonly attempt: number;
  /** Sends a progress message to the caller (`complete: false`). Resolves once sent. */
  status(message: string): Promise<void>;
  readonly log: Logger;
  readonly store: Store;
  readonly platform: Platform;
  /** What earlier deliveries of this invocation completed; see {@link InvocationSteps}. */
  readonly steps: InvocationSteps;
  /** Aborted when the worker must stop waiting (shutdown timeout passed). */
  readonly signal: AbortSignal;
  /**
   * What a handler that returns {@link DeferredResult} keeps to send the final reply
   * later (see core/runtime/deferred.ts). Undefined in contexts that cannot defer.
   */
  readonly deferral?: DeferredTicket;
}

/**
 * Steps backed by the ledger: `initial` is what `ledger.begin` returned; `record` writes
 * through before it resolves, then updates the local copy (so `get` needs no read).
 */
export function ledgerSteps(
  ledger: { recordStep(invocationId: string, name: string, value: unknown): Promise<void> },
  invocationId: string,
  initial: Record<string, unknown>,
): InvocationSteps {
  // A copy through JSON: what `get` returns is what a redelivery would read back.
  const known: Record<string, unknown> = JSON.parse(JSON.stringify(initial)) as Record<string, unknown>;
  return {
    get: <T>(name: string) => (Object.prototype.hasOwnProperty.call(known, name) ? (known[name] as T) : undefined),
    record: async (name, value) => {
      const json = JSON.stringify(value === undefined ? null : value);
      // The ledger holds this very value already (an earlier delivery recorded it, or this
      // one did): writing it again would change nothing.
      if (Object.prototype.hasOwnProperty.call(known, name) && JSON.stringify(known[name]) === json) return;
      await ledger.recordStep(invocationId, name, value);
      known[name] = JSON.parse(json) as unknown;
    },
  };
}

/**
 * What a handler returns to say: acked now, the final reply comes later (the value is
 * `DEFERRED` from core/runtime/deferred.ts, which also holds the implementation).
 */
export interface DeferredResult {
  readonly deferred: true;
}

/** Everything needed to send a deferred invocation's final reply later, from any worker. Plain JSON. */
export interface DeferredTicket {
  invocationId: string;
  functionName: string;
  /** The caller's reply queue; null when it asked for no reply. */
  replyTo: string | null;
  correlationId: string | null;
  packageName: string;
  packageVersion: string;
  /** The validated inputs (the ResultPayload echoes them). */
  inputs: Record<string, unknown>;
  /** When the invocation started (epoch ms), for the result's execution time. */
  startedAt: number;
}

/** A final reply of the message contract as {@link DeferredReplies.finalReply} builds it: JSON to store until it is sent. */
export type DeferredFinalReply = object & { readonly message_type: 0 | 1; readonly complete: true };

export type DeferredSendOutcome = 'sent' | 'already-sent';

/** What plugins get (PluginSetupContext.deferred) to finish deferred invocations. */
export interface DeferredReplies {
  /** The final reply `outcome` makes (a result, or an error), ready to be stored and sent. */
  finalReply(ticket: DeferredTicket, outcome: FunctionResult | Error): DeferredFinalReply;
  /**
   * Records `reply` as the invocation's final reply, publishes it (confirmed) and records
   * the confirm. 'already-sent' when an earlier send was confirmed (nothing published).
   * Rejects (retryable) when the store or the broker fails: send again later.
   */
  send(ticket: DeferredTicket, reply: DeferredFinalReply): Promise<DeferredSendOutcome>;
}

/** What a handler returns; the runner wraps it into a ResultPayload v2. */
export interface FunctionResult {
  content: Record<string, unknown>;
  /** A short human-readable note; defaults to none. */
  reason?: string | null;
  /** Defaults to true. A handler that wants to report a soft failure sets false. */
  success?: boolean;
  /** Anything the caller may want verbatim (resilient-lib's `raw`). */
  raw?: unknown;
}

/**
 * A handler returns its result, or `DEFERRED` (core/runtime/deferred.ts): the invocation is
 * acked without a final reply, which plugin code sends later with `PluginSetupContext.deferred`.
 */
export type FunctionHandler<S> = (ctx: FunctionContext, state: S) => Promise<FunctionResult | DeferredResult>;

export interface FunctionDefinition<S = unknown> {
  /** The SOAR function's programmatic name, e.g. `slack_post_message`. Unique across plugins. */
  name: string;
  displayName: string;
  description: string;
  /** The JSON Schema the runner validates inputs with (compiled once at load). */
  inputSchema: JsonSchema;
  handler: FunctionHandler<S>;
  /**
   * Called only by the plugin's own listeners through its own queues: left out of
   * `worker functions` and `worker customize`, and refused on the plugin's destinations.
   */
  internal?: boolean;
}

/** One selftest verdict, printed in resilient-circuits' shape. */
export interface SelftestOutcome {
  state: 'success' | 'failure';
  reason?: string;
}

/** Label values by label name; every value must come from a bounded set the plugin controls. */
export type MetricLabels = Record<string, string>;

export interface PluginCounter {
  inc(labels?: MetricLabels, value?: number): void;
}
export interface PluginGauge {
  set(labels: MetricLabels, value: number): void;
}
export interface PluginHistogram {
  observe(labels: MetricLabels, value: number): void;
}

/**
 * What a plugin may report to the worker's metrics (`/metrics`). Core knows nothing
 * about Slack: any plugin that waits on an upstream API's rate limit reports it here,
 * and a plugin defines metrics of its own with `counter`, `gauge` and `histogram`. Their
 * names become `worker_plugin_<name>` with a `package` label bound by core; asking
 * twice for one name returns the same metric.
 */
export interface PluginMetrics {
  /** The upstream API asked the plugin to wait `seconds` before calling `method` again. */
  rateLimitWait(method: string, seconds: number): void;
  counter(name: string, help: string, labelNames?: readonly string[]): PluginCounter;
  gauge(name: string, help: string, labelNames?: readonly string[]): PluginGauge;
  histogram(name: string, help: string, buckets: readonly number[], labelNames?: readonly string[]): PluginHistogram;
}

/**
 * A queue of a plugin's own, fed by its listeners (not by callers): declared with a
 * dead-letter exchange and queue like a destination (`<name>.dlx`, `<name>.dead`), and
 * consumed by the same runner, so the ledger (keyed by the message_id given to
 * {@link ListenerContext.submit}) makes each message take effect once.
 */
export interface PluginQueue {
  name: string;
  /**
   * Only one consumer among all workers receives at a time (RabbitMQ's
   * `x-single-active-consumer`); when it goes away the next takes over where it left
   * off. With ordering keys (see SubmitOptions) this keeps the queue's order per key
   * across workers.
   */
  singleActiveConsumer?: boolean;
  /**
   * Milliseconds a message with an ordering key and sequence number waits before it is
   * handled, so that messages of its key that reached the queue slightly out of order
   * (several listeners publish concurrently) are handled by sequence number. 0 or
   * absent: handled in queue order at once.
   */
  reorderWindowMs?: number;
  /**
   * Unacknowledged messages this worker takes from the queue at once (default
   * `[worker] num_workers`). Messages waiting for their ordering key's turn or for the
   * reorder window count against it but do not run, so an ordered queue wants more.
   */
  prefetch?: number;
}

/** The invocation a listener submits: the body a caller would publish, without reply_to. */
export interface SubmittedInvocation {
  function: { name: string };
  inputs: Record<string, unknown>;
}

export interface SubmitOptions {
  /** The idempotency key (AMQP message_id): two submits with one key take effect once. */
  messageId: string;
  /**
   * Messages with the same key are handled one after another, in queue order, by the
   * worker that receives them (others run in parallel up to num_workers).
   */
  orderingKey?: string | undefined;
  /**
   * The message's place within its ordering key (e.g. the upstream's timestamp as a
   * number): on a queue with a reorder window, messages of one key are handled by it.
   */
  orderingSeq?: number | undefined;
}

/** What a plugin's listeners get from the worker. */
export interface ListenerContext {
  /**
   * Publishes `invocation` on `queue` (one of the plugin's {@link PluginQueue}s) as a
   * persistent message and resolves only once the broker has confirmed it (and routed
   * it to the queue); rejects otherwise. What resolved is durable: acknowledge upstream then.
   */
  submit(queue: string, invocation: SubmittedInvocation, opts: SubmitOptions): Promise<void>;
  log: Logger;
  metrics: PluginMetrics;
}

/** What a listener says of itself on `/readyz`. */
export interface ListenerStatus {
  /** False fails `/readyz` with `detail` as the reason. */
  ready: boolean;
  detail: string;
}

/**
 * A long-running listener of a plugin (e.g. a connection that receives events from the
 * upstream service). Started after the worker consumes, stopped before it stops consuming.
 */
export interface PluginListener {
  /** Short name for logs and `/readyz`, e.g. `socket-mode`. */
  name: string;
  /** Resolves once listening; rejects when it never can (bad credentials): the worker does not start. */
  start(): Promise<void>;
  /** Stops receiving; resolves when nothing more will be submitted. */
  stop(): Promise<void>;
  status(): ListenerStatus;
}

/** What `setup` receives. */
export interface PluginSetupContext<C> {
  /** The plugin's config section, validated against `configSchema` with defaults applied. */
  config: C;
  log: Logger;
  store: Store;
  platform: Platform;
  /**
   * Where the plugin reports its own metrics. `worker run` always passes it (a no-op
   * when the listener is off); `selftest` and hand-built contexts may leave it out, so
   * plugins use it as `ctx.metrics?.rateLimitWait(...)`.
   */
  metrics?: PluginMetrics;
  /**
   * Sends the final replies of invocations a handler deferred. `worker run` passes it;
   * selftest and other commands leave it out (nothing is deferred there).
   */
  deferred?: DeferredReplies;
  /**
   * How many days finished records are kept (`[worker] ledger_retention_days`): core prunes
   * its ledger by it, and a plugin prunes the finished rows of its own tables by it (never
   * what is still in progress). `worker run` passes it; where it is left out, nothing is pruned.
   */
  retentionDays?: number;
}

/** One option of a plugin's CLI command (a subset of what yargs takes, so plugins need not import it). */
export interface CommandOption {
  type: 'string' | 'number' | 'boolean';
  describe: string;
  default?: string | number | boolean;
  alias?: string;
  choices?: readonly string[];
  array?: boolean;
}

/** Declares a command's options and usage examples (`$0` is the program name). */
export interface CommandOptionsBuilder {
  option(name: string, spec: CommandOption): CommandOptionsBuilder;
  example(command: string, description: string): CommandOptionsBuilder;
}

/** What a plugin's CLI command gets: nothing is loaded until it asks. */
export interface CommandContext<C> {
  /** The parsed options, by the names the command declared (camelCase aliases too). */
  args: Readonly<Record<string, unknown>>;
  /**
   * The app.config (`--config-file`, `$APP_CONFIG_FILE`, ~/.worker/app.config), read on
   * first call: its path and raw sections (core/config.ts's LoadedConfig, spelt out here
   * because config.ts imports this module's types).
   */
  config(): { file: string; sections: Record<string, Record<string, string>> };
  /** The plugin's own section, validated with defaults applied; a bad one throws a ConfigError. */
  pluginConfig(): C;
  /** Warnings and errors go to stderr. */
  log: Logger;
  /** The command's output. */
  stdout(text: string): void;
}

/**
 * A command a plugin adds to `worker` (fn_slack: `slack-manifest`). The handler returns
 * an exit code from the one table (src/core/exit-codes.ts), or nothing for 0; a thrown
 * error exits as the taxonomy says (a ConfigError with 2…).
 */
export interface PluginCommand<C = Record<string, unknown>> {
  /** One word, lower case with dashes; must not be a built-in command's or another plugin's. */
  name: string;
  /** One line for `worker --help`. */
  description: string;
  options?(builder: CommandOptionsBuilder): void;
  handler(ctx: CommandContext<C>): Promise<number | void>;
}

export interface Plugin<C = Record<string, unknown>, S = unknown> {
  /** Package name, e.g. `fn_slack`; used by `-l PACKAGE` and in result metrics. */
  packageName: string;
  packageVersion: string;
  /** The app.config section holding this plugin's settings. */
  configSection: string;
  /** JSON Schema of the section (values arrive as strings; ajv coerces types). */
  configSchema: JsonSchema;
  /** The message destination (queue) its functions are normally called on. */
  destination: string;
  /** Folder with the packaged definitions (function JSON, data tables, workflows). */
  customizationsDir?: string;
  functions: FunctionDefinition<S>[];
  setup(ctx: PluginSetupContext<C>): Promise<S>;
  selftest(state: S, ctx: PluginSetupContext<C>): Promise<SelftestOutcome>;
  teardown?(state: S): Promise<void>;
  /** CLI commands this package adds to `worker`; cli.ts registers them generically. */
  commands?: PluginCommand<C>[];
  /**
   * Tables this package keeps in the worker's store, with their migrations for SQLite and
   * PostgreSQL; the store runs and versions them, handlers use them through `store.sql`.
   */
  tables?: PluginTable[];
  /** The queues its listeners feed under this config (none when they are off); see {@link PluginQueue}. */
  queues?(config: C): PluginQueue[];
  /** The listeners `worker run` starts for this config and state (none when off). */
  listeners?(state: S, ctx: ListenerContext): PluginListener[];
}

/** Helper for plugin authors: keeps the config and state types together. */
export function definePlugin<C, S>(plugin: Plugin<C, S>): Plugin<C, S> {
  return plugin;
}
