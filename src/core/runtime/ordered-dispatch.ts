/**
 * Ordered handling of deliveries that carry an ordering key (a plugin's listener sets
 * it with SubmitOptions.orderingKey; the AMQP transport reads it from the message
 * headers).
 *
 * - Deliveries with one key run one after another, in the order they are released:
 *   each starts when the previous one has been handled (acked, requeued or
 *   dead-lettered). Different keys run in parallel, up to the prefetch.
 * - A delivery that also carries a sequence number (`orderingSeq`, e.g. the upstream's
 *   own timestamp) on a queue with a reorder window is held for that window before it
 *   is released, and released together with every held delivery of its key with a
 *   lower or equal number, lowest first. Several receivers (one per worker) publish
 *   concurrently, so two messages the upstream sent a millisecond apart may reach the
 *   queue in either order; the window puts them back in the upstream's order as long
 *   as they reached the queue within it of each other. A delivery that comes later than
 *   that runs when it comes (late, never lost).
 */
export class OrderedDispatch {
  /** The last run of each key still going (the next one chains onto it). */
  private readonly chains = new Map<string, Promise<void>>();
  /** Held deliveries of each key, waiting out the reorder window. */
  private readonly held = new Map<string, { seq: number; run: () => Promise<void> }[]>();
  private readonly timers = new Set<NodeJS.Timeout>();

  /** Deliveries held or chained right now (for tests and shutdown logs). */
  get pending(): number {
    let n = 0;
    for (const list of this.held.values()) n += list.length;
    return n + this.chains.size;
  }

  /**
   * Runs `run` in order with the other runs of `key` (see the file comment). `seq` and
   * `windowMs` > 0 hold it first. `run` must not reject.
   */
  dispatch(key: string, run: () => Promise<void>, seq?: number, windowMs = 0): void {
    if (seq === undefined || !Number.isFinite(seq) || windowMs <= 0) {
      this.chain(key, run);
      return;
    }
    const item = { seq, run };
    const list = this.held.get(key) ?? [];
    list.push(item);
    this.held.set(key, list);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.release(key, item);
    }, windowMs);
    this.timers.add(timer);
  }

  /** Releases `item` and every held item of `key` numbered at most as high, lowest first. */
  private release(key: string, item: { seq: number }): void {
    const list = this.held.get(key);
    if (!list || !list.includes(item as (typeof list)[number])) return; // released with an earlier one
    const due = list.filter((x) => x.seq <= item.seq).sort((a, b) => a.seq - b.seq);
    const rest = list.filter((x) => x.seq > item.seq);
    if (rest.length) this.held.set(key, rest);
    else this.held.delete(key);
    for (const x of due) this.chain(key, x.run);
  }

  private chain(key: string, run: () => Promise<void>): void {
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous.then(run);
    this.chains.set(key, next);
    void next.finally(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
  }

  /** Releases everything held at once (shutdown: the runs then hand their deliveries back). */
  flush(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const all = [...this.held.entries()];
    this.held.clear();
    for (const [key, list] of all) for (const x of list.sort((a, b) => a.seq - b.seq)) this.chain(key, x.run);
  }
}
