import type { PresenceStatus } from '../../protocol/presence-status.js';
import type { Rules } from './config.js';
import type { Gap } from './decide.js';
import type { FaultReason } from './faults.js';

// What the watchdog does with a quarantine that fell due, and what its relay is told: small pure
// functions of (state, rules, now) shared by the service, its tests and the false-alarm simulation.

export interface Absence {
  readonly startsAt: number;
  readonly endsAt: number;
}

/** The absence covering `t`, followed through back-to-back absences to where they end. */
export function absenceAt(absences: readonly Absence[], t: number): Absence | undefined {
  let found: Absence | undefined;
  let at = t;
  for (;;) {
    const next = absences.find(
      (a) => a.startsAt <= at && at < a.endsAt && a.endsAt > (found?.endsAt ?? -Infinity),
    );
    if (!next) return found;
    found = { startsAt: found?.startsAt ?? next.startsAt, endsAt: next.endsAt };
    at = next.endsAt;
  }
}

export interface DueQuarantine {
  readonly deadline: number;
  readonly lastPresenceAt: number | null;
  readonly enabledAt: number | null;
  /** The open gap, if any (provisional or confirmed). */
  readonly gap:
    (Pick<Gap, 'status' | 'gapStartedAt' | 'heldAt'> & { readonly provisionalAt: number }) | null;
  /** When the relay last sent any request, and when it came back after its last silence. */
  readonly lastRequestAt: number | null;
  readonly relayBackAt: number | null;
  readonly battery: number | null;
  readonly clockNotSetAt: number | null;
  readonly absences: readonly Absence[];
}

export type WatchAction =
  /** An absence covers now: look again when it ends (a provisional gap it covers is cleared). */
  | { readonly type: 'defer'; readonly until: number; readonly clearGap: boolean }
  /** The window passed: warn the person, tell police at confirmAt unless presence comes first. */
  | { readonly type: 'provisional'; readonly gapStartedAt: number; readonly confirmAt: number }
  /** The grace passed: a violation, or maintenance when the beacon itself is the likely cause. */
  | {
      readonly type: 'confirm';
      readonly queue: 'violation' | 'maintenance';
      readonly reason: FaultReason | null;
      /** Told because the relay stayed silent past the silent grace, not because it saw the absence. */
      readonly relaySilent: boolean;
    }
  /** The grace passed but the relay is silent: wait for it (and its late evidence), look again. */
  | { readonly type: 'hold'; readonly recheckAt: number }
  | { readonly type: 'none' };

export function watchAction(q: DueQuarantine, rules: Rules, now: number): WatchAction {
  if (q.deadline > now || q.gap?.status === 'confirmed') return { type: 'none' };
  const absence = absenceAt(q.absences, now);
  if (absence)
    return { type: 'defer', until: absence.endsAt, clearGap: q.gap?.status === 'provisional' };
  if (!q.gap) {
    return {
      type: 'provisional',
      gapStartedAt: q.lastPresenceAt ?? q.enabledAt ?? q.deadline,
      // From when the window passed (or the absence ended), not from when the watchdog looked.
      confirmAt: q.deadline + rules.graceSeconds * 1000,
    };
  }
  // A signed critical battery reading before the silence: the beacon has most likely died.
  if (q.battery !== null && q.battery <= rules.criticalBatteryPercent)
    return {
      type: 'confirm',
      queue: 'maintenance',
      reason: 'battery_depleted',
      relaySilent: false,
    };
  // Signed tokens keep arriving but with no clock: the beacon restarted and lost its time.
  if (q.clockNotSetAt !== null && q.clockNotSetAt >= q.gap.gapStartedAt)
    return { type: 'confirm', queue: 'maintenance', reason: 'clock_not_set', relaySilent: false };
  // A relay that sends nothing at all (flat battery, switched off, no network) proves nothing
  // either way; one that keeps sending without the beacon's tokens is away from it.
  const cycle = rules.relaySilentSeconds * 1000;
  const silent = q.lastRequestAt === null || now - q.lastRequestAt > cycle;
  const holdUntil = q.gap.provisionalAt + rules.silentGraceSeconds * 1000;
  if (silent) {
    if (now < holdUntil) return { type: 'hold', recheckAt: Math.min(holdUntil, now + cycle / 2) };
    // Silent past its grace: someone should call, but silence is no evidence of absence.
    return { type: 'confirm', queue: 'maintenance', reason: null, relaySilent: true };
  }
  // Back from the silence this gap was held for: one full cycle to hear the beacon and say so.
  const back = q.relayBackAt;
  const held = q.gap.heldAt;
  if (held !== null && back !== null && back >= held && now < back + cycle)
    return { type: 'hold', recheckAt: back + cycle };
  return { type: 'confirm', queue: 'violation', reason: null, relaySilent: false };
}

export interface StatusInput {
  readonly state: 'registered' | 'monitoring';
  readonly windowSeconds: number;
  readonly lastPresenceAt: number | null;
  readonly gap: {
    readonly status: 'provisional' | 'confirmed';
    readonly gapStartedAt: number;
  } | null;
  readonly deadline: number | null;
  readonly absences: readonly Absence[];
}

/** What the person's relay is told (sealed under a key only it can derive). */
export function relayStatus(e: StatusInput, now: number): PresenceStatus {
  const at = (code: PresenceStatus['code'], since: number | null, until: number | null) => ({
    code,
    since,
    until,
    serverTime: now,
  });
  if (e.state === 'registered') return at('not_monitored', null, null);
  if (e.gap?.status === 'confirmed') return at('reported', e.gap.gapStartedAt, null);
  if (e.gap?.status === 'provisional') return at('warning_grace', e.gap.gapStartedAt, e.deadline);
  const absence = absenceAt(e.absences, now);
  if (absence) return at('absence', absence.startsAt, absence.endsAt);
  const window = e.windowSeconds * 1000;
  // Past half the window, warn the person while there is still time before the grace begins.
  if (e.lastPresenceAt !== null && now - e.lastPresenceAt > window / 2)
    return at('not_heard', e.lastPresenceAt, e.lastPresenceAt + window);
  return at('all_clear', e.lastPresenceAt, null);
}

/** Check an absence request against the rules at `now`; the reason code, or null when fine. */
export function absenceProblem(a: Absence, rules: Rules, now: number): string | null {
  if (!(a.endsAt > a.startsAt)) return 'ends before it starts';
  if (a.endsAt - a.startsAt > rules.maxAbsenceSeconds * 1000) return 'longer than allowed';
  if (a.endsAt <= now) return 'already over';
  // No retroactive excuse: a minute of slack for clocks, nothing more.
  if (a.startsAt < now - 60_000) return 'starts in the past';
  return null;
}
