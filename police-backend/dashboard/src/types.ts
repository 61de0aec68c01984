/** The objects of docs/police-api.md, as the dashboard reads them. */

export const REVIEWABLE_KINDS = [
  'NO_PRESENCE',
  'CLOCK_DRIFT',
  'BEACON_RESTARTED',
  'LOW_BATTERY',
] as const;
export const UPDATE_KINDS = ['RECOVERED', 'LATE_EVIDENCE'] as const;
export type ReviewableKind = (typeof REVIEWABLE_KINDS)[number];
export type AlertKind = ReviewableKind | (typeof UPDATE_KINDS)[number];

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
  readonly state: AlertState;
  readonly outcome: Outcome | null;
  readonly note: string | null;
  readonly occurredAt: number;
  readonly receivedAt: number;
  readonly gapStartedAt: number | null;
  readonly lastPresenceAt: number | null;
  readonly recoveredAt: number | null;
  readonly evidenceUntil: number | null;
  readonly relatedAlertId: string | null;
  readonly updatedAt: number;
  /** Null when the alert names a beacon the police backend does not know. */
  readonly address: string | null;
  readonly caseRef: string | null;
  readonly urgency: number;
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

export type LiveMessage =
  | { readonly type: 'hello'; readonly username: string }
  | { readonly type: 'alert'; readonly alert: Alert }
  | { readonly type: 'beacon'; readonly beacon: Beacon };

export function isReviewable(kind: string): kind is ReviewableKind {
  return (REVIEWABLE_KINDS as readonly string[]).includes(kind);
}
