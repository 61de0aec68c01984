import assert from 'node:assert/strict';
import type { Database } from '../../backend-kit/db.js';
import { createLogger } from '../../backend-kit/logger.js';
import { databaseTargets } from '../../test/support/databases.js';
import { DEFAULT_RULES } from '../src/config.js';
import { createMetrics } from '../src/metrics.js';
import { watchdogTick } from '../src/watchdog.js';
import { openAppDatabase } from './harness.js';

const NOW = 1_795_400_000_000;
const MIN = 60_000;
/** No grace: a gap's confirmation is due as soon as it is provisional. */
const rules = { ...DEFAULT_RULES, graceSeconds: 0 };
const log = createLogger({ name: 'test', level: 'silent' });

/**
 * `n` monitored quarantines last heard 7 minutes ago, whose 6-minute window ran out a minute ago;
 * their relays last sent a request `requestAgo` ms ago.
 */
async function due(db: Database, n: number, requestAgo: number): Promise<void> {
  await db.query(
    `INSERT INTO quarantines (id, beacon_id, sk_t_past_hash, t_past, sk_beacon_sealed, window_seconds, state,
                              registered_at, enabled_at, offset_updated_at, last_presence_at, last_counter,
                              last_request_at, deadline, status_changed_at)
     SELECT md5('q' || i)::uuid, 'SB-' || i, 'k' || i, 1, '\\x00'::bytea, 360, 'monitoring',
            $1::bigint, $1::bigint, $1::bigint, $1::bigint, 1, $2::bigint, $3::bigint, $1::bigint
       FROM generate_series(1, $4::int) AS i`,
    [NOW - 7 * MIN, NOW - requestAgo, NOW - MIN, n],
  );
}

async function empty(db: Database): Promise<void> {
  await db.query('UPDATE quarantines SET open_alert_id = NULL');
  for (const table of ['outbox', 'alerts', 'quarantines']) await db.query(`DELETE FROM ${table}`);
}

const tick = (db: Database, at = NOW) => watchdogTick(db, rules, at, createMetrics(), log);

interface GapRow {
  status: string;
  queue: string | null;
  held_at: number | null;
  detail: Record<string, unknown>;
  deadline: number | null;
  linked: boolean;
  outbox: number;
}
/** Every NO_PRESENCE alert with its quarantine's deadline and outbox rows, as one shape. */
async function gaps(db: Database): Promise<GapRow[]> {
  const { rows } = await db.query<GapRow>(
    `SELECT a.status, a.queue, a.held_at, a.detail, q.deadline, q.open_alert_id = a.id AS linked,
            (SELECT count(*)::int FROM outbox o WHERE o.alert_id = a.id) AS outbox
       FROM alerts a JOIN quarantines q ON q.id = a.quarantine_id WHERE a.kind = 'NO_PRESENCE'`,
  );
  return rows.map((r) => ({
    ...r,
    detail:
      typeof r.detail === 'string' ? (JSON.parse(r.detail) as Record<string, unknown>) : r.detail,
  }));
}

for (const target of databaseTargets()) {
  describe(`watchdog batches on ${target.name}`, function () {
    this.timeout(120_000);
    let db: Database;

    beforeEach(async () => {
      db = await openAppDatabase(target.open);
    });
    afterEach(async () => db.close());

    it('takes one quarantine or a backlog as far as now allows in one tick, to the same rows', async () => {
      // More due than a batch (500), and not a multiple of it.
      await due(db, 1, 30_000);
      // One quarantine whose grace is already over: opened and confirmed in the same tick.
      const one = await tick(db);
      assert.deepEqual([one.provisional, one.confirmed], [1, 1]);
      assert.equal((await tick(db, NOW + 1000)).confirmed, 0);
      const [single] = await gaps(db);
      await empty(db);

      await due(db, 1200, 30_000);
      const r = await tick(db);
      assert.deepEqual([r.provisional, r.confirmed], [1200, 1200]);
      const all = await gaps(db);
      assert.equal(all.length, 1200);
      for (const g of all) assert.deepEqual(g, single);
      assert.deepEqual(single, {
        status: 'confirmed',
        queue: 'violation',
        held_at: null,
        detail: {
          lastPresenceAt: NOW - 7 * MIN,
          provisionalAt: NOW - MIN,
          confirmAt: NOW - MIN,
          confirmedAt: NOW,
          graceSeconds: 0,
          afterAbsence: false,
          relaySilent: false,
        },
        deadline: null,
        linked: true,
        outbox: 1,
      });
      assert.equal((await tick(db, NOW + 1000)).confirmed, 0, 'nothing left for the next tick');
    });

    it('tells after each batch that queued alerts, while the tick goes on, with its rows committed', async () => {
      await due(db, 1200, 30_000);
      const events: string[] = [];
      const counting: Promise<number>[] = [];
      const ticking = watchdogTick(db, rules, NOW, createMetrics(), log, () => {
        events.push('told');
        counting.push(
          db
            .query<{ n: number }>('SELECT count(*)::int AS n FROM outbox')
            .then(({ rows }) => rows[0]?.n ?? 0),
        );
      }).then((r) => (events.push('tick over'), r));
      const r = await ticking;
      assert.equal(r.confirmed, 1200);
      // Batches of at most 500: each that confirmed something tells once, the first long before the end.
      assert.ok(events.indexOf('told') === 0 && events.filter((e) => e === 'told').length >= 3);
      assert.equal(events.at(-1), 'tick over');
      // A count taken when told, on any connection, sees at least that batch: it had committed.
      assert.ok((await Promise.all(counting)).every((n) => n >= 500));
      assert.equal((await gaps(db)).filter((g) => g.outbox === 1).length, 1200);

      await empty(db);
      await due(db, 10, 30 * MIN);
      let told = 0;
      const held = await watchdogTick(db, rules, NOW, createMetrics(), log, () => void told++);
      assert.deepEqual([held.held, told], [10, 0], 'held gaps queue nothing: nobody is woken');
    });

    it('holds the gaps of silent relays in the tick that opens them, one or a backlog alike', async () => {
      await due(db, 1, 30 * MIN);
      const one = await tick(db);
      assert.deepEqual([one.provisional, one.held, one.confirmed], [1, 1, 0]);
      assert.equal((await tick(db)).held, 0, 'held until its next look, not before');
      const [single] = await gaps(db);
      await empty(db);

      await due(db, 1000, 30 * MIN);
      const r = await tick(db);
      assert.deepEqual([r.provisional, r.held, r.confirmed], [1000, 1000, 0]);
      const all = await gaps(db);
      assert.equal(all.length, 1000);
      for (const g of all) assert.deepEqual(g, single);
      // Held: looked at again half a relay cycle later, nothing told to police.
      assert.deepEqual(
        [single?.status, single?.held_at, single?.deadline, single?.outbox],
        ['provisional', NOW, NOW + (DEFAULT_RULES.relaySilentSeconds * 1000) / 2, 0],
      );
    });

    it('a tick with nothing due changes nothing', async () => {
      await due(db, 10, 30_000);
      await db.query('UPDATE quarantines SET deadline = $1', [NOW + MIN]);
      const { rows: before } = await db.query(
        'SELECT xmin::text AS v FROM quarantines ORDER BY id',
      );
      assert.deepEqual(await tick(db), {
        provisional: 0,
        confirmed: 0,
        maintenance: 0,
        deferred: 0,
        held: 0,
      });
      const { rows: after } = await db.query('SELECT xmin::text AS v FROM quarantines ORDER BY id');
      assert.deepEqual(after, before);
    });
  });
}
