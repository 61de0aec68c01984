import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Database } from '../../backend-kit/db.js';
import { ManualClock } from '../../test/support/clock.js';
import { databaseTargets } from '../../test/support/databases.js';
import { capturedLogger } from '../../test/support/log-capture.js';
import { testPki } from '../../test/support/pki.js';
import { type PoliceHarness, startPolice } from '../../police-backend/test/harness.js';
import { AlertDelivery, type DeliveryOptions } from '../src/delivery.js';
import { createMetrics } from '../src/metrics.js';
import { T0, listenAsPolice, openAppDatabase } from './harness.js';

const LEASE_MS = 30_000;

interface Received {
  readonly key: string;
  readonly alertId: string;
  readonly beaconId: string;
  readonly kind: string;
}

/**
 * The police intake on real mutual TLS, recording what arrives, alone or in batches. It holds
 * its answers until `holdFor` requests are unanswered (or nothing more arrives), so whatever a
 * sender would post at once is in flight at once; and it notes an alert arriving while an
 * earlier one of the same beacon is still unanswered (an overtaking the sender must never risk).
 */
class RecordingPolice {
  readonly received: Received[] = [];
  readonly overlaps: string[] = [];
  /** Alerts per request, in arrival order. */
  readonly posts: number[] = [];
  maxInFlight = 0;
  holdFor = 1;
  /** False: a police backend from before the batch route (404 there). */
  batchRoute = true;
  /** A batch's answer body from its per-alert results (a police backend that answers wrongly). */
  batchAnswer = (results: unknown[]): unknown => ({ results });
  /** The answer per alert: a status, or 'hang' (read, never answer until down()); in a batch, non-2xx is a refused item. */
  answer: (r: Received) => number | 'hang' = () => 200;
  port = 0;
  #server: Server | undefined;
  #held: { rs: Received[]; send: () => void }[] = [];
  #flush: NodeJS.Timeout | undefined;
  #waiting: { n: number; resolve: () => void }[] = [];

  /** Resolves once `n` alerts have arrived in all. */
  arrived(n: number): Promise<void> {
    return new Promise((resolve) => {
      this.#waiting.push({ n, resolve });
      this.#wake();
    });
  }

  #wake(): void {
    const ready = this.#waiting.filter((w) => this.received.length >= w.n);
    this.#waiting = this.#waiting.filter((w) => this.received.length < w.n);
    ready.forEach((w) => w.resolve());
  }

  async up(): Promise<void> {
    this.#server = await listenAsPolice(this.port, (req, raw, res) => {
      const reply = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      const batch = req.url === '/internal/v1/alert-batches';
      if (batch && !this.batchRoute) return void reply(404, { error: 'NOT_FOUND' });
      const body = JSON.parse(raw.toString('utf8')) as
        Omit<Received, 'key'> | { alerts: Omit<Received, 'key'>[] };
      const items = 'alerts' in body ? body.alerts : [body];
      const rs: Received[] = items.map((m) => ({
        key: batch ? m.alertId : String(req.headers['idempotency-key']),
        alertId: m.alertId,
        beaconId: m.beaconId,
        kind: m.kind,
      }));
      for (const r of rs)
        if (this.#held.some((h) => h.rs.some((x) => x.beaconId === r.beaconId)))
          this.overlaps.push(r.alertId);
      this.received.push(...rs);
      this.posts.push(rs.length);
      this.#wake();
      const answers = rs.map((r) => this.answer(r));
      if (answers.includes('hang')) return;
      const ok = (a: number | 'hang') => typeof a === 'number' && a >= 200 && a < 300;
      this.#held.push({
        rs,
        send: () =>
          batch
            ? reply(
                200,
                this.batchAnswer(
                  answers.map((a) => (ok(a) ? { ok: true } : { ok: false, error: 'REFUSED' })),
                ),
              )
            : reply(answers[0] as number, {}),
      });
      this.maxInFlight = Math.max(this.maxInFlight, this.#held.length);
      clearTimeout(this.#flush);
      if (this.#held.length >= this.holdFor) this.#answerAll();
      // Fewer than holdFor are coming (the end of the queue): answer those there are.
      else this.#flush = setTimeout(() => this.#answerAll(), 20);
    });
    this.port = (this.#server.address() as AddressInfo).port;
  }

  /** Answers, newest first: an unordered sender's later message would be stored first. */
  #answerAll(): void {
    const held = this.#held.reverse();
    this.#held = [];
    for (const h of held) h.send();
  }

  async down(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    clearTimeout(this.#flush);
    this.#held = [];
    if (s)
      await new Promise<void>((resolve) => (s.close(() => resolve()), s.closeAllConnections()));
  }

  /** Alert IDs in arrival order, per beacon. */
  byBeacon(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const r of this.received) out.set(r.beaconId, [...(out.get(r.beaconId) ?? []), r.alertId]);
    return out;
  }
}

interface Queued {
  readonly alertId: string;
  readonly beaconId: string;
  readonly kind: string;
}

/**
 * Outbox rows as the watchdog and validator write them: per beacon a confirmed NO_PRESENCE,
 * then updates referring to it. `plan` lists beacon numbers in the order their next message is
 * queued; returns the messages in outbox order.
 */
async function queueMessages(db: Database, plan: number[], now: number): Promise<Queued[]> {
  const quarantines = new Map<number, { id: string; beaconId: string; first?: string }>();
  const kinds = ['NO_PRESENCE', 'ALERT_UPDATED', 'RESOLVED_BY_EVIDENCE', 'LATE_EVIDENCE'];
  const sent = new Map<number, number>();
  const out: Queued[] = [];
  for (const n of plan) {
    let q = quarantines.get(n);
    if (!q) {
      q = { id: randomUUID(), beaconId: `SB-D${String(n).padStart(4, '0')}` };
      quarantines.set(n, q);
      await db.query(
        `INSERT INTO quarantines (id, beacon_id, t_past, window_seconds, state, registered_at, offset_updated_at)
         VALUES ($1, $2, 20000, 360, 'monitoring', $3, $3)`,
        [q.id, q.beaconId, now],
      );
    }
    const i = sent.get(n) ?? 0;
    sent.set(n, i + 1);
    const kind = kinds[i % kinds.length] as string;
    const alertId = randomUUID();
    const first = kind === 'NO_PRESENCE';
    if (first) q.first = alertId;
    const detail =
      kind === 'RESOLVED_BY_EVIDENCE'
        ? { lastPresenceAt: now - 1000, coveredByEvidence: false }
        : kind === 'LATE_EVIDENCE'
          ? { evidenceUntil: now - 2000 }
          : { lastPresenceAt: now - 60_000, provisionalAt: now - 1000, graceSeconds: 0 };
    const message = {
      alertId,
      kind,
      beaconId: q.beaconId,
      occurredAt: now,
      gapStartedAt: first || kind === 'ALERT_UPDATED' ? now - 60_000 : null,
      relatedAlertId: first ? null : (q.first ?? null),
      detail,
    };
    await db.query(
      `INSERT INTO alerts (id, quarantine_id, beacon_id, kind, created_at, related_alert_id, detail, status)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        alertId,
        q.id,
        q.beaconId,
        kind,
        now,
        message.relatedAlertId,
        JSON.stringify(detail),
        first ? 'confirmed' : null,
      ],
    );
    await db.query(
      'INSERT INTO outbox (id, alert_id, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)',
      [randomUUID(), alertId, JSON.stringify(message), now],
    );
    out.push({ alertId, beaconId: q.beaconId, kind });
  }
  return out;
}

/** Message IDs in outbox order, per beacon. */
function expectedOrder(queued: Queued[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of queued) out.set(m.beaconId, [...(out.get(m.beaconId) ?? []), m.alertId]);
  return out;
}

interface OutboxRow {
  alert_id: string;
  attempts: number;
  delivered_at: number | null;
  next_attempt_at: number;
  lease_until: number | null;
  last_error: string | null;
}

async function outbox(db: Database): Promise<Map<string, OutboxRow>> {
  const { rows } = await db.query<OutboxRow>(
    'SELECT alert_id, attempts, delivered_at, next_attempt_at, lease_until, last_error FROM outbox',
  );
  return new Map(rows.map((r) => [r.alert_id, r]));
}

const undelivered = async (db: Database) =>
  (
    await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM outbox WHERE delivered_at IS NULL',
    )
  ).rows[0]?.n ?? 0;

for (const target of databaseTargets()) {
  describe(`alert delivery to the police backend on ${target.name}`, function () {
    this.timeout(120_000);
    let db: Database;
    let clock: ManualClock;
    const senders: AlertDelivery[] = [];
    const logs = capturedLogger('app-backend');

    /** One replica's sender; several may share the database. */
    const sender = async (port: number, options: DeliveryOptions = {}, on: Database = db) => {
      const pki = await testPki();
      const s = new AlertDelivery(
        on,
        {
          url: `https://localhost:${port}`,
          identity: 'police-backend',
          tls: { cert: pki.appBackend.cert, key: pki.appBackend.key, ca: pki.ca.cert },
        },
        clock.now,
        createMetrics(),
        logs.log,
        options,
      );
      senders.push(s);
      return s;
    };

    beforeEach(async () => {
      db = await openAppDatabase(target.open);
      clock = new ManualClock(T0);
    });
    afterEach(async () => {
      senders.splice(0).forEach((s) => s.close());
      await db.close();
    });

    /** Each behaviour holds whether alerts go one per post or several. */
    const modes = [
      {
        name: 'one alert per post',
        options: { perPost: 1 },
        spread: { batch: 10, perPost: 1 },
        refused: 'HTTP_503',
      },
      {
        name: 'alerts in batch posts',
        options: {},
        spread: { batch: 16, perPost: 2 },
        refused: 'REFUSED',
      },
    ];
    for (const mode of modes)
      describe(`against a recording police intake, ${mode.name}`, () => {
        let police: RecordingPolice;
        beforeEach(async () => {
          police = new RecordingPolice();
          await police.up();
        });
        afterEach(() => police.down());

        it('posts many at once, yet never two of one quarantine at once, and each in outbox order, across two replicas', async () => {
          // Round robin over 24 beacons, three messages each, then one beacon's four back to back.
          const plan = [0, 1, 2].flatMap(() => Array.from({ length: 24 }, (_, i) => i));
          const queued = await queueMessages(db, [...plan, 99, 99, 99, 99], clock.ms);
          police.holdFor = 8;
          const a = await sender(police.port, { ...mode.spread, concurrency: 8 });
          const b = await sender(police.port, { ...mode.spread, concurrency: 8 });
          while ((await undelivered(db)) > 0) await Promise.all([a.drain(), b.drain()]);

          assert.equal(police.maxInFlight, 8, 'posts do go out concurrently');
          assert.deepEqual(
            police.overlaps,
            [],
            'no message posted while an earlier one of its quarantine was',
          );
          assert.deepEqual(
            police.byBeacon(),
            expectedOrder(queued),
            'per quarantine, in outbox order',
          );
          assert.equal(police.received.length, queued.length, 'each once');
          assert.equal(new Set(police.received.map((r) => r.key)).size, queued.length);
        });

        it('backs off after a failed post and holds that quarantine’s later messages until it is through', async () => {
          const queued = await queueMessages(db, [0, 1, 0, 1], clock.ms);
          const stuck = queued[0] as Queued;
          police.answer = (r) => (r.alertId === stuck.alertId ? 503 : 200);
          // Jitter fixed at half: attempt n waits 1 s · 2^n / 2.
          const s = await sender(police.port, { ...mode.options, random: () => 0.5 });
          assert.equal(
            await s.drain(),
            2,
            'beacon 1 goes through; beacon 0 waits behind its failure',
          );
          let row = (await outbox(db)).get(stuck.alertId);
          assert.deepEqual(
            [row?.attempts, row?.last_error, row?.lease_until, row?.next_attempt_at],
            [1, mode.refused, null, T0 + 1000],
          );

          // Not due yet: nothing is posted, not even the update behind it.
          const posts = police.received.length;
          clock.ms = T0 + 999;
          assert.equal(await s.drain(), 0);
          assert.equal(police.received.length, posts);
          clock.ms = T0 + 1000;
          assert.equal(await s.drain(), 0, 'fails again');
          row = (await outbox(db)).get(stuck.alertId);
          assert.deepEqual([row?.attempts, row?.next_attempt_at], [2, T0 + 3000]);

          police.answer = () => 200;
          clock.ms = T0 + 3000;
          assert.equal(await s.drain(), 2, 'then it and the update behind it, in order');
          assert.deepEqual(
            police.byBeacon(),
            expectedOrder(queued).set(stuck.beaconId, [
              stuck.alertId,
              stuck.alertId,
              stuck.alertId,
              (queued[2] as Queued).alertId,
            ]),
          );
          assert.ok(logs.lines.some((l) => l.includes(`"error":"${mode.refused}"`)));
        });

        it('keeps everything while the police backend is down, then delivers each message exactly once', async () => {
          const queued = await queueMessages(db, [0, 1, 2, 0, 1, 2, 3], clock.ms);
          await police.down();
          const s = await sender(police.port, mode.options);
          for (let i = 0; i < 6; i++) {
            assert.equal(await s.drain(), 0);
            clock.advance(6 * 60_000); // past the longest backoff
          }
          const rows = await outbox(db);
          assert.equal(rows.get((queued[0] as Queued).alertId)?.attempts, 6);
          assert.equal(
            rows.get((queued[3] as Queued).alertId)?.attempts,
            0,
            'an update waits, unsent',
          );
          assert.match(String(rows.get((queued[0] as Queued).alertId)?.last_error), /ECONNREFUSED/);

          await police.up(); // the same port
          assert.equal(await s.drain(), queued.length);
          assert.equal(police.received.length, queued.length, 'exactly once');
          assert.deepEqual(police.byBeacon(), expectedOrder(queued));
          assert.equal(await undelivered(db), 0);
        });

        it('a late failure of an abandoned run does not undo the delivery made after its lease', async () => {
          const queued = await queueMessages(db, [0, 1, 2], clock.ms);
          police.answer = () => 'hang';
          const stale = await sender(police.port, mode.options);
          const abandoned = stale.run();
          await police.arrived(3);

          const other = await sender(police.port, mode.options);
          assert.equal(await other.drain(), 0, 'leased: not taken while the lease holds');
          clock.advance(LEASE_MS + 1);
          police.answer = () => 200;
          assert.equal(await other.drain(), 3, 'redelivered after the lease');
          await police.down(); // the abandoned run's connections drop: its posts fail now
          assert.deepEqual(await abandoned, { claimed: 3, delivered: 0, failed: 3 });
          for (const m of queued) {
            const row = (await outbox(db)).get(m.alertId);
            assert.ok(row?.delivered_at, 'still delivered');
            assert.equal(row?.last_error, null);
          }
        });
      });

    describe('batch posts against a recording police intake', () => {
      let police: RecordingPolice;
      beforeEach(async () => {
        police = new RecordingPolice();
        await police.up();
      });
      afterEach(() => police.down());

      it('sends a burst as a few posts of up to perPost alerts, each alert once', async () => {
        const queued = await queueMessages(
          db,
          Array.from({ length: 150 }, (_, i) => i),
          clock.ms,
        );
        const s = await sender(police.port, { batch: 100, perPost: 32 });
        assert.equal(await s.drain(), 150);
        assert.deepEqual(
          [...police.posts].sort((a, b) => a - b),
          [4, 18, 32, 32, 32, 32],
          'claims of 100 and 50, each cut into posts of 32',
        );
        assert.deepEqual(
          police.received.map((r) => r.alertId).sort(),
          queued.map((m) => m.alertId).sort(),
        );
        assert.equal(await undelivered(db), 0);
      });

      it('posts one alert at a time to a police backend without the batch route, and tries batches again after ten minutes', async () => {
        police.batchRoute = false;
        await queueMessages(db, [0, 1, 2, 3, 4], clock.ms);
        const s = await sender(police.port);
        assert.equal(await s.drain(), 5);
        assert.deepEqual(
          police.posts,
          [1, 1, 1, 1, 1],
          'the batch was refused (404), then each alone',
        );
        assert.equal(logs.lines.filter((l) => l.includes('no batch route')).length, 1);

        clock.advance(9 * 60_000);
        await queueMessages(db, [5, 6, 7], clock.ms);
        assert.equal(await s.drain(), 3);
        assert.deepEqual(police.posts.slice(5), [1, 1, 1], 'no batch tried within ten minutes');

        police.batchRoute = true;
        clock.advance(60_000);
        await queueMessages(db, [8, 9, 10], clock.ms);
        assert.equal(await s.drain(), 3);
        assert.deepEqual(police.posts.slice(8), [3], 'batches again once upgraded');
        assert.equal(await undelivered(db), 0);
      });

      it('fails every alert of a batch whose answer does not match it, and keeps only stable codes from an item', async () => {
        const queued = await queueMessages(db, [0, 1, 2], clock.ms);
        police.batchAnswer = (results) => ({ results: results.slice(1) });
        const s = await sender(police.port, { random: () => 0.5 });
        assert.equal(await s.drain(), 0);
        let rows = await outbox(db);
        for (const m of queued)
          assert.deepEqual(
            [rows.get(m.alertId)?.attempts, rows.get(m.alertId)?.last_error],
            [1, 'BAD_ANSWER'],
          );

        police.batchAnswer = () => ({
          results: [
            { ok: true },
            { ok: false, error: 'no such <b>thing</b>' },
            { ok: false, error: 'BAD_ALERT' },
          ],
        });
        clock.advance(1000);
        assert.equal(await s.drain(), 1);
        rows = await outbox(db);
        assert.deepEqual(
          queued.map((m) => [
            rows.get(m.alertId)?.delivered_at ?? null,
            rows.get(m.alertId)?.last_error,
          ]),
          [
            [clock.ms, 'BAD_ANSWER'],
            [null, 'BAD_ANSWER'],
            [null, 'BAD_ALERT'],
          ],
          'the first delivered (its last error kept), the others failed with their codes',
        );
        assert.ok(
          !logs.lines.some((l) => l.includes('<b>')),
          'free text from the police is not logged',
        );
      });
    });

    describe('against the real police backend', () => {
      let policeDb: Database;
      let police: PoliceHarness;
      beforeEach(async () => {
        policeDb = await target.open();
        police = await startPolice(policeDb, { clock });
      });
      afterEach(async () => {
        await police.backend.close();
        await policeDb.close();
      });

      const stored = async () =>
        (
          await policeDb.query<{
            id: string;
            kind: string;
            recovered_at: number | null;
            occurrences: number;
          }>('SELECT id, kind, recovered_at, occurrences FROM alerts ORDER BY id')
        ).rows;

      it('a run that dies after posting is redelivered once its lease passes; the police keep each alert once', async () => {
        const queued = await queueMessages(
          db,
          Array.from({ length: 40 }, (_, i) => i % 20),
          clock.ms,
        );
        // The process dies after the posts, before writing down that they went through.
        let queries = 0;
        const dying: Database = {
          ...db,
          query: (sql, params) =>
            queries++ === 0 ? db.query(sql, params) : Promise.reject(new Error('process died')),
        };
        const crashed = await sender(police.backend.internalPort, {}, dying);
        await assert.rejects(crashed.run(), /process died/);
        crashed.close();
        assert.equal((await stored()).length, 20, 'the first message of each quarantine arrived');

        const replica = await sender(police.backend.internalPort);
        assert.equal(await replica.drain(), 0, 'still leased');
        clock.advance(LEASE_MS + 1);
        assert.equal(await replica.drain(), queued.length, 'all of it, the first 20 again');
        const alerts = await stored();
        assert.equal(alerts.length, queued.length, 'each alert stored once');
        const noPresence = alerts.filter((a) => a.kind === 'NO_PRESENCE');
        assert.equal(noPresence.length, 20);
        // The ALERT_UPDATED behind each NO_PRESENCE reached it: counted once more, not twice.
        assert.ok(noPresence.every((a) => a.occurrences === 2));
      });

      it('every update reaches the alert it refers to, with two replicas posting concurrently', async () => {
        const plan = [0, 1, 2].flatMap(() => Array.from({ length: 30 }, (_, i) => i));
        const queued = await queueMessages(db, plan, clock.ms);
        const a = await sender(police.backend.internalPort, { batch: 16, concurrency: 8 });
        const b = await sender(police.backend.internalPort, { batch: 16, concurrency: 8 });
        while ((await undelivered(db)) > 0) await Promise.all([a.drain(), b.drain()]);
        const alerts = await stored();
        assert.equal(alerts.length, queued.length);
        const noPresence = alerts.filter((a) => a.kind === 'NO_PRESENCE');
        assert.equal(noPresence.length, 30);
        // Each was repeated (ALERT_UPDATED) and then resolved by evidence, in that order.
        assert.ok(noPresence.every((x) => x.occurrences === 2 && x.recovered_at !== null));
      });
    });
  });
}
