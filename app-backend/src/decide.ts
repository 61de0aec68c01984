import type { TokenFields } from '../../protocol/token/fields.js';
import { rejectFuture, rejectReplay, rejectStale } from '../../protocol/token/rules.js';
import type { Rules } from './config.js';
import { type FaultReason, nextFault } from './faults.js';

// The presence rules as one pure function of (state, tokens, rules, now): no I/O, so tests and the
// false-alarm simulation drive it directly and the transaction that applies it stays short.

export type GapStatus = 'provisional' | 'confirmed' | 'cleared' | 'resolved_by_evidence';

/** The latest presence gap of a quarantine, open (provisional/confirmed) or closed. */
export interface Gap {
  readonly id: string;
  readonly status: GapStatus;
  /** Where a confirmed gap went: the violation queue, or maintenance when the beacon caused it. */
  readonly queue: 'violation' | 'maintenance' | null;
  readonly gapStartedAt: number;
  /** Presence proven without a window-long hole from gapStartedAt up to here (late evidence). */
  readonly evidenceUntil: number | null;
  readonly closedAt: number | null;
  /** When confirmation was withheld because the relay was silent. */
  readonly heldAt: number | null;
  /** The silence outlasted its grace and went to maintenance as RELAY_SILENT (under this ID). */
  readonly silentReported: boolean;
}

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
  /** When the watchdog must next look: window end, grace end or absence end; null when nothing is due. */
  readonly deadline: number | null;
  readonly gap: Gap | null;
  readonly fault: { readonly id: string; readonly reasons: readonly FaultReason[] } | null;
  readonly spoof: { readonly id: string; readonly reported: number } | null;
  readonly invalidStreak: number;
  readonly invalidSince: number | null;
  readonly clockNotSetAt: number | null;
  /** When the relay last sent any request (with tokens or none). */
  readonly lastRequestAt: number | null;
  /** When the relay's first request after a silence came. */
  readonly relayBackAt: number | null;
}

export const isOpen = (g: Gap | null): g is Gap =>
  g !== null && (g.status === 'provisional' || g.status === 'confirmed');

export interface ReceivedToken {
  readonly fields: TokenFields;
  /** Server time the request carrying it arrived, ms. */
  readonly receivedAt: number;
}

/** What a decision changes besides the quarantine row; store.ts turns each into rows and messages. */
export type Effect =
  | {
      readonly type: 'gap_closed';
      readonly gap: Gap;
      readonly status: 'cleared' | 'resolved_by_evidence';
      readonly coveredByEvidence: boolean;
      readonly lastPresenceAt: number;
      readonly by: 'presence' | 'evidence';
    }
  | { readonly type: 'late_evidence'; readonly gap: Gap; readonly evidenceUntil: number }
  /** A gap held while the relay was silent ended without proof either way: officers may look. */
  | {
      readonly type: 'relay_silent';
      readonly gap: Gap;
      readonly silentFrom: number;
      readonly silentUntil: number;
    }
  | {
      readonly type: 'fault';
      readonly reasons: readonly FaultReason[];
      readonly detail: Record<string, number | string | boolean | null>;
    }
  | { readonly type: 'fault_cleared'; readonly alertId: string }
  | { readonly type: 'spoofing'; readonly invalidTokens: number; readonly since: number }
  | { readonly type: 'spoofing_cleared'; readonly alertId: string };

export type RejectReason = 'stale' | 'future' | 'replay' | 'clock_not_set';

export interface Decision {
  readonly next: QuarantineState;
  readonly accepted: number;
  readonly evidence: number;
  readonly rejected: Partial<Record<RejectReason, number>>;
  readonly effects: Effect[];
}

/** The request's time when it is the first after a silence (nothing for relaySilentSeconds). */
function backAfterSilence(
  q: QuarantineState,
  requestAt: number | undefined,
  rules: Rules,
): number | null {
  if (requestAt === undefined) return null;
  const silent =
    q.lastRequestAt === null || requestAt - q.lastRequestAt > rules.relaySilentSeconds * 1000;
  return silent ? requestAt : null;
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

/** What else a batch saw for this quarantine besides its valid tokens. */
export interface Seen {
  /** Tokens that failed authentication under its key. */
  readonly invalidTokens?: number | undefined;
  /** The latest request from its relay, tokens or none. */
  readonly requestAt?: number | undefined;
}

/**
 * Apply the tokens that authenticated under this quarantine's key (and what else the batch saw)
 * to its state at `now`.
 */
export function decide(
  q: QuarantineState,
  tokens: readonly ReceivedToken[],
  rules: Rules,
  now: number,
  seen: Seen = {},
): Decision {
  const invalidTokens = seen.invalidTokens ?? 0;
  const rejected: Decision['rejected'] = {};
  const reject = (r: RejectReason) => (rejected[r] = (rejected[r] ?? 0) + 1);
  const effects: Effect[] = [];
  const window = q.windowSeconds * 1000;
  let lastCounter = q.lastCounter;
  let lastPresenceAt = q.lastPresenceAt;
  let lastReceivedAt = q.lastReceivedAt;
  let battery = q.battery;
  let flags = q.flags;
  let clockNotSetAt = q.clockNotSetAt;
  let accepted = 0;
  let evidence = 0;
  let rebooted = false;
  let clockNotSetSeen = false;
  let clockSetSeen = false;
  let observed: number | undefined;
  // Late evidence extends the gap's coverage only while it has no window-long hole.
  const gap = q.gap;
  let frontier = gap ? (gap.evidenceUntil ?? gap.gapStartedAt) : 0;
  const extend = (t: number) => {
    if (gap && t > frontier && t <= frontier + window) frontier = t;
  };

  for (const t of [...tokens].sort((a, b) => a.fields.counter - b.fields.counter)) {
    const received = t.receivedAt / 1000;
    const corrected = t.fields.unixSeconds - q.offsetSeconds;
    if (t.fields.clockNotSet) {
      // Signed by the beacon, so it is alive; but its time means nothing, so it proves no presence.
      if (rejectReplay(t.fields, lastCounter ?? undefined)) reject('replay');
      else {
        reject('clock_not_set');
        lastCounter = t.fields.counter;
        clockNotSetSeen = true;
        clockNotSetAt = Math.max(clockNotSetAt ?? 0, t.receivedAt);
        if (t.fields.rebooted && q.lastCounter !== null) rebooted = true;
      }
      continue;
    }
    if (rejectFuture(t.fields, received, rules.maxSkewSeconds, q.offsetSeconds)) {
      reject('future');
      continue;
    }
    const at = Math.round(corrected * 1000);
    if (rejectStale(t.fields, received, rules.maxAgeSeconds, q.offsetSeconds)) {
      // Too old to be live presence; it may still prove presence during a gap.
      const inGap = gap && at >= gap.gapStartedAt && at <= (gap.closedAt ?? now);
      if (inGap && corrected >= received - rules.lateEvidenceMaxAgeSeconds) {
        evidence++;
        extend(at);
      } else reject('stale');
      continue;
    }
    if (rejectReplay(t.fields, lastCounter ?? undefined)) {
      reject('replay');
      continue;
    }
    accepted++;
    if (isOpen(gap)) extend(at);
    lastCounter = t.fields.counter;
    lastPresenceAt = Math.max(lastPresenceAt ?? 0, at);
    lastReceivedAt = Math.max(lastReceivedAt ?? 0, t.receivedAt);
    battery = t.fields.batteryPercent;
    flags = t.fields.rebooted ? 2 : 0;
    clockSetSeen = true;
    observed = Math.max(observed ?? -Infinity, t.fields.unixSeconds - received);
    // The first token after provisioning always carries the flag: that boot is expected.
    if (t.fields.rebooted && q.lastCounter !== null) rebooted = true;
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

  // The gap: closed by live presence or by evidence reaching within a window of now.
  let nextGap = gap;
  let deadline = q.deadline;
  const evidenceGrew = gap !== null && frontier > (gap.evidenceUntil ?? gap.gapStartedAt);
  if (isOpen(gap) && (accepted > 0 || frontier + window > now)) {
    const coveredByEvidence = frontier + window > now || frontier >= (lastPresenceAt ?? 0);
    lastPresenceAt = Math.max(lastPresenceAt ?? 0, coveredByEvidence ? frontier : 0);
    const status = gap.status === 'provisional' ? 'cleared' : 'resolved_by_evidence';
    nextGap = { ...gap, status, evidenceUntil: frontier, closedAt: now };
    effects.push({
      type: 'gap_closed',
      gap,
      status,
      coveredByEvidence,
      lastPresenceAt,
      by: accepted > 0 ? 'presence' : 'evidence',
    });
    if (gap.heldAt !== null && !coveredByEvidence && !gap.silentReported)
      effects.push({
        type: 'relay_silent',
        gap,
        silentFrom: frontier,
        silentUntil: lastPresenceAt,
      });
    deadline = lastPresenceAt + window;
  } else {
    if (gap && evidenceGrew) {
      nextGap = { ...gap, evidenceUntil: frontier };
      effects.push({ type: 'late_evidence', gap, evidenceUntil: frontier });
    }
    if (!isOpen(gap) && q.state === 'monitoring' && lastPresenceAt !== q.lastPresenceAt)
      deadline = (lastPresenceAt ?? 0) + window;
  }
  if (q.state !== 'monitoring') deadline = q.deadline;

  // Beacon faults: one open alert, updated when its reasons grow, cleared when no condition holds.
  const fault = nextFault(q.fault?.reasons ?? [], {
    accepted: accepted > 0,
    battery,
    lowBatteryPercent: rules.lowBatteryPercent,
    offsetSeconds,
    driftAlertSeconds: rules.driftAlertSeconds,
    clockNotSetSeen,
    clockSetSeen,
    rebooted,
  });
  if (fault.raise)
    effects.push({
      type: 'fault',
      reasons: fault.reasons,
      detail: {
        reasons: fault.reasons.join(','),
        batteryPercent: battery,
        offsetSeconds: Math.round(offsetSeconds),
        counter: lastCounter,
      },
    });
  let faultState = q.fault;
  if (q.fault && fault.clear) {
    effects.push({ type: 'fault_cleared', alertId: q.fault.id });
    faultState = null;
  } else if (q.fault || fault.raise) faultState = { id: q.fault?.id ?? '', reasons: fault.reasons };

  // Spoofing: tokens keep failing authentication under this key while no valid one proves presence.
  let invalidStreak = q.invalidStreak;
  let invalidSince = q.invalidSince;
  let spoof = q.spoof;
  // Any token that authenticates under the key (live, late or replayed) means the beacon is heard.
  if (tokens.length > 0) {
    invalidStreak = 0;
    invalidSince = null;
    if (spoof) {
      effects.push({ type: 'spoofing_cleared', alertId: spoof.id });
      spoof = null;
    }
  } else if (invalidTokens > 0) {
    invalidStreak += invalidTokens;
    invalidSince ??= now;
    const silent = lastPresenceAt === null || now - lastPresenceAt > window;
    const due = spoof ? invalidStreak >= 2 * spoof.reported : true;
    if (silent && invalidStreak >= rules.spoofingThreshold && due) {
      effects.push({ type: 'spoofing', invalidTokens: invalidStreak, since: invalidSince });
      spoof = { id: spoof?.id ?? '', reported: invalidStreak };
    }
  }

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
      deadline,
      gap: nextGap,
      fault: faultState,
      spoof,
      invalidStreak,
      invalidSince,
      clockNotSetAt,
      lastRequestAt: Math.max(q.lastRequestAt ?? 0, seen.requestAt ?? 0) || q.lastRequestAt,
      relayBackAt: backAfterSilence(q, seen.requestAt, rules) ?? q.relayBackAt,
    },
    accepted,
    evidence,
    rejected,
    effects,
  };
}
