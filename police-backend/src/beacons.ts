import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Queryable } from '../../backend-kit/db.js';
import { ApiError, conflict, notFound } from '../../backend-kit/errors.js';

export const beaconIdSchema = z.string().regex(/^[A-Za-z0-9-]{1,32}$/);

export const registerBeaconSchema = z.strictObject({
  beaconId: beaconIdSchema,
  address: z.string().trim().min(3).max(300),
  caseRef: z.string().trim().min(1).max(64),
});

export type BeaconStatus = 'registered' | 'enable_pending' | 'monitoring' | 'end_pending' | 'ended';

export interface Beacon {
  readonly beaconId: string;
  readonly address: string;
  readonly caseRef: string;
  readonly installedBy: string;
  readonly installedAt: number;
  readonly endedAt: number | null;
  readonly status: BeaconStatus;
  readonly lastError: string | null;
}

interface Row {
  id: string;
  beacon_id: string;
  address: string;
  case_ref: string;
  username: string;
  installed_at: number;
  ended_at: number | null;
  status: BeaconStatus;
  last_error: string | null;
}

const SELECT = `SELECT b.id, b.beacon_id, b.address, b.case_ref, o.username, b.installed_at, b.ended_at, b.status, b.last_error
  FROM beacons b JOIN officers o ON o.id = b.installed_by`;

const toBeacon = (r: Row): Beacon => ({
  beaconId: r.beacon_id,
  address: r.address,
  caseRef: r.case_ref,
  installedBy: r.username,
  installedAt: r.installed_at,
  endedAt: r.ended_at,
  status: r.status,
  lastError: r.last_error,
});

export async function listBeacons(db: Queryable): Promise<Beacon[]> {
  const { rows } = await db.query<Row>(
    `${SELECT} ORDER BY b.status = 'ended', b.installed_at DESC LIMIT 1000`,
  );
  return rows.map(toBeacon);
}

/** The beacon record currently in use for this ID (or, if none, the latest), with its row id. */
export async function findBeacon(
  db: Queryable,
  beaconId: string,
): Promise<{ id: string; beacon: Beacon } | undefined> {
  const { rows } = await db.query<Row>(
    `${SELECT} WHERE b.beacon_id = $1 ORDER BY b.status = 'ended', b.installed_at DESC LIMIT 1`,
    [beaconId],
  );
  const r = rows[0];
  return r ? { id: r.id, beacon: toBeacon(r) } : undefined;
}

export async function registerBeacon(
  tx: Queryable,
  input: z.infer<typeof registerBeaconSchema>,
  officerId: string,
  now: number,
): Promise<Beacon> {
  const { rows } = await tx.query(
    "SELECT 1 FROM beacons WHERE beacon_id = $1 AND status <> 'ended'",
    [input.beaconId],
  );
  if (rows.length) throw conflict('BEACON_EXISTS');
  await tx.query(
    "INSERT INTO beacons (id, beacon_id, address, case_ref, installed_by, installed_at, status, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'registered', $6)",
    [randomUUID(), input.beaconId, input.address, input.caseRef, officerId, now],
  );
  return (await findBeacon(tx, input.beaconId))?.beacon as Beacon;
}

/** Ask the app backend to enable or end monitoring: status goes pending and a command is queued. */
export async function requestMonitoring(
  tx: Queryable,
  beaconId: string,
  action: 'enable' | 'end',
  now: number,
): Promise<Beacon> {
  const found = await findBeacon(tx, beaconId);
  if (!found || found.beacon.status === 'ended') throw notFound('NO_SUCH_BEACON');
  const allowed =
    action === 'enable'
      ? ['registered', 'enable_pending']
      : ['registered', 'enable_pending', 'monitoring', 'end_pending'];
  if (!allowed.includes(found.beacon.status)) throw new ApiError(409, 'ILLEGAL_TRANSITION');
  await tx.query('UPDATE beacons SET status = $2, updated_at = $3 WHERE id = $1', [
    found.id,
    action === 'enable' ? 'enable_pending' : 'end_pending',
    now,
  ]);
  await tx.query(
    'INSERT INTO commands (id, beacon_record, action, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)',
    [randomUUID(), found.id, action, now],
  );
  return (await findBeacon(tx, beaconId))?.beacon as Beacon;
}
