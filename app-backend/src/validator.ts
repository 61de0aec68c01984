import type { Database } from '../../backend-kit/db.js';
import type { Logger } from '../../backend-kit/logger.js';
import { authenticateToken } from '../../protocol/token/open.js';
import type { Rules } from './config.js';
import { type QuarantineState, type ReceivedToken, decide } from './decide.js';
import { KeyCache } from './key-cache.js';
import type { Metrics } from './metrics.js';
import type { PresenceRequest } from '../../protocol/presence.js';
import { applyEffects, lockStates, saveStates } from './store.js';

type QueuedRequest = PresenceRequest & { readonly registered: boolean };

/**
 * Validates queued presence after the answer has gone out: crypto first (no locks held), then
 * the rules under row locks in one transaction per batch. Failed tokens are counted, never stored.
 */
export class PresenceValidator {
  readonly #queue: QueuedRequest[] = [];
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
      maxQueue: number;
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
    if (this.#queue.length >= this.deps.maxQueue) return false;
    this.#queue.push({ ...request, registered });
    this.deps.metrics.queueDepth.set(this.#queue.length);
    return true;
  }

  get depth(): number {
    return this.#queue.length;
  }

  /** Drop cached keys of a quarantine that ended (its keys were deleted). */
  forget(quarantineId: string): void {
    this.#keys.forget(quarantineId);
  }

  /** Process everything queued so far; concurrent calls share one run. A failed batch goes back to the front. */
  async flush(): Promise<void> {
    while (this.#queue.length || this.#running) {
      if (!this.#running) {
        const batch = this.#queue.splice(0, 2000);
        this.#running = this.#processBatch(batch)
          .catch((err: unknown) => {
            // Database trouble must not lose accepted presence: retry it on the next flush.
            this.#queue.unshift(
              ...batch.slice(0, Math.max(0, this.deps.maxQueue - this.#queue.length)),
            );
            throw err;
          })
          .finally(() => (this.#running = undefined));
      }
      await this.#running;
    }
  }

  async #processBatch(batch: QueuedRequest[]): Promise<void> {
    const { db, metrics } = this.deps;
    metrics.queueDepth.set(this.#queue.length);
    const hashes = [
      ...new Set(batch.filter((r) => r.tokens.length || r.registered).map((r) => r.keyHash)),
    ];
    if (!hashes.length) return;
    const { rows } = await db.query<{
      id: string;
      beacon_id: string;
      sk_t_past_hash: string;
      sk_beacon_sealed: Uint8Array;
    }>(
      `SELECT id, beacon_id, sk_t_past_hash, sk_beacon_sealed FROM quarantines WHERE sk_t_past_hash = ANY($1::text[]) AND state <> 'ended'`,
      [hashes],
    );
    const byHash = new Map(rows.map((r) => [r.sk_t_past_hash, r]));
    const tokensOf = new Map<string, ReceivedToken[]>();
    // Tokens failing authentication under a quarantine's key: neighbours, noise, or spoofing.
    const invalidOf = new Map<string, number>();
    const requestAt = new Map<string, number>();
    for (const request of batch) {
      const q = byHash.get(request.keyHash);
      if (q) requestAt.set(q.id, Math.max(requestAt.get(q.id) ?? 0, request.receivedAt));
      if (!q) {
        metrics.tokens.inc({ result: 'unknown_key' }, request.tokens.length);
        continue;
      }
      const keys = this.#keys.keysFor(q.id, q.beacon_id, q.sk_beacon_sealed);
      const list = tokensOf.get(q.id) ?? [];
      tokensOf.set(q.id, list);
      for (const token of request.tokens) {
        const opened = authenticateToken(token, keys);
        if (!opened.ok) {
          metrics.tokens.inc({ result: opened.reason });
          invalidOf.set(q.id, (invalidOf.get(q.id) ?? 0) + 1);
          continue;
        }
        list.push({ fields: opened.fields, receivedAt: request.receivedAt });
      }
    }
    if (!tokensOf.size) return;
    const now = this.deps.clock();
    await db.transaction(async (tx) => {
      const states = await lockStates(tx, [...tokensOf.keys()]);
      const decided: QuarantineState[] = [];
      for (const [id, state] of [...states].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const d = decide(state, tokensOf.get(id) ?? [], this.deps.rules, now, {
          invalidTokens: invalidOf.get(id),
          requestAt: requestAt.get(id),
        });
        metrics.tokens.inc({ result: 'accepted' }, d.accepted);
        metrics.tokens.inc({ result: 'late_evidence' }, d.evidence);
        for (const [reason, n] of Object.entries(d.rejected))
          metrics.tokens.inc({ result: reason }, n);
        // Alerts exist only for monitored quarantines; a registered one just learns its beacon.
        const effects = state.state === 'monitoring' ? d.effects : [];
        const next = await applyEffects(tx, d.next, effects, now);
        decided.push(state.state === 'monitoring' ? next : { ...next, fault: null, spoof: null });
        for (const e of effects) {
          if (e.type === 'gap_closed') metrics.gaps.inc({ step: e.status });
          else metrics.alerts.inc({ kind: e.type });
        }
      }
      await saveStates(tx, decided, now);
    });
  }
}
