import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Queryable } from '../../backend-kit/db.js';
import { ApiError, badRequest, conflict, notFound } from '../../backend-kit/errors.js';
import { findBeacon } from './beacons.js';

/** The same limits the app backend applies (docs/api.md), so it never refuses what we accept. */
export const MAX_ABSENCE_MS = 24 * 3_600_000;
export const START_SLACK_MS = 60_000;
/** How long an absence that has ended stays in the beacon's list. */
const RECENT_MS = 24 * 3_600_000;

export const absenceBodySchema = z.strictObject({
  startsAt: z.number().int().nonnegative(),
  endsAt: z.number().int().nonnegative(),
  // A short note ("test appointment"); control characters have no place in it.
  reason: z
    .string()
    .trim()
    .max(200)
    .regex(/^[^\p{Cc}]*$/u)
    .optional(),
});

export type AbsenceInput = z.infer<typeof absenceBodySchema>;

/** Why an absence would be refused, or undefined when it is acceptable at `now`. */
export function absenceProblem(a: { startsAt: number; endsAt: number }, now: number) {
  if (a.endsAt <= a.startsAt) return 'ends before it starts';
  if (a.endsAt - a.startsAt > MAX_ABSENCE_MS) return 'longer than 24 hours';
  if (a.endsAt <= now) return 'already over';
  if (a.startsAt < now - START_SLACK_MS) return 'starts in the past';
  return undefined;
}

export type AbsenceDelivery =
  'pending' | 'scheduled' | 'refused' | 'cancel_pending' | 'cancelled' | 'cancel_refused';

export interface Absence {
  readonly id: string;
  readonly beaconId: string;
  readonly startsAt: number;
  readonly endsAt: number;
  readonly reason: string | null;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly cancelledAt: number | null;
  readonly cancelledBy: string | null;
  /** Where the app backend stands on it. */
  readonly delivery: AbsenceDelivery;
  readonly lastError: string | null;
}

interface Row {
  id: string;
  beacon_id: string;
  starts_at: number;
  ends_at: number;
  reason: string | null;
  created_by: string;
  created_at: number;
  cancelled_at: number | null;
  cancelled_by: string | null;
  delivery: AbsenceDelivery;
  last_error: string | null;
}

const SELECT = `SELECT a.id, a.beacon_id, a.starts_at, a.ends_at, a.reason, c.username AS created_by, a.created_at,
    a.cancelled_at, x.username AS cancelled_by, a.delivery, a.last_error
  FROM absences a JOIN officers c ON c.id = a.created_by LEFT JOIN officers x ON x.id = a.cancelled_by`;

const toAbsence = (r: Row): Absence => ({
  id: r.id,
  beaconId: r.beacon_id,
  startsAt: r.starts_at,
  endsAt: r.ends_at,
  reason: r.reason,
  createdBy: r.created_by,
  createdAt: r.created_at,
  cancelledAt: r.cancelled_at,
  cancelledBy: r.cancelled_by,
  delivery: r.delivery,
  lastError: r.last_error,
});

export async function getAbsence(db: Queryable, id: string): Promise<Absence | undefined> {
  const { rows } = await db.query<Row>(`${SELECT} WHERE a.id = $1`, [id]);
  return rows[0] ? toAbsence(rows[0]) : undefined;
}

/** Current and upcoming absences of the beacon in use, and those that ended in the last day. */
export async function listAbsences(
  db: Queryable,
  beaconId: string,
  now: number,
): Promise<Absence[]> {
  const found = await findBeacon(db, beaconId);
  if (!found) throw notFound('NO_SUCH_BEACON');
  const { rows } = await db.query<Row>(
    `${SELECT} WHERE a.beacon_record = $1 AND a.cancelled_at IS NULL AND a.ends_at > $2 ORDER BY a.starts_at, a.created_at LIMIT 200`,
    [found.id, now - RECENT_MS],
  );
  return rows.map(toAbsence);
}

/** Store an absence and queue it for the app backend; only while the beacon is monitored. */
export async function scheduleAbsence(
  tx: Queryable,
  beaconId: string,
  input: AbsenceInput,
  officerId: string,
  now: number,
): Promise<Absence> {
  if (absenceProblem(input, now)) throw badRequest('BAD_ABSENCE');
  const found = await findBeacon(tx, beaconId);
  if (!found || found.beacon.status === 'ended') throw notFound('NO_SUCH_BEACON');
  if (found.beacon.status !== 'monitoring') throw conflict('NOT_MONITORING');
  const id = randomUUID();
  await tx.query(
    `INSERT INTO absences (id, beacon_record, beacon_id, starts_at, ends_at, reason, created_by, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
    [id, found.id, beaconId, input.startsAt, input.endsAt, input.reason || null, officerId, now],
  );
  await queueAbsenceCommand(tx, found.id, 'absence', id, now);
  return (await getAbsence(tx, id)) as Absence;
}

/**
 * Cancel an absence. One the app backend refused is simply marked cancelled; otherwise a cancel
 * command follows the schedule command (the sender keeps them in that order).
 */
export async function cancelAbsence(
  tx: Queryable,
  id: string,
  officerId: string,
  now: number,
): Promise<Absence> {
  const { rows } = await tx.query<{
    beacon_record: string;
    ends_at: number;
    cancelled_at: number | null;
    delivery: AbsenceDelivery;
  }>(
    'SELECT beacon_record, ends_at, cancelled_at, delivery FROM absences WHERE id = $1 FOR UPDATE',
    [id],
  );
  const a = rows[0];
  if (!a) throw notFound('NO_SUCH_ABSENCE');
  if (a.cancelled_at !== null) throw conflict('ABSENCE_CANCELLED');
  if (a.ends_at <= now) throw new ApiError(409, 'ABSENCE_OVER');
  const refused = a.delivery === 'refused';
  await tx.query(
    'UPDATE absences SET cancelled_at = $2, cancelled_by = $3, delivery = $4, updated_at = $2 WHERE id = $1',
    [id, now, officerId, refused ? 'cancelled' : 'cancel_pending'],
  );
  if (!refused) await queueAbsenceCommand(tx, a.beacon_record, 'cancel-absence', id, now);
  return (await getAbsence(tx, id)) as Absence;
}

async function queueAbsenceCommand(
  tx: Queryable,
  beaconRecord: string,
  action: 'absence' | 'cancel-absence',
  absenceId: string,
  now: number,
): Promise<void> {
  await tx.query(
    'INSERT INTO commands (id, beacon_record, action, absence_id, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $5)',
    [randomUUID(), beaconRecord, action, absenceId, now],
  );
}

/** Record the app backend's final answer to a schedule or cancel command. */
export async function recordAbsenceAnswer(
  tx: Queryable,
  id: string,
  action: 'absence' | 'cancel-absence',
  error: string | null,
  now: number,
): Promise<void> {
  if (action === 'absence') {
    // A cancellation made meanwhile stays in charge of the state.
    await tx.query(
      `UPDATE absences SET delivery = $2, last_error = $3, updated_at = $4 WHERE id = $1 AND delivery = 'pending'`,
      [id, error === null ? 'scheduled' : 'refused', error, now],
    );
  } else {
    await tx.query(
      'UPDATE absences SET delivery = $2, last_error = $3, updated_at = $4 WHERE id = $1',
      [id, error === null ? 'cancelled' : 'cancel_refused', error, now],
    );
  }
}

/** A retryable failure: the absence keeps its state and says why it waits. */
export async function recordAbsenceRetry(
  tx: Queryable,
  id: string,
  error: string,
  now: number,
): Promise<void> {
  await tx.query('UPDATE absences SET last_error = $2, updated_at = $3 WHERE id = $1', [
    id,
    error,
    now,
  ]);
}
