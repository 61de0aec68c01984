import type { PresenceStatus } from '../../protocol/presence-status.js';
import { type Absence, type StatusInput, relayStatus } from './lifecycle.js';

// Rows live in chunks of 2^16 slots, one typed array per column: 49 bytes a row, plus 4-byte cells
// in two indexes kept 3/8 to 3/4 full (~68 bytes a row at a million); growing never copies rows.
const CHUNK_BITS = 16;
const CHUNK = 1 << CHUNK_BITS;
const IN_CHUNK = CHUNK - 1;
/** The indexes double past 3/4 full: linear probing stays short below that. */
const MAX_LOAD = 0.75;

// What relayStatus reads from a row, by kind: a = the time it shows, b = the second number it needs.
const FREE = 0;
const REGISTERED = 1;
/** No gap: a = last presence (NaN: none), b = window seconds. */
const CLEAR = 2;
/** a = gap start, b = deadline (NaN: none). */
const PROVISIONAL = 3;
/** a = gap start. */
const CONFIRMED = 4;

class Chunk {
  /** The first 16 bytes of H(SK_T_PAST), as four 32-bit words. */
  readonly key = new Int32Array(4 * CHUNK);
  /** The quarantine's UUID, as four 32-bit words. */
  readonly id = new Int32Array(4 * CHUNK);
  readonly kind = new Uint8Array(CHUNK);
  readonly a = new Float64Array(CHUNK);
  readonly b = new Float64Array(CHUNK);
}

/** Which index: by key (true) or by quarantine id (false). */
type ByKey = boolean;
const KEY = true;
const ID = false;

const HEX = new Int8Array(128).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) HEX[97 + c] = HEX[65 + c] = 10 + c;

/** `n` hex digits of `s` from `at` appended to `v`, as an unsigned word; -1 at a non-digit. */
function hex(s: string, at: number, n: number, v: number): number {
  for (let i = at; i < at + n; i++) {
    const d = HEX[s.charCodeAt(i)] ?? -1;
    if (d < 0) return -1;
    v = ((v << 4) | d) >>> 0;
  }
  return v;
}

/** A key hash must be 64 hex digits (SHA-256); its first 16 bytes go into `out`. */
function parseKey(s: string, out: Int32Array): boolean {
  if (s.length !== 64) return false;
  for (let w = 0; w < 8; w++) {
    const v = hex(s, w * 8, 8, 0);
    if (v < 0) return false;
    if (w < 4) out[w] = v;
  }
  return true;
}

/** A UUID (8-4-4-4-12 hex digits) into four words. */
function parseId(s: string, out: Int32Array): boolean {
  const dash = 45;
  if (
    s.length !== 36 ||
    s.charCodeAt(8) !== dash ||
    s.charCodeAt(13) !== dash ||
    s.charCodeAt(18) !== dash ||
    s.charCodeAt(23) !== dash
  )
    return false;
  const w0 = hex(s, 0, 8, 0);
  const hi1 = hex(s, 9, 4, 0);
  const hi2 = hex(s, 19, 4, 0);
  const w1 = hi1 < 0 ? -1 : hex(s, 14, 4, hi1);
  const w2 = hi2 < 0 ? -1 : hex(s, 24, 4, hi2);
  const w3 = hex(s, 28, 8, 0);
  if (w0 < 0 || w1 < 0 || w2 < 0 || w3 < 0) return false;
  out[0] = w0;
  out[1] = w1;
  out[2] = w2;
  out[3] = w3;
  return true;
}

/** Mixes all four words, so time-ordered UUIDs (v7) spread as well as random ones. */
function hash4(w0: number, w1: number, w2: number, w3: number): number {
  let h =
    w0 ^
    Math.imul(w1, 0x85ebca6b) ^
    Math.imul(w2 ^ (w2 >>> 15), 0xc2b2ae35) ^
    Math.imul(w3 ^ (w3 >>> 13), 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class StatusTableError extends Error {
  constructor(readonly code: 'BAD_KEY_HASH' | 'BAD_QUARANTINE_ID') {
    super(code);
  }
}

const NO_ABSENCES: readonly Absence[] = [];
const orNull = (t: number): number | null => (Number.isNaN(t) ? null : t);

/**
 * Each registered quarantine's relay status inputs in fixed-width typed arrays, found by key hash
 * or by quarantine id through two open-addressing indexes (linear probing, backward-shift
 * deletion). Keys are compared on their first 128 bits: a clash between two registered keys
 * (~10⁻²⁷ at a million) would make the newer hide the older, and guessing a prefix is 2¹²⁸ work.
 */
export class StatusTable {
  readonly #chunks: Chunk[] = [];
  /** Slots handed out so far; freed ones are reused first (a list threaded through column b). */
  #slots = 0;
  #free = -1;
  #size = 0;
  #byKey: Int32Array;
  #byId: Int32Array;
  #mask: number;
  /** Authorised absences, rare: only for rows without a gap (they matter to relayStatus only then). */
  readonly #absences = new Map<number, readonly Absence[]>();
  readonly #k = new Int32Array(4);
  readonly #i = new Int32Array(4);

  constructor(initialCells = 1024) {
    let cells = 16;
    while (cells < initialCells) cells *= 2;
    this.#byKey = new Int32Array(cells);
    this.#byId = new Int32Array(cells);
    this.#mask = cells - 1;
  }

  get size(): number {
    return this.#size;
  }

  /** Bytes held in typed arrays (rows and both indexes); absences are counted by `absenceRows`. */
  get byteLength(): number {
    const chunk = CHUNK * (4 * 4 * 2 + 1 + 8 + 8);
    return this.#chunks.length * chunk + 2 * 4 * (this.#mask + 1);
  }

  get absenceRows(): number {
    return this.#absences.size;
  }

  /** Insert or replace quarantine `id`'s row; another row holding the same key is dropped (it moved). */
  set(id: string, keyHash: string, input: StatusInput): void {
    if (!parseId(id, this.#i)) throw new StatusTableError('BAD_QUARANTINE_ID');
    if (!parseKey(keyHash, this.#k)) throw new StatusTableError('BAD_KEY_HASH');
    let slot = this.#find(ID, this.#i);
    const holder = this.#find(KEY, this.#k);
    if (holder >= 0 && holder !== slot) this.#remove(holder);
    if (slot < 0) {
      if (this.#size + 1 > MAX_LOAD * (this.#mask + 1)) this.#grow();
      slot = this.#allocate();
      this.#write(ID, slot, this.#i);
      this.#write(KEY, slot, this.#k);
      this.#insert(ID, slot);
      this.#insert(KEY, slot);
      this.#size++;
    } else if (holder !== slot) {
      this.#unlink(KEY, slot);
      this.#write(KEY, slot, this.#k);
      this.#insert(KEY, slot);
    }
    this.#encode(slot, input);
  }

  /** Drop quarantine `id`'s row (it ended); false when there was none. */
  delete(id: string): boolean {
    if (!parseId(id, this.#i)) return false;
    const slot = this.#find(ID, this.#i);
    if (slot < 0) return false;
    this.#remove(slot);
    return true;
  }

  has(id: string): boolean {
    return parseId(id, this.#i) && this.#find(ID, this.#i) >= 0;
  }

  /** What the relay with this key hash is told at `now`; undefined when the key is not here. */
  status(keyHash: string, now: number): PresenceStatus | undefined {
    if (!parseKey(keyHash, this.#k)) return undefined;
    const slot = this.#find(KEY, this.#k);
    return slot < 0 ? undefined : relayStatus(this.#decode(slot), now);
  }

  #encode(slot: number, e: StatusInput): void {
    const c = this.#chunks[slot >>> CHUNK_BITS] as Chunk;
    const s = slot & IN_CHUNK;
    this.#absences.delete(slot);
    if (e.state === 'registered') c.kind[s] = REGISTERED;
    else if (e.gap?.status === 'confirmed') {
      c.kind[s] = CONFIRMED;
      c.a[s] = e.gap.gapStartedAt;
    } else if (e.gap?.status === 'provisional') {
      c.kind[s] = PROVISIONAL;
      c.a[s] = e.gap.gapStartedAt;
      c.b[s] = e.deadline ?? NaN;
    } else {
      c.kind[s] = CLEAR;
      c.a[s] = e.lastPresenceAt ?? NaN;
      c.b[s] = e.windowSeconds;
      if (e.absences.length) this.#absences.set(slot, e.absences);
    }
  }

  /** An input relayStatus answers exactly as it would the stored one (fields it ignores are blank). */
  #decode(slot: number): StatusInput {
    const c = this.#chunks[slot >>> CHUNK_BITS] as Chunk;
    const s = slot & IN_CHUNK;
    const kind = c.kind[s];
    const a = c.a[s] as number;
    const b = c.b[s] as number;
    const gap =
      kind === CONFIRMED || kind === PROVISIONAL
        ? ({ status: kind === CONFIRMED ? 'confirmed' : 'provisional', gapStartedAt: a } as const)
        : null;
    return {
      state: kind === REGISTERED ? 'registered' : 'monitoring',
      windowSeconds: kind === CLEAR ? b : 0,
      lastPresenceAt: kind === CLEAR ? orNull(a) : null,
      gap,
      deadline: kind === PROVISIONAL ? orNull(b) : null,
      absences: kind === CLEAR ? (this.#absences.get(slot) ?? NO_ABSENCES) : NO_ABSENCES,
    };
  }

  #allocate(): number {
    if (this.#free >= 0) {
      const slot = this.#free;
      this.#free = (this.#chunks[slot >>> CHUNK_BITS] as Chunk).b[slot & IN_CHUNK] as number;
      return slot;
    }
    const slot = this.#slots++;
    if (slot >>> CHUNK_BITS >= this.#chunks.length) this.#chunks.push(new Chunk());
    return slot;
  }

  #remove(slot: number): void {
    this.#unlink(KEY, slot);
    this.#unlink(ID, slot);
    const c = this.#chunks[slot >>> CHUNK_BITS] as Chunk;
    c.kind[slot & IN_CHUNK] = FREE;
    c.b[slot & IN_CHUNK] = this.#free;
    this.#free = slot;
    this.#absences.delete(slot);
    this.#size--;
  }

  #words(byKey: ByKey, slot: number): Int32Array {
    const c = this.#chunks[slot >>> CHUNK_BITS] as Chunk;
    return byKey ? c.key : c.id;
  }

  #write(byKey: ByKey, slot: number, w: Int32Array): void {
    this.#words(byKey, slot).set(w, (slot & IN_CHUNK) * 4);
  }

  /** The home cell of a slot's key or id. */
  #home(byKey: ByKey, slot: number): number {
    const words = this.#words(byKey, slot);
    const o = (slot & IN_CHUNK) * 4;
    return (
      hash4(
        words[o] as number,
        words[o + 1] as number,
        words[o + 2] as number,
        words[o + 3] as number,
      ) & this.#mask
    );
  }

  /** The slot whose key (or id) is `w`, or -1. */
  #find(byKey: ByKey, w: Int32Array): number {
    const cells = byKey ? this.#byKey : this.#byId;
    const w0 = w[0] as number;
    const w1 = w[1] as number;
    const w2 = w[2] as number;
    const w3 = w[3] as number;
    for (let i = hash4(w0, w1, w2, w3) & this.#mask; ; i = (i + 1) & this.#mask) {
      const v = cells[i] as number;
      if (v === 0) return -1;
      const slot = v - 1;
      const words = this.#words(byKey, slot);
      const o = (slot & IN_CHUNK) * 4;
      if (words[o] === w0 && words[o + 1] === w1 && words[o + 2] === w2 && words[o + 3] === w3)
        return slot;
    }
  }

  /** Cells hold slot + 1; 0 is empty. */
  #insert(byKey: ByKey, slot: number): void {
    const cells = byKey ? this.#byKey : this.#byId;
    let i = this.#home(byKey, slot);
    while (cells[i] !== 0) i = (i + 1) & this.#mask;
    cells[i] = slot + 1;
  }

  /** Take `slot` out of an index, shifting later cells of its run back so no probe stops short. */
  #unlink(byKey: ByKey, slot: number): void {
    const cells = byKey ? this.#byKey : this.#byId;
    const mask = this.#mask;
    let i = this.#home(byKey, slot);
    while (cells[i] !== slot + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; cells[j] !== 0; j = (j + 1) & mask) {
      const v = cells[j] as number;
      // The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
      if (((j - this.#home(byKey, v - 1)) & mask) >= ((j - i) & mask)) {
        cells[i] = v;
        i = j;
      }
    }
    cells[i] = 0;
  }

  #grow(): void {
    const oldKey = this.#byKey;
    const oldId = this.#byId;
    this.#byKey = new Int32Array(oldKey.length * 2);
    this.#byId = new Int32Array(oldId.length * 2);
    this.#mask = this.#byKey.length - 1;
    for (const v of oldKey) if (v !== 0) this.#insert(KEY, v - 1);
    for (const v of oldId) if (v !== 0) this.#insert(ID, v - 1);
  }
}
