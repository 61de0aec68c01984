import { bytesToHex, constantTimeEqual } from '../bytes.js';
import { TOKEN_LENGTH } from '../token/constants.js';
import { tokenCheck } from './check.js';
import {
  DEFAULT_COMPANY_ID,
  FRAME_CHECK_LENGTH,
  FRAME_CHUNK_LENGTH,
  FRAME_COUNT,
} from './layout.js';
import { type TokenFrame, findManufacturerPayload, parseFramePayload } from './parse.js';

export interface ReassemblerOptions {
  /** Manufacturer company ID the beacons advertise under. */
  readonly companyId?: number;
  /** Half-assembled tokens kept at once, over all sources. */
  readonly maxPending?: number;
  /** Half-assembled tokens kept per BLE source address. */
  readonly maxPendingPerSource?: number;
  /** A half token older than this (since its first fragment) is dropped. */
  readonly pendingTimeoutMs?: number;
  /** Completed tokens remembered so their repeated fragments are not emitted again. */
  readonly recentCapacity?: number;
  readonly recentTtlMs?: number;
  /** Sources that completed a token lately, protected when a flood fills the pending table. */
  readonly provenCapacity?: number;
}

/** What happened to each frame pushed; a relay shows these in its status. */
export interface ReassemblerStats {
  frames: number;
  notOurs: number;
  duplicate: number;
  conflict: number;
  evicted: number;
  expired: number;
  dropped: number;
  checkFailed: number;
  completed: number;
}

interface Pending {
  readonly source: string;
  readonly firstSeen: number;
  readonly chunks: (Uint8Array | undefined)[];
  filled: number;
}

const DEFAULTS = {
  companyId: DEFAULT_COMPANY_ID,
  maxPending: 64,
  maxPendingPerSource: 2,
  // A token is advertised for one cadence (60 s by default); allow a late scan window on top.
  pendingTimeoutMs: 90_000,
  recentCapacity: 256,
  recentTtlMs: 5 * 60_000,
  provenCapacity: 64,
} as const;

function fingerprint(source: string, index: number, chunk: Uint8Array): string {
  return `${source}\u0000${index}\u0000${bytesToHex(chunk)}`;
}

function newStats(): ReassemblerStats {
  return {
    frames: 0,
    notOurs: 0,
    duplicate: 0,
    conflict: 0,
    evicted: 0,
    expired: 0,
    dropped: 0,
    checkFailed: 0,
    completed: 0,
  };
}

/**
 * Reassembles tokens from the raw advertising data of any BLE device. Never throws, never emits a
 * token whose fragments were not all sent together (the 4-byte check), and never holds more than
 * the configured number of half tokens, whatever it is fed.
 */
export class TokenReassembler {
  readonly stats: ReassemblerStats = newStats();
  readonly #opt: Required<ReassemblerOptions>;
  // Map iteration order is insertion order, so the first entries are always the oldest.
  readonly #pending = new Map<string, Pending>();
  readonly #perSource = new Map<string, number>();
  // Fingerprints (source, index, exact bytes) of the fragments of recently emitted tokens.
  readonly #recent = new Map<string, number>();
  readonly #proven = new Map<string, number>();

  constructor(options: ReassemblerOptions = {}) {
    this.#opt = { ...DEFAULTS, ...options };
  }

  /** Feed one advertisement (raw AD structures) heard from `source` at `nowMs`; returns a completed token or null. */
  push(source: string, advertisingData: Uint8Array, nowMs: number): Uint8Array | null {
    try {
      this.stats.frames++;
      if (typeof source !== 'string' || !(advertisingData instanceof Uint8Array))
        return this.#notOurs();
      const payload = findManufacturerPayload(advertisingData, this.#opt.companyId);
      return payload ? this.#accept(source, payload, nowMs) : this.#notOurs();
    } catch {
      // Unreachable by design; a relay must keep scanning whatever a neighbour broadcasts.
      return this.#notOurs();
    }
  }

  /** Feed manufacturer data already split out by the platform (the bytes after the company ID). */
  pushManufacturerPayload(source: string, payload: Uint8Array, nowMs: number): Uint8Array | null {
    try {
      this.stats.frames++;
      if (typeof source !== 'string' || !(payload instanceof Uint8Array)) return this.#notOurs();
      return this.#accept(source, payload, nowMs);
    } catch {
      return this.#notOurs();
    }
  }

  /** Current table sizes, for status output and for tests of the memory bound. */
  sizes(): { pending: number; sources: number; recent: number; proven: number } {
    return {
      pending: this.#pending.size,
      sources: this.#perSource.size,
      recent: this.#recent.size,
      proven: this.#proven.size,
    };
  }

  #notOurs(): null {
    this.stats.notOurs++;
    return null;
  }

  #accept(source: string, payload: Uint8Array, now: number): Uint8Array | null {
    const frame = parseFramePayload(payload);
    if (!frame) return this.#notOurs();
    if (!Number.isFinite(now)) return this.#notOurs();
    this.#expire(now);

    const key = `${source}\u0000${frame.tokenId}`;
    // A repeat of an emitted token is dropped; a new token that reused the ID goes on.
    const emittedAt = this.#recent.get(fingerprint(source, frame.index, frame.chunk));
    if (emittedAt !== undefined && now - emittedAt <= this.#opt.recentTtlMs) {
      this.stats.duplicate++;
      return null;
    }

    let pending = this.#pending.get(key);
    if (pending) {
      const have = pending.chunks[frame.index];
      if (have) {
        if (constantTimeEqual(have, frame.chunk)) {
          this.stats.duplicate++;
          return null;
        }
        // Same source and ID but other bytes: a newer token reused the ID; the newer one wins.
        this.stats.conflict++;
        this.#remove(key, pending);
        pending = undefined;
      }
    }
    if (!pending) {
      if (!this.#makeRoom(source)) {
        this.stats.dropped++;
        return null;
      }
      pending = {
        source,
        firstSeen: now,
        chunks: new Array<Uint8Array | undefined>(FRAME_COUNT),
        filled: 0,
      };
      this.#pending.set(key, pending);
      this.#perSource.set(source, (this.#perSource.get(source) ?? 0) + 1);
    }
    pending.chunks[frame.index] = frame.chunk.slice();
    pending.filled++;
    return pending.filled === FRAME_COUNT ? this.#complete(key, pending, frame, now) : null;
  }

  #complete(key: string, pending: Pending, frame: TokenFrame, now: number): Uint8Array | null {
    this.#remove(key, pending);
    const whole = new Uint8Array(FRAME_COUNT * FRAME_CHUNK_LENGTH);
    pending.chunks.forEach((chunk, i) => whole.set(chunk as Uint8Array, i * FRAME_CHUNK_LENGTH));
    const token = whole.slice(0, TOKEN_LENGTH);
    const check = whole.subarray(TOKEN_LENGTH, TOKEN_LENGTH + FRAME_CHECK_LENGTH);
    if (
      !constantTimeEqual(tokenCheck(token), check) ||
      (((token[0] as number) << 8) | (token[1] as number)) !== frame.tokenId
    ) {
      this.stats.checkFailed++;
      return null;
    }
    pending.chunks.forEach((chunk, i) =>
      this.#remember(
        this.#recent,
        fingerprint(pending.source, i, chunk as Uint8Array),
        now,
        this.#opt.recentCapacity * FRAME_COUNT,
      ),
    );
    this.#remember(this.#proven, pending.source, now, this.#opt.provenCapacity);
    this.stats.completed++;
    return token;
  }

  /** Drop half tokens past their timeout; the oldest come first in the map. */
  #expire(now: number): void {
    for (const [key, p] of this.#pending) {
      if (now - p.firstSeen <= this.#opt.pendingTimeoutMs) break;
      this.#remove(key, p);
      this.stats.expired++;
    }
  }

  /**
   * Make room for one more half token from `source`. Over its own quota a source displaces only
   * itself; when the table is full an unproven source's oldest entry goes first, and an unproven
   * newcomer never displaces a source that has completed tokens.
   */
  #makeRoom(source: string): boolean {
    if ((this.#perSource.get(source) ?? 0) >= this.#opt.maxPendingPerSource) {
      this.#evictOldest((p) => p.source === source);
    }
    if (this.#pending.size < this.#opt.maxPending) return true;
    if (this.#evictOldest((p) => !this.#proven.has(p.source))) return true;
    return this.#proven.has(source) && this.#evictOldest(() => true);
  }

  #evictOldest(match: (p: Pending) => boolean): boolean {
    for (const [key, p] of this.#pending) {
      if (match(p)) {
        this.#remove(key, p);
        this.stats.evicted++;
        return true;
      }
    }
    return false;
  }

  #remove(key: string, p: Pending): void {
    this.#pending.delete(key);
    const n = (this.#perSource.get(p.source) ?? 1) - 1;
    if (n <= 0) this.#perSource.delete(p.source);
    else this.#perSource.set(p.source, n);
  }

  /** Bounded LRU insert: re-inserting moves the key to the newest end. */
  #remember(map: Map<string, number>, key: string, now: number, capacity: number): void {
    map.delete(key);
    map.set(key, now);
    while (map.size > capacity) {
      const oldest = map.keys().next().value;
      if (oldest === undefined) break;
      map.delete(oldest);
    }
  }
}
