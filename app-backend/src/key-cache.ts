import type { BeaconKeys } from '../../protocol/token/keys.js';
import { nodeKeysFromDerived, nodeSuite } from '../../protocol/token/keys-node.js';
import { openBeaconKey, openDerivedKeys } from './kek.js';

/**
 * A relay uploads every 5 minutes, so the cache hits only while it holds every relay active in one
 * cycle. An entry holds K_enc ‖ K_mac as bytes (~0.3 KB; a row from before migration 004, two
 * KeyObjects, ~1.2 KB). 10,000 covers a city; at national scale no affordable size hits, which is
 * why a miss opens the sealed derived keys (one AES-GCM open) instead of running the HKDF.
 */
const DEFAULT_LIMIT = 10_000;

/**
 * Imported beacon keys per quarantine, so a relay's next batch skips the unseal.
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

  /** `sealedDerived` when the row has it (registered since migration 004), else SK_BEACON derived here. */
  keysFor(
    id: string,
    beaconId: string,
    sealed: Uint8Array,
    sealedDerived: Uint8Array | null = null,
  ): BeaconKeys {
    const cached = this.#keys.get(id);
    if (cached) return cached;
    const keys = sealedDerived
      ? this.#fromDerived(beaconId, sealedDerived)
      : this.#fromSk(beaconId, sealed);
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

  #fromDerived(beaconId: string, sealed: Uint8Array): BeaconKeys {
    const { kEnc, kMac } = openDerivedKeys(this.kek, beaconId, sealed);
    return nodeKeysFromDerived(kEnc, kMac);
  }

  #fromSk(beaconId: string, sealed: Uint8Array): BeaconKeys {
    const sk = openBeaconKey(this.kek, beaconId, sealed);
    try {
      return nodeSuite.importKeys(sk);
    } finally {
      sk.fill(0);
    }
  }

  /** Drop the keys of a quarantine that ended (its sealed keys were deleted). */
  forget(id: string): void {
    this.#keys.delete(id);
  }

  get size(): number {
    return this.#keys.size;
  }
}
