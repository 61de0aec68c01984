import type { Database, Queryable } from '../../backend-kit/db.js';
import type { Logger } from '../../backend-kit/logger.js';
import { authenticateToken } from '../../protocol/token/open.js';
import type { Rules } from './config.js';
import {
  type Decision,
  type Effect,
  type QuarantineState,
  type ReceivedToken,
  type Seen,
  decide,
} from './decide.js';
import { KeyCache } from './key-cache.js';
import type { Metrics } from './metrics.js';
import { MAX_TOKENS_PER_REQUEST, type PresenceRequest } from '../../protocol/presence.js';
import {
  Disowned,
  type JournalKey,
  type PresenceJournal,
  type QueuedRequest,
  keyOf,
} from './journal.js';
import {
  type Stored,
  type Write,
  applyEffects,
  loadByKeyHash,
  lockStates,
  saveAlertIds,
  saveStates,
  toWrite,
} from './store.js';

/** A queued request, with its journal row when it has one (always, in the service). */
type Queued = QueuedRequest & { readonly journal?: JournalKey };

/** How much accepted presence may wait for validation before new requests are shed (503). */
export interface QueueBound {
  /** Requests: a registered key's token-less request is queued too (its relay is alive). */
  readonly maxRequests: number;
  /** Tokens, ~170 bytes each queued: what bounds memory when validation stalls under a flood. */
  readonly maxTokens: number;
}

/** ~30 s of national load (3,300 requests/s, ~5 tokens each) waiting for validation: ≤ ~90 MB. */
export const QUEUE_BOUND: QueueBound = { maxRequests: 200_000, maxTokens: 500_000 };

const tokensIn = (requests: readonly Queued[]): number =>
  requests.reduce((n, r) => n + r.tokens.length, 0);

const BATCH = 2000;
/** Batches written at once, on connections of their own. */
export const PIPELINE = 2;

/** What one batch brought for one quarantine: the tokens that authenticated, and what else it saw. */
export interface BatchInput {
  readonly tokens: readonly ReceivedToken[];
  readonly seen: Seen;
}

/** One quarantine's decision, as committed. */
export interface Decided {
  readonly decision: Decision;
  /** The effects applied (none for a quarantine not yet monitored). */
  readonly effects: readonly Effect[];
}

/** A row was written by someone else between our read and our write. */
class StaleRead extends Error {}

/**
 * Decide and write a batch. First on the row versions already read, without locks: one UPDATE
 * that skips any row written since. Only if one was does the batch run again from the start,
 * under row locks taken in id order (concurrent writers of one quarantine are rare; a lock per
 * row is 2,000 WAL records per batch).
 */
export async function applyPresence(
  db: Database,
  stored: readonly Stored[],
  input: ReadonlyMap<string, BatchInput>,
  rules: Rules,
  now: number,
  /** Run first in each attempt's transaction: the batch's journal rows go with its decisions. */
  release: (tx: Queryable) => Promise<void> = async () => undefined,
): Promise<Decided[]> {
  try {
    return await db.transaction(async (tx) => {
      await release(tx);
      return writeBatch(tx, stored, input, rules, now);
    });
  } catch (err) {
    if (!(err instanceof StaleRead)) throw err;
  }
  return db.transaction(async (tx) => {
    await release(tx);
    return writeBatch(
      tx,
      await lockStates(
        tx,
        stored.map((s) => s.state.id),
      ),
      input,
      rules,
      now,
    );
  });
}

async function writeBatch(
  tx: Queryable,
  stored: readonly Stored[],
  input: ReadonlyMap<string, BatchInput>,
  rules: Rules,
  now: number,
): Promise<Decided[]> {
  // Id order: the UPDATE takes its row locks in this order, as lockStates does.
  const sorted = [...stored].sort((a, b) => (a.state.id < b.state.id ? -1 : 1));
  const decided = sorted.map((before) => {
    const got = input.get(before.state.id);
    const decision = decide(before.state, got?.tokens ?? [], rules, now, got?.seen);
    // Alerts exist only for monitored quarantines; a registered one just learns its beacon.
    const monitoring = before.state.state === 'monitoring';
    const effects = monitoring ? decision.effects : [];
    const next = monitoring ? decision.next : { ...decision.next, fault: null, spoof: null };
    return { before, decision, effects, next };
  });
  const writes: Write[] = [];
  for (const d of decided) {
    const w = toWrite(d.before, d.next);
    // A row with effects is written even if unchanged: its new version tells a concurrent reader.
    if (w.changed || d.effects.length) writes.push(w);
  }
  if ((await saveStates(tx, writes, now)) !== writes.length) throw new StaleRead();
  // Alerts after the rows are held, as every other writer of alerts holds the quarantine first.
  const opened: QuarantineState[] = [];
  for (const d of decided) {
    if (!d.effects.length) continue;
    const next = await applyEffects(tx, d.next, d.effects, now);
    if (next.fault?.id !== d.next.fault?.id || next.spoof?.id !== d.next.spoof?.id)
      opened.push(next);
  }
  await saveAlertIds(tx, opened);
  return decided;
}

/**
 * Validates queued presence after the answer has gone out: crypto first (no locks held), then
 * the rules in one transaction per batch. Failed tokens are counted, never stored.
 */
export class PresenceValidator {
  readonly #queue: Queued[] = [];
  #queuedTokens = 0;
  /** Admitted, being written to the journal: they hold their place in the bound meanwhile. */
  #reservedRequests = 0;
  #reservedTokens = 0;
  readonly #keys: KeyCache;
  #running: Promise<void> | undefined;

  constructor(
    private readonly deps: {
      db: Database;
      kek: Buffer;
      rules: Rules;
      clock: () => number;
      metrics: Metrics;
      log: Logger;
      bound: QueueBound;
      /** Where queued requests are kept until their batch commits (absent: memory only). */
      journal?: PresenceJournal;
    },
  ) {
    this.#keys = new KeyCache(deps.kek);
  }

  /**
   * False when the queue is full: the caller sheds load before accepting the request. Otherwise
   * what to validate, holding its place until push() or cancel() — or undefined for a dummy, which
   * has nothing to verify or record. `registered` (from the status cache) lets a token-less request
   * of a registered key count as its relay being alive, without looking up everyone's dummies.
   */
  admit(request: PresenceRequest, registered = false): QueuedRequest | undefined | false {
    const { maxRequests, maxTokens } = this.deps.bound;
    // One check for every request, whatever it carries (room for the largest is kept), so
    // shedding answers dummies and real requests alike.
    if (
      this.#queue.length + this.#reservedRequests >= maxRequests ||
      this.#queuedTokens + this.#reservedTokens > maxTokens - MAX_TOKENS_PER_REQUEST
    )
      return false;
    if (!registered && request.tokens.length === 0) return undefined;
    this.#reservedRequests++;
    this.#reservedTokens += request.tokens.length;
    return { ...request, registered };
  }

  /** Queue an admitted request (now in the journal) or one taken over from another process. */
  push(entry: Queued, admitted = true): void {
    if (admitted) this.cancel(entry);
    this.#queue.push(entry);
    this.#queuedTokens += entry.tokens.length;
    this.deps.metrics.queueDepth.set(this.#queue.length);
  }

  /** An admitted request that was not kept after all (its journal write failed). */
  cancel(request: QueuedRequest): void {
    this.#reservedRequests--;
    this.#reservedTokens -= request.tokens.length;
  }

  /** Admit and queue at once, without a journal (benchmarks of the answer alone). */
  enqueue(request: PresenceRequest, registered = false): boolean {
    const admitted = this.admit(request, registered);
    if (admitted) this.push(admitted);
    return admitted !== false;
  }

  get depth(): number {
    return this.#queue.length;
  }

  /** Tokens waiting for validation. */
  get queuedTokens(): number {
    return this.#queuedTokens;
  }

  /** Drop cached keys of a quarantine that ended (its keys were deleted). */
  forget(quarantineId: string): void {
    this.#keys.forget(quarantineId);
  }

  /** Process everything queued so far; concurrent calls share one run. A failed batch goes back to the front. */
  async flush(): Promise<void> {
    while (this.#queue.length || this.#running) {
      this.#running ??= this.#drain().finally(() => (this.#running = undefined));
      await this.#running;
    }
  }

  /**
   * Run the queue's batches, two at once: the database then works on two cores. A batch sharing
   * a key with one still running waits for it, so each quarantine's batches keep their order.
   */
  async #drain(): Promise<void> {
    const running = new Map<Promise<void>, ReadonlySet<string>>();
    const failed: { n: number; batch: Queued[] }[] = [];
    let error: unknown;
    for (let n = 0; this.#queue.length && !failed.length; n++) {
      const batch = this.#queue.splice(0, BATCH);
      this.#queuedTokens -= tokensIn(batch);
      const keys = new Set(batch.map((r) => r.keyHash));
      const overlaps = () => [...running.values()].some((s) => [...keys].some((k) => s.has(k)));
      while (running.size >= PIPELINE || (running.size && overlaps()))
        await Promise.race(running.keys());
      if (failed.length) {
        failed.push({ n, batch });
        break;
      }
      const run: Promise<void> = this.#processBatch(batch)
        .catch((err: unknown) => {
          error ??= err;
          failed.push({ n, batch });
        })
        .finally(() => running.delete(run));
      running.set(run, keys);
    }
    await Promise.all(running.keys());
    if (!failed.length) return;
    // Database trouble must not lose accepted presence: retry all of it (the journal holds it
    // too), in order, on the next flush; the bound is exceeded by at most the batches in flight.
    const back = failed.sort((a, b) => a.n - b.n).flatMap((f) => f.batch);
    this.#queue.unshift(...back);
    this.#queuedTokens += tokensIn(back);
    throw error;
  }

  async #processBatch(batch: Queued[]): Promise<void> {
    try {
      await this.#validate(batch);
    } catch (err) {
      if (!(err instanceof Disowned)) throw err;
      // Another process took some rows over (this one looked gone): it validates those, this one the rest.
      const { held } = err;
      const kept = batch.filter((r) => !r.journal || held.has(keyOf(r.journal)));
      this.deps.log.warn({ taken: batch.length - kept.length }, 'journal rows taken over');
      await this.#validate(kept);
    }
  }

  async #validate(batch: Queued[]): Promise<void> {
    const { db, metrics, journal } = this.deps;
    metrics.queueDepth.set(this.#queue.length);
    const keys = batch.flatMap((r) => (r.journal ? [r.journal] : []));
    const release = (tx: Queryable) => journal?.release(tx, keys) ?? Promise.resolve();
    const hashes = [
      ...new Set(batch.filter((r) => r.tokens.length || r.registered).map((r) => r.keyHash)),
    ];
    // Nothing to decide, but the rows still go, in a transaction so a refusal keeps them all.
    if (!hashes.length) return db.transaction(release);
    const byHash = await loadByKeyHash(db, hashes);
    const tokensOf = new Map<string, ReceivedToken[]>();
    // Tokens failing authentication under a quarantine's key: neighbours, noise, or spoofing.
    const invalidOf = new Map<string, number>();
    const requestAt = new Map<string, number>();
    const stored: Stored[] = [];
    for (const request of batch) {
      const q = byHash.get(request.keyHash);
      if (!q) {
        metrics.tokens.inc({ result: 'unknown_key' }, request.tokens.length);
        continue;
      }
      const id = q.state.id;
      requestAt.set(id, Math.max(requestAt.get(id) ?? 0, request.receivedAt));
      const keys = this.#keys.keysFor(id, q.state.beaconId, q.sealedKey, q.sealedDerived);
      let list = tokensOf.get(id);
      if (!list) {
        tokensOf.set(id, (list = []));
        stored.push(q);
      }
      for (const token of request.tokens) {
        const opened = authenticateToken(token, keys);
        if (!opened.ok) {
          metrics.tokens.inc({ result: opened.reason });
          invalidOf.set(id, (invalidOf.get(id) ?? 0) + 1);
          continue;
        }
        list.push({ fields: opened.fields, receivedAt: request.receivedAt });
      }
    }
    if (!stored.length) return db.transaction(release);
    const input = new Map<string, BatchInput>();
    for (const [id, tokens] of tokensOf)
      input.set(id, {
        tokens,
        seen: { invalidTokens: invalidOf.get(id), requestAt: requestAt.get(id) },
      });
    const decided = await applyPresence(
      db,
      stored,
      input,
      this.deps.rules,
      this.deps.clock(),
      release,
    );
    // Counted once the batch committed: a retried batch is not counted twice.
    for (const { decision: d, effects } of decided) {
      metrics.tokens.inc({ result: 'accepted' }, d.accepted);
      metrics.tokens.inc({ result: 'late_evidence' }, d.evidence);
      for (const [reason, n] of Object.entries(d.rejected))
        metrics.tokens.inc({ result: reason }, n);
      for (const e of effects) {
        if (e.type === 'gap_closed') metrics.gaps.inc({ step: e.status });
        else metrics.alerts.inc({ kind: e.type });
      }
    }
  }
}
