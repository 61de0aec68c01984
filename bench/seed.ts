import { randomBytes } from 'node:crypto';
import { type Database, openDatabase } from '../backend-kit/db.js';
import { migrate, readMigrations } from '../backend-kit/migrations.js';
import { MIGRATIONS_DIR } from '../app-backend/src/service.js';

/** The app backend's database for a benchmark: a throw-away schema on PostgreSQL, else PGlite. */
export async function benchDatabase(): Promise<{ db: Database; drop: () => Promise<void> }> {
  const schema = `bench_${randomBytes(6).toString('hex')}`;
  const url = process.env.DATABASE_URL;
  const db = await openDatabase({ url, dataDir: 'memory://', ...(url ? { schema } : {}) });
  await migrate(db, readMigrations(MIGRATIONS_DIR));
  return {
    db,
    drop: async () => {
      if (db.kind === 'postgres') await db.query(`DROP SCHEMA ${schema} CASCADE`);
      await db.close();
    },
  };
}

/** Sealed keys as registration stores them (app-backend/src/kek.ts): version ‖ nonce ‖ key ‖ tag. */
const SEALED_KEY_BYTES = 1 + 12 + 32 + 16;
const SEALED_DERIVED_BYTES = 1 + 12 + 48 + 16;
/** `n` bytes that differ per row `i`, as SQL: what the database stores and sends is the size of real ones. */
const sealedBytes = (n: number) =>
  `substring(decode(${Array.from({ length: Math.ceil(n / 16) }, (_, k) => `md5('${n}.${k}.' || i)`).join(' || ')}, 'hex') from 1 for ${n})`;

/**
 * `n` monitored quarantines, made by the server itself (generate_series) in chunks: each with a
 * key hash, sealed keys of the real sizes (random bytes: none is opened), recent presence and a
 * deadline `deadlineFrom` + i ms.
 */
export async function seedQuarantines(
  db: Database,
  n: number,
  now: number,
  deadlineFrom: number,
): Promise<void> {
  const chunk = 100_000;
  for (let from = 0; from < n; from += chunk) {
    const to = Math.min(n, from + chunk) - 1;
    await db.query(
      `INSERT INTO quarantines (id, beacon_id, sk_t_past_hash, t_past, sk_beacon_sealed, keys_sealed, window_seconds,
                                state, registered_at, enabled_at, offset_updated_at, last_presence_at, last_counter,
                                last_request_at, deadline, status_changed_at)
       SELECT md5('q' || i)::uuid, 'SB-' || i, md5('k' || i) || md5('h' || i), 20000,
              ${sealedBytes(SEALED_KEY_BYTES)}, ${sealedBytes(SEALED_DERIVED_BYTES)}, 360,
              'monitoring', $1::bigint, $1, $1, $1, 1, $1, $2::bigint + i, $1
         FROM generate_series($3::int, $4::int) AS i`,
      [now, deadlineFrom, from, to],
    );
  }
  // Vacuumed now, so autovacuum does not take a core in the middle of a measurement.
  await db.query('VACUUM (ANALYZE) quarantines, quarantine_marks');
}
