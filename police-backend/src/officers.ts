import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../../backend-kit/db.js';
import { ApiError } from '../../backend-kit/errors.js';
import { appendAudit } from './audit.js';
import { DUMMY_HASH, hashPassword, verifyPassword } from './passwords.js';

export type Role = 'officer' | 'supervisor';
export const MAX_FAILED_SIGN_INS = 5;
export const LOCKOUT_MS = 15 * 60_000;

export async function createOfficer(
  db: Database,
  username: string,
  password: string,
  role: Role,
  now: number,
): Promise<string> {
  if (!/^[a-z0-9._-]{3,32}$/.test(username))
    throw new RangeError('username: 3–32 of a–z 0–9 . _ -');
  if (password.length < 12) throw new RangeError('password: at least 12 characters');
  const id = randomUUID();
  const hash = await hashPassword(password);
  await db.transaction(async (tx) => {
    await tx.query(
      'INSERT INTO officers (id, username, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)',
      [id, username, hash, role, now],
    );
    await appendAudit(
      tx,
      { officer: 'system', action: 'officer.created', subject: username, detail: { role } },
      now,
    );
  });
  return id;
}

/**
 * Check a password; five failures lock the account for 15 minutes. Unknown users cost the same
 * hash. The count and the lock are each decided in one conditional statement after the hash, so
 * guesses sent in parallel cannot all read "no failures yet" and outrun the lock.
 */
export async function signIn(
  db: Database,
  username: string,
  password: string,
  now: number,
): Promise<{ id: string; username: string; role: Role }> {
  const { rows } = await db.query<{ id: string; password_hash: string; role: Role }>(
    'SELECT id, password_hash, role FROM officers WHERE username = $1',
    [username],
  );
  const o = rows[0];
  const ok = await verifyPassword(password, o?.password_hash ?? DUMMY_HASH);
  if (!o) throw new ApiError(401, 'BAD_CREDENTIALS');
  const unlocked = 'id = $1 AND (locked_until IS NULL OR locked_until <= $2)';
  if (ok) {
    const opened = await db.query(
      `UPDATE officers SET failed_attempts = 0, locked_until = NULL WHERE ${unlocked} RETURNING id`,
      [o.id, now],
    );
    if (opened.rows.length === 1) return { id: o.id, username, role: o.role };
  }
  // A right password on a locked account, or any password once a parallel guess locked it.
  const action = await db.transaction(async (tx) => {
    if (ok) return audited(tx, username, 'session.refused_locked', now);
    const counted = await tx.query<{ locks: boolean }>(
      `UPDATE officers SET
         failed_attempts = CASE WHEN failed_attempts + 1 >= $3 THEN 0 ELSE failed_attempts + 1 END,
         locked_until = CASE WHEN failed_attempts + 1 >= $3 THEN $4 ELSE locked_until END
       WHERE ${unlocked} RETURNING locked_until = $4 AS locks`,
      [o.id, now, MAX_FAILED_SIGN_INS, now + LOCKOUT_MS],
    );
    const row = counted.rows[0];
    const outcome = !row
      ? 'session.refused_locked'
      : row.locks
        ? 'session.locked_out'
        : 'session.failed';
    return audited(tx, username, outcome, now);
  });
  throw action === 'session.refused_locked'
    ? new ApiError(423, 'LOCKED_OUT')
    : new ApiError(401, 'BAD_CREDENTIALS');
}

/** Every sign-in outcome but success is audited here (success is audited with its session). */
async function audited(tx: Queryable, username: string, action: string, now: number) {
  await appendAudit(tx, { officer: username, action, subject: username }, now);
  return action;
}
