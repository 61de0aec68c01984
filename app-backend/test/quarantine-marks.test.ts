import assert from 'node:assert/strict';
import type { Database } from '../../backend-kit/db.js';
import { createLogger } from '../../backend-kit/logger.js';
import { databaseTargets } from '../../test/support/databases.js';
import { DEFAULT_RULES } from '../src/config.js';
import { createMetrics } from '../src/metrics.js';
import { STATE_COLUMNS } from '../src/store.js';
import { watchdogTick } from '../src/watchdog.js';
import { openAppDatabase } from './harness.js';

const NOW = 1_795_400_000_000;
const MIN = 60_000;
const log = createLogger({ name: 'test', level: 'silent' });
const tick = (db: Database, at = NOW) =>
  watchdogTick(db, { ...DEFAULT_RULES, graceSeconds: 0 }, at, createMetrics(), log);

/** Quarantine `n`, last heard 7 minutes ago, deadline `deadline`. */
async function insert(
  db: Database,
  n: number,
  o: { deadline: number | null; state?: string; stamp?: number },
): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO quarantines (id, beacon_id, sk_t_past_hash, t_past, sk_beacon_sealed, window_seconds, state,
                              registered_at, enabled_at, offset_updated_at, last_presence_at, last_request_at,
                              deadline, status_changed_at)
     VALUES (md5('q' || $1)::uuid, 'SB-' || $1, 'k' || $1, 1, '\\x00'::bytea, 360, $2,
             $3::bigint, $3::bigint, $3::bigint, $3::bigint, $5::bigint, $4, $6::bigint)
     RETURNING id`,
    [n, o.state ?? 'monitoring', NOW - 7 * MIN, o.deadline, NOW, o.stamp ?? NOW - 7 * MIN],
  );
  return (rows[0] as { id: string }).id;
}

const marks = async (db: Database, id: string) =>
  (
    await db.query<{ due: number }>(
      'SELECT due FROM quarantine_marks WHERE quarantine_id = $1 ORDER BY due',
      [id],
    )
  ).rows.map((r) => Number(r.due));

const alerts = async (db: Database) =>
  (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM alerts')).rows[0]?.n;

for (const target of databaseTargets()) {
  describe(`quarantine marks on ${target.name}`, function () {
    this.timeout(60_000);
    let db: Database;
    beforeEach(async () => {
      db = await openAppDatabase(target.open);
    });
    afterEach(() => db.close());

    it('every write leaves a mark: due at the deadline when monitored, else a minute after the change', async () => {
      const id = await insert(db, 1, { deadline: NOW + MIN });
      assert.deepEqual(await marks(db, id), [NOW + MIN]);
      await db.query('UPDATE quarantines SET deadline = $2 WHERE id = $1', [id, NOW + 2 * MIN]);
      assert.deepEqual(await marks(db, id), [NOW + MIN, NOW + 2 * MIN]);
      await db.query(
        `UPDATE quarantines SET state = 'ended', deadline = NULL, status_changed_at = $2 WHERE id = $1`,
        [id, NOW + 3 * MIN],
      );
      assert.deepEqual(await marks(db, id), [NOW + MIN, NOW + 2 * MIN, NOW + 4 * MIN]);
      const registered = await insert(db, 2, { deadline: NOW, state: 'registered', stamp: NOW });
      assert.deepEqual(await marks(db, registered), [NOW + MIN], 'not due while not monitored');
    });

    it('a presence update moves no indexed column: every one is HOT', async () => {
      // Few enough that their new versions fit in the room fillfactor leaves on the page.
      for (let n = 0; n < 5; n++) await insert(db, n, { deadline: NOW + MIN });
      // Every column a presence batch may write (saveStates), each to a new value.
      const changed: Record<string, (c: string) => string> = {
        uuid: () => 'gen_random_uuid()',
        text: (c) => `${c} || 'x'`,
      };
      const set = STATE_COLUMNS.map(
        ([name, type]) => `${name} = ${(changed[type] ?? ((c) => `COALESCE(${c}, 0) + 1`))(name)}`,
      ).join(', ');
      const { rows } = await db.transaction(async (tx) => {
        await tx.query(`UPDATE quarantines SET ${set}, status_changed_at = $1`, [NOW]);
        // This transaction's own counts (the shared statistics are written later).
        return tx.query<{ upd: number; hot: number }>(
          `SELECT n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot FROM pg_stat_xact_user_tables
            WHERE relid = 'quarantines'::regclass`,
        );
      });
      assert.deepEqual(rows[0], { upd: 5, hot: 5 });
    });

    it('drops a mark whose quarantine moved on since, and raises nothing for it', async () => {
      const id = await insert(db, 1, { deadline: NOW - MIN });
      // Presence arrived: the deadline moved a window ahead (with a mark of its own).
      await db.query('UPDATE quarantines SET deadline = $2 WHERE id = $1', [id, NOW + 5 * MIN]);
      const r = await tick(db);
      assert.deepEqual([r.provisional, r.confirmed], [0, 0]);
      assert.equal(await alerts(db), 0);
      assert.deepEqual(await marks(db, id), [NOW + 5 * MIN], 'the stale mark is gone');
      assert.equal(
        (await tick(db, NOW + 5 * MIN)).confirmed,
        1,
        'the new deadline still falls due',
      );
      assert.deepEqual(await marks(db, id), [NOW + 5 * MIN + MIN], 'confirmed: retained a minute');
    });

    it('takes a due row once, and leaves no due mark behind', async () => {
      const id = await insert(db, 1, { deadline: NOW - MIN });
      // A second mark for the same deadline (an absence scheduled, say).
      await db.query('UPDATE quarantines SET status_changed_at = $2 WHERE id = $1', [
        id,
        NOW - MIN,
      ]);
      const r = await tick(db);
      assert.deepEqual([r.provisional, r.confirmed], [1, 1]);
      assert.equal(await alerts(db), 1);
      assert.deepEqual(await tick(db, NOW + 1000), { ...r, provisional: 0, confirmed: 0 });
      assert.ok((await marks(db, id)).every((due) => due > NOW + 1000));
    });

    // Two transactions at once: PGlite has one connection, so this runs on PostgreSQL only.
    if (target.name === 'PostgreSQL')
      it('keeps the mark of a due row another transaction holds, and takes it once released', async () => {
        const id = await insert(db, 1, { deadline: NOW - MIN });
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        let locked!: () => void;
        const holding = new Promise<void>((r) => (locked = r));
        // Held as a presence batch holds rows it decides, writing nothing in the end.
        const holder = db.transaction(async (tx) => {
          await tx.query('SELECT 1 FROM quarantines WHERE id = $1 FOR UPDATE', [id]);
          locked();
          await held;
        });
        await holding;
        const skipped = await tick(db);
        assert.equal(skipped.provisional, 0);
        assert.deepEqual(await marks(db, id), [NOW + 1], 'for the next tick, not this one again');
        release();
        await holder;
        assert.equal((await tick(db, NOW + 1000)).confirmed, 1);
        assert.equal(await alerts(db), 1);
      });

    if (target.name === 'PostgreSQL')
      it('ends its tick when a backlog of due rows is held elsewhere, and takes them the next', async () => {
        // More than a batch (500): a tick that gave marks back for the same tick would never end.
        for (let n = 0; n < 600; n++) await insert(db, n, { deadline: NOW - MIN });
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        let locked!: () => void;
        const holding = new Promise<void>((r) => (locked = r));
        const holder = db.transaction(async (tx) => {
          await tx.query('SELECT 1 FROM quarantines FOR UPDATE');
          locked();
          await held;
        });
        await holding;
        assert.equal((await tick(db)).provisional, 0);
        release();
        await holder;
        assert.equal((await tick(db, NOW + 1000)).confirmed, 600);
        assert.equal(await alerts(db), 600);
      });
  });
}
