import type { Database, Queryable } from '../../backend-kit/db.js';
import type { Logger } from '../../backend-kit/logger.js';
import { type MtlsPeer, backoffMs, mtlsPost } from '../../backend-kit/mtls-client.js';
import { type Absence, getAbsence, recordAbsenceAnswer, recordAbsenceRetry } from './absences.js';
import { type Beacon, findBeacon } from './beacons.js';

export type CommandAction = 'enable' | 'end' | 'absence' | 'cancel-absence';

interface Command {
  id: string;
  beacon_record: string;
  action: CommandAction;
  attempts: number;
  beacon_id: string;
  absence_id: string | null;
  starts_at: number | null;
  ends_at: number | null;
}

export interface CommandListeners {
  readonly onBeacon: (b: Beacon) => void;
  readonly onAbsence: (a: Absence) => void;
}

/** The app backend's internal route and body for a command (docs/api.md). */
export function commandRequest(c: Command): { path: string; body: string } {
  const beacon = `/internal/v1/beacons/${encodeURIComponent(c.beacon_id)}`;
  switch (c.action) {
    case 'enable':
    case 'end':
      return { path: `${beacon}/${c.action}`, body: '{}' };
    case 'absence':
      // The reason stays here: the app backend must never hold personal data.
      return {
        path: `${beacon}/absences`,
        body: JSON.stringify({ absenceId: c.absence_id, startsAt: c.starts_at, endsAt: c.ends_at }),
      };
    case 'cancel-absence':
      return {
        path: `${beacon}/absences/${encodeURIComponent(String(c.absence_id))}/cancel`,
        body: '{}',
      };
  }
}

export type Verdict = 'done' | 'retry' | 'refused';

/**
 * What an answer means. Ending or cancelling something the app backend no longer has is done;
 * any other 4xx to an absence command is final (retrying cannot change it); the rest is retried.
 */
export function verdict(action: CommandAction, status: number): Verdict {
  if (status >= 200 && status < 300) return 'done';
  if (status === 404 && (action === 'end' || action === 'cancel-absence')) return 'done';
  const absence = action === 'absence' || action === 'cancel-absence';
  if (absence && status >= 400 && status < 500 && status !== 408 && status !== 429)
    return 'refused';
  return 'retry';
}

/** The stable code of an error answer (`{"error": "CODE"}`), else `HTTP_<status>`. */
function errorCode(status: number, body: string): string {
  try {
    const code = (JSON.parse(body) as { error?: unknown }).error;
    if (typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)) return code;
  } catch {
    // not JSON: the status says enough
  }
  return `HTTP_${status}`;
}

/** A cancel waits until its absence's schedule command has had its final answer. */
const CANCEL_READY = `NOT (c.action = 'cancel-absence' AND EXISTS (
  SELECT 1 FROM commands p WHERE p.absence_id = c.absence_id AND p.action = 'absence' AND p.done_at IS NULL))`;

async function cancelReady(db: Queryable, c: Command): Promise<boolean> {
  if (c.action !== 'cancel-absence') return true;
  const { rows } = await db.query(
    "SELECT 1 FROM commands WHERE absence_id = $1 AND action = 'absence' AND done_at IS NULL",
    [c.absence_id],
  );
  return rows.length === 0;
}

/**
 * Send queued commands to the app backend over mutual TLS, oldest first, retrying with backoff
 * until it confirms; the beacon (and absence) shows its pending state and the last error meanwhile.
 */
export async function sendCommands(
  db: Database,
  app: MtlsPeer,
  now: () => number,
  log: Logger,
  listeners: CommandListeners,
): Promise<number> {
  const { rows } = await db.query<Command>(
    `SELECT c.id, c.beacon_record, c.action, c.attempts, b.beacon_id, c.absence_id, a.starts_at, a.ends_at
       FROM commands c JOIN beacons b ON b.id = c.beacon_record LEFT JOIN absences a ON a.id = c.absence_id
      WHERE c.done_at IS NULL AND c.next_attempt_at <= $1 AND ${CANCEL_READY} ORDER BY c.seq LIMIT 20`,
    [now()],
  );
  let done = 0;
  for (const c of rows) {
    // Its schedule command may have failed earlier in this same batch.
    if (!(await cancelReady(db, c))) continue;
    let result: Verdict;
    let error: string | undefined;
    try {
      const { path, body } = commandRequest(c);
      const r = await mtlsPost(app, path, body);
      result = verdict(c.action, r.status);
      if (result !== 'done') error = errorCode(r.status, r.body);
    } catch (err) {
      result = 'retry';
      error = (err as NodeJS.ErrnoException).code ?? 'NETWORK';
    }
    await db.transaction((tx) => record(tx, c, result, error ?? null, now()));
    if (result === 'done') done++;
    else if (result === 'refused')
      log.warn({ action: c.action, error }, 'monitoring command refused; not retried');
    else log.warn({ action: c.action, error }, 'monitoring command failed; will retry');
    const found = await findBeacon(db, c.beacon_id);
    if (found) listeners.onBeacon(found.beacon);
    if (c.absence_id) {
      const absence = await getAbsence(db, c.absence_id);
      if (absence) listeners.onAbsence(absence);
    }
  }
  return done;
}

async function record(
  tx: Queryable,
  c: Command,
  result: Verdict,
  error: string | null,
  at: number,
): Promise<void> {
  const absence = c.action === 'absence' || c.action === 'cancel-absence';
  if (result === 'retry') {
    await tx.query(
      'UPDATE commands SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE id = $1',
      [c.id, at + backoffMs(c.attempts + 1), error],
    );
    const why = `app backend unreachable (${error}); retrying`;
    await tx.query('UPDATE beacons SET last_error = $2, updated_at = $3 WHERE id = $1', [
      c.beacon_record,
      why,
      at,
    ]);
    if (absence && c.absence_id) await recordAbsenceRetry(tx, c.absence_id, why, at);
    return;
  }
  await tx.query(
    'UPDATE commands SET done_at = $2, attempts = attempts + 1, last_error = $3 WHERE id = $1',
    [c.id, at, error],
  );
  if (absence) {
    if (c.absence_id)
      await recordAbsenceAnswer(
        tx,
        c.absence_id,
        c.action as 'absence' | 'cancel-absence',
        error,
        at,
      );
    const what = c.action === 'absence' ? 'absence' : 'absence cancellation';
    await tx.query('UPDATE beacons SET last_error = $2, updated_at = $3 WHERE id = $1', [
      c.beacon_record,
      error === null ? null : `${what} refused by the app backend (${error})`,
      at,
    ]);
    return;
  }
  await tx.query(
    `UPDATE beacons SET status = $2, ended_at = CASE WHEN $2 = 'ended' THEN $3::bigint ELSE ended_at END, last_error = NULL, updated_at = $3 WHERE id = $1`,
    [c.beacon_record, c.action === 'enable' ? 'monitoring' : 'ended', at],
  );
}
