/** Labels and times for display. Every function returns plain text or text-only nodes. */
import { h } from './dom.js';
import type { Alert, BeaconStatus, DayBucket, Queue } from './types.js';

export const KIND_LABEL: Record<string, string> = {
  NO_PRESENCE: 'Not at home',
  BEACON_FAULT: 'Beacon fault',
  SUSPECTED_SPOOFING: 'Possible spoofing',
  RELAY_SILENT: 'Phone silent',
  RESOLVED_BY_EVIDENCE: 'Resolved by evidence',
  LATE_EVIDENCE: 'Late evidence',
  ALERT_UPDATED: 'Repeated',
  FAULT_CLEARED: 'Condition cleared',
};

export const QUEUE_LABEL: Record<Queue, string> = {
  violation: 'Violations',
  maintenance: 'Beacon maintenance',
};

export const OUTCOME_LABEL: Record<DayBucket, string> = {
  violation_confirmed: 'Violation confirmed',
  false_alarm: 'False alarm',
  beacon_fault: 'Beacon fault',
  presence_proven_later: 'Presence proven later',
  unresolved: 'Unresolved',
};

export const BEACON_STATUS_HINT: Record<BeaconStatus, string> = {
  registered: 'Registered; monitoring not enabled yet.',
  enable_pending: 'Waiting for the app backend to confirm that monitoring is on.',
  monitoring: 'The app backend is watching for proof of presence.',
  end_pending: 'Waiting for the app backend to confirm that monitoring has ended.',
  ended: 'Monitoring has ended.',
};

export const kindLabel = (kind: string): string => KIND_LABEL[kind] ?? kind;

export function outcomeLabel(outcome: string | null | undefined): string {
  if (!outcome) return '—';
  return (OUTCOME_LABEL as Record<string, string>)[outcome] ?? outcome;
}

/** `enable_pending` → `enable pending` (CSS capitalises the first letter). */
export const codeText = (code: string): string => code.replace(/_/g, ' ');

const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function formatAbsolute(ms: number): string {
  return absolute.format(new Date(ms));
}

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

/** `12:41`: the time of day, for sentences such as "back home at 12:41". */
export function formatClock(ms: number): string {
  return clock.format(new Date(ms));
}

/** `45 s`, `12 min`, `3 h 05 min`, `2 d 4 h`. */
export function formatDuration(ms: number): string {
  const sec = Math.max(0, Math.floor(ms / 1000));
  if (sec < 60) return `${sec} s`;
  const min = Math.floor(sec / 60);
  if (min < 60) return `${min} min`;
  const hours = Math.floor(min / 60);
  if (hours < 24) return `${hours} h ${String(min % 60).padStart(2, '0')} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export function formatRelative(ms: number, now: number): string {
  const diff = now - ms;
  if (Math.abs(diff) < 30_000) return 'just now';
  return diff > 0 ? `${formatDuration(diff)} ago` : `in ${formatDuration(-diff)}`;
}

/** Gap length per the API: `(recoveredAt ?? now) − gapStartedAt`. */
/** Where a gap ends for display: presence came back, or the alert was resolved first, or not yet (null). */
function gapEnd(alert: Alert): number | null {
  return alert.recoveredAt ?? (alert.state === 'resolved' ? alert.updatedAt : null);
}

export function gapLength(alert: Alert, now: number): number | null {
  if (alert.gapStartedAt === null || alert.gapStartedAt === undefined) return null;
  return (gapEnd(alert) ?? now) - alert.gapStartedAt;
}

/** A moment as "12 min ago (23 Nov 2026, 14:03:12)"; the relative part is kept fresh by tick(). */
export function timeAgo(ms: number | null | undefined): HTMLElement {
  if (ms === null || ms === undefined) return h('span', { class: 'muted' }, 'never');
  return h(
    'time',
    { datetime: new Date(ms).toISOString() },
    h('span', { 'data-rel': ms }, formatRelative(ms, Date.now())),
    ' ',
    h('span', { class: 'abs' }, `(${formatAbsolute(ms)})`),
  );
}

/** A moment as absolute time only. */
export function timeAt(ms: number | null | undefined): HTMLElement {
  if (ms === null || ms === undefined) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: new Date(ms).toISOString() }, formatAbsolute(ms));
}

/** The gap of an alert; while it is still open it grows on every tick(). */
export function gapEl(alert: Alert): HTMLElement {
  const length = gapLength(alert, Date.now());
  if (length === null) return h('span', { class: 'muted' }, '—');
  const end = gapEnd(alert);
  return h(
    'span',
    {
      class: end === null ? 'gap gap-open' : 'gap',
      'data-gap-start': alert.gapStartedAt,
      'data-gap-end': end ?? undefined,
    },
    end === null ? '' : alert.recoveredAt === null ? 'at least ' : '',
    formatDuration(length),
    end === null
      ? ' and counting'
      : alert.recoveredAt === null
        ? ' (resolved before presence returned)'
        : '',
  );
}

/** Refresh every relative time and open gap under `root`. */
export function tick(root: ParentNode, now = Date.now()): void {
  for (const el of root.querySelectorAll<HTMLElement>('[data-rel]')) {
    el.textContent = formatRelative(Number(el.dataset['rel']), now);
  }
  for (const el of root.querySelectorAll<HTMLElement>('[data-gap-start]')) {
    const end = el.dataset['gapEnd'];
    if (end !== undefined) continue;
    el.textContent = `${formatDuration(now - Number(el.dataset['gapStart']))} and counting`;
  }
}

/** `2026-11-23` (a UTC day) → `23 Nov`. */
const dayFormat = new Intl.DateTimeFormat(undefined, {
  day: 'numeric',
  month: 'short',
  timeZone: 'UTC',
});
export function formatDay(day: string): string {
  const ms = Date.parse(`${day}T00:00:00Z`);
  return Number.isNaN(ms) ? day : dayFormat.format(new Date(ms));
}
