import type { Database } from '../../backend-kit/db.js';
import { databaseTargets } from '../support/databases.js';
import { INTAKE_BOUND, intakeFlood } from './intake.js';
import { PRESENCE_QUEUE, presenceFlood } from './presence.js';
import { GatedDatabase, type Services, startServices } from './services.js';
import { SHORT_LIMITS, slowConnections } from './timeouts.js';

/**
 * The short versions of the floods (the long ones, on backends in processes of their own, are
 * `test/floods/campaign.ts`). One pair of backends serves every test: short timeouts and a
 * small intake bound and validation queue, so each flood reaches its limit in a few requests.
 */
for (const target of databaseTargets()) {
  describe(`floods and slow connections on ${target.name}`, function () {
    this.timeout(60_000);
    let appDb: Database;
    let policeDb: Database;
    let gated: GatedDatabase;
    let s: Services;
    const ctx = {
      services: () => s,
      appDb: () => appDb,
      policeDb: () => policeDb,
      gatedPoliceDb: () => gated,
    };

    before(async () => {
      appDb = await target.open();
      policeDb = await target.open();
      gated = new GatedDatabase(policeDb);
      s = await startServices(appDb, policeDb, {
        limits: SHORT_LIMITS,
        intakeMaxPending: INTAKE_BOUND,
        presenceQueue: PRESENCE_QUEUE,
        policeDb: gated,
      });
    });
    after(async () => {
      await s?.close();
      await appDb?.close();
      await policeDb?.close();
    });

    describe('presence far beyond the rate limits', () => presenceFlood(ctx));
    describe('a valid client floods the police intake', () => intakeFlood(ctx));
    describe('slowloris: slow and idle connections', () => slowConnections(ctx));
  });
}
