import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../../backend-kit/db.js';
import type { Logger } from '../../backend-kit/logger.js';
import type { Rules } from './config.js';
import { parseReasons, withReason } from './faults.js';
import { type Absence, watchAction } from './lifecycle.js';
import type { Metrics } from './metrics.js';
import { raiseFault } from './store.js';

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
      const writes = newWrites();
      for (const r of rows)
        await step(tx, writes, r, absences.get(r.id) ?? [], rules, now, total, metrics);
      await flushWrites(tx, writes, now);
      return rows.length;
    });
    if (n < BATCH) break;
  }
  if (total.provisional + total.confirmed + total.maintenance)
    log.info({ ...total }, 'watchdog moved gaps along their lifecycle');
  return total;
}

/** What a transaction's steps write, sent as one statement per kind at its end. */
interface Writes {
  quarantines: { id: string; deadline: number | null; openAlertId: string | null }[];
  provisional: {
    id: string;
    quarantineId: string;
    beaconId: string;
    gapStartedAt: number;
    detail: string;
  }[];
  /** Gaps confirmed, with the message for the police when they are told. */
  confirmed: { id: string; queue: string; detail: string; message: string | null }[];
}

const newWrites = (): Writes => ({ quarantines: [], provisional: [], confirmed: [] });

/** A burst of due quarantines costs a few statements per 500, not two or three per row. */
async function flushWrites(tx: Queryable, w: Writes, now: number): Promise<void> {
  if (w.provisional.length)
    await tx.query(
      `INSERT INTO alerts (id, quarantine_id, beacon_id, kind, created_at, gap_started_at, detail, status, updated_at)
       SELECT u.id, u.qid, u.bid, 'NO_PRESENCE', $6, u.gs, u.detail::jsonb, 'provisional', $6
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::text[]) AS u(id, qid, bid, gs, detail)`,
      [
        w.provisional.map((p) => p.id),
        w.provisional.map((p) => p.quarantineId),
        w.provisional.map((p) => p.beaconId),
        w.provisional.map((p) => p.gapStartedAt),
        w.provisional.map((p) => p.detail),
        now,
      ],
    );
  if (w.confirmed.length) {
    await tx.query(
      `UPDATE alerts a SET status = 'confirmed', queue = u.queue, updated_at = $4, detail = a.detail || u.detail::jsonb
         FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(id, queue, detail) WHERE a.id = u.id`,
      [
        w.confirmed.map((c) => c.id),
        w.confirmed.map((c) => c.queue),
        w.confirmed.map((c) => c.detail),
        now,
      ],
    );
    const sent = w.confirmed.filter((c) => c.message !== null);
    // In decision order: the outbox's sequence is the order the police receive them.
    if (sent.length)
      await tx.query(
        `INSERT INTO outbox (id, alert_id, payload, created_at, next_attempt_at)
         SELECT u.id, u.aid, u.payload::jsonb, $4, $4
           FROM unnest($1::uuid[], $2::uuid[], $3::text[]) WITH ORDINALITY AS u(id, aid, payload, n) ORDER BY u.n`,
        [sent.map(() => randomUUID()), sent.map((c) => c.id), sent.map((c) => c.message), now],
      );
  }
  if (w.quarantines.length)
    await tx.query(
      `UPDATE quarantines q SET deadline = u.deadline, open_alert_id = u.oid, status_changed_at = $4
         FROM unnest($1::uuid[], $2::bigint[], $3::uuid[]) AS u(id, deadline, oid) WHERE q.id = u.id`,
      [
        w.quarantines.map((x) => x.id),
        w.quarantines.map((x) => x.deadline),
        w.quarantines.map((x) => x.openAlertId),
        now,
      ],
    );
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
  writes: Writes,
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
    void writes.quarantines.push({ id: r.id, deadline, openAlertId });
  switch (action.type) {
    case 'none':
      // Confirmed gaps keep no deadline; anything else here was moved by presence meanwhile.
      if (gap?.status === 'confirmed') setQuarantine(null, gap.id);
      return;
    case 'defer':
      if (action.clearGap && gap) {
        await tx.query(
          `UPDATE alerts SET status = 'cleared', closed_at = $2, updated_at = $2, detail = detail || '{"clearedBy":"absence"}' WHERE id = $1`,
          [gap.id, now],
        );
        metrics.gaps.inc({ step: 'cleared' });
      }
      setQuarantine(action.until, action.clearGap ? null : (gap?.id ?? null));
      total.deferred++;
      return;
    case 'hold':
      if (!gap) return;
      await tx.query('UPDATE alerts SET held_at = COALESCE(held_at, $2) WHERE id = $1', [
        gap.id,
        now,
      ]);
      setQuarantine(action.recheckAt, gap.id);
      total.held++;
      return;
    case 'provisional': {
      const id = randomUUID();
      writes.provisional.push({
        id,
        quarantineId: r.id,
        beaconId: r.beacon_id,
        gapStartedAt: action.gapStartedAt,
        detail: JSON.stringify({
          lastPresenceAt: r.last_presence_at,
          provisionalAt: r.deadline,
          confirmAt: action.confirmAt,
        }),
      });
      setQuarantine(action.confirmAt, id);
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
      // The same ID the provisional gap had: police sees one alert from confirmation on.
      const message = (kind: 'NO_PRESENCE' | 'RELAY_SILENT', d: Record<string, unknown>) =>
        JSON.stringify({
          alertId: gap.id,
          kind,
          beaconId: r.beacon_id,
          occurredAt: now,
          gapStartedAt: gap.gapStartedAt,
          relatedAlertId: null,
          detail: d,
        });
      const confirmed = { id: gap.id, queue: action.queue, detail: JSON.stringify(detail) };
      if (action.queue === 'violation') {
        writes.confirmed.push({ ...confirmed, message: message('NO_PRESENCE', detail) });
        total.confirmed++;
      } else if (action.relaySilent) {
        const silent = { silentFrom: gap.gapStartedAt, silentUntil: null };
        writes.confirmed.push({ ...confirmed, message: message('RELAY_SILENT', silent) });
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
      if (!writes.confirmed.some((c) => c.id === gap.id))
        writes.confirmed.push({ ...confirmed, message: null });
      setQuarantine(null, gap.id);
      metrics.gaps.inc({ step: action.queue === 'violation' ? 'confirmed' : 'maintenance' });
      return;
    }
  }
}
