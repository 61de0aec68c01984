/** The objects of docs/police-api.md, as the dashboard reads them. */

export const REVIEWABLE_KINDS = [
  'NO_PRESENCE',
  'BEACON_FAULT',
  'SUSPECTED_SPOOFING',
  'RELAY_SILENT',
] as const;
export const UPDATE_KINDS = [
  'RESOLVED_BY_EVIDENCE',
  'LATE_EVIDENCE',
  'ALERT_UPDATED',
  'FAULT_CLEARED',
] as const;
export type ReviewableKind = (typeof REVIEWABLE_KINDS)[number];
export type AlertKind = ReviewableKind | (typeof UPDATE_KINDS)[number];

export const QUEUES = ['violation', 'maintenance'] as const;
export type Queue = (typeof QUEUES)[number];

/** Values the app backend puts in an alert's detail (see the kinds in docs/police-api.md). */
export type Detail = Readonly<Record<string, number | string | boolean | null>>;

export type AlertState = 'open' | 'acknowledged' | 'dispatched' | 'resolved' | 'info';

export const OUTCOMES = [
  'violation_confirmed',
  'false_alarm',
  'beacon_fault',
  'presence_proven_later',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface Alert {
  readonly id: string;
  readonly beaconId: string;
  readonly kind: AlertKind | string;
  /** Null for updates. */
  readonly queue: Queue | null;
  readonly state: AlertState;
  readonly outcome: Outcome | null;
  readonly note: string | null;
  readonly occurredAt: number;
  readonly receivedAt: number;
  readonly gapStartedAt: number | null;
  readonly lastPresenceAt: number | null;
  readonly recoveredAt: number | null;
  /** With recoveredAt: true = late evidence covered the whole gap, false = the person came back. */
  readonly coveredByEvidence: boolean | null;
  readonly evidenceUntil: number | null;
  readonly conditionClearedAt: number | null;
  /** 1, plus one per repeat (ALERT_UPDATED). */
  readonly occurrences: number;
  readonly relatedAlertId: string | null;
  readonly updatedAt: number;
  /** Null when the alert names a beacon the police backend does not know. */
  readonly address: string | null;
  readonly caseRef: string | null;
  readonly urgency: number;
  readonly detail: Detail;
}

export interface Review {
  readonly at: number;
  readonly officer: string;
  readonly action: string;
  readonly fromState: string;
  readonly toState: string;
  readonly outcome: Outcome | null;
  readonly note: string | null;
}

export type BeaconStatus = 'registered' | 'enable_pending' | 'monitoring' | 'end_pending' | 'ended';

export interface Beacon {
  readonly beaconId: string;
  readonly address: string;
  readonly caseRef: string;
  readonly installedBy: string;
  readonly installedAt: number;
  readonly endedAt: number | null;
  readonly status: BeaconStatus;
  readonly lastError: string | null;
}

export type AbsenceDelivery =
  'pending' | 'scheduled' | 'refused' | 'cancel_pending' | 'cancelled' | 'cancel_refused';

export interface Absence {
  readonly id: string;
  readonly beaconId: string;
  readonly startsAt: number;
  readonly endsAt: number;
  readonly reason: string | null;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly cancelledAt: number | null;
  readonly cancelledBy: string | null;
  readonly delivery: AbsenceDelivery;
  readonly lastError: string | null;
}

export type Role = 'officer' | 'supervisor';

export interface Session {
  readonly username: string;
  readonly role: Role;
  readonly csrf: string;
}

export type DayBucket = Outcome | 'unresolved';
export const DAY_BUCKETS: readonly DayBucket[] = [...OUTCOMES, 'unresolved'];

export interface DailyStat {
  readonly day: string;
  readonly total: number;
  readonly byOutcome: Partial<Record<DayBucket, number>>;
}

export interface AuditEntry {
  readonly seq: number;
  readonly at: number;
  readonly officer: string | null;
  readonly action: string;
  readonly subject: string | null;
  /** A JSON text or an object, depending on the server; shown as text either way. */
  readonly detail: unknown;
}

export interface AuditVerify {
  readonly ok: boolean;
  readonly checked: number;
  readonly firstBroken: number | null;
}

/** Open alerts in each queue, as the server counted them at `countsAt` (its clock, ms). */
export type QueueCounts = Readonly<Record<Queue, number>>;

/** A page of the queue view: the first alerts of each queue, and how many there are in all. */
export interface QueueSnapshot {
  readonly alerts: Alert[];
  readonly counts: QueueCounts;
  readonly countsAt: number;
}

export type LiveMessage =
  | { readonly type: 'hello'; readonly username: string }
  | { readonly type: 'alert'; readonly alert: Alert }
  | { readonly type: 'counts'; readonly counts: QueueCounts; readonly countsAt: number }
  | { readonly type: 'beacon'; readonly beacon: Beacon }
  | { readonly type: 'absence'; readonly absence: Absence };

export function isReviewable(kind: string): kind is ReviewableKind {
  return (REVIEWABLE_KINDS as readonly string[]).includes(kind);
}
