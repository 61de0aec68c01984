/**
 * Open alerts for the dashboard benchmark, stored through the intake's own code: violations and
 * beacon maintenance over registered beacons with addresses, some repeated, some with the person
 * back home, some already acknowledged; and resolved ones as history.
 */
import { randomUUID } from 'node:crypto';
import { type AlertMessage, receiveAlerts } from '../../police-backend/src/alerts.js';
import { type BenchPolice, beaconId, registerBeacons } from './backend.js';

const BATCH = 500;

function openAlert(i: number, beacons: number, now: number): AlertMessage {
  const occurredAt = now - Math.floor(((i * 7919) % 86_400) * 1000);
  const base = {
    alertId: randomUUID(),
    beaconId: beaconId(i % beacons),
    occurredAt,
    relatedAlertId: null,
  };
  const r = i % 20;
  if (r < 14) {
    return {
      ...base,
      kind: 'NO_PRESENCE',
      gapStartedAt: occurredAt - 1_560_000,
      detail: {
        lastPresenceAt: occurredAt - 1_560_000,
        provisionalAt: occurredAt - 1_200_000,
        confirmedAt: occurredAt,
        graceSeconds: 1200,
        afterAbsence: i % 50 === 0,
      },
    };
  }
  if (r < 17) {
    const reasons = ['low_battery', 'clock_drift', 'low_battery,battery_depleted', 'rebooted'];
    return {
      ...base,
      kind: 'BEACON_FAULT',
      gapStartedAt: null,
      detail: {
        reasons: reasons[i % reasons.length] as string,
        batteryPercent: 9,
        offsetSeconds: 95,
      },
    };
  }
  if (r < 18)
    return {
      ...base,
      kind: 'SUSPECTED_SPOOFING',
      gapStartedAt: null,
      detail: { invalidTokens: 12, since: occurredAt - 600_000 },
    };
  return {
    ...base,
    kind: 'RELAY_SILENT',
    gapStartedAt: null,
    detail: { silentFrom: occurredAt - 3_600_000, silentUntil: occurredAt - 60_000 },
  };
}

function updateOf(m: AlertMessage, i: number): AlertMessage | null {
  const update = { alertId: randomUUID(), beaconId: m.beaconId, occurredAt: m.occurredAt + 60_000 };
  if (m.kind === 'NO_PRESENCE' && i % 3 === 0)
    return {
      ...update,
      kind: 'RESOLVED_BY_EVIDENCE',
      gapStartedAt: null,
      relatedAlertId: m.alertId,
      detail: { lastPresenceAt: m.occurredAt + 30_000, coveredByEvidence: i % 9 === 0 },
    };
  if (i % 7 === 0)
    return {
      ...update,
      kind: 'ALERT_UPDATED',
      gapStartedAt: m.gapStartedAt,
      relatedAlertId: m.alertId,
      detail: m.detail,
    };
  if (m.kind !== 'NO_PRESENCE' && i % 5 === 0)
    return {
      ...update,
      kind: 'FAULT_CLEARED',
      gapStartedAt: null,
      relatedAlertId: m.alertId,
      detail: {},
    };
  return null;
}

/**
 * Register beacons (one per 1.25 open alerts) and store `open` open alerts plus `history`
 * resolved ones; returns the open counts per queue, as the dashboard's tabs should show them.
 */
export async function seedOpenAlerts(
  p: BenchPolice,
  open: number,
  history: number,
): Promise<{ violation: number; maintenance: number }> {
  const beacons = Math.max(1, Math.ceil(open / 1.25));
  await registerBeacons(p, beacons);
  const now = Date.now();
  for (let start = 0; start < open + history; start += BATCH) {
    const batch: AlertMessage[] = [];
    for (let i = start; i < Math.min(open + history, start + BATCH); i++) {
      const m = openAlert(i, beacons, i < open ? now : now - 3 * 86_400_000);
      batch.push(m);
      const u = updateOf(m, i);
      if (u) batch.push(u);
    }
    await p.db.transaction((tx) => receiveAlerts(tx, batch, now));
  }
  // Older alerts than the open ones are history: resolved by an officer.
  await p.db.query(
    `UPDATE alerts SET state = 'resolved', outcome = 'false_alarm' WHERE state <> 'info' AND occurred_at < $1`,
    [now - 2 * 86_400_000],
  );
  // Some open ones are being worked on.
  await p.db.query(
    `UPDATE alerts SET state = 'acknowledged' WHERE state = 'open' AND occurred_at % 10 = 0`,
  );
  // As autovacuum would have by now: the updates above leave dead rows behind.
  await p.db.query('VACUUM ANALYZE alerts');
  const { rows } = await p.db.query<{ queue: 'violation' | 'maintenance'; n: number }>(
    `SELECT queue, count(*)::int AS n FROM alerts WHERE queue IS NOT NULL AND state <> 'resolved' GROUP BY queue`,
  );
  const count = (q: string) => rows.find((r) => r.queue === q)?.n ?? 0;
  return { violation: count('violation'), maintenance: count('maintenance') };
}
