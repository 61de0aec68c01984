import { randomUUID } from 'node:crypto';
import type { Queryable } from '../../backend-kit/db.js';
import type { Effect, Gap, GapStatus, QuarantineState } from './decide.js';
import { type FaultReason, parseReasons } from './faults.js';

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
  fault_alert_id: string | null;
  fault_reasons: string;
  spoof_alert_id: string | null;
  spoof_reported: number;
  invalid_streak: number;
  invalid_since: number | null;
  clock_not_set_at: number | null;
  last_request_at: number | null;
  relay_back_at: number | null;
  row_ctid: string;
  row_xmin: string;
}

interface GapRow {
  gap_id: string | null;
  gap_status: GapStatus | null;
  gap_queue: Gap['queue'];
  gap_started_at: number | null;
  evidence_until: number | null;
  closed_at: number | null;
  held_at: number | null;
  relay_silent: boolean | null;
}

/** A quarantine's state as read, and which row version it came from. */
export interface Stored {
  readonly state: QuarantineState;
  /** The version read (its place and creating transaction): a write checks it is still current. */
  readonly version: { readonly ctid: string; readonly xmin: string };
  /** open_alert_id as stored. */
  readonly openAlertId: string | null;
}

/** A quarantine read by its key hash, with the sealed beacon key the validator needs. */
export interface StoredWithKey extends Stored {
  readonly keyHash: string;
  readonly sealedKey: Uint8Array;
  /** K_enc ‖ K_mac sealed (migration 004); null for a row registered before it. */
  readonly sealedDerived: Uint8Array | null;
}

const STATE_SELECT = `q.id, q.beacon_id, q.state, q.window_seconds, q.registered_at, q.enabled_at, q.last_presence_at,
  q.last_received_at, q.last_counter, q.clock_offset_seconds, q.offset_updated_at, q.battery, q.flags, q.deadline,
  q.open_alert_id, q.fault_alert_id, q.fault_reasons, q.spoof_alert_id, q.spoof_reported, q.invalid_streak,
  q.invalid_since, q.clock_not_set_at, q.last_request_at, q.relay_back_at, q.row_ctid, q.row_xmin`;
/** The row and the version it is (a derived table has no system columns of its own). */
const ROW_VERSION = `q.*, q.ctid::text AS row_ctid, q.xmin::text AS row_xmin`;

// The latest gap, open or closed: late evidence may still cover a closed one.
const LATEST_GAP = `LEFT JOIN LATERAL (
  SELECT a.id AS gap_id, a.status AS gap_status, a.queue AS gap_queue, a.gap_started_at, a.evidence_until, a.closed_at,
         a.held_at, (a.detail->>'relaySilent')::boolean AS relay_silent
    FROM alerts a WHERE a.quarantine_id = q.id AND a.kind = 'NO_PRESENCE'
   ORDER BY a.created_at DESC, a.id LIMIT 1) g ON true`;

function toStored(r: Row, g: GapRow): Stored {
  const state: QuarantineState = {
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
    gap:
      g.gap_id !== null
        ? {
            id: g.gap_id,
            status: g.gap_status as GapStatus,
            queue: g.gap_queue,
            gapStartedAt: g.gap_started_at as number,
            evidenceUntil: g.evidence_until,
            closedAt: g.closed_at,
            heldAt: g.held_at,
            silentReported: g.gap_queue === 'maintenance' && g.relay_silent === true,
          }
        : null,
    fault: r.fault_alert_id
      ? { id: r.fault_alert_id, reasons: parseReasons(r.fault_reasons) }
      : null,
    spoof: r.spoof_alert_id ? { id: r.spoof_alert_id, reported: r.spoof_reported } : null,
    invalidStreak: r.invalid_streak,
    invalidSince: r.invalid_since,
    clockNotSetAt: r.clock_not_set_at,
    lastRequestAt: r.last_request_at,
    relayBackAt: r.relay_back_at,
  };
  return { state, version: { ctid: r.row_ctid, xmin: r.row_xmin }, openAlertId: r.open_alert_id };
}

/**
 * Read the active quarantines of these key hashes, with their latest gap, in one statement and
 * without locks (one snapshot: a gap only changes together with its quarantine's row). A nested
 * loop of index look-ups whatever the planner thinks of a 2,000-element `= ANY`, which it answers
 * with a sequential scan of every quarantine at 100,000 rows.
 */
export async function loadByKeyHash(
  db: Queryable,
  keyHashes: readonly string[],
): Promise<Map<string, StoredWithKey>> {
  const { rows } = await db.query<
    Row &
      GapRow & {
        sk_t_past_hash: string;
        sk_beacon_sealed: Uint8Array;
        keys_sealed: Uint8Array | null;
      }
  >(
    `SELECT ${STATE_SELECT}, q.sk_t_past_hash, q.sk_beacon_sealed, q.keys_sealed, g.*
       FROM unnest($1::text[]) AS h(hash)
      CROSS JOIN LATERAL (SELECT ${ROW_VERSION} FROM quarantines q
                           WHERE q.sk_t_past_hash = h.hash AND q.state <> 'ended' LIMIT 1) q
      ${LATEST_GAP}`,
    [keyHashes],
  );
  const out = new Map<string, StoredWithKey>();
  for (const r of rows)
    out.set(
      r.sk_t_past_hash,
      Object.assign(toStored(r, r), {
        keyHash: r.sk_t_past_hash,
        sealedKey: r.sk_beacon_sealed,
        sealedDerived: r.keys_sealed,
      }),
    );
  return out;
}

/**
 * Lock and load quarantines in id order (a fixed order, so concurrent batches cannot deadlock),
 * then read their gaps in a statement of its own: its snapshot is taken after the locks.
 */
export async function lockStates(tx: Queryable, ids: readonly string[]): Promise<Stored[]> {
  const sorted = [...new Set(ids)].sort();
  const { rows: locked } = await tx.query<Row>(
    `SELECT ${STATE_SELECT} FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)
      CROSS JOIN LATERAL (SELECT ${ROW_VERSION} FROM quarantines q WHERE q.id = u.id AND q.state <> 'ended' FOR UPDATE) q
      ORDER BY u.n`,
    [sorted],
  );
  const { rows: gaps } = await tx.query<GapRow & { id: string }>(
    `SELECT q.id, g.* FROM unnest($1::uuid[]) AS q(id) ${LATEST_GAP}`,
    [locked.map((r) => r.id)],
  );
  const gapOf = new Map(gaps.map((g) => [g.id, g]));
  return locked.map((r) => toStored(r, gapOf.get(r.id) as GapRow));
}

type Value = number | string | null;
type Column = readonly [string, string, (s: QuarantineState) => Value];

/** The columns presence decisions write, in the order saveStates sends them (name, type, value). */
export const STATE_COLUMNS: readonly Column[] = [
  ['last_presence_at', 'bigint', (s: QuarantineState) => s.lastPresenceAt],
  ['last_received_at', 'bigint', (s: QuarantineState) => s.lastReceivedAt],
  ['last_counter', 'bigint', (s: QuarantineState) => s.lastCounter],
  ['clock_offset_seconds', 'float8', (s: QuarantineState) => s.offsetSeconds],
  ['offset_updated_at', 'bigint', (s: QuarantineState) => s.offsetUpdatedAt],
  ['battery', 'int2', (s: QuarantineState) => s.battery],
  ['flags', 'int2', (s: QuarantineState) => s.flags],
  ['deadline', 'bigint', (s: QuarantineState) => s.deadline],
  ['open_alert_id', 'uuid', (s: QuarantineState) => openAlertOf(s)],
  // A fault or spoofing alert a decision opens has no ID until applyEffects inserts it.
  ['fault_alert_id', 'uuid', (s: QuarantineState) => s.fault?.id || null],
  ['fault_reasons', 'text', (s: QuarantineState) => s.fault?.reasons.join(',') ?? ''],
  ['spoof_alert_id', 'uuid', (s: QuarantineState) => s.spoof?.id || null],
  ['spoof_reported', 'int4', (s: QuarantineState) => s.spoof?.reported ?? 0],
  ['invalid_streak', 'int4', (s: QuarantineState) => s.invalidStreak],
  ['invalid_since', 'bigint', (s: QuarantineState) => s.invalidSince],
  ['clock_not_set_at', 'bigint', (s: QuarantineState) => s.clockNotSetAt],
  ['last_request_at', 'bigint', (s: QuarantineState) => s.lastRequestAt],
  ['relay_back_at', 'bigint', (s: QuarantineState) => s.relayBackAt],
];

const openAlertOf = (s: QuarantineState): string | null =>
  s.gap && (s.gap.status === 'provisional' || s.gap.status === 'confirmed') ? s.gap.id : null;

const OPEN_ALERT = STATE_COLUMNS.findIndex(([name]) => name === 'open_alert_id');

/** A decided state to write onto the row version it was decided from. */
export interface Write {
  readonly before: Stored;
  /** The state's column values, in STATE_COLUMNS order. */
  readonly values: readonly Value[];
  /** Bit k set: column k differs from the stored row. */
  readonly changed: number;
}

/** The decided state as a write: its column values and which of them change the stored row. */
export function toWrite(before: Stored, next: QuarantineState): Write {
  let changed = 0;
  const values: Value[] = [];
  for (let k = 0; k < STATE_COLUMNS.length; k++) {
    const get = (STATE_COLUMNS[k] as Column)[2];
    const value = get(next);
    // open_alert_id as stored, not as the loaded gap implies.
    const was = k === OPEN_ALERT ? before.openAlertId : get(before.state);
    if (value !== was) changed |= 1 << k;
    values.push(value);
  }
  return { before, values, changed };
}

/**
 * A PostgreSQL array literal of numbers, UUIDs and fault-reason lists: node-postgres builds one
 * element by element with type checks and escaping, 3–4× the CPU for these plain values.
 */
export function arrayLiteral(values: readonly (Value | boolean)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i) out += ',';
    out +=
      v === null ? 'NULL' : typeof v === 'string' ? `"${v.replace(/[\\"]/g, '\\$&')}"` : String(v);
  }
  return out + '}';
}

const bit = (name: string): number => 1 << STATE_COLUMNS.findIndex(([n]) => n === name);
/** What the status cache reads of a row: only when one changes is status_changed_at moved. */
const STATUS_INPUTS = bit('last_presence_at') | bit('deadline') | bit('open_alert_id');

/**
 * For the rest of this transaction, join batch rows to their table rows by looking each one up.
 * The planner's default costs take 2,000 look-ups in a cached table of 100,000 rows for random
 * disk reads and prefer to hash the whole table (a sequential scan): 3–5× slower there.
 */
export async function lookUpEachRow(tx: Queryable): Promise<void> {
  await tx.query(
    "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)",
  );
}

/**
 * Write decided states in one statement (unnest of one array per column), each onto the row
 * version it was decided from: found by its ctid (a TID scan, no index look-up), which finds
 * nothing once the row was written since it was read, and checked by its xmin (a freed slot may
 * hold another row by then; xideq() as a function: as an operator the planner hashes on it).
 * Returns how many rows were written; the caller decides a batch with a stale row again under
 * lock. Only the columns some row changes are sent (about half), and status_changed_at moves
 * only for rows whose relay status inputs changed.
 */
export async function saveStates(
  tx: Queryable,
  writes: readonly Write[],
  now: number,
): Promise<number> {
  if (!writes.length) return 0;
  let any = 0;
  for (const w of writes) any |= w.changed;
  const columns = STATE_COLUMNS.flatMap((c, k) => (any & (1 << k) ? [{ c, k }] : []));
  await lookUpEachRow(tx);
  const { rowCount } = await tx.query(
    `UPDATE quarantines q SET ${columns.map(({ c: [n] }) => `${n} = u.${n}, `).join('')}
            status_changed_at = CASE WHEN u.status_changed THEN $4::bigint ELSE q.status_changed_at END
       FROM unnest($1::tid[], $2::xid[], $3::bool[]${columns.map(({ c: [, type] }, i) => `, $${i + 5}::${type}[]`).join('')})
         AS u(ctid_, xmin_, status_changed${columns.map(({ c: [n] }) => `, ${n}`).join('')})
      WHERE q.ctid = u.ctid_ AND xideq(q.xmin, u.xmin_)`,
    [
      arrayLiteral(writes.map((w) => w.before.version.ctid)),
      arrayLiteral(writes.map((w) => w.before.version.xmin)),
      arrayLiteral(writes.map((w) => (w.changed & STATUS_INPUTS) !== 0)),
      now,
      ...columns.map(({ k }) => arrayLiteral(writes.map((w) => w.values[k] as Value))),
    ],
  );
  return rowCount;
}

/** Write the alert IDs effects opened onto rows this transaction already wrote (and holds). */
export async function saveAlertIds(
  tx: Queryable,
  states: readonly QuarantineState[],
): Promise<void> {
  if (!states.length) return;
  await tx.query(
    `UPDATE quarantines q SET fault_alert_id = u.fault_alert_id, fault_reasons = u.fault_reasons,
            spoof_alert_id = u.spoof_alert_id, spoof_reported = u.spoof_reported
       FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::int4[])
         AS u(id, fault_alert_id, fault_reasons, spoof_alert_id, spoof_reported)
      WHERE q.id = u.id`,
    [
      states.map((s) => s.id),
      states.map((s) => s.fault?.id ?? null),
      states.map((s) => s.fault?.reasons.join(',') ?? ''),
      states.map((s) => s.spoof?.id ?? null),
      states.map((s) => s.spoof?.reported ?? 0),
    ],
  );
}

export const MESSAGE_KINDS = [
  'NO_PRESENCE',
  'BEACON_FAULT',
  'SUSPECTED_SPOOFING',
  'RESOLVED_BY_EVIDENCE',
  'LATE_EVIDENCE',
  'ALERT_UPDATED',
  'FAULT_CLEARED',
  'RELAY_SILENT',
] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];
type Detail = Record<string, number | string | boolean | null>;

/** What the police backend receives: the beacon ID, never a key, a token or anything about a phone. */
export interface AlertMessage {
  readonly alertId: string;
  readonly kind: MessageKind;
  readonly beaconId: string;
  readonly occurredAt: number;
  readonly gapStartedAt: number | null;
  readonly relatedAlertId: string | null;
  readonly detail: Detail;
}

interface NewAlert {
  readonly kind: MessageKind;
  readonly detail: Detail;
  readonly gapStartedAt?: number | null;
  readonly relatedAlertId?: string | null;
  /** Only NO_PRESENCE has a lifecycle status. */
  readonly status?: GapStatus;
  readonly queue?: 'violation' | 'maintenance';
  /** Closed at once (updates and notes), or left open (gaps, faults). */
  readonly open?: boolean;
  /** Queue it for the police backend (a provisional gap is not). */
  readonly send: boolean;
}

/** Insert an alert and, when it is sent, its outbox row in the caller's transaction: they commit together. */
export async function insertAlert(
  tx: Queryable,
  q: { id: string; beaconId: string },
  a: NewAlert,
  now: number,
): Promise<string> {
  const alertId = randomUUID();
  await tx.query(
    `INSERT INTO alerts (id, quarantine_id, beacon_id, kind, created_at, gap_started_at, related_alert_id, closed_at, detail, status, queue, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $5)`,
    [
      alertId,
      q.id,
      q.beaconId,
      a.kind,
      now,
      a.gapStartedAt ?? null,
      a.relatedAlertId ?? null,
      a.open ? null : now,
      JSON.stringify(a.detail),
      a.status ?? null,
      a.queue ?? null,
    ],
  );
  if (a.send) await send(tx, alertId, q.beaconId, a, now);
  return alertId;
}

/** Queue one message for delivery; its alert ID is the police backend's idempotency key. */
async function send(
  tx: Queryable,
  alertId: string,
  beaconId: string,
  a: Pick<NewAlert, 'kind' | 'detail' | 'gapStartedAt' | 'relatedAlertId'>,
  now: number,
): Promise<void> {
  const message: AlertMessage = {
    alertId,
    kind: a.kind,
    beaconId,
    occurredAt: now,
    gapStartedAt: a.gapStartedAt ?? null,
    relatedAlertId: a.relatedAlertId ?? null,
    detail: a.detail,
  };
  await tx.query(
    'INSERT INTO outbox (id, alert_id, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)',
    [randomUUID(), alertId, JSON.stringify(message), now],
  );
}

/** A repeat of an open alert: counted on it, and told to police as an update when it was sent. */
async function updateAlert(
  tx: Queryable,
  q: { id: string; beaconId: string },
  relatedAlertId: string,
  kind: 'ALERT_UPDATED' | 'FAULT_CLEARED',
  detail: Detail,
  now: number,
): Promise<void> {
  await tx.query(
    `UPDATE alerts SET occurrences = occurrences + $2, detail = detail || $3::jsonb, updated_at = $4,
            closed_at = CASE WHEN $5 THEN $4::bigint ELSE closed_at END WHERE id = $1`,
    [
      relatedAlertId,
      kind === 'ALERT_UPDATED' ? 1 : 0,
      JSON.stringify(detail),
      now,
      kind === 'FAULT_CLEARED',
    ],
  );
  await insertAlert(tx, q, { kind, detail, relatedAlertId, send: true }, now);
}

/** Was this gap told to police (a confirmed violation)? Only then do its updates go there too. */
const sentToPolice = (g: Gap): boolean =>
  g.queue === 'violation' && (g.status === 'confirmed' || g.status === 'resolved_by_evidence');

/**
 * Write what a decision changed besides the quarantine row, and return the state with the IDs of
 * any alert it opened. The caller saves that state in the same transaction.
 */
export async function applyEffects(
  tx: Queryable,
  next: QuarantineState,
  effects: readonly Effect[],
  now: number,
): Promise<QuarantineState> {
  let state = next;
  for (const e of effects) {
    switch (e.type) {
      case 'gap_closed': {
        await tx.query(
          'UPDATE alerts SET status = $2, closed_at = $3, evidence_until = $4, updated_at = $3 WHERE id = $1',
          [e.gap.id, e.status, now, state.gap?.evidenceUntil ?? null],
        );
        // Told to police (a violation, or a silence past its grace): they learn how it ended.
        if (sentToPolice(e.gap) || e.gap.silentReported)
          await insertAlert(
            tx,
            next,
            {
              kind: 'RESOLVED_BY_EVIDENCE',
              relatedAlertId: e.gap.id,
              detail: { lastPresenceAt: e.lastPresenceAt, coveredByEvidence: e.coveredByEvidence },
              send: true,
            },
            now,
          );
        break;
      }
      case 'late_evidence': {
        await tx.query(
          'UPDATE alerts SET evidence_until = GREATEST(COALESCE(evidence_until, 0), $2), updated_at = $3 WHERE id = $1',
          [e.gap.id, e.evidenceUntil, now],
        );
        if (sentToPolice(e.gap))
          await insertAlert(
            tx,
            next,
            {
              kind: 'LATE_EVIDENCE',
              relatedAlertId: e.gap.id,
              detail: { evidenceUntil: e.evidenceUntil },
              send: true,
            },
            now,
          );
        break;
      }
      case 'relay_silent':
        await insertAlert(
          tx,
          next,
          {
            kind: 'RELAY_SILENT',
            queue: 'maintenance',
            gapStartedAt: e.gap.gapStartedAt,
            detail: { silentFrom: e.silentFrom, silentUntil: e.silentUntil },
            send: true,
          },
          now,
        );
        break;
      case 'fault':
        state = { ...state, fault: await raiseFault(tx, next, e.reasons, e.detail, now) };
        break;
      case 'fault_cleared':
        await updateAlert(tx, next, e.alertId, 'FAULT_CLEARED', {}, now);
        break;
      case 'spoofing': {
        const detail = { invalidTokens: e.invalidTokens, since: e.since };
        const open = next.spoof?.id;
        if (open) await updateAlert(tx, next, open, 'ALERT_UPDATED', detail, now);
        const id =
          open ||
          (await insertAlert(
            tx,
            next,
            { kind: 'SUSPECTED_SPOOFING', queue: 'maintenance', detail, open: true, send: true },
            now,
          ));
        state = { ...state, spoof: { id, reported: e.invalidTokens } };
        break;
      }
      case 'spoofing_cleared':
        await updateAlert(tx, next, e.alertId, 'FAULT_CLEARED', {}, now);
        break;
    }
  }
  return state;
}

/** Open a BEACON_FAULT, or update the open one: one per quarantine, repeats update it. */
export async function raiseFault(
  tx: Queryable,
  q: Pick<QuarantineState, 'id' | 'beaconId' | 'fault'>,
  reasons: readonly FaultReason[],
  detail: Detail,
  now: number,
): Promise<{ id: string; reasons: readonly FaultReason[] }> {
  const all = { ...detail, reasons: reasons.join(',') };
  if (q.fault?.id) {
    await updateAlert(tx, q, q.fault.id, 'ALERT_UPDATED', all, now);
    return { id: q.fault.id, reasons };
  }
  const id = await insertAlert(
    tx,
    q,
    { kind: 'BEACON_FAULT', queue: 'maintenance', detail: all, open: true, send: true },
    now,
  );
  return { id, reasons };
}
