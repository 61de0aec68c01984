import type { Database } from '../../backend-kit/db.js';
import type { Logger } from '../../backend-kit/logger.js';
import { type MtlsPeer, MtlsClient, backoffMs } from '../../backend-kit/mtls-client.js';
import type { Metrics } from './metrics.js';

export type DeliveryTarget = MtlsPeer;

export interface DeliveryOptions {
  /** Outbox rows claimed by one statement. */
  readonly batch?: number;
  /** Alerts in one POST (the batch route); 1 posts each alone on the single-alert route. */
  readonly perPost?: number;
  /** Posts in flight at once (and keep-alive connections to the police backend). */
  readonly concurrency?: number;
  /** How long a claim holds its rows; past it, another run (or replica) delivers them again. */
  readonly leaseMs?: number;
  /** The backoff's jitter (tests fix it). */
  readonly random?: () => number;
}

export const DELIVERY_DEFAULTS = {
  batch: 512,
  perPost: 64,
  concurrency: 32,
  leaseMs: 30_000,
} as const;

/** How often the pending gauge is counted; in between it follows this replica's deliveries. */
const PENDING_COUNT_MS = 15_000;
/** After a police backend without the batch route (404), one alert per POST for this long. */
const SINGLES_MS = 10 * 60_000;

const SINGLE_PATH = '/internal/v1/alerts';
const BATCH_PATH = '/internal/v1/alert-batches';
/** What the police may put in an item's error: a stable code, never free text into our log. */
const ITEM_ERROR = /^[A-Z][A-Z0-9_]{0,39}$/;

/**
 * Errors of a post that never reached a police backend able to answer (down, restarting, cut off),
 * or that it shed for now (its intake full: 503 OVERLOADED, Retry-After of seconds).
 */
const UNREACHABLE = new Set([
  'HTTP_503',
  'OVERLOADED',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'NETWORK',
]);

/**
 * While the police backend cannot be reached at all, a message is tried again within this, however
 * long the outage: its return is noticed in seconds, not after a backoff grown to minutes (a 90 s
 * outage left alerts waiting 114 s more; test/soak). Other error answers keep the full backoff.
 */
export const UNREACHABLE_RETRY_MS = 10_000;

/** When a failed message is tried again: the backoff, capped (with jitter) while the police is unreachable. */
export function retryDelayMs(error: string, attempts: number, random: () => number): number {
  const backoff = backoffMs(attempts, random);
  if (!UNREACHABLE.has(error) || backoff <= UNREACHABLE_RETRY_MS / 2) return backoff;
  return Math.min(backoff, Math.round(UNREACHABLE_RETRY_MS * (0.5 + random() / 2)));
}

export interface DeliveryRun {
  readonly claimed: number;
  readonly delivered: number;
  readonly failed: number;
}

interface Claimed {
  id: string;
  seq: number;
  payload: string;
  attempts: number;
}

/**
 * Claim due outbox rows in outbox order: the first `batch` due and not leased (skipping rows
 * another replica is claiming), less any with an earlier undelivered message of the same beacon
 * (in flight, backing off or due), so one quarantine's messages reach the police in order, also
 * across replicas: an update never overtakes the alert it refers to, which the police would
 * otherwise drop. Rows are leased, not locked, while posted: a crash only means a redelivery
 * after the lease, and the police backend drops duplicates by alert ID. The check reads only the
 * undelivered rows ahead of the batch (the partial index on seq), not the whole outbox.
 */
const CLAIM = `WITH c AS MATERIALIZED (
    SELECT id, seq, payload->>'beaconId' AS beacon FROM outbox
     WHERE delivered_at IS NULL AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2)
     ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED)
  UPDATE outbox o SET lease_until = $1 FROM c
   WHERE o.id = c.id AND NOT EXISTS (
     SELECT 1 FROM outbox p
      WHERE p.delivered_at IS NULL AND p.seq < c.seq AND p.seq < (SELECT max(seq) FROM c)
        AND p.payload->>'beaconId' = c.beacon)
  RETURNING o.id, o.seq, o.payload::text AS payload, o.attempts`;

/**
 * Every result of a batch in one statement. A failure counts only while the claim is still ours
 * (the lease is its token); a success always does, it happened.
 */
const MARK = `UPDATE outbox o SET
    delivered_at = CASE WHEN u.ok THEN $2::bigint ELSE NULL END,
    attempts = o.attempts + 1,
    lease_until = NULL,
    next_attempt_at = CASE WHEN u.ok THEN o.next_attempt_at ELSE u.next_at END,
    last_error = CASE WHEN u.ok THEN o.last_error ELSE u.error END
  FROM unnest($1::uuid[], $3::boolean[], $4::bigint[], $5::text[]) AS u (id, ok, next_at, error)
  WHERE o.id = u.id AND o.delivered_at IS NULL AND (u.ok OR o.lease_until = $6::bigint)`;

/** Delivers the alert outbox to the police backend: batches claimed, posted concurrently over keep-alive mTLS. */
export class AlertDelivery {
  readonly #client: MtlsClient;
  readonly #batch: number;
  readonly #perPost: number;
  readonly #concurrency: number;
  readonly #leaseMs: number;
  readonly #random: () => number;
  #pending = 0;
  #countedAt = -Infinity;
  #closed = false;
  /** Until when to post one alert per request: the police backend had no batch route. */
  #singlesUntil = -Infinity;

  constructor(
    private readonly db: Database,
    target: DeliveryTarget,
    private readonly now: () => number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    options: DeliveryOptions = {},
  ) {
    this.#batch = options.batch ?? DELIVERY_DEFAULTS.batch;
    this.#perPost = Math.max(1, options.perPost ?? DELIVERY_DEFAULTS.perPost);
    this.#concurrency = options.concurrency ?? DELIVERY_DEFAULTS.concurrency;
    this.#leaseMs = options.leaseMs ?? DELIVERY_DEFAULTS.leaseMs;
    this.#random = options.random ?? Math.random;
    this.#client = new MtlsClient(target, { maxSockets: this.#concurrency });
  }

  /** Batches until one delivers nothing; returns how many were delivered. */
  async drain(): Promise<number> {
    let delivered = 0;
    for (;;) {
      const run = await this.run();
      delivered += run.delivered;
      // Nothing delivered: all failed (backing off) or nothing was due; the timer comes back.
      if (run.delivered === 0 || this.#closed) break;
    }
    await this.#updatePending(delivered);
    return delivered;
  }

  /** One batch: claim, post (several alerts a request, over kept-alive connections), write the results back. */
  async run(): Promise<DeliveryRun> {
    if (this.#closed) return { claimed: 0, delivered: 0, failed: 0 };
    const claimedAt = this.now();
    const lease = claimedAt + this.#leaseMs;
    const { rows } = await this.db.query<Claimed>(CLAIM, [lease, claimedAt, this.#batch]);
    if (!rows.length) return { claimed: 0, delivered: 0, failed: 0 };
    // Oldest first: the police hear of alerts in the order they were decided.
    rows.sort((a, b) => a.seq - b.seq);
    const errors = new Array<string | null>(rows.length).fill(null);
    // A claim holds at most one message per quarantine, so its posts may go in any order at once.
    const size = claimedAt < this.#singlesUntil ? 1 : this.#perPost;
    const posts: number[][] = [];
    for (let i = 0; i < rows.length; i += size)
      posts.push(Array.from({ length: Math.min(size, rows.length - i) }, (_, k) => i + k));
    let next = 0;
    const worker = async () => {
      for (let p = next++; p < posts.length; p = next++) {
        const at = posts[p]!;
        const results = await this.#send(at.map((i) => rows[i]!));
        at.forEach((i, k) => (errors[i] = results[k] ?? null));
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, posts.length) }, worker));

    const at = this.now();
    const failed = errors.filter((e) => e !== null).length;
    // In ID order, so two replicas marking the same rows (a lease that ran out) lock them alike.
    const order = rows.map((_, i) => i).sort((i, j) => (rows[i]!.id < rows[j]!.id ? -1 : 1));
    await this.db.query(MARK, [
      order.map((i) => rows[i]!.id),
      at,
      order.map((i) => errors[i] === null),
      order.map((i) =>
        errors[i] === null
          ? null
          : at + retryDelayMs(errors[i]!, rows[i]!.attempts + 1, this.#random),
      ),
      order.map((i) => errors[i]),
      lease,
    ]);
    if (rows.length - failed)
      this.metrics.deliveries.inc({ result: 'delivered' }, rows.length - failed);
    if (failed) {
      this.metrics.deliveries.inc({ result: 'failed' }, failed);
      const first = errors.find((e) => e !== null);
      // One line per batch: a police backend that is down must not flood the log.
      this.log.warn(
        {
          failed,
          of: rows.length,
          error: first,
          attempts: Math.max(...rows.map((r) => r.attempts + 1)),
        },
        'alert delivery failed; will retry',
      );
    }
    return { claimed: rows.length, delivered: rows.length - failed, failed };
  }

  /** Close the connections to the police backend. */
  close(): void {
    this.#closed = true;
    this.#client.close();
  }

  /** Post messages, as one batch when there are several; per message null when stored, else why not. */
  async #send(rows: Claimed[]): Promise<(string | null)[]> {
    if (rows.length === 1) return [await this.#post(rows[0]!)];
    const batch = await this.#postBatch(rows);
    if (batch !== 'NO_BATCH_ROUTE') return batch;
    if (this.now() >= this.#singlesUntil)
      this.log.info(
        { minutes: SINGLES_MS / 60_000 },
        'police backend has no batch route; posting alerts one by one',
      );
    this.#singlesUntil = this.now() + SINGLES_MS;
    const out: (string | null)[] = [];
    for (const row of rows) out.push(await this.#post(row));
    return out;
  }

  /** Post one message; null when the police backend stored it (or had it already), else why not. */
  async #post(row: Claimed): Promise<string | null> {
    try {
      const { status } = await this.#client.post(SINGLE_PATH, row.payload, {
        'idempotency-key': row.id,
      });
      return status >= 200 && status < 300 ? null : `HTTP_${status}`;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? 'NETWORK';
    }
  }

  /**
   * Post messages in one request; the police answer each in order (idempotent on the alert ID,
   * so a batch sent again stores nothing twice). An answer that does not match the batch fails
   * all of it.
   */
  async #postBatch(rows: Claimed[]): Promise<(string | null)[] | 'NO_BATCH_ROUTE'> {
    const all = (error: string) => rows.map(() => error);
    let answer: { status: number; body: string };
    try {
      answer = await this.#client.post(
        BATCH_PATH,
        `{"alerts":[${rows.map((r) => r.payload).join(',')}]}`,
      );
    } catch (err) {
      return all((err as NodeJS.ErrnoException).code ?? 'NETWORK');
    }
    if (answer.status === 404) return 'NO_BATCH_ROUTE';
    if (answer.status < 200 || answer.status >= 300) return all(`HTTP_${answer.status}`);
    let results: unknown;
    try {
      results = (JSON.parse(answer.body) as { results?: unknown } | null)?.results;
    } catch {
      return all('BAD_ANSWER');
    }
    if (!Array.isArray(results) || results.length !== rows.length) return all('BAD_ANSWER');
    return results.map((r: unknown) => {
      const item = r as { ok?: unknown; error?: unknown } | null;
      if (item?.ok === true) return null;
      return typeof item?.error === 'string' && ITEM_ERROR.test(item.error)
        ? item.error
        : 'BAD_ANSWER';
    });
  }

  /** A full count of the outbox now and then; in between, what this replica delivered is taken off. */
  async #updatePending(delivered: number): Promise<void> {
    const now = this.now();
    if (now - this.#countedAt >= PENDING_COUNT_MS) {
      const { rows } = await this.db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM outbox WHERE delivered_at IS NULL',
      );
      this.#pending = rows[0]?.n ?? 0;
      this.#countedAt = now;
    } else {
      this.#pending = Math.max(0, this.#pending - delivered);
    }
    this.metrics.outboxPending.set(this.#pending);
  }
}
