import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../../backend-kit/db.js';
import type { Logger } from '../../backend-kit/logger.js';
import type { Rules } from './config.js';
import { parseReasons, withReason } from './faults.js';
import { type Absence, watchAction } from './lifecycle.js';
import type { Metrics } from './metrics.js';
import { arrayLiteral, lookUpEachRow, raiseFault } from './store.js';

const BATCH = 500;
/** Transactions at once in a backlog. */
const WORKERS = 2;

interface DueRow {
  id: string;
  row_ctid: string;
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
 * (docs/alerts.md). Reads only due marks (app migration 006: every write to a quarantine leaves
 * one, due at its deadline) and skips marks and rows another instance holds, so several instances
 * together take each step once. A mark whose quarantine has moved on since is dropped. A row
 * still due after its step takes the next one in the same tick; in a backlog (a batch came back
 * full) the tick goes on until fewer marks are due. `onQueued` is told after each batch that
 * committed alerts for the police, so a burst's first alerts go out while the rest are decided.
 */
export async function watchdogTick(
  db: Database,
  rules: Rules,
  now: number,
  metrics: Metrics,
  log: Logger,
  onQueued: () => void = () => undefined,
): Promise<WatchdogResult> {
  const total: WatchdogResult = {
    provisional: 0,
    confirmed: 0,
    maintenance: 0,
    deferred: 0,
    held: 0,
  };
  // Most ticks find nothing: one index probe, without a transaction's two extra round trips. By
  // order, not by `due <= now`: a table not yet analysed would be scanned whole.
  const { rows: first } = await db.query<{ due: number }>(
    'SELECT due FROM quarantine_marks ORDER BY due LIMIT 1',
  );
  if (!first[0] || first[0].due > now) return total;
  const batch = async () => {
    const queued = total.confirmed + total.maintenance;
    const n = await transaction();
    if (total.confirmed + total.maintenance > queued) onQueued();
    return n;
  };
  const transaction = () =>
    db.transaction(async (tx) => {
      await lookUpEachRow(tx);
      // Claimed by this transaction alone (SKIP LOCKED) and gone when it commits.
      const { rows: marks } = await tx.query<{ quarantine_id: string }>(
        `DELETE FROM quarantine_marks WHERE ctid = ANY(ARRAY(
           SELECT ctid FROM quarantine_marks WHERE due <= $1 ORDER BY due LIMIT $2 FOR UPDATE SKIP LOCKED))
         RETURNING quarantine_id`,
        [now, BATCH],
      );
      if (!marks.length) return 0;
      const ids = [...new Set(marks.map((m) => m.quarantine_id))];
      const { rows } = await tx.query<DueRow>(
        `SELECT q.id, q.ctid::text AS row_ctid, q.beacon_id, q.deadline, q.window_seconds, q.last_presence_at, q.enabled_at,
                q.battery, q.clock_not_set_at, q.open_alert_id, q.fault_alert_id, q.fault_reasons, q.last_request_at,
                q.relay_back_at, a.status AS gap_status, a.gap_started_at, a.held_at,
                (a.detail->>'provisionalAt')::bigint AS provisional_at
           FROM quarantines q LEFT JOIN alerts a ON a.id = q.open_alert_id
          WHERE q.id = ANY($2::uuid[]) AND q.state = 'monitoring' AND q.deadline <= $1
          ORDER BY q.deadline FOR UPDATE OF q SKIP LOCKED`,
        [now, arrayLiteral(ids)],
      );
      const absences = await absencesOf(
        tx,
        rows.map((r) => r.id),
        now,
      );
      const writes = newWrites();
      // A row still due after its step (a gap whose grace is already over) takes the next one now:
      // at most two steps, as only opening a gap hands the row back.
      for (const r of rows) {
        let next: DueRow | null = r;
        do
          next = await step(tx, writes, next, absences.get(r.id) ?? [], rules, now, total, metrics);
        while (next);
      }
      await flushWrites(tx, writes, now);
      // A row still due that this batch did not move (another transaction holds it, or it had no
      // step to take) gets its mark back, due just after this tick's `now`: the next tick tries
      // again, and this one's backlog does not spin on it. A row that moved on needs none.
      const kept = ids.filter((id) => !writes.quarantines.has(id));
      if (kept.length)
        await tx.query(
          `INSERT INTO quarantine_marks (due, quarantine_id)
           SELECT $2::bigint + 1, id FROM quarantines WHERE id = ANY($1::uuid[]) AND state = 'monitoring' AND deadline <= $2`,
          [arrayLiteral(kept), now],
        );
      return marks.length;
    });
  if ((await batch()) === BATCH) {
    // Batches side by side, as instances would run them (SKIP LOCKED keeps them apart): the
    // database works on two cores. Only in a backlog: every row a batch leaves is done for now.
    const runs = await Promise.allSettled(
      Array.from({ length: WORKERS }, async () => {
        while ((await batch()) === BATCH);
      }),
    );
    for (const r of runs) if (r.status === 'rejected') throw r.reason;
  }
  if (total.provisional + total.confirmed + total.maintenance)
    log.info({ ...total }, 'watchdog moved gaps along their lifecycle');
  return total;
}

type Detail = Record<string, unknown>;

/** A gap opened in this transaction: later steps change it here, and it is inserted as it ends up. */
interface NewGap {
  readonly id: string;
  readonly quarantineId: string;
  readonly beaconId: string;
  readonly gapStartedAt: number;
  status: 'provisional' | 'confirmed';
  queue: 'violation' | 'maintenance' | null;
  heldAt: number | null;
  detail: Detail;
}

/** What a transaction's steps write, sent as one statement per kind at its end. */
interface Writes {
  opened: Map<string, NewGap>;
  /** Gaps opened before this transaction, confirmed now. */
  confirmed: { id: string; queue: string; detail: Detail }[];
  /** Gaps opened before this transaction whose confirmation waits for a silent relay. */
  held: string[];
  /** Provisional gaps an absence covers. */
  cleared: string[];
  /** Messages for the police backend, in decision order: the outbox's sequence is theirs. */
  messages: { alertId: string; payload: Detail }[];
  /** Each quarantine's row as its last step left it, by the place it was read from. */
  quarantines: Map<
    string,
    {
      ctid: string;
      deadline: number | null;
      openAlertId: string | null;
      faultAlertId: string | null;
      faultReasons: string;
    }
  >;
}

const newWrites = (): Writes => ({
  opened: new Map(),
  confirmed: [],
  held: [],
  cleared: [],
  messages: [],
  quarantines: new Map(),
});

/**
 * A burst of due quarantines costs a few statements per batch, not two or three per row. JSON
 * details go as one JSON array each (zipped with the other columns by ROWS FROM), not as arrays
 * of JSON strings that node-postgres would escape quote by quote.
 */
async function flushWrites(tx: Queryable, w: Writes, now: number): Promise<void> {
  const gaps = [...w.opened.values()];
  if (gaps.length)
    await tx.query(
      `INSERT INTO alerts (id, quarantine_id, beacon_id, kind, created_at, gap_started_at, detail, status, queue, held_at, updated_at)
       SELECT u.id, u.qid, u.bid, 'NO_PRESENCE', $9, u.gs, u.detail::jsonb, u.status, u.queue, u.held, $9
         FROM ROWS FROM (unnest($1::uuid[]), unnest($2::uuid[]), unnest($3::text[]), unnest($4::bigint[]),
                         json_array_elements($5::json), unnest($6::text[]), unnest($7::text[]), unnest($8::bigint[]))
           AS u(id, qid, bid, gs, detail, status, queue, held)`,
      [
        arrayLiteral(gaps.map((g) => g.id)),
        arrayLiteral(gaps.map((g) => g.quarantineId)),
        arrayLiteral(gaps.map((g) => g.beaconId)),
        arrayLiteral(gaps.map((g) => g.gapStartedAt)),
        JSON.stringify(gaps.map((g) => g.detail)),
        arrayLiteral(gaps.map((g) => g.status)),
        arrayLiteral(gaps.map((g) => g.queue)),
        arrayLiteral(gaps.map((g) => g.heldAt)),
        now,
      ],
    );
  if (w.confirmed.length)
    await tx.query(
      `UPDATE alerts a SET status = 'confirmed', queue = u.queue, updated_at = $4, detail = a.detail || u.detail::jsonb
         FROM ROWS FROM (unnest($1::uuid[]), unnest($2::text[]), json_array_elements($3::json)) AS u(id, queue, detail)
        WHERE a.id = u.id`,
      [
        arrayLiteral(w.confirmed.map((c) => c.id)),
        arrayLiteral(w.confirmed.map((c) => c.queue)),
        JSON.stringify(w.confirmed.map((c) => c.detail)),
        now,
      ],
    );
  if (w.held.length)
    await tx.query(
      'UPDATE alerts a SET held_at = COALESCE(a.held_at, $2) FROM unnest($1::uuid[]) AS u(id) WHERE a.id = u.id',
      [arrayLiteral(w.held), now],
    );
  if (w.cleared.length)
    await tx.query(
      `UPDATE alerts a SET status = 'cleared', closed_at = $2, updated_at = $2, detail = a.detail || '{"clearedBy":"absence"}'
         FROM unnest($1::uuid[]) AS u(id) WHERE a.id = u.id`,
      [arrayLiteral(w.cleared), now],
    );
  if (w.messages.length)
    await tx.query(
      `INSERT INTO outbox (id, alert_id, payload, created_at, next_attempt_at)
       SELECT u.id, u.aid, u.payload::jsonb, $4, $4
         FROM ROWS FROM (unnest($1::uuid[]), unnest($2::uuid[]), json_array_elements($3::json)) WITH ORDINALITY
           AS u(id, aid, payload, n)
        ORDER BY u.n`,
      [
        arrayLiteral(w.messages.map(() => randomUUID())),
        arrayLiteral(w.messages.map((m) => m.alertId)),
        JSON.stringify(w.messages.map((m) => m.payload)),
        now,
      ],
    );
  const qs = [...w.quarantines.values()];
  // By ctid: the rows are locked since they were read, so their place cannot change.
  if (qs.length)
    await tx.query(
      `UPDATE quarantines q SET deadline = u.deadline, open_alert_id = u.oid, fault_alert_id = u.fid,
              fault_reasons = u.reasons, status_changed_at = $6
         FROM unnest($1::tid[], $2::bigint[], $3::uuid[], $4::uuid[], $5::text[]) AS u(ctid_, deadline, oid, fid, reasons)
        WHERE q.ctid = u.ctid_`,
      [
        arrayLiteral(qs.map((x) => x.ctid)),
        arrayLiteral(qs.map((x) => x.deadline)),
        arrayLiteral(qs.map((x) => x.openAlertId)),
        arrayLiteral(qs.map((x) => x.faultAlertId)),
        arrayLiteral(qs.map((x) => x.faultReasons)),
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
    [arrayLiteral(ids), now],
  );
  for (const r of rows) {
    const list = out.get(r.quarantine_id) ?? [];
    list.push({ startsAt: r.starts_at, endsAt: r.ends_at });
    out.set(r.quarantine_id, list);
  }
  return out;
}

/** Take one step; the row as it then stands if it is still due at `now`, else null. */
async function step(
  tx: Queryable,
  writes: Writes,
  r: DueRow,
  absences: Absence[],
  rules: Rules,
  now: number,
  total: WatchdogResult,
  metrics: Metrics,
): Promise<DueRow | null> {
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
  const setQuarantine = (
    deadline: number | null,
    openAlertId: string | null,
    fault = { id: r.fault_alert_id, reasons: r.fault_reasons },
  ) =>
    void writes.quarantines.set(r.id, {
      ctid: r.row_ctid,
      deadline,
      openAlertId,
      faultAlertId: fault.id,
      faultReasons: fault.reasons,
    });
  // A gap opened earlier in this transaction is not written yet: change it where it waits.
  const opened = gap ? writes.opened.get(gap.id) : undefined;
  switch (action.type) {
    case 'none':
      // Confirmed gaps keep no deadline; anything else here was moved by presence meanwhile.
      if (gap?.status === 'confirmed') setQuarantine(null, gap.id);
      return null;
    case 'defer':
      if (action.clearGap && gap) {
        writes.cleared.push(gap.id);
        metrics.gaps.inc({ step: 'cleared' });
      }
      setQuarantine(action.until, action.clearGap ? null : (gap?.id ?? null));
      total.deferred++;
      return null;
    case 'hold':
      if (!gap) return null;
      if (opened) opened.heldAt ??= now;
      else writes.held.push(gap.id);
      setQuarantine(action.recheckAt, gap.id);
      total.held++;
      return null;
    case 'provisional': {
      const id = randomUUID();
      writes.opened.set(id, {
        id,
        quarantineId: r.id,
        beaconId: r.beacon_id,
        gapStartedAt: action.gapStartedAt,
        status: 'provisional',
        queue: null,
        heldAt: null,
        detail: {
          lastPresenceAt: r.last_presence_at,
          provisionalAt: r.deadline,
          confirmAt: action.confirmAt,
        },
      });
      setQuarantine(action.confirmAt, id);
      metrics.gaps.inc({ step: 'provisional' });
      total.provisional++;
      // As the row now stands: still due if its grace is already over.
      return action.confirmAt <= now
        ? {
            ...r,
            deadline: action.confirmAt,
            open_alert_id: id,
            gap_status: 'provisional',
            gap_started_at: action.gapStartedAt,
            held_at: null,
            provisional_at: r.deadline,
          }
        : null;
    }
    case 'confirm': {
      if (!gap) return null;
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
      if (opened) {
        // As `detail || confirmation` would merge them in the database.
        opened.status = 'confirmed';
        opened.queue = action.queue;
        opened.detail = { ...opened.detail, ...detail };
      } else writes.confirmed.push({ id: gap.id, queue: action.queue, detail });
      // The same ID the provisional gap had: police sees one alert from confirmation on.
      const message = (kind: 'NO_PRESENCE' | 'RELAY_SILENT', d: Detail) =>
        writes.messages.push({
          alertId: gap.id,
          payload: {
            alertId: gap.id,
            kind,
            beaconId: r.beacon_id,
            occurredAt: now,
            gapStartedAt: gap.gapStartedAt,
            relatedAlertId: null,
            detail: d,
          },
        });
      let fault = { id: r.fault_alert_id, reasons: r.fault_reasons };
      if (action.queue === 'violation') {
        message('NO_PRESENCE', detail);
        total.confirmed++;
      } else if (action.relaySilent) {
        message('RELAY_SILENT', { silentFrom: gap.gapStartedAt, silentUntil: null });
        total.maintenance++;
      } else if (action.reason && !parseReasons(r.fault_reasons).includes(action.reason)) {
        const current = r.fault_alert_id
          ? { id: r.fault_alert_id, reasons: parseReasons(r.fault_reasons) }
          : null;
        const reasons = withReason(current?.reasons ?? [], action.reason);
        const raised = await raiseFault(
          tx,
          { ...q, fault: current },
          reasons,
          { batteryPercent: r.battery, silentSince: gap.gapStartedAt },
          now,
        );
        fault = { id: raised.id, reasons: raised.reasons.join(',') };
        total.maintenance++;
      }
      setQuarantine(null, gap.id, fault);
      metrics.gaps.inc({ step: action.queue === 'violation' ? 'confirmed' : 'maintenance' });
      return null;
    }
  }
}
