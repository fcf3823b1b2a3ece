/**
 * The benchmark's handle on the Slack emulator running in its own process
 * (bench/emulator-host.ts). Each method is one IPC round trip.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../test/support/harness.js';
import type { EmulatedChannel, RateLimitOptions, SeedChannelOptions, SeedMessagesOptions } from '../test/support/slack-emulator.js';

export interface EmulatorStats {
  totalCalls: number;
  rateLimited: number;
  /** method → { "200": n, "429": n, … } */
  byMethod: Record<string, Record<string, number>>;
  lastInternalError: string | null;
}

export class RemoteEmulator {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  apiUrl = '';
  botToken = '';
  botUserId = '';
  /** The bot's app-level token (`xapp-…`), for Socket Mode. */
  appToken = '';

  private constructor(readonly child: ChildProcess) {
    child.on('message', (msg: { id: number; result?: unknown; error?: string }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`emulator: ${msg.error}`));
      else p.resolve(msg.result);
    });
    child.on('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error('the emulator process exited'));
      this.pending.clear();
    });
  }

  static async start(): Promise<RemoteEmulator> {
    const child = fork(path.join(REPO_ROOT, 'bench', 'emulator-host.ts'), [], {
      cwd: REPO_ROOT,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const emu = new RemoteEmulator(child);
    const info = await emu.call<{ apiUrl: string; botToken: string; botUserId: string; appToken: string }>('start');
    Object.assign(emu, info);
    return emu;
  }

  get pid(): number {
    return this.child.pid!;
  }

  private call<T>(op: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, op, args });
    });
  }

  seedChannel(o: SeedChannelOptions): Promise<EmulatedChannel> {
    return this.call('seedChannel', o);
  }
  seedMessages(channelId: string, count: number, o: SeedMessagesOptions = {}): Promise<number> {
    return this.call('seedMessages', channelId, count, o);
  }
  setRateLimits(o: RateLimitOptions | undefined): Promise<void> {
    return this.call('setRateLimits', o);
  }
  addUser(u: { name: string; email?: string }): Promise<{ id: string }> {
    return this.call('addUser', u);
  }
  channelByName(name: string): Promise<EmulatedChannel | null> {
    return this.call('channelByName', name);
  }
  messageCount(channelId: string): Promise<number> {
    return this.call('messageCount', channelId);
  }
  filesCount(): Promise<number> {
    return this.call('filesCount');
  }
  subscribe(events: string[]): Promise<void> {
    return this.call('subscribe', events);
  }
  /**
   * Resolves with the count and how long sending took (ms): one synchronous loop when
   * `spacingMs` is 0, else one event every `spacingMs`.
   */
  postBurst(channelId: string, userId: string, count: number, text: string, spacingMs = 0): Promise<{ count: number; loopMs: number }> {
    return this.call('postBurst', channelId, userId, count, text, spacingMs);
  }
  lastEnvelopePayload(): Promise<Record<string, unknown> | null> {
    return this.call('lastEnvelopePayload');
  }
  socketModeEvents(): Promise<{ sends: number; ackLatencyMs: number | null }[]> {
    return this.call('socketModeEvents');
  }
  socketModeConnections(): Promise<number> {
    return this.call('socketModeConnections');
  }
  stats(): Promise<EmulatorStats> {
    return this.call('stats');
  }
  resetCalls(): Promise<void> {
    return this.call('resetCalls');
  }
  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    await this.call('close').catch(() => undefined);
    await exited;
  }
}
