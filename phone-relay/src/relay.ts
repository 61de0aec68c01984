/**
 * The phone relay: hears beacon frames, reassembles tokens, keeps them in a bounded buffer on
 * disk, and every few minutes sends them with SK_T_PAST to the app backend, oldest first. An
 * install that is not quarantined runs the same schedule in dummy mode: requests of the same
 * size, to the same endpoint, at the same cadence, with its own random key and no tokens.
 *
 * Holds SK_T_PAST (or the dummy key) and buffered tokens only: never SK_BEACON, never the home
 * address; logs and status never show a token or a key.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_COMPANY_ID } from '../../protocol/frames/layout.js';
import { findManufacturerPayload, parseFramePayload } from '../../protocol/frames/parse.js';
import { type ReassemblerStats, TokenReassembler } from '../../protocol/frames/reassembler.js';
import {
  MAX_TOKENS_PER_REQUEST,
  PRESENCE_RESPONSE_LENGTH,
  encodePresenceBody,
} from '../../protocol/presence.js';
import { type PresenceStatus, openStatus } from '../../protocol/presence-status.js';
import { writeFileAtomic } from './atomic-file.js';
import {
  type BufferedToken,
  DEFAULT_BUFFER_LIMIT,
  DEFAULT_BUFFER_MAX_AGE_MS,
  TokenBuffer,
  tokenHash,
} from './buffer.js';
import { RelayError } from './errors.js';
import { type DummyState, KEY_LENGTH, loadDummyState, saveDummyState } from './keys.js';
import { DEFAULT_RATE_LIMITS, FrameGate, type RateLimits } from './rate-limit.js';
import { type Scheduler, systemScheduler } from './scheduler.js';
import type { BeaconSource } from './sources/source.js';
import { type RelayStatus, type UploadRecord, relayWarning } from './status.js';
import type { PresenceTransport } from './transport.js';

export type RelayMode =
  { readonly kind: 'quarantined'; readonly skTPast: Uint8Array } | { readonly kind: 'dummy' };

export interface RelayOptions {
  /** Where the buffer (and, in dummy mode, the install's key) live; created if missing. */
  readonly stateDir: string;
  readonly mode: RelayMode;
  readonly transport: PresenceTransport;
  /** Where frames come from; not used in dummy mode (nothing to hear). */
  readonly source?: BeaconSource;
  readonly scheduler?: Scheduler;
  /** Uniform [0, 1) for the send schedule's jitter; default: the system CSPRNG. */
  readonly random?: () => number;
  /** Mean time between uploads (default 5 minutes). */
  readonly intervalMs?: number;
  /** Each interval is drawn uniformly from intervalMs × (1 ± jitter) (default 0.1). */
  readonly jitter?: number;
  readonly companyId?: number;
  readonly bufferLimit?: number;
  readonly bufferMaxAgeMs?: number;
  /** Requests sent back to back in one cycle when more than 64 tokens wait (default 4). */
  readonly maxRequestsPerCycle?: number;
  /** The beacon's token cadence: how soon silence is noticed, and dummy mode's modelled backlog. */
  readonly beaconCadenceMs?: number;
  readonly rateLimits?: Partial<RateLimits>;
  /** Human-readable event lines; never given a token or a key. */
  readonly log?: (line: string) => void;
}

export const DEFAULT_INTERVAL_MS = 5 * 60_000;
export const DEFAULT_JITTER = 0.1;
export const DEFAULT_MAX_REQUESTS_PER_CYCLE = 4;
export const BUFFER_FILE = 'buffer.bin';
export const DUMMY_FILE = 'dummy.json';
export const STATUS_FILE = 'status.json';
const MAX_ERRORS_KEPT = 10;

function cryptoRandom(): number {
  // 53 random bits → [0, 1): the schedule's jitter must not be predictable from outside.
  const b = crypto.getRandomValues(new Uint32Array(2));
  return ((b[0] as number) * 2 ** 21 + ((b[1] as number) >>> 11)) / 2 ** 53;
}

function emptyStats(): ReassemblerStats {
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

export class PhoneRelay {
  readonly #o: Required<Omit<RelayOptions, 'source' | 'rateLimits' | 'log'>> & {
    source: BeaconSource | undefined;
    log: (line: string) => void;
  };
  readonly #key: Uint8Array;
  readonly #dummy: DummyState | undefined;
  readonly #buffer: TokenBuffer;
  readonly #gate: FrameGate;
  readonly #shards: TokenReassembler[];
  // SHA-256 of tokens buffered or sent lately: a token replayed from any address goes out once.
  readonly #seen = new Map<string, true>();
  readonly #seenCapacity: number;
  readonly #problems: string[] = [];
  readonly #errors: { at: number; code: string; message: string }[] = [];
  #timer: unknown;
  #nextUploadAt: number | null = null;
  #inFlight: Promise<UploadRecord> | undefined;
  #started = false;
  #lastTokenAt: number | null = null;
  #warned: string | null = null;
  #earsTimer: unknown;
  #lastUpload: UploadRecord | null = null;
  /** What the app backend last told this person, opened with SK_T_PAST (quarantined mode only). */
  #serverStatus: PresenceStatus | null = null;
  #lastSuccessAt: number | null = null;
  readonly #frames = {
    heard: 0,
    notOurs: 0,
    firstSighting: 0,
    newcomerLimited: 0,
    addressLimited: 0,
    globalLimited: 0,
    fed: 0,
  };
  readonly #tokens = { new: 0, duplicate: 0 };
  readonly #uploads = { cycles: 0, ok: 0, failed: 0, requests: 0, tokensDelivered: 0 };

  constructor(options: RelayOptions) {
    const scheduler = options.scheduler ?? systemScheduler;
    this.#o = {
      stateDir: options.stateDir,
      mode: options.mode,
      transport: options.transport,
      source: options.source,
      scheduler,
      random: options.random ?? cryptoRandom,
      intervalMs: options.intervalMs ?? DEFAULT_INTERVAL_MS,
      jitter: options.jitter ?? DEFAULT_JITTER,
      companyId: options.companyId ?? DEFAULT_COMPANY_ID,
      bufferLimit: options.bufferLimit ?? DEFAULT_BUFFER_LIMIT,
      bufferMaxAgeMs: options.bufferMaxAgeMs ?? DEFAULT_BUFFER_MAX_AGE_MS,
      maxRequestsPerCycle: options.maxRequestsPerCycle ?? DEFAULT_MAX_REQUESTS_PER_CYCLE,
      beaconCadenceMs: options.beaconCadenceMs ?? 60_000,
      log: options.log ?? (() => undefined),
    };
    const o = this.#o;
    if (!(o.intervalMs > 0)) throw new RangeError('intervalMs must be positive');
    if (!(o.jitter >= 0 && o.jitter < 1)) throw new RangeError('jitter must be in [0, 1)');
    if (!Number.isInteger(o.maxRequestsPerCycle) || o.maxRequestsPerCycle < 1)
      throw new RangeError('maxRequestsPerCycle must be a positive integer');
    if (o.mode.kind === 'quarantined' && o.mode.skTPast.length !== KEY_LENGTH)
      throw new RangeError('SK_T_PAST must be 32 bytes');
    try {
      mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new RelayError(
        'STATE_DIR',
        `cannot create the state directory ${o.stateDir}: ${(err as Error).message}`,
      );
    }
    const now = scheduler.now();
    if (o.mode.kind === 'quarantined') {
      this.#key = Uint8Array.from(o.mode.skTPast);
    } else {
      const { state, problem } = loadDummyState(join(o.stateDir, DUMMY_FILE), now);
      this.#dummy = state;
      this.#key = state.key;
      if (problem) this.#problem(problem);
    }
    this.#buffer = TokenBuffer.open(join(o.stateDir, BUFFER_FILE), {
      limit: o.bufferLimit,
      maxAgeMs: o.bufferMaxAgeMs,
      now: () => scheduler.now(),
    });
    if (this.#buffer.problem) this.#problem(this.#buffer.problem);
    this.#gate = new FrameGate({ ...DEFAULT_RATE_LIMITS, ...options.rateLimits });
    this.#shards = Array.from(
      { length: this.#gate.limits.shards },
      () => new TokenReassembler({ companyId: o.companyId }),
    );
    this.#seenCapacity = Math.max(256, 2 * o.bufferLimit);
    for (const e of this.#buffer.entries()) this.#remember(e.hash);
  }

  get mode(): RelayMode['kind'] {
    return this.#o.mode.kind;
  }

  /** When the next upload cycle runs (relay clock, ms), or null when stopped. */
  get nextUploadAt(): number | null {
    return this.#nextUploadAt;
  }

  /**
   * Start hearing beacons (quarantined mode) and the upload schedule. The first upload comes
   * after a uniformly random part of one interval, so installs that start together spread out.
   */
  async start(): Promise<void> {
    if (this.#started) return;
    if (this.#o.mode.kind === 'quarantined' && this.#o.source)
      await this.#o.source.start((address, data, now) => this.hear(address, data, now));
    this.#started = true;
    const first = this.#o.random() * this.#o.intervalMs;
    this.#schedule(first);
    if (this.#o.mode.kind === 'quarantined') this.#watchEars();
    this.#o.log(
      `relay started (${this.#o.mode.kind} mode): ${this.#buffer.size} tokens buffered, first upload in ${Math.round(first / 1000)} s`,
    );
    this.#writeStatus();
  }

  /** Stop scanning and the schedule. Everything buffered is already on disk. */
  stop(): void {
    this.#o.source?.stop();
    if (this.#timer !== undefined) this.#o.scheduler.clearTimer(this.#timer);
    if (this.#earsTimer !== undefined) this.#o.scheduler.clearTimer(this.#earsTimer);
    this.#timer = undefined;
    this.#earsTimer = undefined;
    this.#nextUploadAt = null;
    this.#started = false;
    this.#writeStatus();
  }

  /** Resolves when no upload is in flight. */
  async idle(): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
  }

  /**
   * One advertisement heard. Cheap for anything that is not our frame, rate-limited per address
   * and globally, reassembled, and buffered when it completes a token not seen before.
   */
  hear(address: string, data: Uint8Array, now: number): void {
    if (this.#o.mode.kind !== 'quarantined') return;
    const f = this.#frames;
    f.heard++;
    if (typeof address !== 'string' || !(data instanceof Uint8Array) || !Number.isFinite(now)) {
      f.notOurs++;
      return;
    }
    const payload = findManufacturerPayload(data, this.#o.companyId);
    if (!payload || !parseFramePayload(payload)) {
      f.notOurs++;
      return;
    }
    const admission = this.#gate.admit(address, now);
    if (!admission.ok) {
      if (admission.reason === 'first') f.firstSighting++;
      else if (admission.reason === 'newcomer') f.newcomerLimited++;
      else if (admission.reason === 'address') f.addressLimited++;
      else f.globalLimited++;
      return;
    }
    f.fed++;
    const token = (this.#shards[admission.shard] as TokenReassembler).pushManufacturerPayload(
      address,
      payload,
      now,
    );
    if (!token) return;
    const hash = tokenHash(token);
    if (this.#seen.has(hash)) {
      this.#tokens.duplicate++;
      return;
    }
    this.#remember(hash);
    this.#gate.trust(address, now);
    this.#tokens.new++;
    this.#lastTokenAt = now;
    try {
      this.#buffer.add([{ token, heardAt: now }]);
    } catch (err) {
      // Still held in memory; the next successful save writes it too.
      this.#error(now, err);
    }
    this.#writeStatus();
  }

  /** Run one upload cycle now (the schedule calls this; so can a "send now" button). */
  cycle(): Promise<UploadRecord> {
    if (this.#inFlight) return this.#inFlight;
    const run = this.#cycle().finally(() => {
      this.#inFlight = undefined;
    });
    this.#inFlight = run;
    return run;
  }

  async #cycle(): Promise<UploadRecord> {
    const sched = this.#o.scheduler;
    const started = sched.now();
    this.#uploads.cycles++;
    try {
      this.#buffer.expire(started);
    } catch (err) {
      this.#error(started, err);
    }
    const record: {
      at: number;
      ok: boolean;
      requests: number;
      tokens: number;
      batches: { tokens: number; oldestHeardAt: number | null; newestHeardAt: number | null }[];
      error?: { code: string; message: string; status?: number };
    } = { at: started, ok: true, requests: 0, tokens: 0, batches: [] };
    const planned = this.#plannedRequests(started);
    for (let i = 0; i < planned; i++) {
      const batch: BufferedToken[] =
        this.#o.mode.kind === 'quarantined' ? this.#buffer.oldest(MAX_TOKENS_PER_REQUEST) : [];
      const body = encodePresenceBody(
        this.#key,
        batch.map((b) => b.token),
      );
      record.requests++;
      this.#uploads.requests++;
      try {
        const answer = await this.#o.transport.send(body);
        if (answer.status !== 202) throw httpError(answer.status, answer.body);
        if (answer.body.length !== PRESENCE_RESPONSE_LENGTH)
          this.#o.log(`note: the server's answer was ${answer.body.length} bytes, expected 64`);
        if (this.#o.mode.kind === 'quarantined')
          this.#takeStatus(openStatus(this.#key, answer.body));
      } catch (err) {
        const e =
          err instanceof RelayError
            ? err
            : new RelayError('NETWORK', (err as Error)?.message ?? String(err));
        record.ok = false;
        record.error = {
          code: e.code,
          message: e.message,
          ...(e.status === undefined ? {} : { status: e.status }),
        };
        this.#error(sched.now(), e);
        break;
      }
      // Only now, with the server's 202, do these tokens leave the buffer.
      try {
        this.#buffer.remove(batch);
      } catch (err) {
        this.#error(sched.now(), err);
      }
      this.#afterDummySent(sched.now());
      record.tokens += batch.length;
      record.batches.push({
        tokens: batch.length,
        oldestHeardAt: batch[0]?.heardAt ?? null,
        newestHeardAt: batch[batch.length - 1]?.heardAt ?? null,
      });
    }
    if (record.ok) {
      this.#uploads.ok++;
      this.#lastSuccessAt = sched.now();
    } else this.#uploads.failed++;
    this.#uploads.tokensDelivered += record.tokens;
    this.#lastUpload = record;
    this.#o.log(
      record.ok
        ? `upload ok: ${record.tokens} tokens in ${record.requests} request${record.requests === 1 ? '' : 's'}; ${this.#buffer.size} buffered`
        : `upload failed after ${record.requests} request${record.requests === 1 ? '' : 's'} (${record.error?.code}: ${record.error?.message})${this.#o.mode.kind === 'quarantined' ? `; ${this.#buffer.size} tokens kept for later` : ''}`,
    );
    this.#writeStatus();
    return record;
  }

  /**
   * How many requests this cycle: one per 64 tokens waiting (at least one, even with none: the
   * cadence is what an observer sees), at most maxRequestsPerCycle. Dummy mode counts the tokens
   * a beacon would have made since its last 202, so bursts after an outage look alike too.
   */
  #plannedRequests(now: number): number {
    const waiting =
      this.#o.mode.kind === 'quarantined' ? this.#buffer.size : this.#dummyBacklog(now);
    return Math.min(
      this.#o.maxRequestsPerCycle,
      Math.max(1, Math.ceil(waiting / MAX_TOKENS_PER_REQUEST)),
    );
  }

  #dummyBacklog(now: number): number {
    const d = this.#dummy;
    if (!d) return 0;
    const produced = Math.floor((now - d.pendingSince) / this.#o.beaconCadenceMs);
    return Math.max(0, Math.min(this.#backlogCap(), produced));
  }

  #backlogCap(): number {
    const { bufferLimit, bufferMaxAgeMs, beaconCadenceMs } = this.#o;
    return Math.min(bufferLimit, Math.floor(bufferMaxAgeMs / beaconCadenceMs));
  }

  /** A dummy request was taken: the modelled backlog loses up to 64 tokens, as a real one would. */
  #afterDummySent(now: number): void {
    const d = this.#dummy;
    if (!d) return;
    const cadence = this.#o.beaconCadenceMs;
    const cap = this.#backlogCap();
    // Beyond the cap the modelled tokens are dropped, as the real buffer drops its oldest.
    if (now - d.pendingSince > cap * cadence) d.pendingSince = now - cap * cadence;
    d.pendingSince += Math.min(MAX_TOKENS_PER_REQUEST, this.#dummyBacklog(now)) * cadence;
    try {
      saveDummyState(join(this.#o.stateDir, DUMMY_FILE), d);
    } catch (err) {
      this.#error(now, err);
    }
  }

  #schedule(delayMs: number): void {
    const sched = this.#o.scheduler;
    this.#nextUploadAt = sched.now() + delayMs;
    this.#timer = sched.setTimer(() => {
      this.#timer = undefined;
      // The next one is set before this one runs: the cadence does not depend on the network.
      this.#schedule(this.#jittered());
      if (this.#inFlight) {
        this.#o.log('previous upload still running: this cycle skipped');
        return;
      }
      this.cycle().catch((err: unknown) => this.#error(sched.now(), err));
    }, delayMs);
  }

  #jittered(): number {
    const { intervalMs, jitter, random } = this.#o;
    return intervalMs * (1 + jitter * (2 * random() - 1));
  }

  #remember(hash: string): void {
    this.#seen.delete(hash);
    this.#seen.set(hash, true);
    while (this.#seen.size > this.#seenCapacity) {
      const oldest = this.#seen.keys().next().value;
      if (oldest === undefined) break;
      this.#seen.delete(oldest);
    }
  }

  #problem(message: string): void {
    this.#problems.push(message);
    this.#o.log(`warning: ${message}`);
  }

  #error(at: number, err: unknown): void {
    const code = err instanceof RelayError ? err.code : 'INTERNAL';
    const message = err instanceof Error ? err.message : String(err);
    this.#errors.push({ at, code, message });
    if (this.#errors.length > MAX_ERRORS_KEPT) this.#errors.shift();
  }

  /** Reassembler counters summed over the shards. */
  reassemblerStats(): ReassemblerStats {
    const sum = emptyStats();
    for (const r of this.#shards)
      for (const k of Object.keys(sum) as (keyof ReassemblerStats)[]) sum[k] += r.stats[k];
    return sum;
  }

  /** Sizes of everything that grows with what is heard: each is bounded. */
  memory(): RelayStatus['memory'] {
    const pending = this.#shards.reduce((n, r) => n + r.sizes().pending, 0);
    const recent = this.#shards.reduce((n, r) => n + r.sizes().recent, 0);
    return {
      ...this.#gate.sizes(),
      pendingHalfTokens: pending,
      recentFragments: recent,
      seenTokenHashes: this.#seen.size,
      buffered: this.#buffer.size,
    };
  }

  status(): RelayStatus {
    const now = this.#o.scheduler.now();
    const entries = this.#buffer.entries();
    return {
      mode: this.#o.mode.kind,
      running: this.#started,
      now,
      lastTokenAt: this.#lastTokenAt,
      buffer: {
        tokens: this.#buffer.size,
        limit: this.#buffer.limit,
        oldestHeardAt: entries[0]?.heardAt ?? null,
        droppedOldest: this.#buffer.droppedOldest,
        expired: this.#buffer.expired,
      },
      nextUploadAt: this.#nextUploadAt,
      lastUpload: this.#lastUpload,
      serverStatus: this.#serverStatus,
      warning:
        this.#o.mode.kind === 'quarantined'
          ? relayWarning(this.#serverStatus, this.#lastTokenAt, now, this.#o.beaconCadenceMs)
          : null,
      lastSuccessAt: this.#lastSuccessAt,
      uploads: { ...this.#uploads },
      tokens: { ...this.#tokens },
      frames: { ...this.#frames },
      reassembler: this.reassemblerStats(),
      memory: this.memory(),
      problems: [...this.#problems],
      errors: [...this.#errors],
    };
  }

  /** Keep the newest status, then see whether the person must be told something. */
  #takeStatus(status: PresenceStatus | null): void {
    if (!status) return;
    this.#serverStatus = status;
    this.#checkWarning();
  }

  /** Say so in the log when the person must act (once per change of what they are told). */
  #checkWarning(): void {
    if (this.#o.mode.kind !== 'quarantined') return;
    const warning = relayWarning(
      this.#serverStatus,
      this.#lastTokenAt,
      this.#o.scheduler.now(),
      this.#o.beaconCadenceMs,
    );
    // Compare without the minutes counter, so a growing silence is not logged every half minute.
    const key = warning?.replace(/\d+ min/, '') ?? null;
    if (key !== this.#warned && warning) this.#o.log(`WARNING: ${warning}`);
    this.#warned = key;
  }

  /** The ears are checked twice a token period: a silent beacon is told at once, not at the next upload. */
  #watchEars(): void {
    this.#earsTimer = this.#o.scheduler.setTimer(() => {
      this.#checkWarning();
      if (this.#started) this.#watchEars();
    }, this.#o.beaconCadenceMs / 2);
  }

  #writeStatus(): void {
    try {
      writeFileAtomic(
        join(this.#o.stateDir, STATUS_FILE),
        Buffer.from(`${JSON.stringify(this.status(), null, 2)}\n`),
        { mode: 0o600 },
      );
    } catch {
      // Status is a convenience; the relay goes on without it.
    }
  }
}

function httpError(status: number, body: Buffer): RelayError {
  let code = '';
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: unknown };
    if (typeof parsed.error === 'string' && /^[A-Z_]{1,40}$/.test(parsed.error))
      code = parsed.error;
  } catch {
    // Not JSON: the status says enough.
  }
  return new RelayError(
    'HTTP_STATUS',
    `the server answered ${status}${code ? ` ${code}` : ''}, not 202`,
    status,
  );
}
