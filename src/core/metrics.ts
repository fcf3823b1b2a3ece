/**
 * The worker's Prometheus metrics (prom-client), kept on a registry of their own.
 *
 * Why a private registry and not prom-client's global one: a plugin or an embedding
 * program that also uses prom-client must not see its metrics mixed with ours (or
 * collide on a name), and tests can build as many WorkerMetrics as they like.
 *
 * Every label value comes from a bounded set the worker controls — registered function
 * names (a caller's unknown name is reported as `(unparsed)` by the runner), the fixed
 * outcome list, plugin package names and the upstream API method names a plugin
 * reports — so a caller cannot blow up the series count, and no label ever carries an
 * input, an id, a URL or a secret.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PluginCounter, PluginGauge, PluginHistogram, PluginMetrics } from './runtime/plugin.js';
import type { InvocationOutcome } from './runtime/runner.js';

export type { PluginMetrics };

/** For plugins set up without metrics (listener off, selftest, tests). */
const NO_COUNTER: PluginCounter = Object.freeze({ inc: () => undefined });
const NO_GAUGE: PluginGauge = Object.freeze({ set: () => undefined });
const NO_HISTOGRAM: PluginHistogram = Object.freeze({ observe: () => undefined });

export const NO_PLUGIN_METRICS: PluginMetrics = Object.freeze({
  rateLimitWait() {
    // metrics are off
  },
  counter: () => NO_COUNTER,
  gauge: () => NO_GAUGE,
  histogram: () => NO_HISTOGRAM,
});

/** What a plugin may name its metrics (Prometheus' metric name rules, lower case). */
const PLUGIN_METRIC_NAME = /^[a-z][a-z0-9_]*$/;
/** Label names a plugin may use: Prometheus' rules, minus `package` (bound by core) and `__` names. */
const PLUGIN_LABEL_NAME = /^[a-z][a-z0-9_]*$/;

/**
 * Seconds. Chosen for invocations that are a handful of Slack Web API calls:
 * - 0.05–0.5: one call takes ~50–500 ms, so a post to a known channel lands here;
 * - 1–5: a post that finds or creates the channel, invites people and fetches the
 *   permalink (4–6 calls), or an upload (URL, bytes, complete, files.info polling);
 * - 10–120: Retry-After waits are whole seconds (usually 1–60 for Slack's tiers) and
 *   fn_slack's default retry budget is 120 s, so these buckets tell "rate-limited a
 *   little" from "waited out the whole budget";
 * - 300–600: an archive that exports a long history page by page (conversations.history
 *   and .replies are tier-3 methods, ~50 calls a minute).
 */
export const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export interface WorkerMetricsOptions {
  /**
   * Also collect prom-client's default process and Node.js metrics (CPU, memory, file
   * descriptors, event loop lag, GC) on this registry. Default true. They keep their
   * standard names (`process_*`, `nodejs_*`) so stock dashboards work with them.
   */
  processMetrics?: boolean;
}

export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly invocations: Counter<'function' | 'outcome'>;
  private readonly duration: Histogram<'function'>;
  private readonly inFlight: Gauge;
  private readonly rateLimitWaits: Counter<'package' | 'method'>;
  private readonly rateLimitWaitSeconds: Counter<'package' | 'method'>;
  private readonly reconnects: Counter;
  private readonly ledgerReplays: Counter;
  private readonly brokerConnected: Gauge;
  /** Metrics plugins defined, by full name (see forPlugin). */
  private readonly pluginDefined = new Map<string, { kind: string; metric: Counter<string> | Gauge<string> | Histogram<string> }>();

  constructor(opts: WorkerMetricsOptions = {}) {
    const registers = [this.registry];
    this.invocations = new Counter({
      name: 'worker_invocations_total',
      help: 'Finished invocations by function and outcome (succeeded, failed, requeued, dead-lettered, replayed, rejected)',
      labelNames: ['function', 'outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: 'worker_invocation_duration_seconds',
      help: 'Time from receiving an invocation to its final reply (or hand-back to the broker), by function',
      labelNames: ['function'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.inFlight = new Gauge({
      name: 'worker_invocations_in_flight',
      help: 'Invocations being handled right now (at most num_workers)',
      registers,
    });
    this.rateLimitWaits = new Counter({
      name: 'worker_upstream_rate_limit_waits_total',
      help: 'Times an upstream API (e.g. Slack) rate-limited a call and the plugin waited, by plugin package and API method',
      labelNames: ['package', 'method'],
      registers,
    });
    this.rateLimitWaitSeconds = new Counter({
      name: 'worker_upstream_rate_limit_wait_seconds_total',
      help: 'Seconds upstream APIs asked the worker to wait (Retry-After), by plugin package and API method',
      labelNames: ['package', 'method'],
      registers,
    });
    this.reconnects = new Counter({
      name: 'worker_broker_reconnects_total',
      help: 'Times the worker reconnected to the broker after losing the connection',
      registers,
    });
    this.ledgerReplays = new Counter({
      name: 'worker_ledger_replays_total',
      help: 'Redelivered invocations that had already finished, answered from the invocation ledger without running again',
      registers,
    });
    this.brokerConnected = new Gauge({
      name: 'worker_broker_connected',
      help: '1 while the worker holds a connection to the broker, else 0',
      registers,
    });
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Records one finished invocation as the runner reports it. */
  observeOutcome(o: InvocationOutcome): void {
    this.invocations.inc({ function: o.functionName, outcome: o.outcome });
    this.duration.observe({ function: o.functionName }, Math.max(0, o.durationMs) / 1000);
    if (o.outcome === 'replayed') this.ledgerReplays.inc();
  }

  /** Counts an invocation as in flight; call the returned function when it is done (once). */
  invocationStarted(): () => void {
    this.inFlight.inc();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.inFlight.dec();
    };
  }

  /** The broker connection came up (`true`) or went away (`false`). */
  setBrokerConnected(connected: boolean): void {
    this.brokerConnected.set(connected ? 1 : 0);
  }

  /** The transport reconnected after losing the broker. */
  brokerReconnected(): void {
    this.reconnects.inc();
  }

  /**
   * The hook one plugin gets. The package label is bound here, not passed by the
   * plugin, so a plugin can only report under its own name.
   */
  forPlugin(packageName: string): PluginMetrics {
    const define = <M extends Counter<string> | Gauge<string> | Histogram<string>>(
      kind: string,
      name: string,
      labelNames: readonly string[],
      make: (fullName: string, labels: string[]) => M,
    ): M => {
      if (!PLUGIN_METRIC_NAME.test(name)) throw new RangeError(`Plugin metric name "${name}" must match ${PLUGIN_METRIC_NAME}`);
      const bad = labelNames.find((l) => !PLUGIN_LABEL_NAME.test(l) || l === 'package');
      if (bad !== undefined) throw new RangeError(`Plugin metric ${name}: label "${bad}" is not allowed (lower-case name, not "package")`);
      const fullName = `worker_plugin_${name}`;
      const known = this.pluginDefined.get(fullName);
      if (known) {
        if (known.kind !== kind) throw new RangeError(`Plugin metric ${fullName} is already a ${known.kind}`);
        return known.metric as M;
      }
      const metric = make(fullName, ['package', ...labelNames]);
      this.pluginDefined.set(fullName, { kind, metric });
      return metric;
    };
    const registers = [this.registry];
    const bound = (labels: Record<string, string> | undefined) => ({ ...labels, package: packageName });
    return {
      rateLimitWait: (method: string, seconds: number) => {
        const labels = { package: packageName, method: String(method) };
        this.rateLimitWaits.inc(labels);
        if (Number.isFinite(seconds) && seconds > 0) this.rateLimitWaitSeconds.inc(labels, seconds);
      },
      counter: (name, help, labelNames = []) => {
        const c = define('counter', name, labelNames, (n, l) => new Counter({ name: n, help, labelNames: l, registers }));
        return { inc: (labels, value = 1) => c.inc(bound(labels), value) };
      },
      gauge: (name, help, labelNames = []) => {
        const g = define('gauge', name, labelNames, (n, l) => new Gauge({ name: n, help, labelNames: l, registers }));
        return { set: (labels, value) => g.set(bound(labels), value) };
      },
      histogram: (name, help, buckets, labelNames = []) => {
        const h = define('histogram', name, labelNames, (n, l) => new Histogram({ name: n, help, labelNames: l, buckets: [...buckets], registers }));
        return { observe: (labels, value) => h.observe(bound(labels), value) };
      },
    };
  }

  /** The `Content-Type` of {@link render}'s text (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in the Prometheus text format. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
