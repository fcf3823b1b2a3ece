/**
 * `worker customize`'s broker target: message destinations (a queue, its dead-letter
 * exchange and queue, its retry queue) declared as `worker run` declares them. Its plan
 * only looks (passive checks, and a redeclare of a queue that exists, which the broker
 * answers without changing it), so `worker selftest` asks it whether a plugin's own
 * queues are in place.
 */
import type { Channel, ChannelModel } from 'amqplib';
import { redact } from '../redact.js';
import type { PluginQueue } from '../runtime/plugin.js';
import {
  CLASSIC_TOPOLOGY,
  deadLetterNames,
  deadQueueArguments,
  declareDestination,
  queueArguments,
  retryQueueArguments,
  retryQueueName,
  topologyError,
  type TopologyOptions,
} from '../runtime/amqp-topology.js';
import type { CustomizationItem } from './customizations.js';
import { CUSTOMIZE_EXIT, TargetError, type CustomizeTarget, type Plan } from './customize-target.js';

const errorMessage = (err: unknown) => redact(err instanceof Error ? err.message : String(err));

/** The queues a plugin's listeners feed (Plugin.queues), as message destinations for the broker alone. */
export function pluginQueueItems(packageName: string, queues: PluginQueue[]): CustomizationItem[] {
  return queues.map((q) => ({
    kind: 'message_destination',
    packageName,
    name: q.name,
    file: '(plugin definition)',
    definition: {
      programmatic_name: q.name,
      name: q.name,
      destination_type: 0,
      expect_ack: true,
      description: `Queue fed by the ${packageName} listeners`,
      worker_queue: { single_active_consumer: q.singleActiveConsumer ?? false },
    },
  }));
}

/** Message destinations: the queue, its dead-letter exchange and dead-letter queue. */
export class BrokerTarget implements CustomizeTarget {
  readonly name = 'broker';

  constructor(
    private readonly connection: ChannelModel,
    private readonly topology: TopologyOptions = CLASSIC_TOPOLOGY,
  ) {}

  /** Passive check in its own channel: a missing entity closes the channel with 404. */
  private async exists(check: (ch: Channel) => Promise<unknown>): Promise<boolean> {
    const ch = await this.connection.createChannel();
    ch.on('error', () => undefined);
    try {
      await check(ch);
      await ch.close().catch(() => undefined);
      return true;
    } catch (err) {
      if ((err as { code?: unknown }).code === 404) return false;
      throw new TargetError(`broker: ${errorMessage(err)}`, CUSTOMIZE_EXIT.broker, err);
    }
  }

  async plan(item: CustomizationItem): Promise<Plan> {
    if (item.kind !== 'message_destination') return { action: 'not-applicable', detail: '' };
    if (item.definition.destination_type !== 0) {
      return { action: 'not-applicable', detail: 'a topic destination; the worker consumes queues only' };
    }
    const d = item.name;
    const dl = deadLetterNames(d);
    const retry = retryQueueName(d);
    const parts = [
      { label: `queue ${d}`, present: await this.exists((ch) => ch.checkQueue(d)) },
      { label: `exchange ${dl.exchange}`, present: await this.exists((ch) => ch.checkExchange(dl.exchange)) },
      { label: `queue ${dl.queue}`, present: await this.exists((ch) => ch.checkQueue(dl.queue)) },
      { label: `queue ${retry}`, present: await this.exists((ch) => ch.checkQueue(retry)) },
    ];
    // An existing queue declared otherwise (another queue_type, another delivery limit)
    // cannot be fixed by importing: say so now, not after a yes.
    const shape = { singleActiveConsumer: item.definition.worker_queue?.single_active_consumer ?? false };
    if (parts[0]!.present) await this.checkEquivalent(d, queueArguments(d, this.topology, shape));
    if (parts[2]!.present) await this.checkEquivalent(dl.queue, deadQueueArguments(this.topology));
    if (parts[3]!.present) await this.checkEquivalent(retry, retryQueueArguments(d, this.topology));
    const missing = parts.filter((p) => !p.present).map((p) => p.label);
    if (missing.length === 0) return { action: 'unchanged', detail: parts.map((p) => p.label).join(', ') };
    if (missing.length === parts.length) return { action: 'create', detail: missing.join(', ') };
    return { action: 'update', detail: `add ${missing.join(', ')}` };
  }

  /**
   * Redeclares an existing queue with the arguments the worker uses: a no-op when they
   * are equivalent, PRECONDITION_FAILED (turned into what to do) when not.
   */
  private async checkEquivalent(queue: string, options: Parameters<Channel['assertQueue']>[1]): Promise<void> {
    const ch = await this.connection.createChannel();
    ch.on('error', () => undefined);
    try {
      await ch.assertQueue(queue, options);
      await ch.close().catch(() => undefined);
    } catch (err) {
      const clear = topologyError(err, this.topology);
      throw new TargetError(`broker: ${clear ? clear.message : errorMessage(err)}`, CUSTOMIZE_EXIT.broker, err);
    }
  }

  async apply(item: CustomizationItem): Promise<string> {
    const ch = await this.connection.createChannel();
    ch.on('error', () => undefined);
    const d = item.name;
    const dl = deadLetterNames(d);
    const shape = item.kind === 'message_destination' ? { singleActiveConsumer: item.definition.worker_queue?.single_active_consumer ?? false } : {};
    try {
      await declareDestination(ch, d, this.topology, shape);
    } catch (err) {
      // declareDestination already explains an inequivalent queue (TopologyError).
      throw new TargetError(`broker: declaring ${d} failed: ${errorMessage(err)}`, CUSTOMIZE_EXIT.broker, err);
    }
    await ch.close().catch(() => undefined);
    const type = this.topology.queueType === 'classic' ? '' : ` (${this.topology.queueType} queues)`;
    return `queue ${d}, exchange ${dl.exchange}, queue ${dl.queue}, queue ${retryQueueName(d)}${type}`;
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }
}
