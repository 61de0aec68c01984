/** Alerts in plain words, from their kind and detail (docs/police-api.md). Text only. */
import { formatClock, formatDuration, kindLabel } from './format.js';
import type { Alert, Detail } from './types.js';

const num = (d: Detail, key: string): number | null =>
  typeof d[key] === 'number' ? (d[key] as number) : null;

/** A BEACON_FAULT's reasons, in the order the app backend gave them. */
export function faultReasons(alert: Pick<Alert, 'detail'>): string[] {
  const r = alert.detail['reasons'];
  return typeof r === 'string'
    ? r
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)
    : [];
}

/** The beacon probably died: the alert needs a visit today. */
export const needsVisit = (alert: Alert): boolean =>
  alert.kind === 'BEACON_FAULT' && faultReasons(alert).includes('battery_depleted');

export function reasonText(reason: string, detail: Detail): string {
  const battery = num(detail, 'batteryPercent');
  const offset = num(detail, 'offsetSeconds');
  switch (reason) {
    case 'battery_depleted':
      return 'Beacon battery depleted — needs a visit today';
    case 'low_battery':
      return battery === null ? 'Beacon battery low' : `Beacon battery low (${battery} %)`;
    case 'rebooted':
      return 'Beacon restarted';
    case 'clock_not_set':
      return 'Beacon clock not set';
    case 'clock_drift':
      return offset === null ? 'Beacon clock drift' : `Beacon clock off by ${Math.abs(offset)} s`;
    default:
      return reason.replace(/_/g, ' ');
  }
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** One line saying what the alert is about, e.g. "Not at home — confirmed after 10 min grace". */
export function headline(alert: Alert): string {
  const d = alert.detail;
  switch (alert.kind) {
    case 'NO_PRESENCE': {
      const grace = num(d, 'graceSeconds');
      const text =
        grace === null
          ? 'Not at home — confirmed'
          : `Not at home — confirmed after ${formatDuration(grace * 1000)} grace`;
      return d['afterAbsence'] === true ? `${text}, late back from an authorised absence` : text;
    }
    case 'BEACON_FAULT': {
      const reasons = faultReasons(alert);
      if (reasons.includes('battery_depleted')) return 'Beacon battery depleted';
      const first = reasons[0];
      return first === undefined ? 'Beacon fault' : reasonText(first, d);
    }
    case 'SUSPECTED_SPOOFING': {
      const n = num(d, 'invalidTokens');
      return n === null
        ? 'Possible spoofing'
        : `Possible spoofing: ${plural(n, 'invalid token', 'invalid tokens')}`;
    }
    case 'RELAY_SILENT': {
      const from = num(d, 'silentFrom');
      const until = num(d, 'silentUntil');
      return from === null || until === null
        ? 'Phone silent, back home without proof'
        : `Phone silent ${formatClock(from)}–${formatClock(until)}, back home without proof`;
    }
    case 'RESOLVED_BY_EVIDENCE':
      return resolvedText(d['coveredByEvidence'] === true, num(d, 'lastPresenceAt'));
    case 'LATE_EVIDENCE': {
      const until = num(d, 'evidenceUntil');
      return until === null
        ? 'Late evidence of presence'
        : `Late evidence: at home until ${formatClock(until)}`;
    }
    case 'ALERT_UPDATED':
      return 'Happened again; details updated';
    case 'FAULT_CLEARED':
      return 'Beacon condition cleared';
    default:
      return kindLabel(alert.kind);
  }
}

function resolvedText(covered: boolean, at: number | null): string {
  if (covered) return 'Presence proven for the whole gap (likely false alarm)';
  return at === null ? 'Back home' : `Back home at ${formatClock(at)}`;
}

/** How the gap of a violation ended, once the app backend has said so; else null. */
export function recoveryText(alert: Alert): string | null {
  if (alert.recoveredAt === null) return null;
  return resolvedText(alert.coveredByEvidence === true, alert.recoveredAt);
}

/** "×3" when the alert happened more than once. */
export const occurrencesText = (alert: Alert): string | null =>
  alert.occurrences > 1 ? `×${alert.occurrences}` : null;
