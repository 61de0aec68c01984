import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../../backend-kit/db.js';
import type { Logger } from '../../backend-kit/logger.js';
import type { Rules } from './config.js';
import { parseReasons, withReason } from './faults.js';
import { type Absence, watchAction } from './lifecycle.js';
import type { Metrics } from './metrics.js';
import { insertAlert, raiseFault } from './store.js';

const BATCH = 500;

interface DueRow {
  id: string;
  beacon_id: string;
  deadline: number;
  window_seconds: number;
  last_presence_at: number | null;
  enabled_at: number | null;
  battery: number | null;
  clock_not_set_at: number | null;
  open_alert_id: string | null;
  gap_status: 'provisional' | 'confirmed' | null;
  gap_started_at: number | null;
  provisional_at: number | null;
  held_at: number | null;
  last_request_at: number | null;
  relay_back_at: number | null;
  fault_alert_id: string | null;
  fault_reasons: string;
}

export interface WatchdogResult {
  provisional: number;
  confirmed: number;
  maintenance: number;
  deferred: number;
  /** Gaps past their grace whose relay is silent, waiting for it. */
  held: number;
}

/**
 * Move every monitored quarantine whose deadline has passed one step along the gap lifecycle
 * (docs/alerts.md). Reads only due rows (partial index on deadline) and skips rows another
 * instance holds, so several instances together take each step once.
 */
export async function watchdogTick(
  db: Database,
  rules: Rules,
  now: number,
  metrics: Metrics,
  log: Logger,
): Promise<WatchdogResult> {
  const total: WatchdogResult = {
    provisional: 0,
    confirmed: 0,
    maintenance: 0,
    deferred: 0,
    held: 0,
  };
  for (;;) {
    const n = await db.transaction(async (tx) => {
      const { rows } = await tx.query<DueRow>(
        `SELECT q.id, q.beacon_id, q.deadline, q.window_seconds, q.last_presence_at, q.enabled_at, q.battery, q.clock_not_set_at,
                q.open_alert_id, q.fault_alert_id, q.fault_reasons, q.last_request_at, q.relay_back_at, a.status AS gap_status,
                a.gap_started_at, a.held_at, (a.detail->>'provisionalAt')::bigint AS provisional_at
           FROM quarantines q LEFT JOIN alerts a ON a.id = q.open_alert_id
          WHERE q.state = 'monitoring' AND q.deadline <= $1
          ORDER BY q.deadline LIMIT $2 FOR UPDATE OF q SKIP LOCKED`,
        [now, BATCH],
      );
      const absences = await absencesOf(
        tx,
        rows.map((r) => r.id),
        now,
      );
      for (const r of rows) await step(tx, r, absences.get(r.id) ?? [], rules, now, total, metrics);
      return rows.length;
    });
    if (n < BATCH) break;
  }
  if (total.provisional + total.confirmed + total.maintenance)
    log.info({ ...total }, 'watchdog moved gaps along their lifecycle');
  return total;
}

async function absencesOf(
  tx: Queryable,
  ids: string[],
  now: number,
): Promise<Map<string, Absence[]>> {
  const out = new Map<string, Absence[]>();
  if (!ids.length) return out;
  const { rows } = await tx.query<{ quarantine_id: string; starts_at: number; ends_at: number }>(
    `SELECT quarantine_id, starts_at, ends_at FROM absences
      WHERE quarantine_id = ANY($1::uuid[]) AND cancelled_at IS NULL AND ends_at > $2`,
    [ids, now],
  );
  for (const r of rows) {
    const list = out.get(r.quarantine_id) ?? [];
    list.push({ startsAt: r.starts_at, endsAt: r.ends_at });
    out.set(r.quarantine_id, list);
  }
  return out;
}

async function step(
  tx: Queryable,
  r: DueRow,
  absences: Absence[],
  rules: Rules,
  now: number,
  total: WatchdogResult,
  metrics: Metrics,
): Promise<void> {
  const q = { id: r.id, beaconId: r.beacon_id };
  const gap =
    r.open_alert_id && r.gap_status && r.gap_started_at !== null
      ? {
          id: r.open_alert_id,
          status: r.gap_status,
          gapStartedAt: r.gap_started_at,
          heldAt: r.held_at,
          provisionalAt: r.provisional_at ?? r.gap_started_at + r.window_seconds * 1000,
        }
      : null;
  const action = watchAction(
    {
      deadline: r.deadline,
      lastPresenceAt: r.last_presence_at,
      enabledAt: r.enabled_at,
      gap,
      battery: r.battery,
      clockNotSetAt: r.clock_not_set_at,
      lastRequestAt: r.last_request_at,
      relayBackAt: r.relay_back_at,
      absences,
    },
    rules,
    now,
  );
  const setQuarantine = (deadline: number | null, openAlertId: string | null) =>
    tx.query(
      'UPDATE quarantines SET deadline = $2, open_alert_id = $3, status_changed_at = $4 WHERE id = $1',
      [r.id, deadline, openAlertId, now],
    );
  switch (action.type) {
    case 'none':
      // Confirmed gaps keep no deadline; anything else here was moved by presence meanwhile.
      if (gap?.status === 'confirmed') await setQuarantine(null, gap.id);
      return;
    case 'defer':
      if (action.clearGap && gap) {
        await tx.query(
          `UPDATE alerts SET status = 'cleared', closed_at = $2, updated_at = $2, detail = detail || '{"clearedBy":"absence"}' WHERE id = $1`,
          [gap.id, now],
        );
        metrics.gaps.inc({ step: 'cleared' });
      }
      await setQuarantine(action.until, action.clearGap ? null : (gap?.id ?? null));
      total.deferred++;
      return;
    case 'hold':
      if (!gap) return;
      await tx.query('UPDATE alerts SET held_at = COALESCE(held_at, $2) WHERE id = $1', [
        gap.id,
        now,
      ]);
      await setQuarantine(action.recheckAt, gap.id);
      total.held++;
      return;
    case 'provisional': {
      const id = await insertAlert(
        tx,
        q,
        {
          kind: 'NO_PRESENCE',
          status: 'provisional',
          gapStartedAt: action.gapStartedAt,
          detail: {
            lastPresenceAt: r.last_presence_at,
            provisionalAt: r.deadline,
            confirmAt: action.confirmAt,
          },
          open: true,
          send: false,
        },
        now,
      );
      await setQuarantine(action.confirmAt, id);
      metrics.gaps.inc({ step: 'provisional' });
      total.provisional++;
      return;
    }
    case 'confirm': {
      if (!gap) return;
      const provisionalAt = gap.provisionalAt;
      const detail = {
        lastPresenceAt: r.last_presence_at,
        provisionalAt,
        confirmedAt: now,
        graceSeconds: rules.graceSeconds,
        // The window ran out later than the last proof allowed: an absence ended in between.
        afterAbsence: provisionalAt > gap.gapStartedAt + r.window_seconds * 1000,
        relaySilent: action.relaySilent,
      };
      await tx.query(
        `UPDATE alerts SET status = 'confirmed', queue = $2, updated_at = $3, detail = detail || $4::jsonb WHERE id = $1`,
        [gap.id, action.queue, now, JSON.stringify(detail)],
      );
      // The same ID the provisional gap had: police sees one alert from confirmation on.
      const sendGap = (kind: 'NO_PRESENCE' | 'RELAY_SILENT', d: Record<string, unknown>) =>
        tx.query(
          `INSERT INTO outbox (id, alert_id, payload, created_at, next_attempt_at)
           VALUES ($4, $1, $2, $3, $3)`,
          [
            gap.id,
            JSON.stringify({
              alertId: gap.id,
              kind,
              beaconId: r.beacon_id,
              occurredAt: now,
              gapStartedAt: gap.gapStartedAt,
              relatedAlertId: null,
              detail: d,
            }),
            now,
            randomUUID(),
          ],
        );
      if (action.queue === 'violation') {
        await sendGap('NO_PRESENCE', detail);
        total.confirmed++;
      } else if (action.relaySilent) {
        await sendGap('RELAY_SILENT', { silentFrom: gap.gapStartedAt, silentUntil: null });
        total.maintenance++;
      } else if (action.reason && !parseReasons(r.fault_reasons).includes(action.reason)) {
        const current = r.fault_alert_id
          ? { id: r.fault_alert_id, reasons: parseReasons(r.fault_reasons) }
          : null;
        const reasons = withReason(current?.reasons ?? [], action.reason);
        const fault = await raiseFault(
          tx,
          { ...q, fault: current },
          reasons,
          { batteryPercent: r.battery, silentSince: gap.gapStartedAt },
          now,
        );
        await tx.query(
          'UPDATE quarantines SET fault_alert_id = $2, fault_reasons = $3 WHERE id = $1',
          [r.id, fault.id, fault.reasons.join(',')],
        );
        total.maintenance++;
      }
      await setQuarantine(null, gap.id);
      metrics.gaps.inc({ step: action.queue === 'violation' ? 'confirmed' : 'maintenance' });
      return;
    }
  }
}
