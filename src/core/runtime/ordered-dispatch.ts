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
/** A delivery waiting out its reorder window. */
interface HeldDelivery {
  seq: number;
  /** Dispatch order, so that equal numbers keep the order they came in. */
  arrival: number;
  run: () => Promise<void>;
  timer?: NodeJS.Timeout;
  released: boolean;
}

/**
 * The held deliveries of one key, lowest number first (a binary min-heap): holding and
 * releasing one costs O(log n), so a key with many held deliveries (a burst in one
 * channel) is not released in quadratic time.
 */
class HeldQueue {
  private readonly heap: HeldDelivery[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(item: HeldDelivery): void {
    const heap = this.heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  /** Removes and returns the lowest-numbered delivery when its number is at most `seq`. */
  popUpTo(seq: number): HeldDelivery | undefined {
    const heap = this.heap;
    const top = heap[0];
    if (!top || top.seq > seq) return undefined;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let least = i;
        if (left < heap.length && before(heap[left]!, heap[least]!)) least = left;
        if (right < heap.length && before(heap[right]!, heap[least]!)) least = right;
        if (least === i) break;
        [heap[i], heap[least]] = [heap[least]!, heap[i]!];
        i = least;
      }
    }
    return top;
  }
}

function before(a: HeldDelivery, b: HeldDelivery): boolean {
  return a.seq < b.seq || (a.seq === b.seq && a.arrival < b.arrival);
}

export class OrderedDispatch {
  /** The last run of each key still going (the next one chains onto it). */
  private readonly chains = new Map<string, Promise<void>>();
  /** Held deliveries of each key, waiting out the reorder window. */
  private readonly held = new Map<string, HeldQueue>();
  private arrivals = 0;

  /** Deliveries held or chained right now (for tests and shutdown logs). */
  get pending(): number {
    let n = 0;
    for (const queue of this.held.values()) n += queue.size;
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
    const item: HeldDelivery = { seq, arrival: this.arrivals++, run, released: false };
    let queue = this.held.get(key);
    if (!queue) {
      queue = new HeldQueue();
      this.held.set(key, queue);
    }
    queue.push(item);
    item.timer = setTimeout(() => this.release(key, item), windowMs);
  }

  /** Releases `item` and every held item of `key` numbered at most as high, lowest first. */
  private release(key: string, item: HeldDelivery): void {
    if (item.released) return; // released with an earlier one
    const queue = this.held.get(key)!;
    for (let due = queue.popUpTo(item.seq); due; due = queue.popUpTo(item.seq)) this.start(key, due);
    if (queue.size === 0) this.held.delete(key);
  }

  /** Chains a held delivery, whose window then no longer matters. */
  private start(key: string, item: HeldDelivery): void {
    item.released = true;
    clearTimeout(item.timer);
    this.chain(key, item.run);
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
    const all = [...this.held.entries()];
    this.held.clear();
    for (const [key, queue] of all) for (let due = queue.popUpTo(Infinity); due; due = queue.popUpTo(Infinity)) this.start(key, due);
  }
}
