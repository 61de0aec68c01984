import { z } from 'zod';
import type { Queryable } from '../../backend-kit/db.js';
import { ApiError, badRequest, notFound } from '../../backend-kit/errors.js';

export const REVIEWABLE = [
  'NO_PRESENCE',
  'CLOCK_DRIFT',
  'BEACON_RESTARTED',
  'LOW_BATTERY',
] as const;
const UPDATES = ['RECOVERED', 'LATE_EVIDENCE'] as const;
const URGENCY: Record<string, number> = {
  NO_PRESENCE: 3,
  CLOCK_DRIFT: 1,
  BEACON_RESTARTED: 1,
  LOW_BATTERY: 0,
};

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
  readonly state: AlertState;
  readonly outcome: string | null;
  readonly note: string | null;
  readonly occurredAt: number;
  readonly receivedAt: number;
  readonly gapStartedAt: number | null;
  readonly lastPresenceAt: number | null;
  readonly recoveredAt: number | null;
  readonly evidenceUntil: number | null;
  readonly relatedAlertId: string | null;
  readonly updatedAt: number;
  readonly address: string | null;
  readonly caseRef: string | null;
  readonly urgency: number;
}

interface Row {
  id: string;
  beacon_id: string;
  kind: string;
  state: AlertState;
  outcome: string | null;
  note: string | null;
  occurred_at: number;
  received_at: number;
  gap_started_at: number | null;
  last_presence_at: number | null;
  recovered_at: number | null;
  evidence_until: number | null;
  related_alert_id: string | null;
  updated_at: number;
  address: string | null;
  case_ref: string | null;
}

const SELECT = `SELECT a.*, b.address, b.case_ref FROM alerts a LEFT JOIN beacons b ON b.id = a.beacon_record`;

const toAlert = (r: Row): Alert => ({
  id: r.id,
  beaconId: r.beacon_id,
  kind: r.kind,
  state: r.state,
  outcome: r.outcome,
  note: r.note,
  occurredAt: r.occurred_at,
  receivedAt: r.received_at,
  gapStartedAt: r.gap_started_at,
  lastPresenceAt: r.last_presence_at,
  recoveredAt: r.recovered_at,
  evidenceUntil: r.evidence_until,
  relatedAlertId: r.related_alert_id,
  updatedAt: r.updated_at,
  address: r.address,
  caseRef: r.case_ref,
  urgency: URGENCY[r.kind] ?? 0,
});

export async function getAlert(db: Queryable, id: string): Promise<Alert | undefined> {
  const { rows } = await db.query<Row>(`${SELECT} WHERE a.id = $1`, [id]);
  return rows[0] ? toAlert(rows[0]) : undefined;
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
  const reviewable = (REVIEWABLE as readonly string[]).includes(m.kind);
  const lastPresence = typeof m.detail.lastPresenceAt === 'number' ? m.detail.lastPresenceAt : null;
  const inserted = await tx.query(
    `INSERT INTO alerts (id, beacon_record, beacon_id, kind, state, occurred_at, received_at, gap_started_at, last_presence_at, related_alert_id, detail, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $7) ON CONFLICT (id) DO NOTHING`,
    [
      m.alertId,
      beacon[0]?.id ?? null,
      m.beaconId,
      m.kind,
      reviewable ? 'open' : 'info',
      m.occurredAt,
      now,
      m.gapStartedAt,
      lastPresence,
      m.relatedAlertId,
      JSON.stringify(m.detail),
    ],
  );
  if (inserted.rowCount === 0) return [];
  const changed = [m.alertId];
  if (m.relatedAlertId && m.kind === 'RECOVERED') {
    await tx.query('UPDATE alerts SET recovered_at = $2, updated_at = $3 WHERE id = $1', [
      m.relatedAlertId,
      m.occurredAt,
      now,
    ]);
    changed.push(m.relatedAlertId);
  }
  if (
    m.relatedAlertId &&
    m.kind === 'LATE_EVIDENCE' &&
    typeof m.detail.evidenceUntil === 'number'
  ) {
    await tx.query(
      'UPDATE alerts SET evidence_until = GREATEST(COALESCE(evidence_until, 0), $2), updated_at = $3 WHERE id = $1',
      [m.relatedAlertId, m.detail.evidenceUntil, now],
    );
    changed.push(m.relatedAlertId);
  }
  const out: Alert[] = [];
  for (const id of changed) {
    const a = await getAlert(tx, id);
    if (a) out.push(a);
  }
  return out;
}

export const listQuerySchema = z.strictObject({
  view: z.enum(['queue', 'history']).default('queue'),
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
