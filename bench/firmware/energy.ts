/**
 * The beacon's energy model: average current and CR2032 life for an advertising schedule. Every
 * input is a Figure that says where it comes from: the facts file (Puck.js current figures, as
 * the Espruino docs give them), measured here (in the emulation: code paths and counts, never
 * device time), or assumed (a reference figure or an engineering estimate, named).
 */
import type { WorkCount } from './work.js';

export type Provenance = 'facts' | 'measured' | 'assumed' | 'derived';

export interface Figure {
  readonly value: number;
  readonly unit: string;
  readonly source: Provenance;
  readonly note: string;
}

const fig = (value: number, unit: string, source: Provenance, note: string): Figure => ({
  value,
  unit,
  source,
  note,
});

/** Puck.js and CR2032 figures from shared/design/espruino-facts.md §7. */
export const FACTS = {
  sleep: fig(3, 'µA', 'facts', 'Puck.js idle, BLE off (espruino-facts.md §7)'),
  adv375NonConnectable: fig(
    22,
    'µA',
    'facts',
    'Puck.js advertising 375 ms, non-connectable/non-scannable, default packet, 0 dBm (§7)',
  ),
  adv2000NonConnectableMax: fig(10, 'µA', 'facts', 'same at 2,000 ms: "under 10 µA" (§7)'),
  adv375Connectable: fig(40, 'µA', 'facts', 'Puck.js default connectable advertising (§7)'),
  javascript: fig(4, 'mA', 'facts', 'Puck.js running JavaScript (§7)'),
  cr2032: fig(220, 'mAh', 'facts', 'CR2032 ≈ 220 mAh (§7; makers rate 220–235 mAh at ~0.2 mA)'),
};

/** Nordic nRF52832 radio TX current by TX power, DC/DC, 1 Mb/s, clock (HFXO) included. */
export const TX_CURRENT_MA: Readonly<Record<number, number>> = {
  4: 9.3,
  0: 7.1,
  [-4]: 6.0,
  [-8]: 5.6,
  [-12]: 5.1,
  [-16]: 4.9,
  [-20]: 4.5,
  [-40]: 4.1,
};

export const ASSUMED = {
  txCurrent: fig(
    7.1,
    'mA at 0 dBm',
    'assumed',
    'nRF52832 PS: 7.1 mA at 0 dBm, 4.1 mA at −40 dBm (HFXO on, DC/DC); levels between from the PS v1.4 TX table + 1.8 mA clock',
  ),
  advDelay: fig(
    5,
    'ms',
    'assumed',
    'BLE advDelay, uniform 0–10 ms added to every event (Core spec)',
  ),
  defaultPacketAir: fig(
    296,
    'µs per channel',
    'derived',
    "Espruino's default advertisement, 37 bytes on air (docs/protocol.md §5)",
  ),
  framePacketAir: fig(
    352,
    'µs per channel',
    'derived',
    'our frame, 44 bytes on air, 3 channels per event (docs/protocol.md §5)',
  ),
  rotationIrq: fig(
    50,
    'µs CPU per event',
    'assumed',
    'radio-notification IRQ sets the next of the four packets (jsvGetArrayItem + sd_ble_gap_adv_data_set)',
  ),
  statementTime: fig(
    80,
    'µs per step',
    'assumed',
    'EspruinoDocs info/Performance.md: ~4,000 loops/s of `while(1){A0.set();A0.reset();}` ≈ 3 steps per loop',
  ),
  builtinTime: fig(
    300,
    'µs per built-in call',
    'assumed',
    'argument conversion and C work (AES block, SHA-256 of ≤128 bytes, setAdvertising of 4 packets)',
  ),
  flashWrite: fig(
    1,
    'µC per word write',
    'assumed',
    'nRF52832 NVMC word write ≈ 41–68 µs at a few mA; an upper bound',
  ),
  counterFileWords: fig(
    32,
    'words',
    'assumed',
    'counter file rewrite: Storage header + 68 bytes, every 64 × 1,024 tokens',
  ),
  usableFraction: fig(
    0.85,
    'of nominal',
    'assumed',
    'pulse load (7–10 mA radio peaks) and 2.0 V cut-off; TI SWRA349 measured pulsed-load losses of this order',
  ),
  selfDischarge: fig(
    1,
    '% of nominal per year',
    'assumed',
    'lithium coin cell self-discharge at 20 °C',
  ),
  coldDerate: fig(
    0.85,
    'of usable',
    'assumed',
    'an unheated home near 0 °C (coin-cell capacity falls ~10–20 %); shown as a sensitivity only',
  ),
};

export const HOURS_PER_MONTH = 8766 / 12;

/** Part of a token period spent advertising at one interval (Espruino restarts at each change). */
export interface Phase {
  readonly seconds: number;
  readonly intervalMs: number;
}

export interface Schedule {
  /** One token period, phase after phase (their seconds add up to cadenceS). */
  readonly phases: readonly Phase[];
  readonly txPowerDbm: number;
  readonly connectable: boolean;
  readonly cadenceS: number;
}

/** Continuous advertising at one interval. */
export const continuous = (intervalMs: number, rest: Omit<Schedule, 'phases'>): Schedule => ({
  ...rest,
  phases: [{ seconds: rest.cadenceS, intervalMs }],
});

/** Advertising events per token period (each adds the BLE advertising delay to its interval). */
export function eventsPerToken(s: Schedule): number {
  let events = 0;
  for (const p of s.phases) events += (p.seconds * 1000) / (p.intervalMs + ASSUMED.advDelay.value);
  return events;
}

export interface EnergyBreakdown {
  /** µC per advertising event, our frame, at the schedule's TX power. */
  readonly eventCharge: number;
  /** µA by cause. */
  readonly sleep: number;
  readonly advertising: number;
  readonly connectable: number;
  readonly rotation: number;
  readonly tokenWork: number;
  readonly counterFlash: number;
  readonly selfDischarge: number;
  readonly total: number;
  /** Usable capacity, mAh, and life on it. */
  readonly usableMah: number;
  readonly months: number;
  readonly monthsCold: number;
}

/** Work per token turned into charge: statements, loop steps and calls at the assumed cost. */
export function tokenCharge(work: WorkCount, statementUs = ASSUMED.statementTime.value): number {
  const steps = work.statements + work.iterations + work.functions;
  const cpuUs = steps * statementUs + work.builtins * ASSUMED.builtinTime.value;
  // µs × mA = nC; /1000 → µC.
  return (cpuUs * FACTS.javascript.value) / 1000;
}

/**
 * Charge of one advertising event. The facts give the default packet at 0 dBm (22 µA at 375 ms
 * over a 3 µA floor); our frame is 56 µs longer on each of the three channels, and another TX
 * power changes the current while the frame is on the air.
 */
export function eventCharge(txPowerDbm: number): number {
  const period = (375 + ASSUMED.advDelay.value) / 1000;
  const defaultEvent = (FACTS.adv375NonConnectable.value - FACTS.sleep.value) * period;
  const tx0 = TX_CURRENT_MA[0] as number;
  const tx = TX_CURRENT_MA[txPowerDbm];
  if (tx === undefined) throw new Error(`no TX current for ${txPowerDbm} dBm`);
  const longer = (3 * (ASSUMED.framePacketAir.value - ASSUMED.defaultPacketAir.value) * tx0) / 1000;
  const power = (3 * ASSUMED.framePacketAir.value * (tx - tx0)) / 1000;
  return defaultEvent + longer + power;
}

/** A lower view of connectable advertising: only the receive window after each of the three packets. */
export const RX_WINDOW = fig(
  3.9,
  'µC per event',
  'assumed',
  'nRF52832 PS: RX 6.5 mA (HFXO, DC/DC) × ~200 µs after each of 3 packets; the facts imply 1.8× this',
);

/** Extra charge per event of connectable advertising (listening for requests after each packet). */
export function connectableCharge(): number {
  const period = (375 + ASSUMED.advDelay.value) / 1000;
  return (FACTS.adv375Connectable.value - FACTS.adv375NonConnectable.value) * period;
}

export function energy(
  s: Schedule,
  work: { perToken: WorkCount; blockReservation: WorkCount },
  statementUs = ASSUMED.statementTime.value,
  connectableUc = connectableCharge(),
): EnergyBreakdown {
  const eventsPerSecond = eventsPerToken(s) / s.cadenceS;
  const q = eventCharge(s.txPowerDbm);
  const rotation = (ASSUMED.rotationIrq.value * FACTS.javascript.value) / 1000;
  const perToken = tokenCharge(work.perToken, statementUs);
  const block = tokenCharge(work.blockReservation, statementUs) + ASSUMED.flashWrite.value;
  const file = ASSUMED.counterFileWords.value * ASSUMED.flashWrite.value;
  const nominal = FACTS.cr2032.value;
  const usableMah = nominal * ASSUMED.usableFraction.value;
  const parts = {
    sleep: FACTS.sleep.value,
    advertising: q * eventsPerSecond,
    connectable: s.connectable ? connectableUc * eventsPerSecond : 0,
    rotation: rotation * eventsPerSecond,
    tokenWork: perToken / s.cadenceS,
    counterFlash: block / (1024 * s.cadenceS) + file / (64 * 1024 * s.cadenceS),
    // Self-discharge as the current that would drain the same share of the cell.
    selfDischarge: ((ASSUMED.selfDischarge.value / 100) * nominal * 1000) / 8766,
  };
  const total = Object.values(parts).reduce((a, b) => a + b, 0);
  const months = (usableMah * 1000) / total / HOURS_PER_MONTH;
  return {
    eventCharge: q,
    ...parts,
    total,
    usableMah,
    months,
    monthsCold: months * ASSUMED.coldDerate.value,
  };
}

/** Check the event model against the one facts figure it was not fitted to (2,000 ms). */
export function checkAgainstFacts(): { at2000: number; limit: number; ok: boolean } {
  const period = (375 + ASSUMED.advDelay.value) / 1000;
  const defaultEvent = (FACTS.adv375NonConnectable.value - FACTS.sleep.value) * period;
  const at2000 = FACTS.sleep.value + defaultEvent / ((2000 + ASSUMED.advDelay.value) / 1000);
  return {
    at2000,
    limit: FACTS.adv2000NonConnectableMax.value,
    ok: at2000 < FACTS.adv2000NonConnectableMax.value,
  };
}
