/**
 * absence, absences, absence-cancel: authorised absences of a beacon's active quarantine. Only
 * two times ever go to the app backend; the reason stays with the health authority.
 */
import { CliError, EXIT, usageError } from '../errors.js';
import type { Answer } from '../http.js';
import { parseAbsenceId, parseBeaconId, readAuthorityKey } from '../inputs.js';
import {
  MAX_ABSENCE_MS,
  formatDuration,
  formatLocal,
  formatUtc,
  parseDuration,
  parseTime,
} from '../time.js';
import type { Context, Outcome } from './outcome.js';
import { expectStatus, getSigned, postSigned, serverFrom } from './server.js';

/** An absence as the app backend describes it (app-backend/src/absences.ts, AbsenceView). */
export interface Absence {
  readonly absenceId: string;
  readonly startsAt: number;
  readonly endsAt: number;
  readonly scheduledBy: 'health-authority' | 'police';
  readonly cancelledAt: number | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const time = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Check what the server sent before printing any of it; anything else is exit 4. */
function absenceFrom(value: unknown, answer: Answer, what: string): Absence {
  const a = (value && typeof value === 'object' ? value : {}) as Record<string, unknown>;
  if (
    typeof a.absenceId === 'string' &&
    UUID.test(a.absenceId) &&
    time(a.startsAt) &&
    time(a.endsAt) &&
    (a.scheduledBy === 'health-authority' || a.scheduledBy === 'police') &&
    (a.cancelledAt === null || time(a.cancelledAt))
  )
    return {
      absenceId: a.absenceId,
      startsAt: a.startsAt,
      endsAt: a.endsAt,
      scheduledBy: a.scheduledBy,
      cancelledAt: a.cancelledAt,
    };
  throw new CliError(
    EXIT.unavailable,
    `unexpected answer to ${what}: HTTP ${answer.status} without a valid absence`,
    'BAD_ANSWER',
    answer.status,
  );
}

const absencesPath = (beaconId: string) =>
  `/v1/quarantines/${encodeURIComponent(beaconId)}/absences`;

/** absence --beacon <id> --from <time> (--until <time> | --for <duration>) */
export async function absenceCommand({ values, io }: Context): Promise<Outcome> {
  // Every check that needs no server first: a mistyped time sends nothing.
  const beaconId = parseBeaconId(values.beacon as string);
  const now = io.now();
  const startsAt = parseTime(values.from as string, '--from', now);
  let endsAt: number;
  if (values.until !== undefined) {
    endsAt = parseTime(values.until, '--until', now);
    if (endsAt <= startsAt)
      throw usageError(
        `--until ${formatLocal(endsAt)} is not after --from ${formatLocal(startsAt)}`,
      );
    if (endsAt - startsAt > MAX_ABSENCE_MS)
      throw usageError(
        `--until is ${formatDuration(endsAt - startsAt)} after --from: an absence lasts at most ${formatDuration(MAX_ABSENCE_MS)}`,
      );
  } else {
    endsAt = startsAt + parseDuration(values.for as string, '--for');
  }
  const server = await serverFrom(values);
  const authority = await readAuthorityKey(values.key as string);
  if (authority.warning) io.stderr(authority.warning);
  const what = `the absence of beacon ${beaconId}`;
  const answer = await postSigned(
    server,
    absencesPath(beaconId),
    Buffer.from(JSON.stringify({ startsAt, endsAt }), 'utf8'),
    authority.key,
    values,
    io,
    // The app backend names each absence itself: sending it again may schedule it twice.
    `run "absences" to see whether it was scheduled before running this again`,
  );
  const absence = absenceFrom(expectStatus(answer, 201, what), answer, what);
  return {
    exitCode: 0,
    json: { status: answer.status, beaconId, ...absence },
    text: [
      `scheduled absence ${absence.absenceId} for beacon ${beaconId} (${formatDuration(absence.endsAt - absence.startsAt)})`,
      `  from   ${formatLocal(absence.startsAt)}   (UTC ${formatUtc(absence.startsAt)})`,
      `  until  ${formatLocal(absence.endsAt)}   (UTC ${formatUtc(absence.endsAt)})`,
      'no alert while it lasts; the beacon must be back by its end',
    ].join('\n'),
  };
}

function state(a: Absence, now: number): string {
  if (a.cancelledAt !== null) return 'cancelled';
  if (a.endsAt <= now) return 'over';
  return a.startsAt <= now ? 'under way' : 'scheduled';
}

/** Columns padded to their widest cell; the last one is not padded. */
function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => r[i]?.length ?? 0))) ?? [];
  return rows
    .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))))
    .map((r) => r.join('  '))
    .join('\n');
}

/** absences --beacon <id> */
export async function absencesCommand({ values, io }: Context): Promise<Outcome> {
  const beaconId = parseBeaconId(values.beacon as string);
  const server = await serverFrom(values);
  const authority = await readAuthorityKey(values.key as string);
  if (authority.warning) io.stderr(authority.warning);
  const what = `the list of absences of beacon ${beaconId}`;
  const answer = await getSigned(server, absencesPath(beaconId), authority.key, values, io);
  const list = expectStatus(answer, 200, what).absences;
  if (!Array.isArray(list))
    throw new CliError(
      EXIT.unavailable,
      `unexpected answer to ${what}: HTTP ${answer.status} without a list of absences`,
      'BAD_ANSWER',
      answer.status,
    );
  const absences = list.map((a) => absenceFrom(a, answer, what));
  const now = io.now();
  const text =
    absences.length === 0
      ? `no current or future absences for beacon ${beaconId}`
      : `absences of beacon ${beaconId}, current and future (times in this computer's time zone):\n${table(
          [
            ['ABSENCE', 'FROM', 'UNTIL', 'LENGTH', 'BY', 'STATE'],
            ...absences.map((a) => [
              a.absenceId,
              formatLocal(a.startsAt),
              formatLocal(a.endsAt),
              formatDuration(a.endsAt - a.startsAt),
              a.scheduledBy,
              state(a, now),
            ]),
          ],
        )}`;
  return { exitCode: 0, json: { status: answer.status, beaconId, absences }, text };
}

/** absence-cancel --beacon <id> --absence <uuid> */
export async function absenceCancelCommand({ values, io }: Context): Promise<Outcome> {
  const beaconId = parseBeaconId(values.beacon as string);
  const absenceId = parseAbsenceId(values.absence as string);
  const server = await serverFrom(values);
  const authority = await readAuthorityKey(values.key as string);
  if (authority.warning) io.stderr(authority.warning);
  const what = `the cancellation of absence ${absenceId} of beacon ${beaconId}`;
  const answer = await postSigned(
    server,
    `${absencesPath(beaconId)}/${absenceId}/cancel`,
    Buffer.from('{}'),
    authority.key,
    values,
    io,
    'run the same command again (cancelling twice is harmless)',
  );
  const absence = absenceFrom(expectStatus(answer, 200, what), answer, what);
  return {
    exitCode: 0,
    json: { status: answer.status, beaconId, ...absence },
    text: [
      `cancelled absence ${absence.absenceId} of beacon ${beaconId}`,
      `  was    ${formatLocal(absence.startsAt)} to ${formatLocal(absence.endsAt)}`,
      'monitoring applies again at once: if the absence was under way, the beacon must be back now',
    ].join('\n'),
  };
}
