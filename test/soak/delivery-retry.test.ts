/**
 * What the police-down soak found: the delivery backoff grew to minutes during an outage, so
 * alerts waited long after the police backend was back. While it cannot be reached at all, a
 * message is now tried again within UNREACHABLE_RETRY_MS, as when it sheds load (503); other
 * error answers keep the full backoff.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:https';
import type { Database } from '../../backend-kit/db.js';
import { AlertDelivery, UNREACHABLE_RETRY_MS } from '../../app-backend/src/delivery.js';
import { createMetrics } from '../../app-backend/src/metrics.js';
import { T0, listenAsPolice, openAppDatabase } from '../../app-backend/test/harness.js';
import { ManualClock } from '../support/clock.js';
import { databaseTargets } from '../support/databases.js';
import { capturedLogger } from '../support/log-capture.js';
import { testPki } from '../support/pki.js';
import { freePort } from './processes.js';

/** One confirmed NO_PRESENCE waiting in the outbox, as the watchdog leaves it. */
async function queueAlert(db: Database, now: number): Promise<string> {
  const quarantineId = randomUUID();
  const alertId = randomUUID();
  await db.query(
    `INSERT INTO quarantines (id, beacon_id, t_past, window_seconds, state, registered_at, offset_updated_at)
     VALUES ($1, 'SB-RETRY', 20000, 360, 'monitoring', $2, $2)`,
    [quarantineId, now],
  );
  const detail = { lastPresenceAt: now - 60_000, provisionalAt: now - 1000, graceSeconds: 0 };
  await db.query(
    `INSERT INTO alerts (id, quarantine_id, beacon_id, kind, created_at, detail, status)
     VALUES ($1, $2, 'SB-RETRY', 'NO_PRESENCE', $3, $4, 'confirmed')`,
    [alertId, quarantineId, now, JSON.stringify(detail)],
  );
  const message = {
    alertId,
    kind: 'NO_PRESENCE',
    beaconId: 'SB-RETRY',
    occurredAt: now,
    gapStartedAt: now - 60_000,
    relatedAlertId: null,
    detail,
  };
  await db.query(
    'INSERT INTO outbox (id, alert_id, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)',
    [randomUUID(), alertId, JSON.stringify(message), now],
  );
  return alertId;
}

const row = async (db: Database) =>
  (
    await db.query<{ next_attempt_at: number; delivered_at: number | null; last_error: string }>(
      'SELECT next_attempt_at, delivered_at, last_error FROM outbox',
    )
  ).rows[0];

for (const target of databaseTargets()) {
  describe(`alert delivery retries while the police backend is unreachable, on ${target.name}`, function () {
    this.timeout(30_000);
    let db: Database;
    let police: Server | undefined;

    beforeEach(async () => {
      db = await openAppDatabase(target.open);
    });
    afterEach(async () => {
      police?.close();
      police?.closeAllConnections();
      police = undefined;
      await db.close();
    });

    /** Fail `attempts` times, each at its due time; the delays between attempts. */
    const failRepeatedly = async (port: number, attempts: number) => {
      const pki = await testPki();
      const clock = new ManualClock(T0);
      await queueAlert(db, clock.ms);
      const delivery = new AlertDelivery(
        db,
        {
          url: `https://localhost:${port}`,
          identity: 'police-backend',
          tls: { cert: pki.appBackend.cert, key: pki.appBackend.key, ca: pki.ca.cert },
        },
        clock.now,
        createMetrics(),
        capturedLogger('app-backend').log,
        // The backoff's jitter fixed near its top: the delays are the backoff's largest.
        { random: () => 0.9 },
      );
      const delays: number[] = [];
      for (let i = 0; i < attempts; i++) {
        assert.equal((await delivery.run()).failed, 1);
        const r = await row(db);
        assert.ok(r);
        delays.push(r.next_attempt_at - clock.ms);
        clock.ms = r.next_attempt_at;
      }
      return { delivery, clock, delays, error: (await row(db))?.last_error };
    };

    it('tries again within the cap however long the outage, and delivers at the first try after it', async () => {
      const port = await freePort();
      const { delivery, clock, delays, error } = await failRepeatedly(port, 10);
      try {
        assert.equal(error, 'ECONNREFUSED');
        // 0.9 × 2^n s would pass 10 s from the fifth failure on and reach 15 minutes by the tenth.
        assert.ok(Math.max(...delays) <= UNREACHABLE_RETRY_MS, `delays ${delays.join(', ')}`);
        assert.ok(delays.slice(0, 3).every((d, i) => d === Math.round(0.9 * 2 ** (i + 1) * 1000)));
        police = await listenAsPolice(port, (_req, _body, res) =>
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'),
        );
        assert.equal(await delivery.drain(), 1);
        assert.equal((await row(db))?.delivered_at, clock.ms);
      } finally {
        delivery.close();
      }
    });

    it('tries a police backend that sheds load (503 OVERLOADED) again within the cap too', async () => {
      const port = await freePort();
      police = await listenAsPolice(port, (_req, _body, res) =>
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"OVERLOADED"}'),
      );
      const { delivery, delays, error } = await failRepeatedly(port, 7);
      delivery.close();
      assert.equal(error, 'HTTP_503');
      assert.ok(Math.max(...delays) <= UNREACHABLE_RETRY_MS, `delays ${delays.join(', ')}`);
    });

    it('keeps the full backoff for a police backend that answers with another error', async () => {
      const port = await freePort();
      police = await listenAsPolice(port, (_req, _body, res) =>
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"INTERNAL"}'),
      );
      const { delivery, delays, error } = await failRepeatedly(port, 7);
      delivery.close();
      assert.equal(error, 'HTTP_500');
      assert.deepEqual(
        delays,
        [1, 2, 3, 4, 5, 6, 7].map((n) => Math.round(0.9 * 2 ** n * 1000)),
      );
    });
  });
}
