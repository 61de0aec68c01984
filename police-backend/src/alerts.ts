import { z } from 'zod';
import type { Queryable } from '../../backend-kit/db.js';
import { ApiError, badRequest, notFound } from '../../backend-kit/errors.js';

/** Kinds an officer reviews, each in one queue. */
export const REVIEWABLE = [
  'NO_PRESENCE',
  'BEACON_FAULT',
  'SUSPECTED_SPOOFING',
  'RELAY_SILENT',
] as const;
/** Kinds that only change the alert named by relatedAlertId; stored with state `info`. */
export const UPDATES = [
  'RESOLVED_BY_EVIDENCE',
  'LATE_EVIDENCE',
  'ALERT_UPDATED',
  'FAULT_CLEARED',
] as const;
export const QUEUES = ['violation', 'maintenance'] as const;
export type Queue = (typeof QUEUES)[number];
export type ReviewableKind = (typeof REVIEWABLE)[number];

const QUEUE_OF: Record<ReviewableKind, Queue> = {
  NO_PRESENCE: 'violation',
  BEACON_FAULT: 'maintenance',
  SUSPECTED_SPOOFING: 'maintenance',
  RELAY_SILENT: 'maintenance',
};

/** BEACON_FAULT reasons that need a visit soon: the beacon is probably dead or blind to time. */
const SERIOUS_FAULTS = ['battery_depleted', 'clock_not_set'];

export type Detail = Record<string, number | string | boolean | null>;

/** Higher first in the queue; a fault's urgency depends on its (merged) reasons. */
export function urgency(kind: string, detail: Detail): number {
  if (kind === 'NO_PRESENCE') return 3;
  if (kind === 'SUSPECTED_SPOOFING') return 2;
  // The phone was off for a while and nothing proves where the person was: a call, not a visit.
  if (kind === 'RELAY_SILENT') return 1;
  if (kind === 'BEACON_FAULT') {
    const reasons = typeof detail.reasons === 'string' ? detail.reasons.split(',') : [];
    return reasons.some((r) => SERIOUS_FAULTS.includes(r.trim())) ? 2 : 1;
  }
  return 0;
}

/** What the app backend sends (docs/api.md); nothing in it identifies a phone. */
export const alertMessageSchema = z.strictObject({
  alertId: z.uuid(),
  kind: z.enum([...REVIEWABLE, ...UPDATES]),
  beaconId: z.string().regex(/^[A-Za-z0-9-]{1,32}$/),
  occurredAt: z.number().int().nonnegative(),
  gapStartedAt: z.number().int().nonnegative().nullable(),
  relatedAlertId: z.uuid().nullable(),
  detail: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()])),
});

export type AlertMessage = z.infer<typeof alertMessageSchema>;
export type AlertState = 'open' | 'acknowledged' | 'dispatched' | 'resolved' | 'info';
export const OUTCOMES = [
  'violation_confirmed',
  'false_alarm',
  'beacon_fault',
  'presence_proven_later',
] as const;

export interface Alert {
  readonly id: string;
  readonly beaconId: string;
  readonly kind: string;
  /** Null for updates. */
  readonly queue: Queue | null;
  readonly state: AlertState;
  readonly outcome: string | null;
  readonly note: string | null;
  readonly occurredAt: number;
  readonly receivedAt: number;
  readonly gapStartedAt: number | null;
  readonly lastPresenceAt: number | null;
  readonly recoveredAt: number | null;
  /** Set with recoveredAt: true when late evidence covered the whole gap (likely a false alarm). */
  readonly coveredByEvidence: boolean | null;
  readonly evidenceUntil: number | null;
  readonly conditionClearedAt: number | null;
  readonly occurrences: number;
  readonly relatedAlertId: string | null;
  readonly updatedAt: number;
  readonly address: string | null;
  readonly caseRef: string | null;
  readonly urgency: number;
  readonly detail: Detail;
}

interface Row {
  id: string;
  beacon_id: string;
  kind: string;
  queue: Queue | null;
  state: AlertState;
  outcome: string | null;
  note: string | null;
  occurred_at: number;
  received_at: number;
  gap_started_at: number | null;
  last_presence_at: number | null;
  recovered_at: number | null;
  covered_by_evidence: boolean | null;
  evidence_until: number | null;
  condition_cleared_at: number | null;
  occurrences: number;
  related_alert_id: string | null;
  updated_at: number;
  detail: string;
  address: string | null;
  case_ref: string | null;
}

const SELECT = `SELECT a.*, b.address, b.case_ref FROM alerts a LEFT JOIN beacons b ON b.id = a.beacon_record`;

function parseDetail(text: string): Detail {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Detail) : {};
  } catch {
    return {};
  }
}

const toAlert = (r: Row): Alert => {
  const detail = parseDetail(r.detail);
  return {
    id: r.id,
    beaconId: r.beacon_id,
    kind: r.kind,
    queue: r.queue,
    state: r.state,
    outcome: r.outcome,
    note: r.note,
    occurredAt: r.occurred_at,
    receivedAt: r.received_at,
    gapStartedAt: r.gap_started_at,
    lastPresenceAt: r.last_presence_at,
    recoveredAt: r.recovered_at,
    coveredByEvidence: r.covered_by_evidence,
    evidenceUntil: r.evidence_until,
    conditionClearedAt: r.condition_cleared_at,
    occurrences: r.occurrences,
    relatedAlertId: r.related_alert_id,
    updatedAt: r.updated_at,
    address: r.address,
    caseRef: r.case_ref,
    urgency: urgency(r.kind, detail),
    detail,
  };
};

export async function getAlert(db: Queryable, id: string): Promise<Alert | undefined> {
  const { rows } = await db.query<Row>(`${SELECT} WHERE a.id = $1`, [id]);
  return rows[0] ? toAlert(rows[0]) : undefined;
}

const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);

/** What an update does to the alert it relates to (the related alert keeps its review state). */
async function applyUpdate(tx: Queryable, m: AlertMessage, now: number): Promise<boolean> {
  const id = m.relatedAlertId;
  if (!id) return false;
  let r: { rowCount: number | null } | undefined;
  switch (m.kind) {
    case 'RESOLVED_BY_EVIDENCE':
      // When presence was seen again; the decision time if the message does not say.
      r = await tx.query(
        'UPDATE alerts SET recovered_at = $2, covered_by_evidence = $3, updated_at = $4 WHERE id = $1',
        [
          id,
          num(m.detail.lastPresenceAt) ?? m.occurredAt,
          typeof m.detail.coveredByEvidence === 'boolean' ? m.detail.coveredByEvidence : null,
          now,
        ],
      );
      break;
    case 'LATE_EVIDENCE': {
      const until = num(m.detail.evidenceUntil);
      if (until === null) return false;
      r = await tx.query(
        'UPDATE alerts SET evidence_until = GREATEST(COALESCE(evidence_until, 0), $2), updated_at = $3 WHERE id = $1',
        [id, until, now],
      );
      break;
    }
    case 'FAULT_CLEARED':
      r = await tx.query(
        'UPDATE alerts SET condition_cleared_at = $2, updated_at = $3 WHERE id = $1',
        [id, m.occurredAt, now],
      );
      break;
    case 'ALERT_UPDATED':
      r = await applyRepeat(tx, id, m, now);
      break;
    default:
      return false;
  }
  return (r?.rowCount ?? 0) > 0;
}

/**
 * A repeat of an open alert: its detail merged in, counted, the condition back. A repeat that
 * starts a later gap makes the alert describe that gap. The review state is left as it is.
 */
async function applyRepeat(tx: Queryable, id: string, m: AlertMessage, now: number) {
  const { rows } = await tx.query<{ detail: string; gap_started_at: number | null }>(
    'SELECT detail, gap_started_at FROM alerts WHERE id = $1 FOR UPDATE',
    [id],
  );
  const current = rows[0];
  if (!current) return { rowCount: 0 };
  const detail = { ...parseDetail(current.detail), ...m.detail };
  const newGap =
    m.gapStartedAt !== null &&
    (current.gap_started_at === null || m.gapStartedAt > Number(current.gap_started_at));
  return tx.query(
    `UPDATE alerts SET detail = $2, occurrences = occurrences + 1, condition_cleared_at = NULL,
       last_presence_at = COALESCE($3, last_presence_at), updated_at = $4,
       gap_started_at = CASE WHEN $5 THEN $6::bigint ELSE gap_started_at END,
       recovered_at = CASE WHEN $5 THEN NULL ELSE recovered_at END,
       covered_by_evidence = CASE WHEN $5 THEN NULL ELSE covered_by_evidence END
     WHERE id = $1`,
    [id, JSON.stringify(detail), num(m.detail.lastPresenceAt), now, newGap, m.gapStartedAt],
  );
}

/**
 * Store an alert once (its ID is the idempotency key). Updates also touch the alert they relate
 * to. Returns the alerts whose view changed, for live updates; empty for a redelivery.
 */
export async function receiveAlert(tx: Queryable, m: AlertMessage, now: number): Promise<Alert[]> {
  const { rows: beacon } = await tx.query<{ id: string }>(
    "SELECT id FROM beacons WHERE beacon_id = $1 ORDER BY status = 'ended', installed_at DESC LIMIT 1",
    [m.beaconId],
  );
  const queue = QUEUE_OF[m.kind as ReviewableKind] ?? null;
  const inserted = await tx.query(
    `INSERT INTO alerts (id, beacon_record, beacon_id, kind, queue, state, occurred_at, received_at, gap_started_at, last_presence_at, related_alert_id, detail, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $8) ON CONFLICT (id) DO NOTHING`,
    [
      m.alertId,
      beacon[0]?.id ?? null,
      m.beaconId,
      m.kind,
      queue,
      queue ? 'open' : 'info',
      m.occurredAt,
      now,
      m.gapStartedAt,
      num(m.detail.lastPresenceAt),
      m.relatedAlertId,
      JSON.stringify(m.detail),
    ],
  );
  if (inserted.rowCount === 0) return [];
  const changed = [m.alertId];
  if (!queue && (await applyUpdate(tx, m, now)) && m.relatedAlertId) changed.push(m.relatedAlertId);
  const out: Alert[] = [];
  for (const id of changed) {
    const a = await getAlert(tx, id);
    if (a) out.push(a);
  }
  return out;
}

export const listQuerySchema = z.strictObject({
  view: z.enum(['queue', 'history']).default('queue'),
  queue: z.enum(QUEUES).optional(),
  kind: z.enum(REVIEWABLE).optional(),
  outcome: z.enum(OUTCOMES).optional(),
  from: z.coerce.number().int().nonnegative().optional(),
  to: z.coerce.number().int().nonnegative().optional(),
});

export async function listAlerts(
  db: Queryable,
  q: z.infer<typeof listQuerySchema>,
): Promise<Alert[]> {
  const where = [`a.kind = ANY($1::text[])`];
  const params: unknown[] = [[...REVIEWABLE]];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (q.view === 'queue') where.push(`a.state <> 'resolved'`);
  if (q.queue) add('a.queue = ?', q.queue);
  if (q.kind) add('a.kind = ?', q.kind);
  if (q.outcome) add('a.outcome = ?', q.outcome);
  if (q.from !== undefined) add('a.occurred_at >= ?', q.from);
  if (q.to !== undefined) add('a.occurred_at <= ?', q.to);
  const { rows } = await db.query<Row>(
    `${SELECT} WHERE ${where.join(' AND ')} ORDER BY a.occurred_at ${q.view === 'queue' ? 'ASC' : 'DESC'} LIMIT 500`,
    params,
  );
  const alerts = rows.map(toAlert);
  // Queue: most urgent kind first, then the oldest.
  return q.view === 'queue'
    ? alerts.sort((x, y) => y.urgency - x.urgency || x.occurredAt - y.occurredAt)
    : alerts;
}

export async function timeline(db: Queryable, beaconId: string): Promise<Alert[]> {
  const { rows } = await db.query<Row>(
    `${SELECT} WHERE a.beacon_id = $1 ORDER BY a.occurred_at, a.received_at LIMIT 500`,
    [beaconId],
  );
  return rows.map(toAlert);
}

export const actionSchema = z.strictObject({
  action: z.enum(['acknowledge', 'dispatch', 'resolve']),
  outcome: z.enum(OUTCOMES).optional(),
  note: z.string().max(2000).optional(),
});

/** The review state machine: which state each action leads to, from which states. */
const TRANSITIONS: Record<
  z.infer<typeof actionSchema>['action'],
  { from: AlertState[]; to: AlertState }
> = {
  acknowledge: { from: ['open'], to: 'acknowledged' },
  dispatch: { from: ['acknowledged'], to: 'dispatched' },
  resolve: { from: ['acknowledged', 'dispatched'], to: 'resolved' },
};

export function nextState(
  current: AlertState,
  action: keyof typeof TRANSITIONS,
): AlertState | undefined {
  const t = TRANSITIONS[action];
  return t.from.includes(current) ? t.to : undefined;
}

export async function reviewAlert(
  tx: Queryable,
  id: string,
  input: z.infer<typeof actionSchema>,
  officerId: string,
  now: number,
  reviewId: string,
): Promise<{ alert: Alert; from: AlertState }> {
  const { rows } = await tx.query<{ state: AlertState }>(
    'SELECT state FROM alerts WHERE id = $1 FOR UPDATE',
    [id],
  );
  const current = rows[0]?.state;
  if (!current) throw notFound('NO_SUCH_ALERT');
  const to = nextState(current, input.action);
  if (!to) throw new ApiError(409, 'ILLEGAL_TRANSITION');
  if (input.action === 'resolve' && !input.outcome) throw badRequest('OUTCOME_REQUIRED');
  await tx.query(
    'UPDATE alerts SET state = $2, outcome = COALESCE($3, outcome), note = COALESCE($4, note), updated_at = $5 WHERE id = $1',
    [id, to, input.outcome ?? null, input.note ?? null, now],
  );
  await tx.query(
    'INSERT INTO reviews (id, alert_id, officer_id, action, from_state, to_state, outcome, note, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
    [
      reviewId,
      id,
      officerId,
      input.action,
      current,
      to,
      input.outcome ?? null,
      input.note ?? null,
      now,
    ],
  );
  return { alert: (await getAlert(tx, id)) as Alert, from: current };
}

export async function reviews(db: Queryable, alertId: string) {
  const { rows } = await db.query<{
    at: number;
    username: string;
    action: string;
    from_state: string;
    to_state: string;
    outcome: string | null;
    note: string | null;
  }>(
    'SELECT r.at, o.username, r.action, r.from_state, r.to_state, r.outcome, r.note FROM reviews r JOIN officers o ON o.id = r.officer_id WHERE r.alert_id = $1 ORDER BY r.at',
    [alertId],
  );
  return rows.map((r) => ({
    at: r.at,
    officer: r.username,
    action: r.action,
    fromState: r.from_state,
    toState: r.to_state,
    outcome: r.outcome,
    note: r.note,
  }));
}

/** Alerts per UTC day by outcome, every day of the range present (for the chart). */
export async function dailyStats(db: Queryable, days: number, now: number) {
  const DAY = 86_400_000;
  const start = Math.floor(now / DAY) * DAY - (days - 1) * DAY;
  const { rows } = await db.query<{ day: number; outcome: string | null; n: number }>(
    `SELECT floor(occurred_at / 86400000)::bigint * 86400000 AS day, outcome, count(*)::int AS n
       FROM alerts WHERE kind = ANY($1::text[]) AND occurred_at >= $2 GROUP BY 1, 2`,
    [[...REVIEWABLE], start],
  );
  return Array.from({ length: days }, (_, i) => {
    const day = start + i * DAY;
    const byOutcome: Record<string, number> = {
      violation_confirmed: 0,
      false_alarm: 0,
      beacon_fault: 0,
      presence_proven_later: 0,
      unresolved: 0,
    };
    let total = 0;
    for (const r of rows.filter((x) => Number(x.day) === day)) {
      byOutcome[r.outcome ?? 'unresolved'] = (byOutcome[r.outcome ?? 'unresolved'] ?? 0) + r.n;
      total += r.n;
    }
    return { day: new Date(day).toISOString().slice(0, 10), total, byOutcome };
  });
}
