import type { Database } from '../../backend-kit/db.js';
import type { Logger } from '../../backend-kit/logger.js';
import { type MtlsPeer, backoffMs, mtlsPost } from '../../backend-kit/mtls-client.js';
import type { Metrics } from './metrics.js';

export type DeliveryTarget = MtlsPeer;

const LEASE_MS = 30_000;
const BATCH = 50;

/**
 * Deliver due outbox rows. Rows are leased (not locked) while a request is in flight, so a crash
 * mid-delivery only means a redelivery after the lease; the police backend drops duplicates by
 * idempotency key. Several instances share the work through SKIP LOCKED.
 */
export async function deliverDue(
  db: Database,
  target: DeliveryTarget,
  now: () => number,
  metrics: Metrics,
  log: Logger,
): Promise<number> {
  const claimedAt = now();
  const { rows } = await db.query<{ id: string; seq: number; payload: unknown; attempts: number }>(
    `UPDATE outbox SET lease_until = $1 WHERE id IN (
       SELECT id FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2)
        ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED)
     RETURNING id, seq, payload, attempts`,
    [claimedAt + LEASE_MS, claimedAt, BATCH],
  );
  let delivered = 0;
  for (const row of rows.sort((a, b) => a.seq - b.seq)) {
    const payload = typeof row.payload === 'string' ? row.payload : JSON.stringify(row.payload);
    let error: string | undefined;
    try {
      const { status } = await mtlsPost(target, '/internal/v1/alerts', payload, {
        'idempotency-key': row.id,
      });
      if (status < 200 || status >= 300) error = `HTTP_${status}`;
    } catch (err) {
      error = (err as NodeJS.ErrnoException).code ?? 'NETWORK';
    }
    if (error === undefined) {
      await db.query(
        'UPDATE outbox SET delivered_at = $2, lease_until = NULL, attempts = attempts + 1 WHERE id = $1',
        [row.id, now()],
      );
      metrics.deliveries.inc({ result: 'delivered' });
      delivered++;
    } else {
      await db.query(
        'UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, lease_until = NULL, last_error = $3 WHERE id = $1',
        [row.id, now() + backoffMs(row.attempts + 1), error],
      );
      metrics.deliveries.inc({ result: 'failed' });
      log.warn({ error, attempts: row.attempts + 1 }, 'alert delivery failed; will retry');
    }
  }
  const { rows: pending } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM outbox WHERE delivered_at IS NULL',
  );
  metrics.outboxPending.set(pending[0]?.n ?? 0);
  return delivered;
}
