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
  type Stored,
  type Write,
  applyEffects,
  loadByKeyHash,
  lockStates,
  saveAlertIds,
  saveStates,
  toWrite,
} from './store.js';

type QueuedRequest = PresenceRequest & { readonly registered: boolean };

/** How much accepted presence may wait for validation before new requests are shed (503). */
export interface QueueBound {
  /** Requests: a registered key's token-less request is queued too (its relay is alive). */
  readonly maxRequests: number;
  /** Tokens, ~170 bytes each queued: what bounds memory when validation stalls under a flood. */
  readonly maxTokens: number;
}

/** ~30 s of national load (3,300 requests/s, ~5 tokens each) with the database away: ≤ ~90 MB. */
export const QUEUE_BOUND: QueueBound = { maxRequests: 200_000, maxTokens: 500_000 };

const tokensIn = (requests: readonly QueuedRequest[]): number =>
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
): Promise<Decided[]> {
  try {
    return await db.transaction((tx) => writeBatch(tx, stored, input, rules, now));
  } catch (err) {
    if (!(err instanceof StaleRead)) throw err;
  }
  return db.transaction(async (tx) =>
    writeBatch(
      tx,
      await lockStates(
        tx,
        stored.map((s) => s.state.id),
      ),
      input,
      rules,
      now,
    ),
  );
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
  readonly #queue: QueuedRequest[] = [];
  #queuedTokens = 0;
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
    },
  ) {
    this.#keys = new KeyCache(deps.kek);
  }

  /**
   * False when the queue is full: the caller sheds load before accepting the request. `registered`
   * (from the status cache) lets a token-less request of a registered key count as its relay
   * being alive, without looking up the token-less dummies everyone else sends.
   */
  enqueue(request: PresenceRequest, registered = false): boolean {
    const { maxRequests, maxTokens } = this.deps.bound;
    // One check for every request, whatever it carries (room for the largest is kept), so
    // shedding answers dummies and real requests alike.
    if (
      this.#queue.length >= maxRequests ||
      this.#queuedTokens > maxTokens - MAX_TOKENS_PER_REQUEST
    )
      return false;
    // Nothing to verify or record (a dummy): admitted, never queued.
    if (!registered && request.tokens.length === 0) return true;
    this.#queue.push({ ...request, registered });
    this.#queuedTokens += request.tokens.length;
    this.deps.metrics.queueDepth.set(this.#queue.length);
    return true;
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
    const failed: { n: number; batch: QueuedRequest[] }[] = [];
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
    // Database trouble must not lose accepted presence: retry it, in order, on the next flush.
    const back = failed.sort((a, b) => a.n - b.n).flatMap((f) => f.batch);
    const kept = back.slice(0, Math.max(0, this.deps.bound.maxRequests - this.#queue.length));
    this.#queue.unshift(...kept);
    this.#queuedTokens += tokensIn(kept);
    throw error;
  }

  async #processBatch(batch: QueuedRequest[]): Promise<void> {
    const { db, metrics } = this.deps;
    metrics.queueDepth.set(this.#queue.length);
    const hashes = [
      ...new Set(batch.filter((r) => r.tokens.length || r.registered).map((r) => r.keyHash)),
    ];
    if (!hashes.length) return;
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
    if (!stored.length) return;
    const input = new Map<string, BatchInput>();
    for (const [id, tokens] of tokensOf)
      input.set(id, {
        tokens,
        seen: { invalidTokens: invalidOf.get(id), requestAt: requestAt.get(id) },
      });
    const decided = await applyPresence(db, stored, input, this.deps.rules, this.deps.clock());
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
