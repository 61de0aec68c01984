import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import type { Database } from '../../backend-kit/db.js';
import { encodePresenceBody } from '../../protocol/presence.js';
import {
  type Harness,
  PoliceStub,
  TestBeacon,
  authorityJwt,
  monitored,
  police,
} from '../../app-backend/test/harness.js';
import { startBackend } from '../../app-backend/test/harness.js';
import { databaseTargets } from '../support/databases.js';
import { testPki } from '../support/pki.js';
import {
  type Auth,
  type Endpoint,
  type FuzzTarget,
  type Listener,
  assertStillAnswering,
  formatTally,
  fuzzHttp,
} from './http-property.js';
import { coverageGaps, recordRoutes } from './routes.js';
import { fuzzRuns } from './runs.js';

const MIN = 60_000;
const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();

/** Quarantines the valid-looking requests name: registered, enabled, with presence. */
interface Known {
  readonly beacons: TestBeacon[];
  readonly absences: { beaconId: string; absenceId: string }[];
}

const at = <T>(list: readonly T[], pick: number): T => list[pick % list.length] as T;

function appEndpoints(h: Harness, known: Known): Endpoint[] {
  const beacon = (pick: number) => at(known.beacons, pick).beaconId;
  const absence = (pick: number) => at(known.absences, pick);
  const times = () => ({ startsAt: h.clock.ms + MIN, endsAt: h.clock.ms + 60 * MIN });
  const pub = (method: string, pattern: string, path: Endpoint['path'], body?: Endpoint['body']) =>
    ({
      listener: 'public',
      method,
      pattern,
      express: true,
      path,
      ...(body ? { body } : {}),
    }) as Endpoint;
  const internal = (
    method: string,
    pattern: string,
    path: Endpoint['path'],
    body?: Endpoint['body'],
  ) =>
    ({
      listener: 'internal',
      method,
      pattern,
      express: true,
      path,
      ...(body ? { body } : {}),
    }) as Endpoint;
  return [
    pub('GET', '/healthz', () => '/healthz'),
    pub('GET', '/readyz', () => '/readyz'),
    pub(
      'POST',
      '/v1/quarantines',
      () => '/v1/quarantines',
      () => JSON.parse(new TestBeacon().registration()) as unknown,
    ),
    pub(
      'POST',
      '/v1/quarantines/:beaconId/end',
      (p) => `/v1/quarantines/${beacon(p)}/end`,
      () => ({}),
    ),
    pub(
      'POST',
      '/v1/quarantines/:beaconId/absences',
      (p) => `/v1/quarantines/${beacon(p)}/absences`,
      times,
    ),
    pub(
      'GET',
      '/v1/quarantines/:beaconId/absences',
      (p) => `/v1/quarantines/${beacon(p)}/absences`,
    ),
    pub(
      'POST',
      '/v1/quarantines/:beaconId/absences/:absenceId/cancel',
      (p) => `/v1/quarantines/${absence(p).beaconId}/absences/${absence(p).absenceId}/cancel`,
      () => ({}),
    ),
    // The hot path has a handler of its own, outside Express.
    {
      listener: 'public',
      method: 'POST',
      pattern: '/v1/presence',
      express: false,
      path: () => '/v1/presence',
      body: (p) => {
        const b = at(known.beacons, p);
        return encodePresenceBody(b.skTPast, [b.token(h.clock.ms)]);
      },
    },
    internal('GET', '/healthz', () => '/healthz'),
    internal('GET', '/metrics', () => '/metrics'),
    internal(
      'POST',
      '/internal/v1/beacons/:beaconId/enable',
      (p) => `/internal/v1/beacons/${beacon(p)}/enable`,
    ),
    internal(
      'POST',
      '/internal/v1/beacons/:beaconId/end',
      (p) => `/internal/v1/beacons/${beacon(p)}/end`,
    ),
    internal(
      'POST',
      '/internal/v1/beacons/:beaconId/absences',
      (p) => `/internal/v1/beacons/${beacon(p)}/absences`,
      () => ({ absenceId: randomUUID(), ...times() }),
    ),
    internal(
      'POST',
      '/internal/v1/beacons/:beaconId/absences/:absenceId/cancel',
      (p) => `/internal/v1/beacons/${absence(p).beaconId}/absences/${absence(p).absenceId}/cancel`,
    ),
  ];
}

async function appListeners(h: Harness): Promise<Listener[]> {
  const pki = await testPki();
  const sha256 = (b: Buffer | undefined) =>
    createHash('sha256')
      .update(b ?? '')
      .digest('hex');
  const bearer = (auth: Auth, body: Buffer | undefined, request: string): Record<string, string> =>
    auth === 'none'
      ? {}
      : {
          authorization: `Bearer ${authorityJwt(request, '', h.clock.ms, {
            bodyHash: sha256(body),
            ...(auth === 'wrong' ? { privateKey: otherKey } : {}),
          })}`,
        };
  return [
    {
      name: 'public',
      port: () => h.backend.publicPort,
      client: (auth, body, request) => ({
        tls: { ca: pki.ca.cert },
        headers: bearer(auth, body, request),
      }),
    },
    {
      // Refusals at the handshake are tested in app-backend/test/boundaries.test.ts; here every
      // client has a certificate of our CA, the police backend's or (wrongly) another service's.
      name: 'internal',
      port: () => h.backend.internalPort,
      client: (auth) => {
        const cert = auth === 'valid' ? pki.policeBackend : pki.appBackend;
        return { tls: { ca: pki.ca.cert, cert: cert.cert, key: cert.key }, headers: {} };
      },
    },
  ];
}

for (const target of databaseTargets()) {
  describe(`fuzzing every app backend endpoint on ${target.name}`, function () {
    this.timeout(120_000);
    let db: Database;
    let stub: PoliceStub;
    let h: Harness;
    let routes: string[];
    const known: Known = { beacons: [], absences: [] };

    before(async () => {
      db = await target.open();
      stub = new PoliceStub();
      await stub.up();
      ({ result: h, routes } = await recordRoutes(() => startBackend(db, stub)));
      for (let i = 0; i < 3; i++) {
        const b = new TestBeacon();
        await monitored(h, b);
        known.beacons.push(b);
        const absenceId = randomUUID();
        const r = await police(h, `/internal/v1/beacons/${b.beaconId}/absences`, 'POST', {
          absenceId,
          startsAt: h.clock.ms + 10 * MIN,
          endsAt: h.clock.ms + 70 * MIN,
        });
        assert.equal(r.status, 200);
        known.absences.push({ beaconId: b.beaconId, absenceId });
      }
      known.beacons.push(new TestBeacon()); // never registered
    });
    after(async () => {
      await h.backend.close();
      await stub.down();
      await db.close();
    });

    it('fuzzes every route its routers register, and no route that is gone', () => {
      const fuzzed = appEndpoints(h, known)
        .filter((e) => e.express)
        .map((e) => `${e.method} ${e.pattern}`);
      assert.ok(routes.length >= 10, `routes were read from the routers (${routes.length})`);
      assert.deepEqual(coverageGaps(routes, fuzzed), { notFuzzed: [], stale: [] });
    });

    it('answers random methods, paths, headers and bodies below 500, with a stable code for every 4xx, and writes no row for a refusal', async () => {
      const fuzz: FuzzTarget = {
        listeners: await appListeners(h),
        endpoints: appEndpoints(h, known),
        db,
        settle: () => h.backend.flush(),
      };
      const tally = await fuzzHttp(fuzz, fuzzRuns(150));
      await assertStillAnswering(fuzz);
      assert.ok(tally.refusedWithoutWrites > tally.cases / 4, 'most cases were refusals');
      if (process.env.FUZZ_RUNS)
        console.log(`      ${formatTally(`app backend (${target.name})`, tally)}`);
    });
  });
}
