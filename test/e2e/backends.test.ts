import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Database } from '../../backend-kit/db.js';
import { ManualClock } from '../support/clock.js';
import { databaseTargets } from '../support/databases.js';
import { capturedLogger } from '../support/log-capture.js';
import { testPki } from '../support/pki.js';
import { DEFAULT_RULES, loopbackConfig } from '../../app-backend/src/config.js';
import { type AppBackend, startAppBackend } from '../../app-backend/src/service.js';
import { TestBeacon, authorityKeys, presence, register } from '../../app-backend/test/harness.js';
import { type PoliceHarness, api, signIn, startPolice } from '../../police-backend/test/harness.js';

const MIN = 60_000;

for (const target of databaseTargets()) {
  describe(`app backend ⇄ police backend over mutual TLS on ${target.name}`, function () {
    this.timeout(60_000);
    let appDb: Database;
    let policeDb: Database;
    let police: PoliceHarness;
    let app: AppBackend | undefined;
    const clock = new ManualClock(1_795_400_000_000);
    const appLogs = capturedLogger('app-backend');

    const startApp = async (internalPort = 0) => {
      const pki = await testPki();
      app = await startAppBackend(
        loopbackConfig({
          tls: { cert: pki.appBackend.cert, key: pki.appBackend.key, ca: pki.ca.cert },
          kek: randomBytes(32),
          healthAuthority: {
            publicKey: authorityKeys.publicKey,
            issuer: 'health-authority',
            audience: 'smartbeacon-app-backend',
          },
          police: {
            url: `https://localhost:${police.backend.internalPort}`,
            identity: 'police-backend',
          },
          rules: DEFAULT_RULES,
          internalPort,
        }),
        { clock: clock.now, log: appLogs.log, db: appDb, timers: false },
      );
      return app;
    };

    beforeEach(async () => {
      appDb = await target.open();
      policeDb = await target.open();
      police = await startPolice(policeDb, { clock, appUrl: 'https://localhost:1' });
    });
    afterEach(async () => {
      await app?.close();
      await police.backend.close();
      await appDb.close();
      await policeDb.close();
    });

    it('enable reaches the app backend (retried while it is down); a departure reaches the officer with the address', async () => {
      const officer = await signIn(police, 'officer1');
      const beacon = new TestBeacon();
      await api(police, officer, 'POST', '/api/beacons', {
        beaconId: beacon.beaconId,
        address: '7 Quarantine Lane',
        caseRef: 'C-77',
      });
      // The app backend is not up yet: the police side keeps the request pending and says why.
      await police.backend.close();
      const appBackend = await startApp();
      police = await startPolice(policeDb, {
        clock,
        appUrl: `https://localhost:${appBackend.internalPort}`,
      });
      await appBackend.close();
      const requested = await api(
        police,
        officer,
        'POST',
        `/api/beacons/${beacon.beaconId}/enable`,
        {},
      );
      assert.equal(
        requested.status,
        401,
        'sessions end when the police backend restarts with new keys',
      );
      const again = await signIn(police, 'officer2');
      assert.equal(
        (await api(police, again, 'POST', `/api/beacons/${beacon.beaconId}/enable`, {})).json<{
          beacon: { status: string };
        }>().beacon.status,
        'enable_pending',
      );
      assert.equal(await police.backend.sendCommands(), 0);
      const pending = (await api(police, again, 'GET', '/api/beacons')).json<{
        beacons: { status: string; lastError: string }[];
      }>().beacons[0];
      assert.equal(pending?.status, 'enable_pending');
      assert.match(String(pending?.lastError), /unreachable/);

      // Back up on the same port: the retry goes through over mutual TLS.
      const up = await startApp(appBackend.internalPort);
      clock.advance(10 * MIN);
      assert.equal(await police.backend.sendCommands(), 1);
      assert.equal(
        (await api(police, again, 'GET', '/api/beacons')).json<{ beacons: { status: string }[] }>()
          .beacons[0]?.status,
        'monitoring',
      );

      // The health authority registers; the person's relay reports presence, then the person leaves.
      const h = { backend: up, clock };
      assert.equal((await register(h, beacon)).status, 201);
      await presence(h, beacon.skTPast, [beacon.token(clock.ms)]);
      await up.flush();
      clock.advance(7 * MIN);
      assert.equal((await up.watchdog()).provisional, 1);
      assert.equal(await up.deliver(), 0, 'provisional: the person is warned, the police are not');
      clock.advance(20 * MIN); // the default grace
      await presence(h, beacon.skTPast, []); // their phone went with them, hearing no beacon
      await up.flush();
      assert.equal((await up.watchdog()).confirmed, 1);
      assert.equal(await up.deliver(), 1);
      const { alerts } = (await api(police, again, 'GET', '/api/alerts?view=queue')).json<{
        alerts: { kind: string; address: string; beaconId: string }[];
      }>();
      assert.deepEqual(
        alerts.map((a) => [a.kind, a.beaconId, a.address]),
        [['NO_PRESENCE', beacon.beaconId, '7 Quarantine Lane']],
      );

      // Ending from the police side deletes the app backend's keys.
      await api(police, again, 'POST', `/api/beacons/${beacon.beaconId}/end`, {});
      assert.equal(await police.backend.sendCommands(), 1);
      const { rows } = await appDb.query<{ state: string; sk_beacon_sealed: unknown }>(
        'SELECT state, sk_beacon_sealed FROM quarantines',
      );
      assert.deepEqual(rows, [{ state: 'ended', sk_beacon_sealed: null }]);
    });
  });
}
