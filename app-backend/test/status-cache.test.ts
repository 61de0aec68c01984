import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../../backend-kit/db.js';
import { databaseTargets } from '../../test/support/databases.js';
import { StatusCache } from '../src/status-cache.js';
import { openAppDatabase } from './harness.js';

const NOW = 1_795_400_000_000;
const MIN = 60_000;
const key = (name: string) => createHash('sha256').update(name).digest('hex');

/** One quarantine row; `stamp` is its status_changed_at (the writer's clock). */
async function insert(
  db: Database,
  o: {
    key: string | null;
    state?: 'registered' | 'monitoring' | 'ended';
    stamp?: number;
    lastPresenceAt?: number | null;
    deadline?: number | null;
    id?: string;
  },
): Promise<string> {
  const id = o.id ?? randomUUID();
  await db.query(
    `INSERT INTO quarantines (id, beacon_id, sk_t_past_hash, t_past, sk_beacon_sealed, window_seconds, state,
                              registered_at, offset_updated_at, last_presence_at, deadline, status_changed_at)
     VALUES ($1, $2, $3, 1, '\\x00'::bytea, 360, $4, $5, $5, $6, $7, $8)`,
    [
      id,
      `SB-${id.slice(0, 8)}`,
      o.key,
      o.state ?? 'monitoring',
      NOW - 86_400_000,
      o.lastPresenceAt === undefined ? NOW - MIN : o.lastPresenceAt,
      o.deadline ?? null,
      o.stamp ?? NOW,
    ],
  );
  return id;
}

/** An open gap alert for quarantine `id`, as the watchdog leaves it. */
async function openGap(db: Database, id: string, status: string, startedAt: number, stamp: number) {
  const alertId = randomUUID();
  await db.query(
    `INSERT INTO alerts (id, quarantine_id, beacon_id, kind, created_at, gap_started_at, status, queue)
     VALUES ($1, $2, 'SB', 'NO_PRESENCE', $3, $3, $4, 'violation')`,
    [alertId, id, startedAt, status],
  );
  await db.query(
    `UPDATE quarantines SET open_alert_id = $2, status_changed_at = $3 WHERE id = $1`,
    [id, alertId, stamp],
  );
}

/** Counts the looks a cache takes (each is one transaction). */
function counting(db: Database): Database & { looks: number } {
  const wrapped = {
    ...db,
    looks: 0,
    transaction: <T>(fn: Parameters<Database['transaction']>[0]) => {
      wrapped.looks++;
      return db.transaction(fn) as Promise<T>;
    },
  };
  return wrapped as Database & { looks: number };
}

type Run = () => Promise<{ rows: unknown[] }>;

/**
 * `db` with each query of its transactions (where the cache reads) passed through `around`, which
 * may also query the same transaction (`tx`, with the statement's `params`).
 */
function intercepting(
  db: Database,
  around: (
    sql: string,
    run: Run,
    tx: Queryable,
    params?: unknown[],
  ) => Promise<{ rows: unknown[] }>,
): Database {
  return {
    ...db,
    transaction: (fn) =>
      db.transaction((tx) =>
        fn({
          ...tx,
          query: (sql: string, params?: unknown[]) =>
            around(sql, () => tx.query(sql, params), tx, params),
        } as typeof tx),
      ),
  };
}

/** Ends quarantine `id` as endQuarantine does, stamped `at`. */
const endRow = (db: Database, id: string, at: number) =>
  db.query(
    `UPDATE quarantines SET state = 'ended', sk_t_past_hash = NULL, status_changed_at = $2 WHERE id = $1`,
    [id, at],
  );

/** Counts the rows the cache's cursor hands back. */
function countingRows(db: Database): Database & { rows: number } {
  const wrapped = intercepting(db, async (sql, run) => {
    const result = await run();
    if (sql.startsWith('FETCH')) wrapped.rows += result.rows.length;
    return result;
  }) as Database & { rows: number };
  wrapped.rows = 0;
  return wrapped;
}

for (const target of databaseTargets()) {
  describe(`status cache (${target.name})`, () => {
    let db: Database;
    beforeEach(async () => {
      db = await openAppDatabase(target.open);
    });
    afterEach(() => db.close());

    it('fills at start with every live quarantine and what its relay is told, in pages', async () => {
      const clear = await insert(db, { key: key('clear') });
      await insert(db, { key: key('quiet'), lastPresenceAt: NOW - 4 * MIN });
      await insert(db, { key: key('new'), state: 'registered', lastPresenceAt: null });
      await insert(db, { key: null, state: 'ended' });
      const provisional = await insert(db, { key: key('provisional'), deadline: NOW + 20 * MIN });
      await openGap(db, provisional, 'provisional', NOW - 7 * MIN, NOW);
      const confirmed = await insert(db, { key: key('confirmed') });
      await openGap(db, confirmed, 'confirmed', NOW - 30 * MIN, NOW);
      await db.query(
        `INSERT INTO absences (id, quarantine_id, starts_at, ends_at, created_at, created_by)
         VALUES ($1, $2, $3, $4, $3, 'police'), ($5, $2, $6, $7, $6, 'police')`,
        [randomUUID(), clear, NOW - MIN, NOW + MIN, randomUUID(), NOW - 9 * MIN, NOW - 8 * MIN],
      );

      const cache = new StatusCache(db, () => NOW, 2);
      await cache.refresh();
      assert.equal(cache.size, 5, 'the ended one is left out');
      const code = (name: string) => cache.statusFor(key(name), NOW)?.code;
      assert.equal(code('clear'), 'absence');
      assert.deepEqual(cache.statusFor(key('clear'), NOW + 2 * MIN), {
        code: 'all_clear',
        since: NOW - MIN,
        until: null,
        serverTime: NOW + 2 * MIN,
      });
      assert.equal(code('quiet'), 'not_heard');
      assert.equal(code('new'), 'not_monitored');
      assert.deepEqual(cache.statusFor(key('provisional'), NOW), {
        code: 'warning_grace',
        since: NOW - 7 * MIN,
        until: NOW + 20 * MIN,
        serverTime: NOW,
      });
      assert.equal(code('confirmed'), 'reported');
      assert.equal(code('nobody'), undefined);
    });

    it('picks up what changed since the last look: ends, registrations, enables, late commits', async () => {
      const ending = await insert(db, { key: key('ending') });
      const enabling = await insert(db, {
        key: key('enabling'),
        state: 'registered',
        lastPresenceAt: null,
      });
      const cache = new StatusCache(db, () => NOW, 2);
      await cache.refresh();
      assert.equal(cache.size, 2);

      await endRow(db, ending, NOW + 1000);
      await db.query(
        `UPDATE quarantines SET state = 'monitoring', status_changed_at = $2 WHERE id = $1`,
        [enabling, NOW + 1000],
      );
      await insert(db, { key: key('later'), stamp: NOW + 2000 });
      // Committed now but stamped before the last look by a writer whose clock is behind.
      await insert(db, { key: key('late'), stamp: NOW - 5000 });
      await cache.refresh();

      assert.equal(cache.statusFor(key('ending'), NOW), undefined);
      assert.equal(cache.statusFor(key('enabling'), NOW)?.code, 'all_clear');
      assert.equal(cache.statusFor(key('later'), NOW)?.code, 'all_clear');
      assert.equal(cache.statusFor(key('late'), NOW)?.code, 'all_clear');
      assert.equal(cache.size, 3);
    });

    it('follows a key from an ended quarantine to the one registered after it', async () => {
      const k = key('reused');
      const older = await insert(db, { key: k });
      const cache = new StatusCache(db, () => NOW, 1);
      await cache.refresh();
      await endRow(db, older, NOW + 1000);
      await insert(db, { key: k, state: 'registered', lastPresenceAt: null, stamp: NOW + 1000 });
      await cache.refresh();
      assert.equal(cache.statusFor(k, NOW)?.code, 'not_monitored');
      assert.equal(cache.size, 1);
    });

    it('reads only the rows written since the last look, whatever their stamps', async () => {
      for (const name of ['a', 'b', 'c'])
        await insert(db, { key: key(name), stamp: NOW - 3_600_000 });
      const counted = countingRows(db);
      let now = NOW;
      const cache = new StatusCache(counted, () => now);
      await cache.refresh();
      assert.equal(counted.rows, 3, 'the first look fills');
      now += 1000;
      await cache.refresh();
      assert.equal(counted.rows, 3, 'nothing written since: nothing read');
      // Written after the last look but stamped long before it, by a writer whose clock is behind.
      await insert(db, { key: key('late'), stamp: NOW - 3_600_000 });
      now += 1000;
      await cache.refresh();
      assert.equal(counted.rows, 4);
      assert.equal(cache.statusFor(key('late'), now)?.code, 'all_clear');
      await cache.refresh();
      assert.equal(counted.rows, 4, 'and not again');
    });

    it('after a first look that failed part-way, drops what ended meanwhile', async () => {
      const first = await insert(db, { key: key('first') });
      await insert(db, { key: key('second') });
      let fetches = 0;
      const failing = intercepting(db, (sql, run) => {
        if (sql.startsWith('FETCH') && ++fetches === 2) throw new Error('connection lost');
        return run();
      });
      const cache = new StatusCache(failing, () => NOW, 1);
      await assert.rejects(cache.refresh(), /connection lost/);
      assert.equal(cache.size, 1, 'the first page was taken');
      assert.equal(cache.statusFor(key('first'), NOW)?.code, 'all_clear');
      await endRow(db, first, NOW + 1000);
      await cache.refresh();
      assert.equal(cache.statusFor(key('first'), NOW), undefined);
      assert.equal(cache.statusFor(key('second'), NOW)?.code, 'all_clear');
      assert.equal(cache.size, 1);
    });

    it('once every quarantine has ended, still reads only what changed (no scan of the ended)', async () => {
      const only = await insert(db, { key: key('only') });
      const declared: string[] = [];
      const recording = intercepting(db, (sql, run) => {
        if (sql.startsWith('DECLARE')) declared.push(sql);
        return run();
      });
      const cache = new StatusCache(recording, () => NOW);
      await cache.refresh();
      await endRow(db, only, NOW + 1000);
      await cache.refresh();
      assert.equal(cache.size, 0);
      await insert(db, { key: key('later'), stamp: NOW + 2000 });
      await cache.refresh();
      assert.equal(cache.statusFor(key('later'), NOW)?.code, 'all_clear');
      assert.deepEqual(
        declared.map((sql) => /m\.xid >= \$1/.test(sql)),
        [false, true, true],
        'a fill first, then only rows written since',
      );
    });

    it('looks by marks through the indexes, with or without statistics', async () => {
      for (let i = 0; i < 50; i++) await insert(db, { key: key(`row ${i}`) });
      const plans: string[] = [];
      const explaining = intercepting(db, async (sql, run, tx, params) => {
        const cursor = /^DECLARE status_rows NO SCROLL CURSOR FOR ([\s\S]*)$/.exec(sql);
        if (cursor) {
          const { rows } = await tx.query<Record<string, string>>(`EXPLAIN ${cursor[1]}`, params);
          plans.push(rows.map((r) => r['QUERY PLAN']).join('\n'));
        }
        return run();
      });
      const cache = new StatusCache(explaining, () => NOW);
      await cache.refresh();
      await insert(db, { key: key('new') });
      await cache.refresh();
      assert.equal(cache.statusFor(key('new'), NOW)?.code, 'all_clear');
      // Never analysed, and small: left alone the planner would scan and hash both tables.
      const changed = plans[1] ?? '';
      assert.doesNotMatch(changed, /Seq Scan|Hash (Semi |Right |Anti )?Join/, changed);
      assert.match(changed, /quarantine_marks_xid/, changed);
    });

    it('after longer without a look than marks are sure to last, reads every row again', async () => {
      const gone = await insert(db, { key: key('gone') });
      const changed = await insert(db, { key: key('changed'), deadline: NOW + 5 * MIN });
      let now = NOW;
      const cache = new StatusCache(db, () => now);
      await cache.refresh();
      await endRow(db, gone, NOW + 1000);
      await db.query(
        `UPDATE quarantines SET state = 'registered', status_changed_at = $2 WHERE id = $1`,
        [changed, NOW + 1000],
      );
      // The watchdog dropped both marks (a minute on), and this cache has not looked since.
      await db.query('DELETE FROM quarantine_marks');
      now = NOW + 29_000;
      await cache.refresh();
      assert.equal(cache.size, 2, "within half the marks' lifetime, marks are trusted");
      assert.equal(cache.statusFor(key('changed'), now)?.code, 'all_clear');
      now = NOW + 61_000;
      await cache.refresh();
      assert.equal(cache.statusFor(key('gone'), now), undefined);
      assert.equal(cache.size, 1);
      assert.equal(cache.statusFor(key('changed'), now)?.code, 'not_monitored');
    });

    // Two transactions at once: PGlite has one connection, so this runs on PostgreSQL only.
    if (target.name === 'PostgreSQL')
      it('picks up a change committed after a look that began while it was being written', async () => {
        const id = await insert(db, {
          key: key('slow'),
          state: 'registered',
          lastPresenceAt: null,
        });
        const cache = new StatusCache(db, () => NOW);
        await cache.refresh();
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        let written!: () => void;
        const wrote = new Promise<void>((r) => (written = r));
        const writer = db.transaction(async (tx) => {
          await tx.query(
            `UPDATE quarantines SET state = 'monitoring', status_changed_at = $2 WHERE id = $1`,
            [id, NOW - 60_000],
          );
          written();
          await held;
        });
        await wrote;
        await cache.refresh();
        assert.equal(cache.statusFor(key('slow'), NOW)?.code, 'not_monitored', 'not committed yet');
        release();
        await writer;
        await cache.refresh();
        assert.equal(cache.statusFor(key('slow'), NOW)?.code, 'all_clear');
      });

    it('takes one look at a time: calls during a look share the next one', async () => {
      await insert(db, { key: key('one') });
      const counted = counting(db);
      const cache = new StatusCache(counted, () => NOW);
      const first = cache.refresh();
      const second = cache.refresh();
      const third = cache.refresh();
      assert.equal(second, third);
      await Promise.all([first, second, third]);
      assert.equal(counted.looks, 2);
      assert.equal(cache.statusFor(key('one'), NOW)?.code, 'all_clear');
    });
  });
}
