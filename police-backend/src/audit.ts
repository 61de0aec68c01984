import { createHash } from 'node:crypto';
import type { Queryable } from '../../backend-kit/db.js';

export const GENESIS_HASH = '0'.repeat(64);
const AUDIT_LOCK = 815_002;

export interface AuditEntry {
  readonly seq: number;
  readonly at: number;
  readonly officer: string;
  readonly action: string;
  readonly subject: string;
  readonly detail: string;
  readonly prev_hash: string;
  readonly hash: string;
}

/** The hash of one entry chained to the previous one; every field is covered. */
export function entryHash(
  prevHash: string,
  e: Pick<AuditEntry, 'seq' | 'at' | 'officer' | 'action' | 'subject' | 'detail'>,
): string {
  return createHash('sha256')
    .update(prevHash)
    .update('\n')
    .update(JSON.stringify([e.seq, e.at, e.officer, e.action, e.subject, e.detail]))
    .digest('hex');
}

/**
 * Append an entry in the caller's transaction, so the action and its record commit together.
 * An advisory lock keeps the chain linear when several processes write.
 */
export async function appendAudit(
  tx: Queryable,
  entry: { officer: string; action: string; subject: string; detail?: Record<string, unknown> },
  now: number,
): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_LOCK]);
  const { rows } = await tx.query<{ seq: number; hash: string }>(
    'SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1',
  );
  const prev = rows[0];
  const e = {
    seq: (prev?.seq ?? 0) + 1,
    at: now,
    officer: entry.officer,
    action: entry.action,
    subject: entry.subject,
    detail: JSON.stringify(entry.detail ?? {}),
  };
  const prevHash = prev?.hash ?? GENESIS_HASH;
  await tx.query(
    'INSERT INTO audit_log (seq, at, officer, action, subject, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
    [e.seq, e.at, e.officer, e.action, e.subject, e.detail, prevHash, entryHash(prevHash, e)],
  );
}

export interface ChainCheck {
  readonly ok: boolean;
  readonly checked: number;
  /** The first entry whose link or content does not match, or null. */
  readonly firstBroken: number | null;
}

/** Walk the whole chain from the start; report the first broken link. */
export async function verifyAudit(db: Queryable): Promise<ChainCheck> {
  const { rows } = await db.query<AuditEntry>('SELECT * FROM audit_log ORDER BY seq');
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  for (const e of rows) {
    if (e.seq !== expectedSeq || e.prev_hash !== prevHash || e.hash !== entryHash(prevHash, e)) {
      return { ok: false, checked: rows.length, firstBroken: e.seq };
    }
    prevHash = e.hash;
    expectedSeq++;
  }
  return { ok: true, checked: rows.length, firstBroken: null };
}
