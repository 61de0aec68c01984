import { request } from 'node:https';
import type { Database } from '../../backend-kit/db.js';
import type { Logger } from '../../backend-kit/logger.js';
import { TLS_DEFAULTS } from '../../backend-kit/tls.js';
import type { Metrics } from './metrics.js';

export interface DeliveryTarget {
  /** Base URL of the police backend's inter-service listener. */
  readonly url: string;
  /** Common name the police backend's certificate must carry. */
  readonly identity: string;
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
}

const LEASE_MS = 30_000;
const BATCH = 50;
const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 5 * 60_000;

/** Exponential backoff with full jitter: attempt n waits a random time up to min(cap, base·2^n). */
export function backoffMs(attempts: number, random: () => number = Math.random): number {
  return Math.round(random() * Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.min(attempts, 20)));
}

/** POST one alert over mutual TLS; resolves with the HTTP status, rejects on network errors. */
function post(target: DeliveryTarget, id: string, payload: string): Promise<number> {
  const url = new URL('/internal/v1/alerts', target.url);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ...TLS_DEFAULTS,
        cert: target.tls.cert,
        key: target.tls.key,
        ca: target.tls.ca,
        // Chain to our CA is not enough: it must be the police backend's own certificate.
        checkServerIdentity: (_host, cert) =>
          cert.subject?.CN === target.identity
            ? undefined
            : new Error('unexpected server identity'),
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          'idempotency-key': id,
        },
        timeout: 10_000,
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

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
      const status = await post(target, row.id, payload);
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
