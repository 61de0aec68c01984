import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../../backend-kit/db.js';
import {
  type Alert,
  type AlertMessage,
  type Detail,
  type Queue,
  receiveAlerts,
  urgency,
} from '../src/alerts.js';
import { createOfficer } from '../src/officers.js';
import { PASSWORD, T0 } from './harness.js';

export const MIN = 60_000;
const DAY = 86_400_000;

/** Beacon records for intake tests: one in use, one reinstalled (an ended record and a current one), one only ended. */
export const BEACONS = [
  { beaconId: 'SB-1', address: '1 High Street', caseRef: 'C-1', status: 'monitoring', at: -10 },
  { beaconId: 'SB-2', address: '2 Old Road', caseRef: 'C-2a', status: 'ended', at: -30 },
  { beaconId: 'SB-2', address: '2 New Road', caseRef: 'C-2b', status: 'monitoring', at: -5 },
  { beaconId: 'SB-3', address: '3 Gone Lane', caseRef: 'C-3', status: 'ended', at: -20 },
] as const;
/** A beacon no record names: its alerts are stored without an address. */
export const UNKNOWN_BEACON = 'SB-404';

/** An officer (scrypt once per file) and the BEACONS records, written directly. */
export async function addBeaconRecords(db: Database): Promise<void> {
  const officer = await createOfficer(db, 'installer', PASSWORD, 'officer', T0 - 40 * DAY);
  for (const b of BEACONS) {
    const installedAt = T0 + b.at * DAY;
    await db.query(
      `INSERT INTO beacons (id, beacon_id, address, case_ref, installed_by, installed_at, ended_at, status, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $6)`,
      [
        randomUUID(),
        b.beaconId,
        b.address,
        b.caseRef,
        officer,
        installedAt,
        b.status === 'ended' ? installedAt + DAY : null,
        b.status,
      ],
    );
  }
}

/** Empty the alert tables between cases (the beacons and officers stay); cheaper than TRUNCATE on PGlite. */
export async function clearAlerts(db: Queryable): Promise<void> {
  await db.query('WITH r AS (DELETE FROM reviews) DELETE FROM alerts');
}

/** Store messages as one intake batch would, at `now`. */
export function storeAlerts(
  db: Database,
  messages: readonly AlertMessage[],
  now: number,
): Promise<Alert[][]> {
  return db.transaction((tx) => receiveAlerts(tx, messages, now));
}

export type ReviewState = 'acknowledged' | 'dispatched' | 'resolved';

/** Set review states directly (what officers' actions leave behind), without a review trail. */
export async function setStates(
  db: Queryable,
  states: readonly { id: string; state: ReviewState; outcome?: string }[],
): Promise<void> {
  await db.query(
    `UPDATE alerts a SET state = t.state, outcome = t.outcome
       FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t (id, state, outcome) WHERE a.id = t.id`,
    [states.map((s) => s.id), states.map((s) => s.state), states.map((s) => s.outcome ?? null)],
  );
}

/**
 * Alerts as the API shows them, read straight from the tables (written out here, not the
 * service's mapping): what an answer or a live push about them must say.
 */
export async function storedAlerts(
  db: Queryable,
  ids: readonly string[],
): Promise<Map<string, Alert>> {
  const { rows } = await db.query<
    Record<string, unknown> & { id: string; kind: string; detail: string }
  >(
    `SELECT a.*, b.address, b.case_ref FROM alerts a LEFT JOIN beacons b ON b.id = a.beacon_record
      WHERE a.id = ANY($1::uuid[])`,
    [[...new Set(ids)]],
  );
  return new Map(
    rows.map((r) => {
      const detail = JSON.parse(r.detail) as Detail;
      const alert = {
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
        urgency: r.urgency,
        detail,
      } as Alert;
      return [r.id, alert];
    }),
  );
}

/** Every row the intake could write, in a stable order, detail parsed (its key order is not meaning). */
export async function tableRows(db: Queryable, auditAfter = 0) {
  const alerts = await db.query<Record<string, unknown> & { detail: string }>(
    'SELECT * FROM alerts ORDER BY id',
  );
  const reviews = await db.query('SELECT * FROM reviews ORDER BY id');
  const audit = await db.query(
    'SELECT officer, action, subject, detail FROM audit_log WHERE seq > $1 ORDER BY seq',
    [auditAfter],
  );
  return {
    alerts: alerts.rows.map((r): Record<string, unknown> => ({
      ...r,
      detail: JSON.parse(r.detail) as unknown,
    })),
    reviews: reviews.rows,
    audit: audit.rows,
  };
}

export async function lastAuditSeq(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ seq: number | null }>('SELECT max(seq) AS seq FROM audit_log');
  return Number(rows[0]?.seq ?? 0);
}

export type Ordered = Pick<Alert, 'id' | 'urgency' | 'occurredAt' | 'receivedAt'>;

/** The queue's order, written out independently of the service: urgency down, then oldest, arrival, ID. */
export function expectedOrder(a: Ordered, b: Ordered): number {
  if (a.urgency !== b.urgency) return b.urgency - a.urgency;
  if (a.occurredAt !== b.occurredAt) return a.occurredAt - b.occurredAt;
  if (a.receivedAt !== b.receivedAt) return a.receivedAt - b.receivedAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** What a list query filters on, as the API takes it. */
export interface Filter {
  readonly kind?: string | undefined;
  readonly from?: number | undefined;
  readonly to?: number | undefined;
}

/** Open alerts of a queue straight from the table, filtered and in the expected order. */
export async function openAlerts(
  db: Queryable,
  queue: Queue,
  filter: Filter = {},
): Promise<Ordered[]> {
  const { rows } = await db.query<{
    id: string;
    kind: string;
    detail: string;
    occurred_at: number;
    received_at: number;
  }>(
    `SELECT id, kind, detail, occurred_at, received_at FROM alerts
      WHERE queue = $1 AND state IN ('open', 'acknowledged', 'dispatched')
        AND ($2::text IS NULL OR kind = $2) AND ($3::bigint IS NULL OR occurred_at >= $3)
        AND ($4::bigint IS NULL OR occurred_at <= $4)`,
    [queue, filter.kind ?? null, filter.from ?? null, filter.to ?? null],
  );
  return rows
    .map((r) => ({
      id: r.id,
      // From the kind and the merged detail (the documented rule), not the stored column.
      urgency: urgency(r.kind, JSON.parse(r.detail) as Detail),
      occurredAt: Number(r.occurred_at),
      receivedAt: Number(r.received_at),
    }))
    .sort(expectedOrder);
}
