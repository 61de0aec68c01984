import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  TestBeacon,
  police as internal,
  presence,
  register,
  relayAlive,
} from '../../app-backend/test/harness.js';
import { alertMessage } from '../../police-backend/test/harness.js';
import { type HttpResult, httpsRequest } from '../support/https-client.js';
import { testPki } from '../support/pki.js';
import { type FloodContext, type Services, waitFor } from './services.js';

const MIN = 60_000;
/** The intake bound the suite starts the police backend with: a multiple of the flood's batch size. */
export const INTAKE_BOUND = 320;
/** Divides both the bound and the intake's 256-alert transactions, so the queue only ever holds whole batches. */
const FLOOD_BATCH = 64;

/** A client holding a valid app-backend certificate, posting to the police backend's intake. */
async function post(s: Services, path: string, body: unknown): Promise<HttpResult> {
  const pki = await testPki();
  return httpsRequest(
    s.police.internalPort,
    'POST',
    path,
    { ca: pki.ca.cert, cert: pki.appBackend.cert, key: pki.appBackend.key },
    JSON.stringify(body),
    { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
  );
}

const flood = (n: number) =>
  Array.from({ length: n }, (_, i) => alertMessage({ beaconId: `SB-FLOOD-${i % 50}` }));

/** Flood 3: a valid mutual-TLS client floods the police intake while the real app backend delivers. */
export function intakeFlood(ctx: FloodContext): void {
  it('refuses beyond its bound with 503 OVERLOADED and Retry-After, stores nothing refused, and the app backend’s alerts still arrive', async () => {
    const s = ctx.services();
    const gated = ctx.gatedPoliceDb();
    const appDb = ctx.appDb();
    const policeDb = ctx.policeDb();
    // Three people leave home; their alerts wait in the app backend's outbox.
    const h = { backend: s.app, clock: s.clock };
    const people = [new TestBeacon(), new TestBeacon(), new TestBeacon()];
    for (const b of people) {
      assert.equal((await register(h, b)).status, 201);
      assert.equal((await internal(h, `/internal/v1/beacons/${b.beaconId}/enable`)).status, 200);
      await presence(h, b.skTPast, [b.token(s.clock.ms)]);
    }
    await s.app.flush();
    s.clock.advance(7 * MIN);
    await s.app.watchdog();
    s.clock.advance(10 * MIN);
    for (const b of people) await relayAlive(h, b);
    await s.app.watchdog();
    const mine = people.map((b) => b.beaconId).sort();
    const outbox = async () =>
      (
        await appDb.query<{ beacon: string; last_error: string | null }>(
          `SELECT payload->>'beaconId' AS beacon, last_error FROM outbox
            WHERE delivered_at IS NULL AND payload->>'beaconId' = ANY($1::text[]) ORDER BY 1`,
          [mine],
        )
      ).rows;
    assert.deepEqual(
      (await outbox()).map((r) => r.beacon),
      mine,
      'one alert each, waiting to be delivered',
    );

    // Storage stalls (a slow disk); the flood keeps coming in batches, then one by one.
    gated.shut();
    const batches = Array.from({ length: 12 }, () => {
      const alerts = flood(FLOOD_BATCH);
      return { alerts, answer: post(s, '/internal/v1/alert-batches', { alerts }) };
    });
    // Refusals are answered at once; admitted requests wait for their commit.
    const refused: HttpResult[] = [];
    for (const b of batches) void b.answer.then((r) => r.status === 503 && refused.push(r));
    // At most one batch being stored (≤ 256, whatever had arrived) plus INTAKE_BOUND waiting.
    const mostAdmitted = Math.floor((256 + INTAKE_BOUND) / FLOOD_BATCH);
    await waitFor('refused batches', () => refused.length >= batches.length - mostAdmitted);
    // A refused batch means more than 320 − 64 wait: in whole batches, exactly INTAKE_BOUND. Singles bounce.
    const singles = await Promise.all(
      Array.from({ length: 20 }, () => post(s, '/internal/v1/alerts', alertMessage())),
    );
    for (const r of [...refused, ...singles]) {
      assert.equal(r.status, 503);
      assert.deepEqual(r.json(), { error: 'OVERLOADED' });
      assert.equal(r.headers['retry-after'], '2');
    }
    // The real delivery is refused too, and keeps its alerts to send again.
    assert.equal(await s.app.deliver(), 0);
    assert.deepEqual(
      (await outbox()).map((r) => r.last_error),
      ['HTTP_503', 'HTTP_503', 'HTTP_503'],
    );

    // Storage resumes: everything admitted is stored; the app backend's retry gets through.
    gated.open();
    const answers = await Promise.all(batches.map((b) => b.answer));
    const admitted = batches.filter((_, i) => answers[i]?.status === 200);
    assert.equal(admitted.length + refused.length, batches.length);
    assert.ok(admitted.length >= INTAKE_BOUND / FLOOD_BATCH && admitted.length <= mostAdmitted);
    s.clock.advance(5 * MIN); // past the backoff of a first failure
    await s.app.deliver();
    assert.deepEqual(await outbox(), [], 'all delivered');
    const stored = await policeDb.query<{ id: string; beacon_id: string }>(
      'SELECT id, beacon_id FROM alerts',
    );
    const storedIds = new Set(stored.rows.map((r) => r.id));
    const ids = (list: typeof batches) =>
      list.flatMap((b) => b.alerts.map((a) => String(a.alertId)));
    assert.ok(
      ids(admitted).every((id) => storedIds.has(id)),
      'every admitted alert stored',
    );
    assert.ok(
      ids(batches.filter((b) => !admitted.includes(b))).every((id) => !storedIds.has(id)),
      'nothing of a refused batch stored',
    );
    const real = stored.rows.filter((r) => mine.includes(r.beacon_id));
    assert.deepEqual(real.map((r) => r.beacon_id).sort(), mine, 'each once');
    const flooded = stored.rows.filter((r) => r.beacon_id.startsWith('SB-FLOOD-'));
    assert.equal(flooded.length, admitted.length * FLOOD_BATCH);
  });
}
