/**
 * slack_ask in process, with real parts: a "node" is what one worker holds for asks — a
 * store connection (SQLite file or PostgreSQL schema, with fn_slack's tables), fn_slack's
 * state from the plugin's own setup (ask runtime and sweeper included), the real runner,
 * and deferred replies published on a real RabbitMQ reply connection. Two nodes on one
 * store are two workers. Clicks go through the inbound router with payloads from the
 * emulator's `emu.click`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import pg from 'pg';
import { silentLogger } from '../../src/core/logging.js';
import { validateSection } from '../../src/core/config.js';
import { LedgerDeferredReplies } from '../../src/core/runtime/deferred.js';
import type { Reply } from '../../src/core/runtime/messages.js';
import { PluginRegistry } from '../../src/core/runtime/registry.js';
import { ReplyPublisher } from '../../src/core/runtime/reply-publisher.js';
import { Runner } from '../../src/core/runtime/runner.js';
import type { Delivery, Disposition } from '../../src/core/runtime/transport.js';
import { PostgresStore } from '../../src/core/store/postgres-store.js';
import { SqliteStore } from '../../src/core/store/sqlite-store.js';
import type { Store } from '../../src/core/store/store.js';
import { askHandlers } from '../../src/functions/slack/ask/ask-answer.js';
import type { SlackConfig } from '../../src/functions/slack/config.js';
import { slackPlugin } from '../../src/functions/slack/index.js';
import { routeEnvelope } from '../../src/functions/slack/inbound/router.js';
import type { SlackState } from '../../src/functions/slack/state.js';
import type { Platform } from '../../src/platforms/platform.js';
import { AMQP_URL } from './harness.js';

export const PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = `ask_${process.pid}_${randomBytes(3).toString('hex')}`;
let schemas = 0;

export type Dialect = 'sqlite' | 'postgres';

/** A store with fn_slack's tables, migrated. `where`: the SQLite file, or the PostgreSQL schema to share. */
export async function openAskStore(dialect: Dialect, where: string): Promise<Store> {
  const tables = slackPlugin.tables ?? [];
  const store = dialect === 'sqlite' ? SqliteStore.open(where, { tables }) : await PostgresStore.open(PG_URL, { schema: where, poolSize: 4, tables });
  await store.migrate();
  return store;
}

/** A new PostgreSQL schema name of this run (dropped by {@link dropAskSchemas}). */
export function newSchema(): string {
  return `${RUN}_${++schemas}`;
}

export async function dropAskSchemas(): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [`${RUN}\\_%`]);
    for (const r of rows) await client.query(`DROP SCHEMA "${r.nspname}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Every reply the caller got, by correlation id (progress and final), on a real reply queue. */
export class ReplyCollector {
  readonly replies = new Map<string, Record<string, any>[]>();

  private constructor(
    readonly connection: ChannelModel,
    readonly channel: Channel,
    readonly queue: string,
  ) {}

  static async open(): Promise<ReplyCollector> {
    const connection = await amqp.connect(AMQP_URL);
    connection.on('error', () => undefined);
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    const c = new ReplyCollector(connection, channel, queue);
    await channel.consume(
      queue,
      (m) => {
        if (!m) return;
        const id = String(m.properties.correlationId);
        c.replies.set(id, [...(c.replies.get(id) ?? []), JSON.parse(m.content.toString()) as Record<string, any>]);
      },
      { noAck: true },
    );
    return c;
  }

  finals(correlationId: string): Record<string, any>[] {
    return (this.replies.get(correlationId) ?? []).filter((r) => r.complete === true);
  }

  progress(correlationId: string): string[] {
    return (this.replies.get(correlationId) ?? []).filter((r) => r.complete === false).map((r) => String(r.message));
  }

  async waitForFinal(correlationId: string, ms = 10_000): Promise<Record<string, any>> {
    const deadline = Date.now() + ms;
    while (this.finals(correlationId).length === 0) {
      if (Date.now() > deadline) throw new Error(`no final reply for ${correlationId}; got ${JSON.stringify(this.replies.get(correlationId) ?? [])}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.finals(correlationId)[0]!;
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }
}

/** One worker's share of slack_ask: see the file comment. */
export class AskNode {
  private constructor(
    readonly store: Store,
    readonly state: SlackState,
    readonly runner: Runner,
    private readonly publisher: ReplyPublisher,
    private readonly platform: Platform,
  ) {}

  static async start(opts: {
    store: Store;
    platform: Platform;
    apiUrl: string;
    token: string;
    config?: Record<string, string>;
    /** The worker's retention (`[worker] ledger_retention_days`) as `worker run` passes it; left out: nothing is pruned. */
    retentionDays?: number;
  }): Promise<AskNode> {
    const log = silentLogger();
    const config = validateSection<SlackConfig>(
      {
        file: 'test.config',
        sections: {
          fn_slack: {
            api_token: opts.token,
            api_url: opts.apiUrl,
            retry_budget: '5',
            rate_limits: 'off',
            ask_sweep_interval: '0.2',
            ask_lease: '2',
            ...opts.config,
          },
        },
      },
      'fn_slack',
      slackPlugin.configSchema,
    );
    const publisher = new ReplyPublisher({ connect: () => amqp.connect(AMQP_URL), log });
    const deferred = new LedgerDeferredReplies({ ledger: opts.store.ledger, publish: (q, c, b) => publisher.publish(q, c, b), log });
    const retention = opts.retentionDays === undefined ? {} : { retentionDays: opts.retentionDays };
    const state = await slackPlugin.setup({ config, log, store: opts.store, platform: opts.platform, deferred, ...retention });
    const registry = new PluginRegistry();
    registry.add(slackPlugin);
    const runner = new Runner({
      registry,
      pluginStates: new Map([[slackPlugin.packageName, state]]),
      store: opts.store,
      platform: opts.platform,
      log,
      maxAttempts: 3,
      maxMessageBytes: 1_000_000,
      retryDelayMs: () => 0,
    });
    return new AskNode(opts.store, state, runner, publisher, opts.platform);
  }

  /** Runs one delivery of slack_ask as the runner does; replies go to `replies`' queue. */
  invoke(
    replies: ReplyCollector,
    inputs: Record<string, unknown>,
    opts: { id?: string; redelivered?: boolean } = {},
  ): { id: string; done: Promise<Disposition> } {
    const id = opts.id ?? randomUUID();
    const delivery: Delivery = {
      body: Buffer.from(JSON.stringify({ function: { name: 'slack_ask' }, inputs })),
      messageId: id,
      correlationId: id,
      replyTo: replies.queue,
      destination: 'fn_slack',
      redelivered: opts.redelivered ?? false,
      reply: async (payload: Reply) => {
        replies.channel.sendToQueue(replies.queue, Buffer.from(JSON.stringify(payload)), { correlationId: id });
      },
    };
    return { id, done: this.runner.handle(delivery) };
  }

  /** Delivers a `block_actions` payload to the ask handlers, as the inbound path does. */
  async click(payload: Record<string, unknown>): Promise<number> {
    return routeEnvelope({ kind: 'interactive', payload, retryAttempt: 0 }, [askHandlers((ctx) => ctx.state.asks)], {
      state: this.state,
      platform: this.platform,
      store: this.store,
      log: silentLogger(),
      key: `action:${randomUUID()}`,
      attempt: 1,
      steps: { get: () => undefined, record: async () => undefined },
      signal: new AbortController().signal,
    });
  }

  async close(): Promise<void> {
    await slackPlugin.teardown?.(this.state);
    await this.publisher.close();
  }
}
