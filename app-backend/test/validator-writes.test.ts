import assert from 'node:assert/strict';
import type { Database } from '../../backend-kit/db.js';
import { databaseTargets } from '../../test/support/databases.js';
import { DEFAULT_RULES } from '../src/config.js';
import type { ReceivedToken } from '../src/decide.js';
import { type StoredWithKey, loadByKeyHash } from '../src/store.js';
import { type BatchInput, type Decided, applyPresence } from '../src/validator.js';
import { openAppDatabase } from './harness.js';

const NOW = 1_795_400_000_000;
const MIN = 60_000;

/** `n` monitored quarantines heard a minute ago (counter 1); key hashes `k<i>`, ids from md5. */
async function seed(db: Database, n: number): Promise<string[]> {
  await db.query(
    `INSERT INTO quarantines (id, beacon_id, sk_t_past_hash, t_past, sk_beacon_sealed, window_seconds, state,
                              registered_at, enabled_at, offset_updated_at, last_presence_at, last_received_at,
                              last_counter, last_request_at, deadline, status_changed_at)
     SELECT md5('q' || i)::uuid, 'SB-' || i, 'k' || i, 1, '\\x00'::bytea, 360, 'monitoring',
            $1::bigint, $1::bigint, $1::bigint, $1::bigint, $1::bigint, 1, $1::bigint, $1::bigint + 360000, $1::bigint
       FROM generate_series(1, $2::int) AS i`,
    [NOW - MIN, n],
  );
  return Array.from({ length: n }, (_, i) => `k${i + 1}`);
}

const token = (counter: number, at: number, battery = 80): ReceivedToken => ({
  fields: {
    version: 1,
    unixSeconds: Math.floor(at / 1000),
    counter,
    batteryPercent: battery,
    clockNotSet: false,
    rebooted: false,
  },
  receivedAt: at,
});

interface Row {
  last_counter: number;
  last_presence_at: number;
  last_request_at: number;
  status_changed_at: number;
  fault_alert_id: string | null;
  fault_reasons: string;
  xmin: string;
}
const row = async (db: Database, key: string): Promise<Row> =>
  (
    await db.query<Row>(
      `SELECT last_counter, last_presence_at, last_request_at, status_changed_at, fault_alert_id, fault_reasons,
              xmin::text AS xmin FROM quarantines WHERE sk_t_past_hash = $1`,
      [key],
    )
  ).rows[0] as Row;

/** The batch input for one stored quarantine. */
const one = (s: StoredWithKey, input: BatchInput) => new Map([[s.state.id, input]]);

for (const target of databaseTargets()) {
  describe(`presence writes on ${target.name}`, function () {
    this.timeout(60_000);
    let db: Database;

    beforeEach(async () => {
      db = await openAppDatabase(target.open);
    });
    afterEach(async () => db.close());

    it('decides again under lock when a row was written after it was read: no update is lost', async () => {
      const [key] = (await seed(db, 3)) as [string];
      const stale = (await loadByKeyHash(db, [key])).get(key) as StoredWithKey;
      // Counter 3 is written first; the batch read before it must not write counter 2 over it.
      await applyPresence(
        db,
        [stale],
        one(stale, { tokens: [token(3, NOW)], seen: {} }),
        DEFAULT_RULES,
        NOW,
      );
      const decided = await applyPresence(
        db,
        [stale],
        one(stale, { tokens: [token(2, NOW - 1000)], seen: {} }),
        DEFAULT_RULES,
        NOW + 1000,
      );
      assert.equal(decided.length, 1);
      assert.deepEqual(
        [decided[0]?.decision.accepted, decided[0]?.decision.rejected],
        [0, { replay: 1 }],
        'decided on the row as it stood, not as it was read',
      );
      const r = await row(db, key);
      assert.deepEqual([r.last_counter, r.last_presence_at], [3, NOW]);
    });

    it('waits for a transaction writing the row, then decides again on what it wrote', async function () {
      // Reason: PGlite has one connection, so no transaction runs beside another there; this
      // runs on PostgreSQL (CI sets DATABASE_URL).
      if (target.name !== 'PostgreSQL') this.skip();
      const [key] = (await seed(db, 1)) as [string];
      const stale = (await loadByKeyHash(db, [key])).get(key) as StoredWithKey;
      let pending: Promise<Decided[]> | undefined;
      await db.transaction(async (tx) => {
        const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await tx.query(
          'UPDATE quarantines SET last_counter = 3, last_presence_at = $1 WHERE sk_t_past_hash = $2',
          [NOW, key],
        );
        const batch = { tokens: [token(2, NOW - 1000)], seen: {} };
        pending = applyPresence(db, [stale], one(stale, batch), DEFAULT_RULES, NOW + 1000);
        // Commit only once the batch's UPDATE waits for this transaction's row.
        for (;;) {
          const { rows: waiting } = await db.query(
            'SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))',
            [rows[0]?.pid],
          );
          if (waiting.length) break;
          await new Promise((resolve) => setImmediate(resolve));
        }
      });
      const decided = (await pending) ?? [];
      assert.deepEqual(decided[0]?.decision.rejected, { replay: 1 });
      const r = await row(db, key);
      assert.deepEqual([r.last_counter, r.last_presence_at], [3, NOW]);
    });

    it("moves status_changed_at only when what the relay is told changes; a keep-alive doesn't", async () => {
      const [key] = (await seed(db, 1)) as [string];
      let s = (await loadByKeyHash(db, [key])).get(key) as StoredWithKey;
      await applyPresence(
        db,
        [s],
        one(s, { tokens: [], seen: { requestAt: NOW } }),
        DEFAULT_RULES,
        NOW,
      );
      let r = await row(db, key);
      assert.deepEqual([r.last_request_at, r.status_changed_at], [NOW, NOW - MIN]);

      s = (await loadByKeyHash(db, [key])).get(key) as StoredWithKey;
      const at = NOW + 1000;
      await applyPresence(
        db,
        [s],
        one(s, { tokens: [token(2, at)], seen: { requestAt: at } }),
        DEFAULT_RULES,
        at,
      );
      r = await row(db, key);
      assert.deepEqual([r.last_presence_at, r.status_changed_at], [at, at]);
    });

    it('writes nothing for a batch that changes nothing (a replayed token)', async () => {
      const [key] = (await seed(db, 1)) as [string];
      const before = await row(db, key);
      const s = (await loadByKeyHash(db, [key])).get(key) as StoredWithKey;
      const decided = await applyPresence(
        db,
        [s],
        one(s, { tokens: [token(1, NOW)], seen: {} }),
        DEFAULT_RULES,
        NOW,
      );
      assert.deepEqual(decided[0]?.decision.rejected, { replay: 1 });
      assert.deepEqual(await row(db, key), before, 'the same row version');
    });

    it('stores the ID of a fault alert a decision opened on the quarantine', async () => {
      const [key] = (await seed(db, 1)) as [string];
      const s = (await loadByKeyHash(db, [key])).get(key) as StoredWithKey;
      await applyPresence(
        db,
        [s],
        one(s, { tokens: [token(2, NOW, 10)], seen: {} }),
        DEFAULT_RULES,
        NOW,
      );
      const { rows: alerts } = await db.query<{ id: string }>(
        "SELECT id FROM alerts WHERE kind = 'BEACON_FAULT'",
      );
      const r = await row(db, key);
      assert.equal(alerts.length, 1);
      assert.deepEqual([r.fault_alert_id, r.fault_reasons], [alerts[0]?.id, 'low_battery']);
    });

    it('writes a batch of 2,000 quarantines, each decided on its own row', async () => {
      const keys = await seed(db, 2000);
      const stored = [...(await loadByKeyHash(db, keys)).values()];
      assert.equal(stored.length, 2000);
      const input = new Map(
        stored.map((s, i) => [
          s.state.id,
          { tokens: [token(2 + (i % 7), NOW)], seen: { requestAt: NOW } },
        ]),
      );
      const decided = await applyPresence(db, stored, input, DEFAULT_RULES, NOW);
      assert.equal(
        decided.reduce((n, d) => n + d.decision.accepted, 0),
        2000,
      );
      const { rows } = await db.query<{ n: number; counters: number }>(
        `SELECT count(*)::int AS n, sum(last_counter)::int AS counters FROM quarantines
          WHERE last_presence_at = $1 AND status_changed_at = $1 AND deadline = $1::bigint + 360000`,
        [NOW],
      );
      const expected = stored.reduce((n, _, i) => n + 2 + (i % 7), 0);
      assert.deepEqual(rows[0], { n: 2000, counters: expected });
    });
  });
}
