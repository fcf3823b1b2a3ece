/**
 * Runs test/support/slack-emulator.ts in a process of its own, driven over IPC by the
 * benchmark (bench/emulator.ts). On a 2-core machine the emulator answering thousands
 * of requests a second must not share an event loop with the load generator, or each
 * would slow the other and the worker's figures would be the emulator's.
 */
import type http from 'node:http';
import { SlackEmulator, type EventSubscription, type RateLimitOptions, type SeedChannelOptions, type SeedMessagesOptions } from '../test/support/slack-emulator.js';

interface Request {
  id: number;
  op: string;
  args: unknown[];
}

/** Per-method answers by HTTP status, counted as each response finishes. */
const statusByMethod = new Map<string, Record<string, number>>();
let emu: SlackEmulator | undefined;

function countResponses(server: http.Server): void {
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? '';
    const method = url.startsWith('/api/') ? url.slice(5).split('?')[0]! : url.startsWith('/upload/') ? 'upload' : url.split('?')[0]!;
    res.on('finish', () => {
      const counts = statusByMethod.get(method) ?? {};
      counts[res.statusCode] = (counts[res.statusCode] ?? 0) + 1;
      statusByMethod.set(method, counts);
    });
  });
}

const ops: Record<string, (...args: any[]) => unknown> = {
  async start() {
    emu = await SlackEmulator.start({ logCalls: false });
    // The emulator keeps its http.Server private; the benchmark only listens to it to
    // count answers per method and status (the emulator counts 429s only in total).
    countResponses((emu as unknown as { server: http.Server }).server);
    return { apiUrl: emu.apiUrl, botToken: emu.botToken, botUserId: emu.botUserId, appToken: emu.appToken };
  },
  seedChannel: (o: SeedChannelOptions) => emu!.seedChannel(o),
  seedMessages: (channelId: string, count: number, o: SeedMessagesOptions) => emu!.seedMessages(channelId, count, o).length,
  setRateLimits: (o: RateLimitOptions | undefined) => emu!.setRateLimits(o),
  addUser: (u: { name: string; email?: string }) => emu!.addUser(u),
  channelByName: (name: string) => emu!.channelByName(name),
  messageCount: (channelId: string) => emu!.messages(channelId).length,
  filesCount: () => emu!.files().length,
  channelCount: () => emu!.channels().length,
  stats: () => ({
    totalCalls: emu!.calls(),
    rateLimited: emu!.rateLimitedCount,
    byMethod: Object.fromEntries(statusByMethod),
    lastInternalError: emu!.lastInternalError ? String(emu!.lastInternalError) : null,
  }),
  resetCalls: () => {
    emu!.resetCalls();
    statusByMethod.clear();
  },
  subscribe: (events: EventSubscription[]) => emu!.subscribe(...events),
  /**
   * `count` messages by `userId` in `channelId`, each raising its `message` event over
   * Socket Mode. `spacingMs` 0: sent in one synchronous loop (a backlog: the worker gets
   * them as one burst, and no ack is read before the loop ends). Otherwise one event
   * every `spacingMs`, each its own write, as Slack sends events as they happen.
   */
  postBurst: async (channelId: string, userId: string, count: number, text: string, spacingMs = 0) => {
    // The messages are stored first and their events held, then sent: the emulator's
    // own work per message must not be counted in the worker's ack latency.
    emu!.socketMode.pause();
    try {
      for (let i = 0; i < count; i++) emu!.postAsUser(userId, channelId, `${text} ${i + 1}`);
    } catch (err) {
      emu!.socketMode.resume();
      throw err;
    }
    const started = performance.now();
    if (spacingMs > 0) await emu!.socketMode.release(spacingMs);
    else emu!.socketMode.resume();
    // For a backlog, part of every envelope's latency all the same: no ack is read before the loop ends.
    return { count, loopMs: performance.now() - started };
  },
  /** The payload of the newest Socket Mode envelope (the benchmark sizes its broker probe by it). */
  lastEnvelopePayload: () => emu!.socketMode.delivered().at(-1)?.payload ?? null,
  /** Socket Mode's events_api envelopes so far: sends and ack latency (see DeliveredEnvelope). */
  socketModeEvents: () =>
    emu!.socketMode
      .delivered()
      .filter((e) => e.type === 'events_api')
      .map((e) => ({ sends: e.sends, ackLatencyMs: e.ackLatencyMs ?? null })),
  socketModeConnections: () => emu!.socketMode.connectionCount,
  memory: () => process.memoryUsage().rss,
  async close() {
    await emu?.close();
    setImmediate(() => process.exit(0));
  },
};

process.on('message', (msg: Request) => {
  void (async () => {
    try {
      const fn = ops[msg.op];
      if (!fn) throw new Error(`unknown op ${msg.op}`);
      const result = await fn(...msg.args);
      process.send!({ id: msg.id, result: result === undefined ? null : JSON.parse(JSON.stringify(result)) });
    } catch (err) {
      process.send!({ id: msg.id, error: String((err as Error)?.stack ?? err) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
