import type { TokenFields } from '../../protocol/token/fields.js';
import { rejectFuture, rejectReplay, rejectStale } from '../../protocol/token/rules.js';
import type { Rules } from './config.js';

// The presence rules as one pure function of (state, tokens, rules, now): no I/O, so tests
// drive it directly and the transaction that applies it stays short.

export interface QuarantineState {
  readonly id: string;
  readonly beaconId: string;
  readonly state: 'registered' | 'monitoring' | 'ended';
  readonly windowSeconds: number;
  readonly registeredAt: number;
  readonly enabledAt: number | null;
  readonly lastPresenceAt: number | null;
  readonly lastReceivedAt: number | null;
  readonly lastCounter: number | null;
  readonly offsetSeconds: number;
  readonly offsetUpdatedAt: number;
  readonly battery: number | null;
  readonly flags: number | null;
  readonly deadline: number | null;
  readonly openAlertId: string | null;
  readonly driftAlerted: boolean;
  readonly lowBatteryAlerted: boolean;
  /** The latest NO_PRESENCE alert, open or closed, that late evidence may still cover. */
  readonly gapAlert: {
    readonly id: string;
    readonly gapStartedAt: number;
    readonly closedAt: number | null;
    readonly evidenceUntil: number | null;
  } | null;
}

export interface ReceivedToken {
  readonly fields: TokenFields;
  /** Server time the request carrying it arrived, ms. */
  readonly receivedAt: number;
}

export type AlertKind =
  | 'NO_PRESENCE'
  | 'RECOVERED'
  | 'CLOCK_DRIFT'
  | 'BEACON_RESTARTED'
  | 'LOW_BATTERY'
  | 'LATE_EVIDENCE';

export interface AlertEvent {
  readonly kind: AlertKind;
  readonly relatedAlertId?: string;
  readonly gapStartedAt?: number;
  readonly detail: Record<string, number | string | boolean | null>;
}

export interface Decision {
  readonly next: QuarantineState;
  readonly accepted: number;
  readonly evidence: number;
  readonly rejected: Partial<Record<'stale' | 'future' | 'replay', number>>;
  readonly events: AlertEvent[];
  /** New evidence_until for state.gapAlert, when late evidence extended it. */
  readonly evidenceUntil: number | null;
}

/** Learned offset moves toward what the freshest token shows, no faster than the slew bound. */
export function nextOffset(
  current: number,
  observed: number,
  elapsedSeconds: number,
  slewPpm: number,
): number {
  const delta = observed - current;
  // Relay buffering only ever makes the beacon look slow: small backward steps are noise.
  if (delta <= 0 && delta > -60) return current;
  // Purely proportional to elapsed time: no constant slack an attacker could collect per upload.
  const bound = (slewPpm / 1e6) * Math.max(0, elapsedSeconds);
  return current + Math.max(-bound, Math.min(bound, delta));
}

export function decide(
  q: QuarantineState,
  tokens: readonly ReceivedToken[],
  rules: Rules,
  now: number,
): Decision {
  const rejected: Decision['rejected'] = {};
  const reject = (r: 'stale' | 'future' | 'replay') => (rejected[r] = (rejected[r] ?? 0) + 1);
  const events: AlertEvent[] = [];
  let lastCounter = q.lastCounter;
  let lastPresenceAt = q.lastPresenceAt;
  let lastReceivedAt = q.lastReceivedAt;
  let battery = q.battery;
  let flags = q.flags;
  let accepted = 0;
  let evidence = 0;
  let evidenceUntil = q.gapAlert?.evidenceUntil ?? null;
  let observed: number | undefined;

  for (const t of [...tokens].sort((a, b) => a.fields.counter - b.fields.counter)) {
    const received = t.receivedAt / 1000;
    const corrected = t.fields.unixSeconds - q.offsetSeconds;
    if (rejectFuture(t.fields, received, rules.maxSkewSeconds, q.offsetSeconds)) {
      reject('future');
      continue;
    }
    if (rejectStale(t.fields, received, rules.maxAgeSeconds, q.offsetSeconds)) {
      // Too old to be live presence; it may still prove presence during an alerted gap.
      const gap = q.gapAlert;
      const inGap =
        gap && corrected * 1000 >= gap.gapStartedAt && corrected * 1000 <= (gap.closedAt ?? now);
      if (inGap && corrected >= received - rules.lateEvidenceMaxAgeSeconds) {
        evidence++;
        evidenceUntil = Math.max(evidenceUntil ?? 0, corrected * 1000);
      } else reject('stale');
      continue;
    }
    if (rejectReplay(t.fields, lastCounter ?? undefined)) {
      reject('replay');
      continue;
    }
    accepted++;
    lastCounter = t.fields.counter;
    lastPresenceAt = Math.max(lastPresenceAt ?? 0, Math.round(corrected * 1000));
    lastReceivedAt = Math.max(lastReceivedAt ?? 0, t.receivedAt);
    battery = t.fields.batteryPercent;
    flags = (t.fields.clockNotSet ? 1 : 0) | (t.fields.rebooted ? 2 : 0);
    observed = Math.max(observed ?? -Infinity, t.fields.unixSeconds - received);
    if (t.fields.rebooted)
      events.push({ kind: 'BEACON_RESTARTED', detail: { counter: t.fields.counter } });
  }

  let offsetSeconds = q.offsetSeconds;
  let offsetUpdatedAt = q.offsetUpdatedAt;
  if (observed !== undefined) {
    offsetSeconds = nextOffset(
      q.offsetSeconds,
      observed,
      (now - q.offsetUpdatedAt) / 1000,
      rules.slewPpm,
    );
    offsetUpdatedAt = now;
  }

  let driftAlerted = q.driftAlerted;
  if (!driftAlerted && Math.abs(offsetSeconds) > rules.driftAlertSeconds) {
    driftAlerted = true;
    events.push({ kind: 'CLOCK_DRIFT', detail: { offsetSeconds: Math.round(offsetSeconds) } });
  } else if (driftAlerted && Math.abs(offsetSeconds) < rules.driftAlertSeconds / 2)
    driftAlerted = false;

  let lowBatteryAlerted = q.lowBatteryAlerted;
  if (accepted > 0 && battery !== null) {
    if (!lowBatteryAlerted && battery < rules.lowBatteryPercent) {
      lowBatteryAlerted = true;
      events.push({ kind: 'LOW_BATTERY', detail: { batteryPercent: battery } });
    } else if (lowBatteryAlerted && battery >= rules.lowBatteryPercent + 10)
      lowBatteryAlerted = false;
  }

  let openAlertId = q.openAlertId;
  if (accepted > 0 && openAlertId) {
    events.push({ kind: 'RECOVERED', relatedAlertId: openAlertId, detail: { lastPresenceAt } });
    openAlertId = null;
  }
  const extended =
    q.gapAlert && evidenceUntil !== null && evidenceUntil > (q.gapAlert.evidenceUntil ?? 0);
  if (extended && q.gapAlert) {
    events.push({
      kind: 'LATE_EVIDENCE',
      relatedAlertId: q.gapAlert.id,
      detail: { evidenceUntil },
    });
  }

  const deadline =
    q.state === 'monitoring' && lastPresenceAt !== null
      ? lastPresenceAt + q.windowSeconds * 1000
      : q.deadline;
  return {
    next: {
      ...q,
      lastCounter,
      lastPresenceAt,
      lastReceivedAt,
      battery,
      flags,
      offsetSeconds,
      offsetUpdatedAt,
      driftAlerted,
      lowBatteryAlerted,
      openAlertId,
      deadline,
    },
    accepted,
    evidence,
    rejected,
    events,
    evidenceUntil: extended ? evidenceUntil : null,
  };
}
