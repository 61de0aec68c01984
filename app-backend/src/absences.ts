import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Queryable } from '../../backend-kit/db.js';
import { ApiError, badRequest, notFound } from '../../backend-kit/errors.js';
import type { Rules } from './config.js';
import { absenceProblem } from './lifecycle.js';

// Authorised absences (a test appointment, say): two times and who scheduled them, nothing else —
// the reason stays with whoever scheduled it. The watchdog defers any gap to the absence's end.

const time = z.number().int().min(0).max(8_640_000_000_000);
export const absenceSchema = z.strictObject({ startsAt: time, endsAt: time });
/** The police backend names the absence itself, so a retried request schedules it once. */
export const internalAbsenceSchema = z.strictObject({
  absenceId: z.uuid(),
  startsAt: time,
  endsAt: time,
});

export interface AbsenceView {
  readonly absenceId: string;
  readonly startsAt: number;
  readonly endsAt: number;
  readonly scheduledBy: 'health-authority' | 'police';
  readonly cancelledAt: number | null;
}

async function activeQuarantine(tx: Queryable, beaconId: string): Promise<string> {
  const { rows } = await tx.query<{ id: string }>(
    `SELECT id FROM quarantines WHERE beacon_id = $1 AND state <> 'ended' FOR UPDATE`,
    [beaconId],
  );
  const id = rows[0]?.id;
  if (!id) throw notFound('NO_ACTIVE_QUARANTINE');
  return id;
}

export async function scheduleAbsence(
  tx: Queryable,
  beaconId: string,
  a: { absenceId?: string; startsAt: number; endsAt: number },
  by: AbsenceView['scheduledBy'],
  rules: Rules,
  now: number,
): Promise<AbsenceView> {
  const quarantineId = await activeQuarantine(tx, beaconId);
  if (a.absenceId) {
    const { rows } = await tx.query<{ quarantine_id: string; starts_at: number; ends_at: number }>(
      'SELECT quarantine_id, starts_at, ends_at FROM absences WHERE id = $1',
      [a.absenceId],
    );
    const known = rows[0];
    if (known) {
      // The same request again is answered as before; another one under the same ID is refused.
      if (
        known.quarantine_id !== quarantineId ||
        known.starts_at !== a.startsAt ||
        known.ends_at !== a.endsAt
      )
        throw new ApiError(409, 'ABSENCE_ID_IN_USE');
      return {
        absenceId: a.absenceId,
        startsAt: a.startsAt,
        endsAt: a.endsAt,
        scheduledBy: by,
        cancelledAt: null,
      };
    }
  }
  if (absenceProblem(a, rules, now)) throw badRequest('BAD_ABSENCE');
  const absenceId = a.absenceId ?? randomUUID();
  await tx.query(
    'INSERT INTO absences (id, quarantine_id, starts_at, ends_at, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)',
    [absenceId, quarantineId, a.startsAt, a.endsAt, now, by],
  );
  // The relay's status shows the absence; the watchdog sees it when the deadline next falls due.
  await tx.query(`UPDATE quarantines SET status_changed_at = $2 WHERE id = $1`, [
    quarantineId,
    now,
  ]);
  return { absenceId, startsAt: a.startsAt, endsAt: a.endsAt, scheduledBy: by, cancelledAt: null };
}

export async function cancelAbsence(
  tx: Queryable,
  beaconId: string,
  absenceId: string,
  now: number,
): Promise<AbsenceView> {
  const quarantineId = await activeQuarantine(tx, beaconId);
  const { rows } = await tx.query<{
    starts_at: number;
    ends_at: number;
    created_by: AbsenceView['scheduledBy'];
    cancelled_at: number | null;
  }>(
    `UPDATE absences SET cancelled_at = COALESCE(cancelled_at, $3) WHERE id = $1 AND quarantine_id = $2
     RETURNING starts_at, ends_at, created_by, cancelled_at`,
    [absenceId, quarantineId, now],
  );
  const r = rows[0];
  if (!r) throw notFound('NO_SUCH_ABSENCE');
  // A deadline deferred to this absence's end falls back to the window after the last proof.
  await tx.query(
    `UPDATE quarantines SET status_changed_at = $2,
            deadline = CASE WHEN state = 'monitoring' AND open_alert_id IS NULL
                            THEN LEAST(deadline, COALESCE(last_presence_at, enabled_at) + window_seconds * 1000)
                            ELSE deadline END
      WHERE id = $1`,
    [quarantineId, now],
  );
  return {
    absenceId,
    startsAt: r.starts_at,
    endsAt: r.ends_at,
    scheduledBy: r.created_by,
    cancelledAt: r.cancelled_at,
  };
}

/** Current and future absences of a beacon's active quarantine, and those cancelled among them. */
export async function listAbsences(
  db: Queryable,
  beaconId: string,
  now: number,
): Promise<AbsenceView[]> {
  const { rows } = await db.query<{
    id: string;
    starts_at: number;
    ends_at: number;
    created_by: AbsenceView['scheduledBy'];
    cancelled_at: number | null;
  }>(
    `SELECT a.id, a.starts_at, a.ends_at, a.created_by, a.cancelled_at FROM absences a
       JOIN quarantines q ON q.id = a.quarantine_id
      WHERE q.beacon_id = $1 AND q.state <> 'ended' AND a.ends_at > $2 ORDER BY a.starts_at`,
    [beaconId, now],
  );
  if (!rows.length) await activeQuarantine(db, beaconId);
  return rows.map((r) => ({
    absenceId: r.id,
    startsAt: r.starts_at,
    endsAt: r.ends_at,
    scheduledBy: r.created_by,
    cancelledAt: r.cancelled_at,
  }));
}
