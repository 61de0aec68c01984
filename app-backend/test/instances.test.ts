import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Database } from '../../backend-kit/db.js';
import { ManualClock } from '../../test/support/clock.js';
import { databaseTargets } from '../../test/support/databases.js';
import {
  type Harness,
  PoliceStub,
  T0,
  TestBeacon,
  monitored,
  presence,
  startBackend,
} from './harness.js';

for (const target of databaseTargets()) {
  describe(`two app-backend instances on one ${target.name} database`, function () {
    this.timeout(120_000);
    let db: Database;
    let stub: PoliceStub;
    let a: Harness;
    let b: Harness;

    beforeEach(async () => {
      db = await target.open();
      stub = new PoliceStub();
      await stub.up();
      // Replicas share the database, the clock of the world and the configured KEK.
      const clock = new ManualClock(T0);
      const kek = randomBytes(32);
      a = await startBackend(db, stub, { clock, kek });
      b = await startBackend(db, stub, { clock, kek });
    });
    afterEach(async () => {
      await a.backend.close();
      await b.backend.close();
      await stub.down();
      await db.close();
    });

    it('raise and deliver exactly the alerts one instance would, each once', async () => {
      const beacons = Array.from({ length: 40 }, () => new TestBeacon());
      // Registrations and presence arrive at either instance.
      for (const [i, beacon] of beacons.entries()) await monitored(i % 2 ? a : b, beacon);
      const leavers = new Set(beacons.filter((_, i) => i % 4 === 0));
      for (let minute = 1; minute <= 20; minute++) {
        a.clock.advance(60_000);
        // Leavers took their phones: their relays keep sending, without the beacon's tokens.
        await Promise.all(
          beacons.map((x, i) =>
            presence(i % 2 ? a : b, x.skTPast, leavers.has(x) ? [] : [x.token(a.clock.ms)]),
          ),
        );
        // Both validate, watch and deliver at the same time, as two processes would.
        await Promise.all([a.backend.flush(), b.backend.flush()]);
        await Promise.all([
          a.backend.watchdog(),
          b.backend.watchdog(),
          a.backend.watchdog(),
          b.backend.watchdog(),
        ]);
        await Promise.all([a.backend.deliver(), b.backend.deliver()]);
      }
      const shown = stub.shown();
      assert.equal(shown.length, leavers.size, 'one NO_PRESENCE per person who left, nobody else');
      assert.deepEqual(
        new Set(shown.map((s) => s.beaconId)),
        new Set([...leavers].map((l) => l.beaconId)),
      );
      assert.ok(shown.every((s) => s.kind === 'NO_PRESENCE'));
      assert.equal(stub.received.length, shown.length, 'not even a redelivery');
      const { rows } = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM alerts WHERE kind = 'NO_PRESENCE'",
      );
      assert.equal(rows[0]?.n, leavers.size);
    });

    it('lose no presence when both validate tokens of the same quarantine at once', async () => {
      const beacon = new TestBeacon();
      await monitored(a, beacon);
      const tokens = Array.from({ length: 20 }, (_, i) => beacon.token(a.clock.ms + i * 1000));
      a.clock.advance(20_000);
      await Promise.all(tokens.map((t, i) => presence(i % 2 ? a : b, beacon.skTPast, [t])));
      await Promise.all([a.backend.flush(), b.backend.flush()]);
      const { rows } = await db.query<{ last_counter: number; last_presence_at: number }>(
        'SELECT last_counter, last_presence_at FROM quarantines',
      );
      assert.equal(rows[0]?.last_counter, 20, 'the newest counter won, whichever instance saw it');
      assert.equal(rows[0]?.last_presence_at, T0 + 19_000);
    });
  });
}
