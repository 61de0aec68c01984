import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Database, Queryable } from '../../backend-kit/db.js';
import { badRequest, conflict, notFound } from '../../backend-kit/errors.js';
import { hexToBytes } from '../../protocol/bytes.js';
import { sealBeaconKey, sealDerivedKeys } from './kek.js';
import { hashKey } from '../../protocol/presence.js';
import { deriveKeyMaterial } from '../../protocol/token/keys.js';

/** K_enc ‖ K_mac sealed for the validator; the derived bytes are wiped once sealed. */
function sealedDerived(kek: Buffer, beaconId: string, skBeacon: Uint8Array): Buffer {
  const { kEnc, kMac } = deriveKeyMaterial(skBeacon);
  try {
    return sealDerivedKeys(kek, beaconId, kEnc, kMac);
  } finally {
    kEnc.fill(0);
    kMac.fill(0);
  }
}

const hex32 = z.string().regex(/^[0-9a-f]{64}$/);
export const beaconIdSchema = z.string().regex(/^[A-Za-z0-9-]{1,32}$/);

export const registerSchema = z.strictObject({
  skTPast: hex32,
  tPast: z.number().int().min(0).max(0xffffffff),
  beaconId: beaconIdSchema,
  skBeacon: hex32,
  windowSeconds: z.number().int().min(120).max(86_400).optional(),
});

export type Registration = z.infer<typeof registerSchema>;

/** Parse a JSON body against a schema; any problem is one stable code. */
export function parseBody<T>(schema: z.ZodType<T>, raw: Buffer, code: string): T {
  let json: unknown;
  try {
    json = raw.length ? JSON.parse(raw.toString('utf8')) : {};
  } catch {
    throw badRequest('BAD_JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw badRequest(code);
  return parsed.data;
}

/** Advisory-lock namespace (two-key form) for one beacon's register, enable and end. */
const BEACON_LIFECYCLE_LOCK = 0x5b_0001;

/**
 * Registration, enable and end of one beacon run one at a time: without it a registration and an
 * enable arriving together each miss the other's uncommitted row, the enable is kept as pending
 * and never applied, and the quarantine is never monitored (found by the soak).
 */
async function lockBeacon(tx: Queryable, beaconId: string): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [
    BEACON_LIFECYCLE_LOCK,
    beaconId,
  ]);
}

/** Store a quarantine: H(SK_T_PAST) only, SK_BEACON sealed under the KEK. Applies an enable that came first. */
export async function registerQuarantine(
  tx: Queryable,
  kek: Buffer,
  r: Registration,
  windowDefault: number,
  now: number,
): Promise<string> {
  await lockBeacon(tx, r.beaconId);
  const keyHash = hashKey(hexToBytes(r.skTPast));
  const { rows: clash } = await tx.query<{ beacon_id: string; sk_t_past_hash: string }>(
    `SELECT beacon_id, sk_t_past_hash FROM quarantines WHERE state <> 'ended' AND (beacon_id = $1 OR sk_t_past_hash = $2) FOR UPDATE`,
    [r.beaconId, keyHash],
  );
  if (clash.some((c) => c.beacon_id === r.beaconId)) throw conflict('BEACON_IN_USE');
  if (clash.length) throw conflict('KEY_IN_USE');
  const id = randomUUID();
  const { rows: pending } = await tx.query<{ enabled_at: number }>(
    'DELETE FROM pending_enables WHERE beacon_id = $1 RETURNING enabled_at',
    [r.beaconId],
  );
  const enabledAt = pending[0]?.enabled_at ?? null;
  const skBeacon = hexToBytes(r.skBeacon);
  const sealed = sealBeaconKey(kek, r.beaconId, skBeacon);
  const sealedKeys = sealedDerived(kek, r.beaconId, skBeacon);
  skBeacon.fill(0); // sealed twice: no clear copy outlives this line
  const windowSeconds = r.windowSeconds ?? windowDefault;
  await tx.query(
    `INSERT INTO quarantines (id, beacon_id, sk_t_past_hash, t_past, sk_beacon_sealed, keys_sealed, window_seconds, state, registered_at, enabled_at, offset_updated_at, deadline, status_changed_at)
     VALUES ($1, $2, $3, $4, $5, $11, $6, $7, $8, $9, $8, $10, $8)`,
    [
      id,
      r.beaconId,
      keyHash,
      r.tPast,
      sealed,
      windowSeconds,
      enabledAt === null ? 'registered' : 'monitoring',
      now,
      enabledAt,
      enabledAt === null ? null : now + windowSeconds * 1000,
      sealedKeys,
    ],
  );
  return id;
}

/** Start monitoring (police backend). Idempotent; remembered if the registration has not arrived yet. */
export async function enableMonitoring(
  db: Database,
  beaconId: string,
  now: number,
): Promise<'monitoring' | 'pending'> {
  return db.transaction(async (tx) => {
    await lockBeacon(tx, beaconId);
    const { rows } = await tx.query<{ id: string; state: string; window_seconds: number }>(
      `SELECT id, state, window_seconds FROM quarantines WHERE beacon_id = $1 AND state <> 'ended' FOR UPDATE`,
      [beaconId],
    );
    const q = rows[0];
    if (!q) {
      await tx.query(
        'INSERT INTO pending_enables (beacon_id, enabled_at) VALUES ($1, $2) ON CONFLICT DO NOTHING',
        [beaconId, now],
      );
      return 'pending';
    }
    if (q.state === 'registered') {
      await tx.query(
        `UPDATE quarantines SET state = 'monitoring', enabled_at = $2, status_changed_at = $2, deadline = COALESCE(last_presence_at, $2) + window_seconds * 1000 WHERE id = $1`,
        [q.id, now],
      );
    }
    return 'monitoring';
  });
}

/** End a quarantine: monitoring stops and both keys are deleted at once. Returns the ended id, if any. */
export async function endQuarantine(tx: Queryable, beaconId: string, now: number): Promise<string> {
  await lockBeacon(tx, beaconId);
  await tx.query('DELETE FROM pending_enables WHERE beacon_id = $1', [beaconId]);
  const { rows } = await tx.query<{ id: string }>(
    `UPDATE quarantines SET state = 'ended', ended_at = $2, status_changed_at = $2, sk_t_past_hash = NULL, sk_beacon_sealed = NULL, keys_sealed = NULL, deadline = NULL, open_alert_id = NULL
      WHERE beacon_id = $1 AND state <> 'ended' RETURNING id`,
    [beaconId, now],
  );
  const id = rows[0]?.id;
  if (!id) throw notFound('NO_ACTIVE_QUARANTINE');
  await tx.query(
    'UPDATE alerts SET closed_at = $2 WHERE quarantine_id = $1 AND closed_at IS NULL',
    [id, now],
  );
  return id;
}
