/**
 * Admission of BLE frames before reassembly (seed 002 §7: a neighbour flooding frames must not
 * fill memory or starve the real beacon). Token buckets per address and globally, in bounded
 * tables, so a flood costs memory up to the bounds and CPU up to the global rate, and no more.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface BucketRate {
  /** Frames that may arrive at once. */
  readonly burst: number;
  /** Frames per second refilled. */
  readonly perSecond: number;
}

export interface RateLimits {
  /** Each BLE address. A beacon at its default 500 ms interval sends 2 frames/s. */
  readonly perAddress: BucketRate;
  /** All addresses together that have not yet delivered a new token (trusted ones bypass it). */
  readonly global: BucketRate;
  /** Addresses heard for the first time: how fast the address table may take new entries. */
  readonly newcomers: BucketRate;
  /** Addresses remembered at once (least recently heard dropped first; trusted ones kept). */
  readonly maxAddresses: number;
  /** Addresses that delivered a new token, exempt from the global bucket while trusted. */
  readonly maxTrusted: number;
  readonly trustedTtlMs: number;
  /** Independent reassembly tables, chosen by a salted hash of the address. */
  readonly shards: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  // Up to 8 frames/s per address: beacons advertising every 125 ms or slower are never limited.
  perAddress: { burst: 16, perSecond: 8 },
  global: { burst: 400, perSecond: 200 },
  newcomers: { burst: 20, perSecond: 10 },
  maxAddresses: 1024,
  maxTrusted: 8,
  trustedTtlMs: 60 * 60_000,
  shards: 16,
};

export class TokenBucket {
  #tokens: number;
  #at: number | undefined;

  constructor(private readonly rate: BucketRate) {
    this.#tokens = rate.burst;
  }

  /** Take one frame's worth at `now` (ms); false when the bucket is empty. */
  take(now: number): boolean {
    if (this.#at !== undefined && now > this.#at)
      this.#tokens = Math.min(
        this.rate.burst,
        this.#tokens + ((now - this.#at) / 1000) * this.rate.perSecond,
      );
    this.#at = this.#at === undefined ? now : Math.max(this.#at, now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** What became of one frame at the gate. */
export type Admission =
  | { readonly ok: true; readonly shard: number }
  | {
      readonly ok: false;
      /** first: an address is registered at its first frame and counts from its second. */
      readonly reason: 'first' | 'newcomer' | 'address' | 'global';
    };

interface AddressEntry {
  readonly bucket: TokenBucket;
  readonly shard: number;
}

/**
 * Per-address and global token buckets with a bounded address table. An address counts from its
 * second frame (a flood from fresh random addresses never reaches the reassembler), addresses
 * enter the table no faster than the newcomer rate (so a flood cannot churn a resident beacon
 * out of it), and an address that delivered a new token is exempt from the global bucket.
 */
export class FrameGate {
  readonly #limits: RateLimits;
  readonly #salt = randomBytes(16);
  // Insertion order = least recently heard first (entries are re-inserted when heard).
  readonly #addresses = new Map<string, AddressEntry>();
  readonly #trusted = new Map<string, number>();
  readonly #global: TokenBucket;
  readonly #newcomers: TokenBucket;

  constructor(limits: Partial<RateLimits> = {}) {
    this.#limits = { ...DEFAULT_RATE_LIMITS, ...limits };
    this.#global = new TokenBucket(this.#limits.global);
    this.#newcomers = new TokenBucket(this.#limits.newcomers);
  }

  get limits(): RateLimits {
    return this.#limits;
  }

  admit(address: string, now: number): Admission {
    const entry = this.#addresses.get(address);
    if (!entry) {
      if (!this.#newcomers.take(now)) return { ok: false, reason: 'newcomer' };
      this.#addresses.set(address, {
        bucket: new TokenBucket(this.#limits.perAddress),
        shard: this.#shardOf(address),
      });
      this.#evict();
      return { ok: false, reason: 'first' };
    }
    this.#addresses.delete(address);
    this.#addresses.set(address, entry);
    if (!entry.bucket.take(now)) return { ok: false, reason: 'address' };
    if (!this.isTrusted(address, now) && !this.#global.take(now))
      return { ok: false, reason: 'global' };
    return { ok: true, shard: entry.shard };
  }

  /** The address delivered a token never seen before: exempt it from the global bucket for a while. */
  trust(address: string, now: number): void {
    this.#trusted.delete(address);
    this.#trusted.set(address, now + this.#limits.trustedTtlMs);
    while (this.#trusted.size > this.#limits.maxTrusted) {
      const oldest = this.#trusted.keys().next().value;
      if (oldest === undefined) break;
      this.#trusted.delete(oldest);
    }
  }

  isTrusted(address: string, now: number): boolean {
    const until = this.#trusted.get(address);
    if (until === undefined) return false;
    if (now <= until) return true;
    this.#trusted.delete(address);
    return false;
  }

  sizes(): { addresses: number; trusted: number } {
    return { addresses: this.#addresses.size, trusted: this.#trusted.size };
  }

  /** Drop the least recently heard untrusted addresses beyond the bound. */
  #evict(): void {
    if (this.#addresses.size <= this.#limits.maxAddresses) return;
    for (const address of this.#addresses.keys()) {
      if (this.#trusted.has(address)) continue;
      this.#addresses.delete(address);
      if (this.#addresses.size <= this.#limits.maxAddresses) return;
    }
  }

  #shardOf(address: string): number {
    // Salted per process, so a neighbour cannot pick addresses that land in the beacon's shard.
    const h = createHash('sha256').update(this.#salt).update(address).digest();
    return h.readUInt32BE(0) % this.#limits.shards;
  }
}
