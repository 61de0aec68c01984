import type { Database } from '../../backend-kit/db.js';
import type { Logger } from '../../backend-kit/logger.js';
import { type MtlsPeer, backoffMs, mtlsPost } from '../../backend-kit/mtls-client.js';
import { type Beacon, findBeacon } from './beacons.js';

/**
 * Send queued enable/end requests to the app backend over mutual TLS, oldest first, retrying with
 * backoff until it confirms; the beacon shows its pending state and the last error meanwhile.
 */
export async function sendCommands(
  db: Database,
  app: MtlsPeer,
  now: () => number,
  log: Logger,
  onChange: (b: Beacon) => void,
): Promise<number> {
  const { rows } = await db.query<{
    id: string;
    beacon_record: string;
    action: 'enable' | 'end';
    attempts: number;
    beacon_id: string;
  }>(
    `SELECT c.id, c.beacon_record, c.action, c.attempts, b.beacon_id FROM commands c JOIN beacons b ON b.id = c.beacon_record
      WHERE c.done_at IS NULL AND c.next_attempt_at <= $1 ORDER BY c.seq LIMIT 20`,
    [now()],
  );
  let done = 0;
  for (const c of rows) {
    let error: string | undefined;
    try {
      const r = await mtlsPost(
        app,
        `/internal/v1/beacons/${encodeURIComponent(c.beacon_id)}/${c.action}`,
        '{}',
      );
      // Ending a quarantine the health authority already ended is done, not failed.
      if (!(r.status >= 200 && r.status < 300) && !(c.action === 'end' && r.status === 404))
        error = `HTTP_${r.status}`;
    } catch (err) {
      error = (err as NodeJS.ErrnoException).code ?? 'NETWORK';
    }
    await db.transaction(async (tx) => {
      if (error === undefined) {
        await tx.query('UPDATE commands SET done_at = $2, attempts = attempts + 1 WHERE id = $1', [
          c.id,
          now(),
        ]);
        await tx.query(
          `UPDATE beacons SET status = $2, ended_at = CASE WHEN $2 = 'ended' THEN $3::bigint ELSE ended_at END, last_error = NULL, updated_at = $3 WHERE id = $1`,
          [c.beacon_record, c.action === 'enable' ? 'monitoring' : 'ended', now()],
        );
      } else {
        await tx.query(
          'UPDATE commands SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE id = $1',
          [c.id, now() + backoffMs(c.attempts + 1), error],
        );
        await tx.query('UPDATE beacons SET last_error = $2, updated_at = $3 WHERE id = $1', [
          c.beacon_record,
          `app backend unreachable (${error}); retrying`,
          now(),
        ]);
      }
    });
    if (error === undefined) done++;
    else log.warn({ action: c.action, error }, 'monitoring command failed; will retry');
    const found = await findBeacon(db, c.beacon_id);
    if (found) onChange(found.beacon);
  }
  return done;
}
