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

// Detail times are read only when they are whole ms a bigint column holds; anything else stays in the detail.
const num = (v: unknown): number | null => (Number.isSafeInteger(v) ? (v as number) : null);

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
  const { rows } = await tx.query<{ kind: string; detail: string; gap_started_at: number | null }>(
    'SELECT kind, detail, gap_started_at FROM alerts WHERE id = $1 FOR UPDATE',
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
       covered_by_evidence = CASE WHEN $5 THEN NULL ELSE covered_by_evidence END,
       urgency = $7
     WHERE id = $1`,
    [
      id,
      JSON.stringify(detail),
      num(m.detail.lastPresenceAt),
      now,
      newGap,
      m.gapStartedAt,
      urgency(current.kind, detail),
    ],
  );
}

interface BeaconRecord {
  id: string;
  address: string;
  case_ref: string;
}

/** The beacon record in use for each beacon ID (or, if none is, the latest), in one query. */
async function beaconRecords(
  tx: Queryable,
  beaconIds: string[],
): Promise<Map<string, BeaconRecord>> {
  const { rows } = await tx.query<BeaconRecord & { beacon_id: string }>(
    `SELECT DISTINCT ON (beacon_id) beacon_id, id, address, case_ref FROM beacons
      WHERE beacon_id = ANY($1::text[]) ORDER BY beacon_id, status = 'ended', installed_at DESC`,
    [beaconIds],
  );
  return new Map(rows.map((r) => [r.beacon_id, r]));
}

// UUIDs compare as the database prints them: lower case.
const uuidKey = (id: string): string => id.toLowerCase();
const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Update kinds that write without reading first: one statement applies many of them. */
const TOGETHER: Record<string, { sql: string; values: (m: AlertMessage) => unknown[] | null }> = {
  RESOLVED_BY_EVIDENCE: {
    sql: `UPDATE alerts a SET recovered_at = t.at, covered_by_evidence = t.covered, updated_at = $4
            FROM unnest($1::uuid[], $2::bigint[], $3::boolean[]) AS t (id, at, covered) WHERE a.id = t.id RETURNING a.id`,
    values: (m) => [
      num(m.detail.lastPresenceAt) ?? m.occurredAt,
      typeof m.detail.coveredByEvidence === 'boolean' ? m.detail.coveredByEvidence : null,
    ],
  },
  LATE_EVIDENCE: {
    sql: `UPDATE alerts a SET evidence_until = GREATEST(COALESCE(a.evidence_until, 0), t.until), updated_at = $3
            FROM unnest($1::uuid[], $2::bigint[]) AS t (id, until) WHERE a.id = t.id RETURNING a.id`,
    values: (m) => {
      const until = num(m.detail.evidenceUntil);
      return until === null ? null : [until];
    },
  },
  FAULT_CLEARED: {
    sql: `UPDATE alerts a SET condition_cleared_at = t.at, updated_at = $3
            FROM unnest($1::uuid[], $2::bigint[]) AS t (id, at) WHERE a.id = t.id RETURNING a.id`,
    values: (m) => [m.occurredAt],
  },
};

/**
 * Apply updates; returns the keys of the updates that changed their related alert. An alert that
 * gets one update in the batch is changed with others of that kind in one statement; one that
 * gets several, or a repeat (read, merge, write), one message at a time in arrival order.
 */
async function applyUpdates(
  tx: Queryable,
  updates: AlertMessage[],
  now: number,
): Promise<Set<string>> {
  const changed = new Set<string>();
  const perAlert = new Map<string, number>();
  for (const m of updates) {
    const k = uuidKey(m.relatedAlertId ?? '');
    perAlert.set(k, (perAlert.get(k) ?? 0) + 1);
  }
  const grouped = new Map<string, { messages: AlertMessage[]; columns: unknown[][] }>();
  const oneByOne: AlertMessage[] = [];
  for (const m of updates) {
    const how = TOGETHER[m.kind];
    if (!how || perAlert.get(uuidKey(m.relatedAlertId ?? '')) !== 1) {
      oneByOne.push(m);
      continue;
    }
    const values = how.values(m);
    if (!values) continue; // nothing to change (as applyUpdate)
    const g = grouped.get(m.kind) ?? { messages: [], columns: [[], ...values.map(() => [])] };
    g.messages.push(m);
    g.columns[0]?.push(m.relatedAlertId);
    values.forEach((v, i) => g.columns[i + 1]?.push(v));
    grouped.set(m.kind, g);
  }
  for (const [kind, g] of grouped) {
    const { rows } = await tx.query<{ id: string }>((TOGETHER[kind] as { sql: string }).sql, [
      ...g.columns,
      now,
    ]);
    const hit = new Set(rows.map((r) => uuidKey(r.id)));
    for (const m of g.messages)
      if (hit.has(uuidKey(m.relatedAlertId ?? ''))) changed.add(uuidKey(m.alertId));
  }
  for (const m of oneByOne) if (await applyUpdate(tx, m, now)) changed.add(uuidKey(m.alertId));
  return changed;
}

/**
 * Store a batch of alerts, each once (its ID is the idempotency key; within the batch the first
 * message with an ID counts, a later one is a redelivery), in a few statements for the whole
 * batch. Updates then touch the alert they relate to, in arrival order. Returns, per message, the
 * alerts whose view changed, for live updates; empty for a redelivery.
 */
export async function receiveAlerts(
  tx: Queryable,
  messages: readonly AlertMessage[],
  now: number,
): Promise<Alert[][]> {
  const fresh = new Map<string, AlertMessage>();
  for (const m of messages) if (!fresh.has(uuidKey(m.alertId))) fresh.set(uuidKey(m.alertId), m);
  // Rows are written in ID order, so concurrent batches take their locks in the same order.
  const rows = [...fresh.entries()].sort(([a], [b]) => byKey(a, b)).map(([, m]) => m);
  const records = await beaconRecords(tx, [...new Set(rows.map((m) => m.beaconId))]);
  const queueOf = (m: AlertMessage) => QUEUE_OF[m.kind as ReviewableKind] ?? null;
  const { rows: inserted } = await tx.query<{ id: string }>(
    `INSERT INTO alerts (id, beacon_record, beacon_id, kind, queue, state, occurred_at, received_at, gap_started_at, last_presence_at, related_alert_id, detail, urgency, updated_at)
     SELECT t.id, t.beacon_record, t.beacon_id, t.kind, t.queue, t.state, t.occurred_at, $13, t.gap_started_at, t.last_presence_at, t.related_alert_id, t.detail, t.urgency, $13
       FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::uuid[], $11::text[], $12::smallint[])
         AS t (id, beacon_record, beacon_id, kind, queue, state, occurred_at, gap_started_at, last_presence_at, related_alert_id, detail, urgency)
     ON CONFLICT (id) DO NOTHING RETURNING id`,
    [
      rows.map((m) => m.alertId),
      rows.map((m) => records.get(m.beaconId)?.id ?? null),
      rows.map((m) => m.beaconId),
      rows.map((m) => m.kind),
      rows.map(queueOf),
      rows.map((m) => (queueOf(m) ? 'open' : 'info')),
      rows.map((m) => m.occurredAt),
      rows.map((m) => m.gapStartedAt),
      rows.map((m) => num(m.detail.lastPresenceAt)),
      rows.map((m) => m.relatedAlertId),
      rows.map((m) => JSON.stringify(m.detail)),
      rows.map((m) => urgency(m.kind, m.detail)),
      now,
    ],
  );
  const stored = new Set(inserted.map((r) => uuidKey(r.id)));
  // Updates in arrival order per related alert; sorted by it, for the same lock order as above.
  const updates = [...fresh.values()]
    .filter((m) => stored.has(uuidKey(m.alertId)) && !queueOf(m) && m.relatedAlertId)
    .sort((a, b) => byKey(uuidKey(a.relatedAlertId ?? ''), uuidKey(b.relatedAlertId ?? '')));
  const relatedChanged = await applyUpdates(tx, updates, now);

  // New rows are as written (no read back); alerts an update changed are read once, as they are now.
  const alerts = new Map<string, Alert>();
  for (const m of fresh.values()) {
    const key = uuidKey(m.alertId);
    if (!stored.has(key)) continue;
    const beacon = records.get(m.beaconId);
    alerts.set(
      key,
      toAlert({
        id: key,
        beacon_id: m.beaconId,
        kind: m.kind,
        queue: queueOf(m),
        state: queueOf(m) ? 'open' : 'info',
        outcome: null,
        note: null,
        occurred_at: m.occurredAt,
        received_at: now,
        gap_started_at: m.gapStartedAt,
        last_presence_at: num(m.detail.lastPresenceAt),
        recovered_at: null,
        covered_by_evidence: null,
        evidence_until: null,
        condition_cleared_at: null,
        occurrences: 1,
        related_alert_id: m.relatedAlertId === null ? null : uuidKey(m.relatedAlertId),
        updated_at: now,
        detail: JSON.stringify(m.detail),
        address: beacon?.address ?? null,
        case_ref: beacon?.case_ref ?? null,
      }),
    );
  }
  const reread = new Set<string>();
  for (const m of updates)
    if (relatedChanged.has(uuidKey(m.alertId))) reread.add(uuidKey(m.relatedAlertId ?? ''));
  if (reread.size) {
    const { rows: found } = await tx.query<Row>(`${SELECT} WHERE a.id = ANY($1::uuid[])`, [
      [...reread],
    ]);
    for (const r of found) alerts.set(uuidKey(r.id), toAlert(r));
  }
  const seen = new Set<string>();
  return messages.map((m) => {
    const key = uuidKey(m.alertId);
    if (seen.has(key) || !stored.has(key)) return [];
    seen.add(key);
    const out = [alerts.get(key)];
    if (relatedChanged.has(key)) out.push(alerts.get(uuidKey(m.relatedAlertId ?? '')));
    return out.filter((a): a is Alert => a !== undefined);
  });
}

export const listQuerySchema = z
  .strictObject({
    view: z.enum(['queue', 'history']).default('queue'),
    queue: z.enum(QUEUES).optional(),
    kind: z.enum(REVIEWABLE).optional(),
    outcome: z.enum(OUTCOMES).optional(),
    from: z.coerce.number().int().nonnegative().optional(),
    to: z.coerce.number().int().nonnegative().optional(),
    /** Queue view: at most this many of each queue. */
    limit: z.coerce.number().int().min(1).max(1000).optional(),
    /** Queue view, one queue: the alerts after this one in queue order (the next page). */
    after: z.uuid().optional(),
  })
  .refine((q) => q.after === undefined || (q.view === 'queue' && q.queue !== undefined));

export type ListQuery = z.infer<typeof listQuerySchema>;

/** Reviewable alerts not yet resolved: the queues (the partial index alerts_open covers them). */
const OPEN = `a.kind = ANY($1::text[]) AND a.state IN ('open', 'acknowledged', 'dispatched')`;

/** The filters of a list query as SQL, numbered after `params`. */
function filters(q: ListQuery, params: unknown[], withQueue: boolean): string[] {
  const where: string[] = [];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (withQueue && q.queue) add('a.queue = ?', q.queue);
  if (q.kind) add('a.kind = ?', q.kind);
  if (q.outcome) add('a.outcome = ?', q.outcome);
  if (q.from !== undefined) add('a.occurred_at >= ?', q.from);
  if (q.to !== undefined) add('a.occurred_at <= ?', q.to);
  return where;
}

/** History: reviewable alerts in any state, newest first. */
export async function listAlerts(db: Queryable, q: ListQuery): Promise<Alert[]> {
  const params: unknown[] = [[...REVIEWABLE]];
  const where = [`a.kind = ANY($1::text[])`, ...filters(q, params, true)];
  const { rows } = await db.query<Row>(
    `${SELECT} WHERE ${where.join(' AND ')} ORDER BY a.occurred_at DESC LIMIT 500`,
    params,
  );
  return rows.map(toAlert);
}

export type QueueCounts = Record<Queue, number>;

/** Open alerts per queue (with the query's filters other than the queue). */
export async function queueCounts(db: Queryable, q: Partial<ListQuery> = {}): Promise<QueueCounts> {
  const params: unknown[] = [[...REVIEWABLE]];
  const where = [OPEN, ...filters(q as ListQuery, params, false)];
  const { rows } = await db.query<{ queue: Queue; n: number }>(
    `SELECT a.queue, count(*)::int AS n FROM alerts a WHERE ${where.join(' AND ')} GROUP BY a.queue`,
    params,
  );
  const counts: QueueCounts = { violation: 0, maintenance: 0 };
  for (const r of rows) if (r.queue in counts) counts[r.queue] = r.n;
  return counts;
}

/** The queue's order: most urgent first, then the oldest (ties by arrival, then ID). */
export function queueOrder(x: Alert, y: Alert): number {
  return (
    y.urgency - x.urgency ||
    x.occurredAt - y.occurredAt ||
    x.receivedAt - y.receivedAt ||
    (x.id < y.id ? -1 : x.id > y.id ? 1 : 0)
  );
}

export const DEFAULT_QUEUE_LIMIT = 500;

/**
 * The queue view: the first `limit` open alerts of each queue asked for (or those after `after`),
 * in queue order, and how many each queue holds in all, so a client can tell it has a part.
 */
export async function queuePage(
  db: Queryable,
  q: ListQuery,
): Promise<{ alerts: Alert[]; counts: QueueCounts }> {
  const limit = q.limit ?? DEFAULT_QUEUE_LIMIT;
  const pages = await Promise.all(
    (q.queue ? [q.queue] : QUEUES).map(async (queue) => {
      const params: unknown[] = [[...REVIEWABLE], queue];
      const where = [OPEN, 'a.queue = $2', ...filters(q, params, false)];
      if (q.after !== undefined) {
        params.push(q.after);
        // After the given alert in queue order (urgency negated: it sorts descending).
        where.push(
          `(-a.urgency, a.occurred_at, a.received_at, a.id) > (SELECT -urgency, occurred_at, received_at, id FROM alerts WHERE id = $${params.length})`,
        );
      }
      params.push(limit);
      const { rows } = await db.query<Row>(
        `${SELECT} WHERE ${where.join(' AND ')}
          ORDER BY a.urgency DESC, a.occurred_at, a.received_at, a.id LIMIT $${params.length}`,
        params,
      );
      return rows.map(toAlert);
    }),
  );
  return { alerts: pages.flat().sort(queueOrder), counts: await queueCounts(db, q) };
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
