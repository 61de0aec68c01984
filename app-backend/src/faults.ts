// Beacon-side causes, told apart from departures: one open BEACON_FAULT per quarantine whose
// reasons grow as conditions appear, cleared once no condition holds any more.

export const FAULT_REASONS = [
  'low_battery',
  'battery_depleted',
  'rebooted',
  'clock_not_set',
  'clock_drift',
] as const;
export type FaultReason = (typeof FAULT_REASONS)[number];

/** Reasons that describe a lasting condition; `rebooted` is an event and never holds a fault open. */
const CONDITIONS: ReadonlySet<FaultReason> = new Set([
  'low_battery',
  'battery_depleted',
  'clock_not_set',
  'clock_drift',
]);

export interface FaultInput {
  /** A token was accepted as presence in this batch (the beacon is alive with a set clock). */
  readonly accepted: boolean;
  readonly battery: number | null;
  readonly lowBatteryPercent: number;
  readonly offsetSeconds: number;
  readonly driftAlertSeconds: number;
  readonly clockNotSetSeen: boolean;
  readonly clockSetSeen: boolean;
  readonly rebooted: boolean;
}

export interface FaultChange {
  readonly reasons: FaultReason[];
  /** Raise a new fault, or update the open one (new reason, or another restart). */
  readonly raise: boolean;
  /** The open fault's conditions are all gone. */
  readonly clear: boolean;
}

const ordered = (set: Set<FaultReason>): FaultReason[] => FAULT_REASONS.filter((r) => set.has(r));

export function nextFault(current: readonly FaultReason[], i: FaultInput): FaultChange {
  const set = new Set(current);
  if (i.accepted) {
    set.delete('battery_depleted');
    // Hysteresis: a reading hovering at the threshold does not raise and clear in turn.
    if (i.battery !== null && i.battery < i.lowBatteryPercent) set.add('low_battery');
    else if (i.battery !== null && i.battery >= i.lowBatteryPercent + 10) set.delete('low_battery');
  }
  if (i.clockSetSeen) set.delete('clock_not_set');
  if (i.clockNotSetSeen) set.add('clock_not_set');
  if (Math.abs(i.offsetSeconds) > i.driftAlertSeconds) set.add('clock_drift');
  else if (Math.abs(i.offsetSeconds) < i.driftAlertSeconds / 2) set.delete('clock_drift');
  if (i.rebooted) set.add('rebooted');
  const added = [...set].some((r) => !current.includes(r));
  const raise = added || (i.rebooted && current.includes('rebooted'));
  const holds = [...set].some((r) => CONDITIONS.has(r));
  const clear = current.length > 0 && !raise && !holds && (i.accepted || i.clockSetSeen);
  return { reasons: ordered(set), raise, clear };
}

/** The open fault's reasons with one more (a gap routed to maintenance adds why). */
export function withReason(current: readonly FaultReason[], reason: FaultReason): FaultReason[] {
  return ordered(new Set([...current, reason]));
}

export const parseReasons = (text: string): FaultReason[] =>
  text.split(',').filter((r): r is FaultReason => (FAULT_REASONS as readonly string[]).includes(r));
