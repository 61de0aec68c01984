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
  fault_alert_id: string | null;
  fault_reasons: string;
  spoof_alert_id: string | null;
  spoof_reported: number;
  invalid_streak: number;
  invalid_since: number | null;
  clock_not_set_at: number | null;
  last_request_at: number | null;
  relay_back_at: number | null;
}

interface GapRow {
  quarantine_id: string;
  id: string;
  status: GapStatus;
  queue: Gap['queue'];
  gap_started_at: number;
  evidence_until: number | null;
  closed_at: number | null;
  held_at: number | null;
  relay_silent: boolean | null;
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
  // The latest gap, open or closed: late evidence may still cover a closed one.
  const { rows: gaps } = await tx.query<GapRow>(
    `SELECT DISTINCT ON (quarantine_id) quarantine_id, id, status, queue, gap_started_at, evidence_until, closed_at, held_at,
            (detail->>'relaySilent')::boolean AS relay_silent
       FROM alerts WHERE quarantine_id = ANY($1::uuid[]) AND kind = 'NO_PRESENCE'
      ORDER BY quarantine_id, created_at DESC, id`,
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
      gap: g
        ? {
            id: g.id,
            status: g.status,
            queue: g.queue,
            gapStartedAt: g.gap_started_at,
            evidenceUntil: g.evidence_until,
            closedAt: g.closed_at,
            heldAt: g.held_at,
            silentReported: g.queue === 'maintenance' && g.relay_silent === true,
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
    });
  }
  return out;
}

type Column = readonly [string, string, (s: QuarantineState) => number | string | null];

/** The columns presence decisions write, in the order saveStates sends them. */
const STATE_COLUMNS: readonly Column[] = [
  ['last_presence_at', 'bigint', (s: QuarantineState) => s.lastPresenceAt],
  ['last_received_at', 'bigint', (s: QuarantineState) => s.lastReceivedAt],
  ['last_counter', 'bigint', (s: QuarantineState) => s.lastCounter],
  ['clock_offset_seconds', 'float8', (s: QuarantineState) => s.offsetSeconds],
  ['offset_updated_at', 'bigint', (s: QuarantineState) => s.offsetUpdatedAt],
  ['battery', 'int2', (s: QuarantineState) => s.battery],
  ['flags', 'int2', (s: QuarantineState) => s.flags],
  ['deadline', 'bigint', (s: QuarantineState) => s.deadline],
  [
    'open_alert_id',
    'uuid',
    (s: QuarantineState) =>
      s.gap && (s.gap.status === 'provisional' || s.gap.status === 'confirmed') ? s.gap.id : null,
  ],
  ['fault_alert_id', 'uuid', (s: QuarantineState) => s.fault?.id ?? null],
  ['fault_reasons', 'text', (s: QuarantineState) => s.fault?.reasons.join(',') ?? ''],
  ['spoof_alert_id', 'uuid', (s: QuarantineState) => s.spoof?.id ?? null],
  ['spoof_reported', 'int4', (s: QuarantineState) => s.spoof?.reported ?? 0],
  ['invalid_streak', 'int4', (s: QuarantineState) => s.invalidStreak],
  ['invalid_since', 'bigint', (s: QuarantineState) => s.invalidSince],
  ['clock_not_set_at', 'bigint', (s: QuarantineState) => s.clockNotSetAt],
  ['last_request_at', 'bigint', (s: QuarantineState) => s.lastRequestAt],
  ['relay_back_at', 'bigint', (s: QuarantineState) => s.relayBackAt],
];

/**
 * Write every decided state of a batch in one statement (unnest of one array per column): one
 * round trip however many quarantines, instead of one UPDATE each. The rows are already locked.
 */
export async function saveStates(
  tx: Queryable,
  states: readonly QuarantineState[],
  now: number,
): Promise<void> {
  if (!states.length) return;
  const arrays = [states.map((s) => s.id), ...STATE_COLUMNS.map(([, , get]) => states.map(get))];
  const names = STATE_COLUMNS.map(([name]) => name);
  const casts = ['uuid', ...STATE_COLUMNS.map(([, type]) => type)];
  await tx.query(
    `UPDATE quarantines q SET ${names.map((n) => `${n} = u.${n}`).join(', ')}, status_changed_at = $${arrays.length + 1}
       FROM unnest(${casts.map((c, k) => `$${k + 1}::${c}[]`).join(', ')}) AS u(id, ${names.join(', ')})
      WHERE q.id = u.id`,
    [...arrays, now],
  );
}

export async function saveState(tx: Queryable, s: QuarantineState, now: number): Promise<void> {
  await saveStates(tx, [s], now);
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
