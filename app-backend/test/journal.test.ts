import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Database } from '../../backend-kit/db.js';
import { ManualClock } from '../../test/support/clock.js';
import { databaseTargets } from '../../test/support/databases.js';
import { GONE_AFTER_MS, PresenceJournal } from '../src/journal.js';
import {
  type Harness,
  PoliceStub,
  T0,
  TestBeacon,
  metric,
  monitored,
  presence,
  startBackend,
} from './harness.js';

/** The journal rows, as (holder, tokens) — the test reads the table the service writes. */
async function journalRows(db: Database): Promise<{ holder: string; tokens: number }[]> {
  const { rows } = await db.query<{ holder: string; n: number }>(
    'SELECT holder, length(tokens) / 64 AS n FROM presence_journal WHERE seq > 0 ORDER BY origin, seq',
  );
  return rows.map((r) => ({ holder: r.holder, tokens: Number(r.n) }));
}

const lastPresence = async (db: Database, b: TestBeacon): Promise<number | null> => {
  const { rows } = await db.query<{ last_presence_at: number | null }>(
    'SELECT last_presence_at FROM quarantines WHERE beacon_id = $1',
    [b.beaconId],
  );
  const at = rows[0]?.last_presence_at;
  return at === null || at === undefined ? null : Number(at);
};

/** The same database, but the journal's writes fail while `down` is set (a lost connection). */
function journalFailing(db: Database): { db: Database; fail: (down: boolean) => void } {
  let down = false;
  const refuse = (sql: string) => down && sql.includes('presence_journal_owners');
  const wrapped: Database = {
    kind: db.kind,
    query: (sql, params) =>
      refuse(sql) ? Promise.reject(new Error('connection lost')) : db.query(sql, params),
    transaction: (fn) => db.transaction(fn),
    close: () => db.close(),
  };
  return { db: wrapped, fail: (d) => void (down = d) };
}

for (const target of databaseTargets()) {
  describe(`presence journal on ${target.name}`, function () {
    this.timeout(120_000);
    let db: Database;
    let stub: PoliceStub;
    let clock: ManualClock;
    let kek: Buffer;
    const started: Harness[] = [];
    const start = async (on: Database = db) => {
      const h = await startBackend(on, stub, { clock, kek });
      started.push(h);
      return h;
    };

    beforeEach(async () => {
      db = await target.open();
      stub = new PoliceStub();
      await stub.up();
      clock = new ManualClock(T0);
      kek = randomBytes(32);
    });
    afterEach(async () => {
      for (const h of started.splice(0)) await h.backend.close();
      await stub.down();
      await db.close();
    });

    it('a 202 means the request is in the journal; validating it removes it in the same transaction', async () => {
      const a = await start();
      const b = new TestBeacon();
      await monitored(a, b);
      await a.backend.flush();
      assert.deepEqual(await journalRows(db), []);
      const tokens = [b.token(clock.ms), b.token(clock.ms + 1000)];
      assert.equal((await presence(a, b.skTPast, tokens)).status, 202);
      // A dummy waits for the same write, and leaves no row.
      assert.equal((await presence(a, new Uint8Array(randomBytes(32)), [])).status, 202);
      assert.deepEqual(await journalRows(db), [{ holder: a.backend.journal.owner, tokens: 2 }]);
      await a.backend.flush();
      assert.deepEqual(await journalRows(db), []);
      // A dummy alone writes a filler row (its write costs what a real one's does); the next write drops it.
      for (let i = 0; i < 5; i++)
        assert.equal((await presence(a, new Uint8Array(randomBytes(32)), [])).status, 202);
      const fillers = async () =>
        Number(
          (
            await db.query<{ n: number }>(
              'SELECT count(*)::int AS n FROM presence_journal WHERE seq < 0',
            )
          ).rows[0]?.n,
        );
      assert.equal(await fillers(), 1);
      await a.backend.close();
      started.splice(0);
      assert.equal(await fillers(), 0, 'a clean stop leaves no filler');
      assert.equal(await lastPresence(db, b), Math.floor((clock.ms + 1000) / 1000) * 1000);
    });

    it('presence a silent process accepted is validated once by another: its own late attempt is refused', async () => {
      const a = await start();
      const b = new TestBeacon();
      await monitored(a, b);
      await a.backend.flush();
      const before = await lastPresence(db, b);
      const acceptedByA = await metric(a, 'presence_tokens_total', 'result="accepted"');
      clock.advance(60_000);
      assert.equal((await presence(a, b.skTPast, [b.token(clock.ms)])).status, 202);
      // `a` now stalls (or died): it holds the request in memory, the journal holds the row.
      const second = await start();
      if (target.name === 'PGlite') {
        // Only one process can open PGlite: whoever starts takes every other process's rows.
        assert.deepEqual(await journalRows(db), [
          { holder: second.backend.journal.owner, tokens: 1 },
        ]);
      } else {
        assert.equal(
          await second.backend.recover(),
          0,
          'not before it has been silent long enough',
        );
        clock.advance(GONE_AFTER_MS + 1);
        assert.equal(await second.backend.recover(), 1);
      }
      await second.backend.flush();
      assert.equal(await lastPresence(db, b), Math.floor((T0 + 60_000) / 1000) * 1000);
      assert.ok(before === null || before < (await lastPresence(db, b))!);
      assert.equal(await metric(second, 'presence_tokens_total', 'result="accepted"'), 1);
      // The stalled process comes back and validates its queue: the row is no longer its to apply.
      await a.backend.flush();
      assert.equal(await metric(a, 'presence_tokens_total', 'result="accepted"'), acceptedByA);
      assert.equal(a.backend.validator.depth, 0);
      assert.deepEqual(await journalRows(db), []);
    });

    it('a process serving where a dead one served takes its rows over at once; elsewhere, only after its silence', async () => {
      await start(); // migrations
      const request = {
        keyHash: 'ab'.repeat(32),
        tokens: [new Uint8Array(randomBytes(64))],
        registered: true,
        receivedAt: clock.ms,
      };
      const dead = new PresenceJournal(db, clock.now);
      dead.servesAt('host-1:8443');
      const kept = await dead.write(request);
      assert.ok(kept);
      const elsewhere = new PresenceJournal(db, clock.now);
      elsewhere.servesAt('host-2:8443');
      assert.deepEqual(await elsewhere.adopt(clock.ms), [], 'a live process elsewhere is trusted');
      const restarted = new PresenceJournal(db, clock.now);
      restarted.servesAt('host-1:8443');
      const taken = await restarted.adopt(clock.ms);
      assert.deepEqual(
        taken.map((t) => [t.journal, t.keyHash, t.tokens, t.registered]),
        [[kept.journal, request.keyHash, request.tokens, true]],
      );
      assert.deepEqual(await elsewhere.adopt(clock.ms + GONE_AFTER_MS + 1), []);
    });

    it('a journal write that fails answers 503 UNAVAILABLE to dummies and real requests alike, and keeps nothing', async () => {
      const failing = journalFailing(db);
      const a = await start(failing.db);
      const b = new TestBeacon();
      await monitored(a, b);
      await a.backend.flush();
      const before = await lastPresence(db, b);
      clock.advance(60_000);
      failing.fail(true);
      const answers = [
        await presence(a, b.skTPast, [b.token(clock.ms)]),
        await presence(a, b.skTPast, []),
        await presence(a, new Uint8Array(randomBytes(32)), []),
      ];
      for (const r of answers)
        assert.deepEqual([r.status, r.json()], [503, { error: 'UNAVAILABLE' }]);
      assert.equal(a.backend.validator.depth, 0);
      await a.backend.flush();
      assert.equal(await lastPresence(db, b), before, 'a refused token is never recorded');
      // The relay kept its tokens and sends them again once the database is back.
      failing.fail(false);
      assert.equal((await presence(a, b.skTPast, [b.token(clock.ms)])).status, 202);
      await a.backend.flush();
      assert.notEqual(await lastPresence(db, b), before);
    });

    it('a clean stop leaves no owner behind; an idle process still beats', async () => {
      const a = await start();
      await a.backend.journal.beat();
      const owners = async () =>
        (await db.query<{ owner: string }>('SELECT owner FROM presence_journal_owners')).rows.map(
          (r) => r.owner,
        );
      assert.deepEqual(await owners(), [a.backend.journal.owner]);
      const seen = async () =>
        Number(
          (await db.query<{ seen_at: number }>('SELECT seen_at FROM presence_journal_owners'))
            .rows[0]?.seen_at,
        );
      const first = await seen();
      clock.advance(500);
      await a.backend.journal.beat();
      assert.equal(await seen(), first, 'wrote within the beat: nothing to add');
      clock.advance(600);
      await a.backend.journal.beat();
      assert.equal(await seen(), first + 1100);
      await a.backend.close();
      started.splice(0);
      assert.deepEqual(await owners(), []);
    });
  });
}
