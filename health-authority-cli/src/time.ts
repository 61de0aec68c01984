/**
 * Times and durations as the operator types them (--from, --until, --for) and as the CLI prints
 * them. Every problem is a usage error naming the option; nothing here reads the wall clock.
 */
import { quoted, usageError } from './errors.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** The longest absence the CLI sends: the app backend's default APP_MAX_ABSENCE_SECONDS. */
export const MAX_ABSENCE_MS = 24 * HOUR;

// Extended or basic offset, optional seconds and milliseconds; "T", "t" or a space (RFC 3339).
const ISO =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)$/;
const NO_OFFSET = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$/;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DURATION = /^(?:(\d{1,9})h)?(?:(\d{1,9})m)?(?:(\d{1,9})s)?$/;

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** This computer's UTC offset at `ms`, in minutes east of UTC. */
export function localOffsetMinutes(ms: number): number {
  // getTimezoneOffset() is minutes west of UTC; "|| 0" turns -0 into 0.
  return -new Date(ms).getTimezoneOffset() || 0;
}

function offsetText(minutes: number): string {
  if (minutes === 0) return 'Z';
  const a = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/**
 * `ms` as ISO 8601 at `offsetMinutes` east of UTC, seconds only when not zero, e.g.
 * 2026-11-30T09:30+01:00; what parseTime reads back to the same instant.
 */
export function formatTime(ms: number, offsetMinutes: number): string {
  const d = new Date(ms + offsetMinutes * MINUTE);
  const seconds = d.getUTCSeconds();
  const millis = d.getUTCMilliseconds();
  const tail =
    seconds === 0 && millis === 0 ? '' : `:${pad(seconds)}${millis ? `.${pad(millis, 3)}` : ''}`;
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}${tail}${offsetText(offsetMinutes)}`;
}

export const formatLocal = (ms: number) => formatTime(ms, localOffsetMinutes(ms));
export const formatUtc = (ms: number) => formatTime(ms, 0);

/**
 * --from / --until: "now" (`now`, floored to the second), or ISO 8601 with a UTC offset, e.g.
 * 2026-11-30T09:30+01:00 or 2026-11-30T08:30Z. A time without an offset is refused rather than
 * guessed: this computer's time zone need not be the beacon's.
 */
export function parseTime(value: string, flag: string, now: number): number {
  if (value.toLowerCase() === 'now') return Math.floor(now / 1000) * 1000;
  const m = ISO.exec(value);
  if (!m) {
    if (NO_OFFSET.test(value)) {
      const wall = value.slice(0, 16).replace(/[t ]/, 'T');
      // Without an offset, Date.parse reads local time: this computer's offset on that day.
      const at = Date.parse(wall);
      const local = offsetText(localOffsetMinutes(Number.isNaN(at) ? now : at));
      const examples =
        local === 'Z'
          ? `${wall}Z (UTC, also this computer's time zone)`
          : `${wall}${local} (this computer's) or ${wall}Z (UTC)`;
      throw usageError(`${flag} ${quoted(value)} has no UTC offset: add one, e.g. ${examples}`);
    }
    throw usageError(
      DATE_ONLY.test(value)
        ? `${flag} ${quoted(value)} needs a time of day, e.g. ${value}T09:30+01:00`
        : `${flag} must be "now" or a time with its UTC offset, e.g. 2026-11-30T09:30+01:00 or 2026-11-30T08:30Z; got ${quoted(value)}`,
    );
  }
  const [, y, mo, d, h, mi, s, frac, zulu, sign, oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = s === undefined ? 0 : Number(s);
  const millis = frac === undefined ? 0 : Number(frac.padEnd(3, '0'));
  const offHours = zulu ? 0 : Number(oh);
  const offMinutes = zulu || om === undefined ? 0 : Number(om);
  const bad = (what: string) => usageError(`${flag} ${quoted(value)}: ${what}`);
  if (year < 1970) throw bad('the year must be 1970 or later');
  if (month < 1 || month > 12) throw bad(`there is no month ${mo}`);
  if (day < 1 || day > daysIn(year, month)) throw bad(`there is no day ${d} in ${y}-${mo}`);
  if (hour > 23 || minute > 59 || second > 59) throw bad('not a time of day (00:00 to 23:59:59)');
  if (offHours > 23 || offMinutes > 59) throw bad('not a UTC offset (-23:59 to +23:59)');
  const offset = (sign === '-' ? -1 : 1) * (offHours * 60 + offMinutes);
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, millis) - offset * MINUTE;
  if (ms < 0) throw bad('before 1970-01-01T00:00Z');
  return ms;
}

/** --for: hours, minutes and seconds in that order, each optional, e.g. 90m, 2h, 1h30m. */
export function parseDuration(value: string, flag: string): number {
  const m = value === '' ? null : DURATION.exec(value);
  if (!m)
    throw usageError(
      `${flag} must be a duration such as 90m, 2h or 1h30m (h, m, s, in that order); got ${quoted(value)}`,
    );
  const [, h, mi, s] = m;
  const ms = (Number(h ?? 0) * 3600 + Number(mi ?? 0) * 60 + Number(s ?? 0)) * 1000;
  if (ms === 0) throw usageError(`${flag} must be longer than zero`);
  if (ms > MAX_ABSENCE_MS)
    throw usageError(
      `${flag} ${quoted(value)} is longer than ${formatDuration(MAX_ABSENCE_MS)}, the longest absence`,
    );
  return ms;
}

/** A whole number of seconds as parseDuration writes it, e.g. 1h30m; shorter parts left out. */
export function formatDuration(ms: number): string {
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const text = `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
  return text || '0s';
}
