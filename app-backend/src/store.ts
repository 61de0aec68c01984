import { randomUUID } from 'node:crypto';
import type { Queryable } from '../../backend-kit/db.js';
import type { AlertEvent, QuarantineState } from './decide.js';

interface Row {
  id: string;
  beacon_id: string;
  state: QuarantineState['state'];
  window_seconds: number;
  registered_at: number;
  enabled_at: number | null;
  last_presence_at: number | null;
  last_received_at: number | null;
  last_counter: number | null;
  clock_offset_seconds: number;
  offset_updated_at: number;
  battery: number | null;
  flags: number | null;
  deadline: number | null;
  open_alert_id: string | null;
  drift_alerted: boolean;
  low_battery_alerted: boolean;
  gap_alert_id: string | null;
  gap_started_at: number | null;
  gap_closed_at: number | null;
  gap_evidence_until: number | null;
}

/** Lock and load quarantines in id order (a fixed order, so concurrent batches cannot deadlock). */
export async function lockStates(
  tx: Queryable,
  ids: readonly string[],
): Promise<Map<string, QuarantineState>> {
  const sorted = [...new Set(ids)].sort();
  const { rows: locked } = await tx.query<Row>(
    `SELECT q.* FROM quarantines q WHERE q.id = ANY($1::uuid[]) AND q.state <> 'ended' ORDER BY q.id FOR UPDATE`,
    [sorted],
  );
  const { rows: gaps } = await tx.query<{
    quarantine_id: string;
    id: string;
    gap_started_at: number;
    closed_at: number | null;
    evidence_until: number | null;
  }>(
    `SELECT DISTINCT ON (quarantine_id) quarantine_id, id, gap_started_at, closed_at, evidence_until
       FROM alerts WHERE quarantine_id = ANY($1::uuid[]) AND kind = 'NO_PRESENCE'
      ORDER BY quarantine_id, created_at DESC`,
    [sorted],
  );
  const gapOf = new Map(gaps.map((g) => [g.quarantine_id, g]));
  const out = new Map<string, QuarantineState>();
  for (const r of locked) {
    const g = gapOf.get(r.id);
    out.set(r.id, {
      id: r.id,
      beaconId: r.beacon_id,
      state: r.state,
      windowSeconds: r.window_seconds,
      registeredAt: r.registered_at,
      enabledAt: r.enabled_at,
      lastPresenceAt: r.last_presence_at,
      lastReceivedAt: r.last_received_at,
      lastCounter: r.last_counter,
      offsetSeconds: r.clock_offset_seconds,
      offsetUpdatedAt: r.offset_updated_at,
      battery: r.battery,
      flags: r.flags,
      deadline: r.deadline,
      openAlertId: r.open_alert_id,
      driftAlerted: r.drift_alerted,
      lowBatteryAlerted: r.low_battery_alerted,
      gapAlert: g
        ? {
            id: g.id,
            gapStartedAt: g.gap_started_at,
            closedAt: g.closed_at,
            evidenceUntil: g.evidence_until,
          }
        : null,
    });
  }
  return out;
}

export async function saveState(tx: Queryable, s: QuarantineState, now: number): Promise<void> {
  await tx.query(
    `UPDATE quarantines SET last_presence_at = $2, last_received_at = $3, last_counter = $4, clock_offset_seconds = $5,
       offset_updated_at = $6, battery = $7, flags = $8, deadline = $9, open_alert_id = $10, drift_alerted = $11,
       low_battery_alerted = $12, status_changed_at = $13 WHERE id = $1`,
    [
      s.id,
      s.lastPresenceAt,
      s.lastReceivedAt,
      s.lastCounter,
      s.offsetSeconds,
      s.offsetUpdatedAt,
      s.battery,
      s.flags,
      s.deadline,
      s.openAlertId,
      s.driftAlerted,
      s.lowBatteryAlerted,
      now,
    ],
  );
}

/** What the police backend receives: the beacon ID, never a key, a token or anything about a phone. */
export interface AlertMessage {
  readonly alertId: string;
  readonly kind: AlertEvent['kind'];
  readonly beaconId: string;
  readonly occurredAt: number;
  readonly gapStartedAt: number | null;
  readonly relatedAlertId: string | null;
  readonly detail: AlertEvent['detail'];
}

/** Insert the alert and its outbox row in the caller's transaction: the decision and its delivery commit together. */
export async function raiseAlert(
  tx: Queryable,
  q: { id: string; beaconId: string },
  e: AlertEvent,
  now: number,
): Promise<string> {
  const alertId = randomUUID();
  const closesAt = e.kind === 'NO_PRESENCE' ? null : now;
  await tx.query(
    `INSERT INTO alerts (id, quarantine_id, beacon_id, kind, created_at, gap_started_at, related_alert_id, closed_at, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      alertId,
      q.id,
      q.beaconId,
      e.kind,
      now,
      e.gapStartedAt ?? null,
      e.relatedAlertId ?? null,
      closesAt,
      JSON.stringify(e.detail),
    ],
  );
  if (e.kind === 'RECOVERED' && e.relatedAlertId) {
    await tx.query('UPDATE alerts SET closed_at = $2 WHERE id = $1 AND closed_at IS NULL', [
      e.relatedAlertId,
      now,
    ]);
  }
  const message: AlertMessage = {
    alertId,
    kind: e.kind,
    beaconId: q.beaconId,
    occurredAt: now,
    gapStartedAt: e.gapStartedAt ?? null,
    relatedAlertId: e.relatedAlertId ?? null,
    detail: e.detail,
  };
  await tx.query(
    'INSERT INTO outbox (id, alert_id, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)',
    [randomUUID(), alertId, JSON.stringify(message), now],
  );
  return alertId;
}
