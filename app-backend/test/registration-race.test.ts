import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Database } from '../../backend-kit/db.js';
import { databaseTargets } from '../../test/support/databases.js';
import { type Registration, enableMonitoring, registerQuarantine } from '../src/quarantines.js';
import { T0, TestBeacon, openAppDatabase } from './harness.js';

/** Resolves once another session of this database waits for a lock (PostgreSQL's own view). */
async function someoneWaitsForALock(db: Database): Promise<void> {
  for (;;) {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    if ((rows[0]?.n ?? 0) > 0) return;
    await new Promise((r) => setImmediate(r));
  }
}

for (const target of databaseTargets()) {
  describe(`registration and enable arriving together on ${target.name}`, function () {
    this.timeout(60_000);
    let db: Database;

    beforeEach(async () => {
      db = await openAppDatabase(target.open);
    });
    afterEach(() => db.close());

    it('an enable sent while the registration is still uncommitted is applied once it commits, not left pending', async () => {
      const b = new TestBeacon();
      const registration = JSON.parse(b.registration()) as Registration;
      let registered!: () => void;
      const rowWritten = new Promise<void>((r) => (registered = r));
      let commit!: () => void;
      const mayCommit = new Promise<void>((r) => (commit = r));
      const registering = db.transaction(async (tx) => {
        const id = await registerQuarantine(tx, randomBytes(32), registration, 360, T0);
        registered();
        await mayCommit;
        return id;
      });
      await rowWritten;
      const enabling = enableMonitoring(db, b.beaconId, T0 + 30);
      // PostgreSQL: the enable must wait for the registration (before the fix it answered
      // "pending" at once). PGlite runs one transaction at a time, so it waits anyway.
      const first = await Promise.race([
        enabling.then(() => 'enable finished first'),
        target.name === 'PostgreSQL'
          ? someoneWaitsForALock(db).then(() => 'enable waits')
          : Promise.resolve('enable waits'),
      ]);
      commit();
      await registering;
      assert.equal(first, 'enable waits');
      assert.equal(await enabling, 'monitoring');
      const { rows } = await db.query<{ state: string }>(
        'SELECT state FROM quarantines WHERE beacon_id = $1',
        [b.beaconId],
      );
      assert.deepEqual(rows, [{ state: 'monitoring' }]);
      assert.deepEqual((await db.query('SELECT * FROM pending_enables')).rows, []);
    });
  });
}
