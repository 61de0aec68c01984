import type { Database } from '../../backend-kit/db.js';
import type { Logger } from '../../backend-kit/logger.js';
import type { Metrics } from './metrics.js';
import { raiseAlert } from './store.js';

const BATCH = 500;

/**
 * Raise NO_PRESENCE for every monitored quarantine whose deadline has passed. Reads only due rows
 * (partial index on deadline) and skips rows another instance holds, so several instances
 * together raise each alert once.
 */
export async function watchdogTick(
  db: Database,
  now: number,
  metrics: Metrics,
  log: Logger,
): Promise<number> {
  let raised = 0;
  for (;;) {
    const n = await db.transaction(async (tx) => {
      const { rows } = await tx.query<{
        id: string;
        beacon_id: string;
        last_presence_at: number | null;
        enabled_at: number | null;
      }>(
        `SELECT id, beacon_id, last_presence_at, enabled_at FROM quarantines
          WHERE state = 'monitoring' AND open_alert_id IS NULL AND deadline <= $1
          ORDER BY deadline LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [now, BATCH],
      );
      for (const r of rows) {
        const gapStartedAt = r.last_presence_at ?? r.enabled_at ?? now;
        const alertId = await raiseAlert(
          tx,
          { id: r.id, beaconId: r.beacon_id },
          { kind: 'NO_PRESENCE', gapStartedAt, detail: { lastPresenceAt: r.last_presence_at } },
          now,
        );
        await tx.query(
          'UPDATE quarantines SET open_alert_id = $2, status_changed_at = $3 WHERE id = $1',
          [r.id, alertId, now],
        );
        metrics.alerts.inc({ kind: 'NO_PRESENCE' });
      }
      return rows.length;
    });
    raised += n;
    if (n < BATCH) break;
  }
  if (raised) log.info({ raised }, 'watchdog raised NO_PRESENCE alerts');
  return raised;
}
