import type { PresenceStatus } from '../../protocol/presence-status.js';
import type { TokenFields } from '../../protocol/token/fields.js';
import { relayWarning } from '../../phone-relay/src/status.js';
import type { FaultModel } from './model.js';
import { type Random, chance, logNormal, normal, poisson, uniform } from './random.js';

// One quarantined person, their phone's relay and their beacon, minute by minute. The person's
// life is drawn up front (departures, faults, absences); warnings shown by the relay can cut some
// of it short (Bluetooth back on, moving closer to the beacon, heading home).

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

export type Cause =
  | 'departure'
  | 'late_return'
  | 'bluetooth_off'
  | 'phone_flat'
  | 'relay_offline'
  | 'weak_signal'
  | 'beacon_dead'
  | 'clock';

export interface Span {
  readonly cause: Cause;
  readonly from: number;
  to: number;
  /** For departures: the phone stayed at home (no relay can see this one). */
  readonly phoneHome?: boolean;
}

export interface Upload {
  readonly at: number;
  readonly tokens: TokenFields[];
  readonly invalid: number;
}

/**
 * The relay sends a cycle's tokens oldest first, 64 per request (phone-relay); a neighbour's
 * tokens were heard in between its own, so each request carries its share of them.
 */
export function requestsOf(u: Upload): { tokens: TokenFields[]; invalid: number }[] {
  const total = u.tokens.length + u.invalid;
  const out: { tokens: TokenFields[]; invalid: number }[] = [];
  let sentTokens = 0;
  let sentInvalid = 0;
  for (
    let end = Math.min(64, total);
    out.length === 0 || sentTokens + sentInvalid < total;
    end = Math.min(end + 64, total)
  ) {
    const invalidUntil = Math.round((u.invalid * end) / Math.max(1, total));
    const bad = invalidUntil - sentInvalid;
    const good = end - sentTokens - sentInvalid - bad;
    out.push({ tokens: u.tokens.slice(sentTokens, sentTokens + good), invalid: bad });
    sentTokens += good;
    sentInvalid += bad;
  }
  return out;
}

const lengthMs = (r: Random, medianMin: number, sigma: number) =>
  Math.max(MIN, logNormal(r, medianMin, sigma) * MIN);

export class Person {
  readonly spans: Span[] = [];
  readonly absences: { startsAt: number; endsAt: number }[] = [];
  /** Warnings the relay showed (not heard / grace / reported), for the report. */
  warnings = 0;
  #buffer: { fields: TokenFields; heardAt: number }[] = [];
  #counter = 0;
  #battery: number;
  #dead = false;
  #rebootedNext = false;
  readonly #ppm: number;
  readonly #neighbour: boolean;
  #nextUpload: number;
  #seenWarningAt = -Infinity;
  #swapAt: number | null = null;

  constructor(
    readonly r: Random,
    readonly m: FaultModel,
    readonly start: number,
    readonly days: number,
  ) {
    const end = start + days * DAY;
    this.#battery = chance(r, m.usedCellShare) ? uniform(r, 3, 30) : 100;
    this.#ppm = chance(r, m.rcClockShare)
      ? (chance(r, 0.5) ? 1 : -1) * m.rcClockPpm
      : normal(r) * m.clockPpmSigma;
    this.#neighbour = chance(r, m.neighbourShare);
    this.#nextUpload = start + uniform(r, 0, 5 * MIN);
    const awake = (t: number) => !this.asleep(t);
    const add = (cause: Cause, from: number, ms: number, extra: Partial<Span> = {}) =>
      this.spans.push({ cause, from, to: from + ms, ...extra });

    for (const t of poisson(r, m.absencesPerDay, start + 2 * HOUR, end - 4 * HOUR)) {
      if (!awake(t)) continue;
      // Scheduled to the minute, as a person would book it.
      const startsAt = Math.round(t / MIN) * MIN;
      const endsAt = startsAt + Math.round(lengthMs(r, m.absenceMedianMin, 0.4) / MIN) * MIN;
      this.absences.push({ startsAt, endsAt });
      if (chance(r, m.lateReturnShare))
        add('late_return', endsAt, lengthMs(r, m.lateReturnMedianMin, 1));
    }
    // A departure is leaving without leave: none is drawn inside an authorised absence (a late
    // return from one is its own case above).
    for (const t of poisson(r, m.departuresPerDay, start, end)) {
      const length = lengthMs(r, m.departureMedianMin, m.departureSigma);
      const phoneHome = chance(r, m.phoneLeftHomeShare);
      const clash = this.absences.some((a) => a.startsAt <= t + length && a.endsAt + 30 * MIN >= t);
      if (awake(t) && !clash) add('departure', t, length, { phoneHome });
    }
    for (const t of poisson(r, m.bluetoothOffPerDay, start, end))
      if (awake(t)) add('bluetooth_off', t, lengthMs(r, m.bluetoothOffMedianMin, 1));
    for (const t of poisson(r, m.relayOfflinePerDay, start, end))
      add('relay_offline', t, lengthMs(r, m.relayOfflineMedianMin, 0.8));
    for (const t of poisson(r, m.weakSignalPerDay, start, end))
      add('weak_signal', t, lengthMs(r, m.weakSignalMedianMin, 0.8));
    for (let d = 0; d < days; d++) {
      if (!chance(r, m.phoneFlatNightShare)) continue;
      const night = start + d * DAY + m.sleepFromHour * HOUR;
      const flat = night + uniform(r, 0, 5 * HOUR);
      const wake = start + (d + 1) * DAY + m.sleepToHour * HOUR + uniform(r, 0, 30 * MIN);
      if (wake > flat) add('phone_flat', flat, wake - flat);
    }
  }

  asleep(t: number): boolean {
    const hour = ((t - this.start) % DAY) / HOUR;
    const { sleepFromHour: from, sleepToHour: to } = this.m;
    return from > to ? hour >= from || hour < to : hour >= from && hour < to;
  }

  active(cause: Cause, t: number): Span | undefined {
    return this.spans.find((s) => s.cause === cause && s.from <= t && t < s.to);
  }

  inAbsence(t: number): boolean {
    return this.absences.some((a) => a.startsAt <= t && t < a.endsAt);
  }

  /** Away from home: a departure, an absence, or the late part of one. */
  away(t: number): boolean {
    return Boolean(
      this.active('departure', t) || this.active('late_return', t) || this.inAbsence(t),
    );
  }

  #phoneAtHome(t: number): boolean {
    const dep = this.active('departure', t);
    if (dep) return Boolean(dep.phoneHome);
    return !this.active('late_return', t) && !this.inAbsence(t);
  }

  /** The beacon's token for minute `t` (true time), or null when it has died. */
  token(t: number): TokenFields | null {
    const days = (t - this.start) / DAY;
    const battery = this.#battery - days * this.m.drainPercentPerDay;
    if (battery <= 0) {
      if (!this.#dead) this.spans.push({ cause: 'beacon_dead', from: t, to: Infinity });
      this.#dead = true;
      return null;
    }
    const fields: TokenFields = {
      version: 1,
      unixSeconds: Math.floor(t / 1000 + ((t - this.start) / 1000) * this.#ppm * 1e-6),
      counter: this.#counter++,
      batteryPercent: Math.max(0, Math.min(100, Math.round(battery))),
      clockNotSet: false,
      rebooted: this.#rebootedNext || this.#counter === 1,
    };
    this.#rebootedNext = false;
    return fields;
  }

  /** An officer changed the cell (after a low-battery note, or a dead beacon). */
  #swapCell(t: number): void {
    const days = (t - this.start) / DAY;
    this.#battery = 100 + days * this.m.drainPercentPerDay;
    this.#rebootedNext = true;
    if (this.#dead) {
      const dead = this.spans.find((s) => s.cause === 'beacon_dead' && s.to === Infinity);
      if (dead) dead.to = t;
      this.#dead = false;
    }
    this.#swapAt = null;
  }

  /** The maintenance queue noticed the beacon: a visit follows. */
  maintenanceNoticed(t: number): void {
    this.#swapAt ??= t + logNormal(this.r, this.m.cellSwapMedianHours, 0.7) * HOUR;
  }

  /**
   * One minute: the beacon broadcasts, the relay may hear it (and a neighbour's), and when its
   * cycle is due and it has network it uploads. Returns the upload, if one went out.
   */
  minute(t: number, status: (now: number) => PresenceStatus): Upload | null {
    if (this.#swapAt !== null && t >= this.#swapAt) this.#swapCell(t);
    const token = this.token(t);
    const phoneOn = !this.active('phone_flat', t);
    const hearing = phoneOn && !this.active('bluetooth_off', t) && this.#phoneAtHome(t);
    if (token && hearing) {
      const loss = this.active('weak_signal', t) ? this.m.weakSignalLoss : this.m.tokenLoss;
      if (!chance(this.r, loss)) {
        this.#buffer.push({ fields: token, heardAt: t });
        this.#lastHeardAt = t;
      }
    }
    // The relay's own warning logic, as the phone app runs it (phone-relay/src/status.ts).
    if (phoneOn) this.#react(t, relayWarning(this.#server, this.#lastHeardAt, t));
    let invalid = 0;
    if (hearing && this.#neighbour && chance(this.r, this.m.neighbourHeardPerMinute)) invalid = 1;
    this.#pendingInvalid += invalid;
    if (t < this.#nextUpload) return null;
    this.#nextUpload = t + 5 * MIN * (1 + 0.1 * (2 * this.r.next() - 1));
    if (!phoneOn || this.active('relay_offline', t)) return null;
    // The relay keeps a day of tokens and sends the oldest first, 64 per request.
    this.#buffer = this.#buffer.filter((b) => b.heardAt > t - DAY);
    const tokens = this.#buffer.map((b) => b.fields);
    this.#buffer = [];
    const up: Upload = { at: t, tokens, invalid: this.#pendingInvalid };
    this.#pendingInvalid = 0;
    this.#server = status(t);
    this.#react(t, relayWarning(this.#server, this.#lastHeardAt, t));
    return up;
  }

  #pendingInvalid = 0;
  #lastHeardAt: number | null = null;
  #server: PresenceStatus | null = null;

  /** The relay shows a warning; the person may see it and act (again every five minutes). */
  #react(t: number, warning: string | null): void {
    if (warning === null) return;
    if (this.asleep(t) || t - this.#seenWarningAt < 5 * MIN) return;
    if (chance(this.r, this.m.warningMissedShare)) return;
    this.warnings++;
    this.#seenWarningAt = t;
    const acts = t + lengthMs(this.r, this.m.reactionMedianMin, this.m.reactionSigma);
    const cut = (s: Span | undefined, at: number) => {
      if (s && at < s.to) s.to = Math.max(s.from, at);
    };
    cut(this.active('bluetooth_off', t), acts);
    cut(this.active('weak_signal', t), acts);
    const away = this.active('departure', t) ?? this.active('late_return', t);
    if (away && !away.phoneHome && chance(this.r, this.m.turnBackShare))
      cut(away, acts + lengthMs(this.r, this.m.travelHomeMedianMin, 0.5));
  }
}
