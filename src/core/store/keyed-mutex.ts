/**
 * A keyed mutex: `run(key, fn)` runs `fn` once every earlier `run` with the same key
 * has settled. One promise chain per key; a key's entry is removed when its chain is idle,
 * so the map holds only keys that are in use.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** How many keys are held or awaited (for tests: 0 when idle). */
  get size(): number {
    return this.tails.size;
  }
}
