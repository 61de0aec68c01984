import { DEFAULT_RULES, type Rules } from '../../app-backend/src/config.js';
import { SimQuarantine, type PoliceMessage } from './engine.js';
import { DEFAULT_MODEL, type FaultModel } from './model.js';
import { type Cause, Person, type Span, type Upload, requestsOf } from './person.js';
import { seeded } from './random.js';

const MIN = 60_000;
/** Monday 2026-11-30 00:00 UTC: the simulated days start at midnight. */
export const SIM_START = Date.UTC(2026, 10, 30);

export interface SimOptions {
  readonly people: number;
  readonly days: number;
  readonly seed: number;
  readonly model?: FaultModel;
  readonly rules?: Rules;
}

export interface SimResult {
  readonly people: number;
  readonly days: number;
  readonly personDays: number;
  readonly seed: number;
  readonly rules: { windowSeconds: number; graceSeconds: number; silentGraceSeconds: number };
  readonly departures: {
    /** Departures with the phone, longer than window + grace: every one must reach police. */
    readonly mustDetect: number;
    readonly detected: number;
    /** Of those, departures during which the phone sent nothing (no network or switched off). */
    readonly phoneSilent: number;
    readonly detectedWithPhoneOnline: number;
    readonly mustDetectWithPhoneOnline: number;
    /** Shorter departures (warned, home within the grace): how many still reached police. */
    readonly shorter: number;
    readonly shorterReported: number;
    /** The phone stayed at home: no relay-based design can see these. */
    readonly phoneLeftHome: number;
    /** Late returns from an authorised absence beyond the grace, phone online / silent. */
    readonly lateReturns: number;
    readonly lateReturnsDetected: number;
    readonly lateReturnsPhoneSilent: number;
    readonly minutesToPolice: {
      readonly median: number;
      readonly p95: number;
      readonly max: number;
    };
  };
  readonly violationAlerts: { readonly true: number; readonly false: number };
  readonly falseViolationsPerPersonDay: number;
  /** False violation alerts by the conditions present during their gap. */
  readonly falseByCause: Record<string, number>;
  readonly maintenance: Record<string, number>;
  readonly maintenancePerPersonDay: number;
  readonly relaySilentNotes: number;
  readonly warningsPerPersonDay: number;
  /** How often each fault happened in the simulated population. */
  readonly faults: Record<Cause, number>;
}

const overlaps = (s: Span, from: number, to: number) => s.from <= to && s.to >= from;

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

interface PersonRun {
  readonly person: Person;
  readonly messages: readonly PoliceMessage[];
  readonly end: number;
}

/** Simulate one person for `days` with the service's own rules, minute by minute. */
export function runPerson(
  index: number,
  o: SimOptions,
  model: FaultModel,
  rules: Rules,
  /** Sees every request the relay makes, the first token included (to replay it elsewhere). */
  onUpload: (u: Upload) => void = () => undefined,
): PersonRun {
  const r = seeded((o.seed * 1_000_003 + index * 7919) >>> 0);
  const person = new Person(r, model, SIM_START, o.days);
  const first = person.token(SIM_START);
  if (!first) throw new Error('beacon dead at installation');
  const q = new SimQuarantine(rules, SIM_START, first);
  onUpload({ at: SIM_START, tokens: [first], invalid: 0 });
  q.absences.push(...person.absences);
  const end = SIM_START + o.days * 86_400_000;
  let seen = 0;
  for (let t = SIM_START + MIN; t < end; t += MIN) {
    const up = person.minute(t, (now) => q.status(now));
    if (up) {
      onUpload(up);
      for (const r of requestsOf(up)) q.upload(t, r.tokens, r.invalid);
    }
    q.tick(t);
    // The maintenance queue is worked: a low or dead cell gets an officer's visit.
    for (; seen < q.messages.length; seen++) {
      const reasons = String(q.messages[seen]?.detail.reasons ?? '');
      if (/low_battery|battery_depleted/.test(reasons)) person.maintenanceNoticed(t);
    }
  }
  return { person, messages: q.messages, end };
}

export function simulate(o: SimOptions): SimResult {
  const model = o.model ?? DEFAULT_MODEL;
  const rules = o.rules ?? DEFAULT_RULES;
  const mustWait = (rules.windowSeconds + rules.graceSeconds) * 1000;
  const delays: number[] = [];
  const falseByCause: Record<string, number> = {};
  const maintenance: Record<string, number> = {};
  const faults = {} as Record<Cause, number>;
  const d = {
    mustDetect: 0,
    detected: 0,
    phoneSilent: 0,
    detectedWithPhoneOnline: 0,
    mustDetectWithPhoneOnline: 0,
    shorter: 0,
    shorterReported: 0,
    phoneLeftHome: 0,
    lateReturns: 0,
    lateReturnsDetected: 0,
    lateReturnsPhoneSilent: 0,
  };
  let trueAlerts = 0;
  let falseAlerts = 0;
  let silentNotes = 0;
  let warnings = 0;

  for (let i = 0; i < o.people; i++) {
    const { person, messages, end } = runPerson(i, o, model, rules);
    warnings += person.warnings;
    for (const s of person.spans) faults[s.cause] = (faults[s.cause] ?? 0) + 1;
    const violations = messages.filter((m) => m.kind === 'NO_PRESENCE');
    const windowOf = (m: PoliceMessage) => [m.gapStartedAt ?? m.at, m.at] as const;
    for (const m of messages) {
      if (m.kind === 'RELAY_SILENT') silentNotes++;
      if (m.kind === 'BEACON_FAULT' || m.kind === 'SUSPECTED_SPOOFING') {
        const key = m.kind === 'BEACON_FAULT' ? `BEACON_FAULT (${m.detail.reasons})` : m.kind;
        maintenance[key] = (maintenance[key] ?? 0) + 1;
      }
    }
    for (const m of violations) {
      const [from, to] = windowOf(m);
      const away = person.spans.some(
        (s) => (s.cause === 'departure' || s.cause === 'late_return') && overlaps(s, from, to),
      );
      if (away) {
        trueAlerts++;
        continue;
      }
      falseAlerts++;
      const causes = [
        ...new Set(person.spans.filter((s) => overlaps(s, from, to)).map((s) => s.cause)),
      ];
      const key = causes.sort().join('+') || 'token loss alone';
      falseByCause[key] = (falseByCause[key] ?? 0) + 1;
    }
    // A departure counts once the police are told while it is under way.
    const reported = (s: Span) =>
      violations.find((m) => {
        const [from, to] = windowOf(m);
        return from <= s.to && to >= s.from;
      });
    const phoneSilent = (s: Span) =>
      person.spans.some(
        (f) =>
          (f.cause === 'relay_offline' || f.cause === 'phone_flat') && overlaps(f, s.from, s.to),
      );
    for (const s of person.spans) {
      if (s.to > end) continue;
      if (s.cause === 'late_return') {
        if (s.to - s.from <= rules.graceSeconds * 1000 + MIN) continue;
        if (phoneSilent(s)) d.lateReturnsPhoneSilent++;
        else {
          d.lateReturns++;
          if (reported(s)) d.lateReturnsDetected++;
        }
        continue;
      }
      if (s.cause !== 'departure') continue;
      if (s.phoneHome) {
        d.phoneLeftHome++;
        continue;
      }
      const m = reported(s);
      if (s.to - s.from <= mustWait) {
        d.shorter++;
        if (m) d.shorterReported++;
        continue;
      }
      d.mustDetect++;
      const silent = phoneSilent(s);
      if (silent) d.phoneSilent++;
      else d.mustDetectWithPhoneOnline++;
      if (m) {
        d.detected++;
        if (!silent) d.detectedWithPhoneOnline++;
        delays.push((m.at - s.from) / MIN);
      }
    }
  }
  delays.sort((a, b) => a - b);
  const personDays = o.people * o.days;
  const maintenanceTotal = Object.values(maintenance).reduce((a, b) => a + b, 0);
  return {
    people: o.people,
    days: o.days,
    personDays,
    seed: o.seed,
    rules: {
      windowSeconds: rules.windowSeconds,
      graceSeconds: rules.graceSeconds,
      silentGraceSeconds: rules.silentGraceSeconds,
    },
    departures: {
      ...d,
      minutesToPolice: {
        median: percentile(delays, 0.5),
        p95: percentile(delays, 0.95),
        max: delays.at(-1) ?? 0,
      },
    },
    violationAlerts: { true: trueAlerts, false: falseAlerts },
    falseViolationsPerPersonDay: falseAlerts / personDays,
    falseByCause,
    maintenance,
    maintenancePerPersonDay: maintenanceTotal / personDays,
    relaySilentNotes: silentNotes,
    warningsPerPersonDay: warnings / personDays,
    faults,
  };
}
