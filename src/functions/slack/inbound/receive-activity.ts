/**
 * Which of the worker's two inbound jobs goes first when they compete for the one
 * event loop: recording and acknowledging what Slack sends (Slack resends what is not
 * acknowledged within 3 s) or handling what was recorded (mirroring, buttons,
 * commands), which has no such deadline since it waits durably on the inbound queue.
 *
 * Handling a message costs several times what recording it does (a ledger write,
 * platform calls, files), so while a burst is being received, handling the envelopes
 * recorded a second earlier would make the later ones of the burst wait for their
 * acknowledgement. The receivers report each envelope from its receipt until it is
 * recorded ({@link ReceiveActivity.track}); the handler waits ({@link ReceiveActivity.giveWay})
 * while one has been waiting longer than `pressureMs`, that is, while the receivers are
 * behind. Under ordinary traffic nothing waits; nothing is lost or reordered either
 * way, since handling only starts later.
 */

/** An envelope waiting this long for its record means the receivers are behind. */
export const RECEIVE_PRESSURE_MS = 20;
/** Handling waits at most this long per envelope, so that a receiver that stays behind cannot stop it. */
export const GIVE_WAY_MAX_MS = 1000;

export class ReceiveActivity {
  /** Receipt time (performance.now) of each envelope being recorded, oldest first (Map keeps insertion order). */
  private readonly pending = new Map<number, number>();
  private nextId = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly pressureMs = RECEIVE_PRESSURE_MS,
    private readonly maxWaitMs = GIVE_WAY_MAX_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Runs `record` (an envelope's durable record), counted as receiving from now until it settles. */
  async track<T>(record: () => Promise<T>): Promise<T> {
    const id = this.nextId++;
    this.pending.set(id, this.now());
    try {
      return await record();
    } finally {
      this.pending.delete(id);
      if (this.waiters.length > 0 && !this.behind()) this.wake();
    }
  }

  /** Envelopes being recorded right now. */
  get receiving(): number {
    return this.pending.size;
  }

  /** True while an envelope has waited more than `pressureMs` for its record. */
  behind(): boolean {
    const oldest = this.pending.values().next();
    return !oldest.done && this.now() - oldest.value > this.pressureMs;
  }

  /**
   * Resolves at once when the receivers keep up; else once they caught up (the oldest
   * envelope still being recorded is younger than `pressureMs`), after `maxWaitMs`, or
   * when `signal` aborts (a stopping worker hands its deliveries back at once).
   */
  async giveWay(signal?: AbortSignal): Promise<void> {
    if (!this.behind() || signal?.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, this.maxWaitMs);
      signal?.addEventListener('abort', done, { once: true });
      this.waiters.push(done);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
