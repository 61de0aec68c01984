import type { BeaconKeys } from '../../protocol/token/keys.js';
import { nodeSuite } from '../../protocol/token/keys-node.js';
import { openBeaconKey } from './kek.js';

/**
 * A relay uploads every 5 minutes, so the cache hits only while it holds every relay active in one
 * cycle, and an entry costs ~1.4 KB of RSS (two node:crypto KeyObjects). 10,000 covers a city in
 * ~14 MB; at national scale no affordable size hits, so more would only cost memory (bench:memory).
 */
const DEFAULT_LIMIT = 10_000;

/**
 * Imported beacon keys per quarantine, so a relay's next batch skips the unseal and the HKDF.
 * Bounded: the oldest entry goes first, and a key is only ever one unseal away.
 */
export class KeyCache {
  readonly #keys = new Map<string, BeaconKeys>();
  /** Ids in the order they came, a ring: the Map's own oldest-first walk slows as deletions pile up at its front. */
  readonly #order: string[] = [];
  #oldest = 0;

  constructor(
    private readonly kek: Buffer,
    private readonly limit = DEFAULT_LIMIT,
  ) {}

  keysFor(id: string, beaconId: string, sealed: Uint8Array): BeaconKeys {
    const cached = this.#keys.get(id);
    if (cached) return cached;
    const sk = openBeaconKey(this.kek, beaconId, sealed);
    const keys = nodeSuite.importKeys(sk);
    sk.fill(0);
    if (this.#order.length < this.limit) this.#order.push(id);
    else {
      // A forgotten id may still sit in the ring: evicting it again only costs a later miss.
      this.#keys.delete(this.#order[this.#oldest] as string);
      this.#order[this.#oldest] = id;
      this.#oldest = (this.#oldest + 1) % this.limit;
    }
    this.#keys.set(id, keys);
    return keys;
  }

  /** Drop the keys of a quarantine that ended (its sealed key was deleted). */
  forget(id: string): void {
    this.#keys.delete(id);
  }

  get size(): number {
    return this.#keys.size;
  }
}
