import { randomUUID } from 'node:crypto';
import type { Database } from '../../backend-kit/db.js';
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

/** Check a password; five failures lock the account for 15 minutes. Unknown users cost the same hash. */
export async function signIn(
  db: Database,
  username: string,
  password: string,
  now: number,
): Promise<{ id: string; username: string; role: Role }> {
  const { rows } = await db.query<{
    id: string;
    password_hash: string;
    role: Role;
    failed_attempts: number;
    locked_until: number | null;
  }>(
    'SELECT id, password_hash, role, failed_attempts, locked_until FROM officers WHERE username = $1',
    [username],
  );
  const o = rows[0];
  const ok = await verifyPassword(password, o?.password_hash ?? DUMMY_HASH);
  if (!o) throw new ApiError(401, 'BAD_CREDENTIALS');
  if (o.locked_until !== null && o.locked_until > now) {
    await db.transaction((tx) =>
      appendAudit(
        tx,
        { officer: username, action: 'session.refused_locked', subject: username },
        now,
      ),
    );
    throw new ApiError(423, 'LOCKED_OUT');
  }
  if (!ok) {
    const failures = o.failed_attempts + 1;
    const lock = failures >= MAX_FAILED_SIGN_INS;
    await db.transaction(async (tx) => {
      await tx.query('UPDATE officers SET failed_attempts = $2, locked_until = $3 WHERE id = $1', [
        o.id,
        lock ? 0 : failures,
        lock ? now + LOCKOUT_MS : o.locked_until,
      ]);
      await appendAudit(
        tx,
        {
          officer: username,
          action: lock ? 'session.locked_out' : 'session.failed',
          subject: username,
        },
        now,
      );
    });
    throw new ApiError(401, 'BAD_CREDENTIALS');
  }
  await db.query('UPDATE officers SET failed_attempts = 0, locked_until = NULL WHERE id = $1', [
    o.id,
  ]);
  return { id: o.id, username, role: o.role };
}
