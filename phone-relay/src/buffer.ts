/**
 * The relay's token buffer: bounded, oldest first, and on disk after every change (atomic
 * replace), so a crash or reboot loses nothing already buffered.
 *
 * File format (all integers big-endian):
 *   "SBRB" ‖ version 0x01 ‖ 3 zero bytes ‖ count (uint32) ‖
 *   count × (heardAt ms (uint64) ‖ token (64 bytes)) ‖ SHA-256 of everything before it
 * Entries are in the order heard. 1,440 entries (the default bound) make 103,724 bytes.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { TOKEN_LENGTH } from '../../protocol/token/constants.js';
import { type AtomicWriteOptions, removeStaleTemporaries, writeFileAtomic } from './atomic-file.js';
import { RelayError } from './errors.js';

/** 24 hours of one-a-minute tokens: as far back as the app backend takes late evidence. */
export const DEFAULT_BUFFER_LIMIT = 1440;
export const DEFAULT_BUFFER_MAX_AGE_MS = 24 * 60 * 60_000;

const MAGIC = Buffer.from('SBRB', 'latin1');
const VERSION = 1;
const HEADER = 12;
const ENTRY = 8 + TOKEN_LENGTH;
const DIGEST = 32;

export interface BufferedToken {
  readonly token: Uint8Array;
  /** When the relay heard it (relay clock, ms). */
  readonly heardAt: number;
  /** SHA-256 of the token, hex: its identity for deduplication and removal. */
  readonly hash: string;
}

export interface TokenBufferOptions {
  /** At most this many tokens; beyond it the oldest are dropped. */
  readonly limit?: number;
  /** Tokens heard longer ago than this are dropped (the app backend would refuse them). */
  readonly maxAgeMs?: number;
  /** Clock for naming a corrupt file moved aside. */
  readonly now?: () => number;
  readonly write?: AtomicWriteOptions;
}

export function tokenHash(token: Uint8Array): string {
  return createHash('sha256').update(token).digest('hex');
}

export function encodeBuffer(entries: readonly BufferedToken[]): Buffer {
  const out = Buffer.alloc(HEADER + entries.length * ENTRY + DIGEST);
  MAGIC.copy(out, 0);
  out[4] = VERSION;
  out.writeUInt32BE(entries.length, 8);
  entries.forEach((e, i) => {
    const at = HEADER + i * ENTRY;
    out.writeBigUInt64BE(BigInt(Math.max(0, Math.round(e.heardAt))), at);
    out.set(e.token, at + 8);
  });
  const body = out.subarray(0, out.length - DIGEST);
  createHash('sha256').update(body).digest().copy(out, body.length);
  return out;
}

/** The entries, or why the bytes are not a buffer file. */
export function decodeBuffer(bytes: Buffer): BufferedToken[] | string {
  if (bytes.length < HEADER + DIGEST) return `too short (${bytes.length} bytes)`;
  if (!bytes.subarray(0, 4).equals(MAGIC)) return 'not a relay buffer file (bad magic)';
  if (bytes[4] !== VERSION) return `unknown format version ${bytes[4]}`;
  const count = bytes.readUInt32BE(8);
  if (bytes.length !== HEADER + count * ENTRY + DIGEST)
    return `length ${bytes.length} does not match ${count} entries`;
  const body = bytes.subarray(0, bytes.length - DIGEST);
  if (!createHash('sha256').update(body).digest().equals(bytes.subarray(body.length)))
    return 'checksum mismatch';
  const entries: BufferedToken[] = [];
  for (let i = 0; i < count; i++) {
    const at = HEADER + i * ENTRY;
    const heardAt = Number(bytes.readBigUInt64BE(at));
    const token = new Uint8Array(bytes.subarray(at + 8, at + ENTRY));
    entries.push({ token, heardAt, hash: tokenHash(token) });
  }
  return entries;
}

export class TokenBuffer {
  readonly limit: number;
  readonly maxAgeMs: number;
  /** Set when the file on disk was unusable and was moved aside at open. */
  readonly problem: string | undefined;
  droppedOldest = 0;
  expired = 0;
  #entries: BufferedToken[];

  private constructor(
    readonly path: string,
    options: TokenBufferOptions,
    entries: BufferedToken[],
    problem: string | undefined,
    private readonly write: AtomicWriteOptions,
  ) {
    this.limit = options.limit ?? DEFAULT_BUFFER_LIMIT;
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_BUFFER_MAX_AGE_MS;
    this.problem = problem;
    this.#entries = entries;
  }

  /**
   * Open (or start) the buffer file. A file that cannot be decoded is moved aside to
   * `<path>.corrupt-<time>` and the buffer starts empty: reported once, never a crash loop.
   */
  static open(path: string, options: TokenBufferOptions = {}): TokenBuffer {
    const limit = options.limit ?? DEFAULT_BUFFER_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('limit must be at least 1');
    let entries: BufferedToken[] = [];
    let problem: string | undefined;
    try {
      removeStaleTemporaries(path);
      if (existsSync(path)) {
        const decoded = decodeBuffer(readFileSync(path));
        if (typeof decoded === 'string') {
          const stamp = new Date((options.now ?? Date.now)()).toISOString().replace(/[:.]/g, '-');
          const aside = `${path}.corrupt-${stamp}`;
          renameSync(path, aside);
          problem = `the token buffer file was unusable (${decoded}); moved aside to ${aside}, starting with an empty buffer`;
        } else entries = decoded;
      }
    } catch (err) {
      throw new RelayError(
        'STATE_DIR',
        `cannot read the token buffer ${path}: ${(err as Error).message}`,
      );
    }
    const buffer = new TokenBuffer(path, options, entries, problem, options.write ?? {});
    if (entries.length > limit) {
      buffer.droppedOldest += entries.length - limit;
      buffer.#entries = entries.slice(entries.length - limit);
      buffer.#save();
    }
    return buffer;
  }

  get size(): number {
    return this.#entries.length;
  }

  entries(): readonly BufferedToken[] {
    return this.#entries;
  }

  /** The oldest `n`, in the order heard. */
  oldest(n: number): BufferedToken[] {
    return this.#entries.slice(0, n);
  }

  /** Append tokens heard now and save; the oldest beyond the bound are dropped. */
  add(items: readonly { token: Uint8Array; heardAt: number }[]): BufferedToken[] {
    if (!items.length) return [];
    const added = items.map((i) => {
      if (i.token.length !== TOKEN_LENGTH) throw new RangeError('a token must be 64 bytes');
      const token = Uint8Array.from(i.token);
      return { token, heardAt: i.heardAt, hash: tokenHash(token) };
    });
    this.#entries.push(...added);
    const over = this.#entries.length - this.limit;
    if (over > 0) {
      this.#entries.splice(0, over);
      this.droppedOldest += over;
    }
    this.#save();
    return added;
  }

  /** Remove tokens the app backend has taken (answered 202 for), and save. */
  remove(sent: readonly BufferedToken[]): void {
    if (!sent.length) return;
    const gone = new Set(sent);
    const before = this.#entries.length;
    this.#entries = this.#entries.filter((e) => !gone.has(e));
    if (this.#entries.length !== before) this.#save();
  }

  /** Drop tokens heard more than maxAgeMs ago; returns how many. */
  expire(now: number): number {
    const keep = this.#entries.filter((e) => now - e.heardAt <= this.maxAgeMs);
    const dropped = this.#entries.length - keep.length;
    if (dropped > 0) {
      this.#entries = keep;
      this.expired += dropped;
      this.#save();
    }
    return dropped;
  }

  #save(): void {
    try {
      writeFileAtomic(this.path, encodeBuffer(this.#entries), { mode: 0o600, ...this.write });
    } catch (err) {
      if (err instanceof RelayError) throw err;
      throw new RelayError(
        'STATE_DIR',
        `cannot write the token buffer ${this.path}: ${(err as Error).message}`,
      );
    }
  }
}
