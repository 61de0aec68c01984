interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token buckets per key, in two generations of at most maxKeys / 2 keys each: a key seen in the
 * older one moves to the newer; when the newer is full the older is dropped whole. So a flood of
 * fresh keys costs memory up to the bound and no more, and no request pays for eviction — a Map
 * kept in least-recently-used order pays a walk over its deleted entries on every eviction, which
 * grew to >100 µs a request once full. Best effort by design: a forgotten key starts again full.
 */
export class KeyRateLimiter {
  #current = new Map<string, Bucket>();
  #previous = new Map<string, Bucket>();
  readonly #generation: number;

  constructor(
    private readonly capacity: number,
    private readonly refillPerSecond: number,
    maxKeys: number,
  ) {
    this.#generation = Math.max(1, Math.floor(maxKeys / 2));
  }

  /** Take one request for `key` at `now` (ms); false when over the limit. */
  take(key: string, now: number): boolean {
    let b = this.#current.get(key);
    if (!b) {
      b = this.#previous.get(key);
      if (b) this.#previous.delete(key);
      if (this.#current.size >= this.#generation) {
        this.#previous = this.#current;
        this.#current = new Map();
      }
      this.#current.set(key, (b ??= { tokens: this.capacity, at: now }));
    }
    const tokens = Math.min(this.capacity, b.tokens + ((now - b.at) / 1000) * this.refillPerSecond);
    const allowed = tokens >= 1;
    b.tokens = allowed ? tokens - 1 : tokens;
    b.at = now;
    return allowed;
  }

  get size(): number {
    return this.#current.size + this.#previous.size;
  }
}
