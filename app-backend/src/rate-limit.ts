/**
 * Token buckets per key, in a bounded map (least recently used dropped first), so a flood of
 * fresh keys costs memory up to the bound and no more. Best effort by design: an evicted key
 * starts again with a full bucket.
 */
export class KeyRateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly capacity: number,
    private readonly refillPerSecond: number,
    private readonly maxKeys: number,
  ) {}

  /** Take one request for `key` at `now` (ms); false when over the limit. */
  take(key: string, now: number): boolean {
    const b = this.#buckets.get(key);
    const tokens = b
      ? Math.min(this.capacity, b.tokens + ((now - b.at) / 1000) * this.refillPerSecond)
      : this.capacity;
    if (b) this.#buckets.delete(key);
    const allowed = tokens >= 1;
    this.#buckets.set(key, { tokens: allowed ? tokens - 1 : tokens, at: now });
    if (this.#buckets.size > this.maxKeys) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    return allowed;
  }

  get size(): number {
    return this.#buckets.size;
  }
}
