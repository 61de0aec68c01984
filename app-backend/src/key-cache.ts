import type { BeaconKeys } from '../../protocol/token/keys.js';
import { nodeSuite } from '../../protocol/token/keys-node.js';
import { openBeaconKey } from './kek.js';

const DEFAULT_LIMIT = 100_000;

/**
 * Imported beacon keys per quarantine, so a relay's next batch skips the unseal and the HKDF.
 * Bounded: the oldest entry goes first, and a key is only ever one unseal away.
 */
export class KeyCache {
  readonly #keys = new Map<string, BeaconKeys>();

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
    if (this.#keys.size >= this.limit) {
      const oldest = this.#keys.keys().next().value;
      if (oldest !== undefined) this.#keys.delete(oldest);
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
