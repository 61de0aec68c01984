// The fault model: how often each thing happens to a person in quarantine and how long it lasts.
// Figures with a source say so; the others are stated assumptions, deliberately on the pessimistic
// side, and every one can be changed from the command line (`--set name=value`) to see what a
// figure depends on. Rates are per person-day; durations are minutes.

export interface FaultModel {
  /** Real departures with the phone (violations the system must catch). */
  readonly departuresPerDay: number;
  readonly departureMedianMin: number;
  readonly departureSigma: number;
  /** Share of departures on which the phone stays at home: undetectable by any relay design. */
  readonly phoneLeftHomeShare: number;
  /** Share of people who, warned while away, head home at once. */
  readonly turnBackShare: number;
  readonly travelHomeMedianMin: number;

  /** Bluetooth switched off by hand (quick settings, flight mode) while awake. */
  readonly bluetoothOffPerDay: number;
  /** How long it stays off if nothing reminds the person. */
  readonly bluetoothOffMedianMin: number;

  /** Nights the phone runs flat (not charged) and stays off until the person wakes. */
  readonly phoneFlatNightShare: number;
  /** Stretches with no network (mobile data off, Wi-Fi down) while the phone keeps hearing. */
  readonly relayOfflinePerDay: number;
  readonly relayOfflineMedianMin: number;

  /** Share of the beacon's per-minute tokens the relay misses in normal reception. */
  readonly tokenLoss: number;
  /** Stretches in a badly covered room (far side of the home, phone in a bag). */
  readonly weakSignalPerDay: number;
  readonly weakSignalMedianMin: number;
  readonly weakSignalLoss: number;

  /** Homes with a neighbour's beacon in range, and how often its tokens are heard per minute. */
  readonly neighbourShare: number;
  readonly neighbourHeardPerMinute: number;

  /** Beacons installed with a used cell (between 3 and 30 %), and the cell's daily drain, %. */
  readonly usedCellShare: number;
  readonly drainPercentPerDay: number;
  /** After a low-battery note, how long until an officer changes the cell, hours. */
  readonly cellSwapMedianHours: number;

  /** Beacon clock error, ppm (σ of a normal), and the share running on the uncalibrated RC clock. */
  readonly clockPpmSigma: number;
  readonly rcClockShare: number;
  readonly rcClockPpm: number;

  /** Authorised absences (test appointments) and how late people come back from them. */
  readonly absencesPerDay: number;
  readonly absenceMedianMin: number;
  readonly lateReturnShare: number;
  readonly lateReturnMedianMin: number;

  /** How long after a warning is shown the person acts on it, minutes (log-normal median, σ). */
  readonly reactionMedianMin: number;
  readonly reactionSigma: number;
  /** Share of warnings that go unseen (phone face down in another room) until the next one. */
  readonly warningMissedShare: number;
  /** Hours of sleep, during which warnings are not seen and nothing is switched by hand. */
  readonly sleepFromHour: number;
  readonly sleepToHour: number;
}

export const DEFAULT_MODEL: FaultModel = {
  // Assumption: one departure per person every ~2 weeks, mostly short errands.
  departuresPerDay: 0.07,
  departureMedianMin: 35,
  departureSigma: 1,
  phoneLeftHomeShare: 0.05,
  turnBackShare: 0.3,
  travelHomeMedianMin: 10,

  // Assumption: a Bluetooth switch-off every ~4 days per person, pessimistic for people told
  // to keep it on; left off for a median half-hour when not reminded.
  bluetoothOffPerDay: 0.25,
  bluetoothOffMedianMin: 30,

  // Assumption: phones are charged overnight on most nights; one night in 30 it runs flat.
  phoneFlatNightShare: 1 / 30,
  relayOfflinePerDay: 0.15,
  relayOfflineMedianMin: 90,

  // The beacon advertises each token for a minute at 375 ms (about 160 chances); an Android
  // balanced scan window hears ~25 % of adverts (docs/protocol.md): losses come in bursts,
  // modelled as weak-signal stretches rather than independent drops.
  tokenLoss: 0.03,
  weakSignalPerDay: 3,
  weakSignalMedianMin: 15,
  weakSignalLoss: 0.6,

  neighbourShare: 0.2,
  neighbourHeardPerMinute: 0.3,

  usedCellShare: 0.05,
  // A CR2032 lasts ~6.5 months at the 375 ms interval (docs/protocol.md): ~0.5 % a day.
  drainPercentPerDay: 0.5,
  cellSwapMedianHours: 24,

  // nRF52 32 kHz crystal: ±20 ppm (datasheet); a few boards run on the RC oscillator.
  clockPpmSigma: 20,
  rcClockShare: 0.02,
  rcClockPpm: 500,

  absencesPerDay: 1 / 7,
  absenceMedianMin: 90,
  lateReturnShare: 0.1,
  lateReturnMedianMin: 12,

  // Pielot et al. (MobileHCI 2014): messages are attended within minutes (median ~6 min for
  // messaging apps); an alarm-style warning is assumed faster. Long tail via σ = 1.
  reactionMedianMin: 4,
  reactionSigma: 1,
  warningMissedShare: 0.15,
  sleepFromHour: 23,
  sleepToHour: 7,
};

export function withOverrides(base: FaultModel, overrides: Record<string, number>): FaultModel {
  const out: Record<string, number> = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    if (!(k in base)) throw new RangeError(`unknown model parameter: ${k}`);
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`${k} must be a non-negative number`);
    out[k] = v;
  }
  return out as unknown as FaultModel;
}
