import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import type { Database } from './db.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

const FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/;

/** Migrations from a folder of `NNN_name.sql` files, in version order. */
export function readMigrations(dir: string): Migration[] {
  return readdirSync(dir)
    .filter((f) => FILE.test(f))
    .sort()
    .map((f) => {
      const [, version, name] = FILE.exec(f) as RegExpExecArray;
      return {
        version: Number(version),
        name: name as string,
        sql: readFileSync(`${dir}/${f}`, 'utf8'),
      };
    });
}

const checksum = (sql: string) => createHash('sha256').update(sql).digest('hex');

export class MigrationError extends Error {
  readonly code = 'MIGRATION_EDITED';
}

/**
 * Apply pending migrations, each in its own transaction under an advisory lock so several
 * processes starting at once apply each exactly once. A migration already applied whose text
 * changed is refused: migrations are never edited after they land.
 */
export async function migrate(
  db: Database,
  migrations: readonly Migration[],
  lockKey = 815_001,
): Promise<number[]> {
  await db.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at bigint NOT NULL)`);
  const applied: number[] = [];
  for (const m of migrations) {
    const done = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [lockKey]);
      const { rows } = await tx.query<{ checksum: string }>(
        'SELECT checksum FROM schema_migrations WHERE version = $1',
        [m.version],
      );
      if (rows[0]) {
        if (rows[0].checksum !== checksum(m.sql)) {
          throw new MigrationError(
            `migration ${m.version}_${m.name} was edited after it was applied`,
          );
        }
        return false;
      }
      for (const statement of splitStatements(m.sql)) await tx.query(statement);
      await tx.query('INSERT INTO schema_migrations VALUES ($1, $2, $3, $4)', [
        m.version,
        m.name,
        checksum(m.sql),
        Date.now(),
      ]);
      return true;
    });
    if (done) applied.push(m.version);
  }
  return applied;
}

/**
 * Our migrations are DDL whose statements end with a semicolon at the end of a line; inside a
 * dollar-quoted body (a function's) such a semicolon ends nothing.
 */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let current: string[] = [];
  let quoted = false;
  for (const line of sql.split('\n')) {
    const code = quoted ? line : line.replace(/--.*$/, '');
    current.push(code);
    // Each `$$` opens or closes a body.
    if ((code.match(/\$\$/g) ?? []).length % 2) quoted = !quoted;
    if (!quoted && /;\s*$/.test(code)) {
      statements.push(current.join('\n').trim().replace(/;$/, ''));
      current = [];
    }
  }
  statements.push(current.join('\n').trim());
  return statements.filter(Boolean);
}
