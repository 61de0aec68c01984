import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Database } from '../../backend-kit/db.js';
import {
  type Harness,
  PoliceStub,
  TestBeacon,
  police,
  register,
  startBackend,
} from '../../app-backend/test/harness.js';
import {
  type PoliceHarness,
  alertMessage,
  startPolice,
} from '../../police-backend/test/harness.js';
import { databaseTargets } from '../support/databases.js';
import { testPki } from '../support/pki.js';
import { type HttpResult, type TlsClient, httpsRequest } from '../support/https-client.js';
import { databaseDigest } from './db-digest.js';
import { type Route, appServing, recordRoutes, routeKey } from './route-inventory.js';
import { type ClientCase, clientCases } from './tls-clients.js';

/** One request to a route: the concrete path, body and headers. */
interface Request {
  readonly path: string;
  readonly body?: string;
  readonly headers?: Record<string, string>;
}

interface RouteCase {
  readonly request: () => Request;
  /** Whether the right client's request changes the database (so a refused one would have). */
  readonly writes: boolean;
}

/** Handshake refusals reach the client as a TLS alert or a reset, never as an HTTP answer. */
const HANDSHAKE_ERROR = /^(ERR_SSL_|ECONNRESET$|EPIPE$)/;

async function expectOutcome(c: ClientCase, send: (tls: TlsClient) => Promise<HttpResult>) {
  const tls = await c.tls();
  if (c.expected === 'handshake') {
    await assert.rejects(send(tls), (err: NodeJS.ErrnoException) => {
      assert.match(String(err.code), HANDSHAKE_ERROR);
      return true;
    });
    return;
  }
  const r = await send(tls);
  if (c.expected === 'forbidden')
    assert.deepEqual([r.status, r.json()], [403, { error: 'PEER_NOT_ALLOWED' }]);
  else assert.ok(r.status >= 200 && r.status < 300, `${r.status} ${r.body.toString()}`);
}

const requestsLogged = (lines: string[]) =>
  lines.filter((l) => (JSON.parse(l) as { msg?: string }).msg === 'request').length;

/** Every client of the matrix against one route: refused ones write nothing, the right one works. */
function routeMatrix(
  cases: ClientCase[],
  db: () => Database,
  logs: () => string[],
  route: RouteCase,
  send: (tls: TlsClient, req: Request) => Promise<HttpResult>,
  afterRefusal?: (c: ClientCase) => void,
): void {
  for (const c of cases) {
    it(`${c.expected === 'accepted' ? 'serves' : 'refuses'} ${c.name}`, async () => {
      const before = await databaseDigest(db());
      const served = requestsLogged(logs());
      await expectOutcome(c, (tls) => send(tls, route.request()));
      const after = await databaseDigest(db());
      // Refused at the handshake: no HTTP request ever reached the application.
      if (c.expected === 'handshake') assert.equal(requestsLogged(logs()), served);
      if (c.expected !== 'accepted') {
        assert.deepEqual(after, before, 'a refused request wrote nothing');
        afterRefusal?.(c);
      } else if (route.writes) assert.notDeepEqual(after, before, 'the right client did write');
    });
  }
}

for (const target of databaseTargets()) {
  describe(`mutual TLS matrix on ${target.name}`, function () {
    this.timeout(60_000);

    describe('app backend internal listener (the police backend only)', () => {
      let db: Database;
      let stub: PoliceStub;
      let h: Harness;
      let served: Route[];
      const beacons = {
        enable: new TestBeacon(),
        absences: new TestBeacon(),
        cancel: new TestBeacon(),
        end: new TestBeacon(),
      };
      const cancelId = randomUUID();
      const absence = (absenceId: string) =>
        JSON.stringify({
          absenceId,
          startsAt: h.clock.ms + 60_000,
          endsAt: h.clock.ms + 3_600_000,
        });
      const json = { 'content-type': 'application/json' };
      const routes: Record<string, RouteCase> = {
        'GET /healthz': { request: () => ({ path: '/healthz' }), writes: false },
        'GET /metrics': { request: () => ({ path: '/metrics' }), writes: false },
        'POST /internal/v1/beacons/:beaconId/enable': {
          request: () => ({ path: `/internal/v1/beacons/${beacons.enable.beaconId}/enable` }),
          writes: true,
        },
        'POST /internal/v1/beacons/:beaconId/end': {
          request: () => ({ path: `/internal/v1/beacons/${beacons.end.beaconId}/end` }),
          writes: true,
        },
        'POST /internal/v1/beacons/:beaconId/absences': {
          request: () => ({
            path: `/internal/v1/beacons/${beacons.absences.beaconId}/absences`,
            body: absence(randomUUID()),
            headers: json,
          }),
          writes: true,
        },
        'POST /internal/v1/beacons/:beaconId/absences/:absenceId/cancel': {
          request: () => ({
            path: `/internal/v1/beacons/${beacons.cancel.beaconId}/absences/${cancelId}/cancel`,
          }),
          writes: true,
        },
      };
      const cases = clientCases('policeBackend', 'appBackend', 'police-backend');

      before(async () => {
        db = await target.open();
        stub = new PoliceStub();
        await stub.up();
        const started = await recordRoutes(() => startBackend(db, stub));
        h = started.result;
        served = appServing(started.apps, /^\/internal\//);
        for (const b of Object.values(beacons)) assert.equal((await register(h, b)).status, 201);
        for (const b of [beacons.absences, beacons.cancel, beacons.end])
          assert.equal((await police(h, `/internal/v1/beacons/${b.beaconId}/enable`)).status, 200);
        const scheduled = await police(
          h,
          `/internal/v1/beacons/${beacons.cancel.beaconId}/absences`,
          'POST',
          JSON.parse(absence(cancelId)),
        );
        assert.equal(scheduled.status, 200);
      });
      after(async () => {
        await h?.backend.close();
        await stub?.down();
        await db?.close();
      });

      it('covers every route the listener serves', () => {
        assert.deepEqual(served.map(routeKey).sort(), Object.keys(routes).sort());
      });

      it('serves none of its internal routes nor its metrics on the public listener', async () => {
        const pki = await testPki();
        const tls = { ca: pki.ca.cert, cert: pki.policeBackend.cert, key: pki.policeBackend.key };
        // The public listener has a health check of its own; everything else is internal only.
        const internalOnly = Object.entries(routes).filter(([k]) => k !== 'GET /healthz');
        for (const [key, route] of internalOnly) {
          const req = route.request();
          const r = await httpsRequest(
            h.backend.publicPort,
            key.split(' ')[0] as string,
            req.path,
            tls,
            req.body,
            req.headers,
          );
          assert.deepEqual([r.status, r.json()], [404, { error: 'NOT_FOUND' }], key);
        }
      });

      for (const [key, route] of Object.entries(routes)) {
        describe(key, () => {
          const method = key.split(' ')[0] as string;
          routeMatrix(
            cases,
            () => db,
            () => h.logs,
            route,
            (tls, req) =>
              httpsRequest(h.backend.internalPort, method, req.path, tls, req.body, req.headers),
          );
        });
      }
    });

    describe('police backend internal listener (the app backend only)', () => {
      let db: Database;
      let h: PoliceHarness;
      let served: Route[];
      const alert = () => alertMessage({ alertId: randomUUID() });
      const routes: Record<string, RouteCase> = {
        'GET /healthz': { request: () => ({ path: '/healthz' }), writes: false },
        'POST /internal/v1/alerts': {
          request: () => {
            const m = alert();
            return {
              path: '/internal/v1/alerts',
              body: JSON.stringify(m),
              headers: { 'idempotency-key': String(m.alertId) },
            };
          },
          writes: true,
        },
        'POST /internal/v1/alert-batches': {
          request: () => ({
            path: '/internal/v1/alert-batches',
            body: JSON.stringify({ alerts: [alert(), alert()] }),
          }),
          writes: true,
        },
      };
      const cases = clientCases('appBackend', 'policeBackend', 'app-backend');

      before(async () => {
        db = await target.open();
        const started = await recordRoutes(() => startPolice(db));
        h = started.result;
        served = appServing(started.apps, /^\/internal\//);
      });
      after(async () => {
        await h?.backend.close();
        await db?.close();
      });

      it('covers every route the listener serves', () => {
        assert.deepEqual(served.map(routeKey).sort(), Object.keys(routes).sort());
      });

      it('serves none of its internal routes on the officer listener, whatever the certificate', async () => {
        const pki = await testPki();
        const tls = { ca: pki.ca.cert, cert: pki.appBackend.cert, key: pki.appBackend.key };
        for (const [key, route] of Object.entries(routes).filter(([k]) =>
          k.includes('/internal/'),
        )) {
          const before = await databaseDigest(db);
          const req = route.request();
          const r = await httpsRequest(h.backend.officerPort, 'POST', req.path, tls, req.body, {
            'content-type': 'application/json',
            ...req.headers,
          });
          assert.deepEqual([r.status, r.json()], [404, { error: 'NOT_FOUND' }], key);
          assert.deepEqual(await databaseDigest(db), before);
        }
      });

      // POSTs with a JSON type and a length take the lean path; chunked ones go through Express.
      const transports = [
        { name: 'lean path', chunked: false, loggedRoute: (path: string) => path },
        { name: 'Express path', chunked: true, loggedRoute: () => 'unmatched' },
      ];
      for (const [key, route] of Object.entries(routes)) {
        const method = key.split(' ')[0] as string;
        for (const t of method === 'POST' ? transports : transports.slice(1)) {
          describe(`${key} (${t.name})`, () => {
            let lastPath = '';
            routeMatrix(
              cases,
              () => db,
              () => h.logs,
              route,
              (tls, req) => {
                lastPath = req.path;
                return httpsRequest(
                  h.backend.internalPort,
                  method,
                  req.path,
                  tls,
                  req.body,
                  { 'content-type': 'application/json', ...req.headers },
                  t.chunked,
                );
              },
              (c) => {
                if (c.expected !== 'forbidden') return;
                // The request log tells the two paths apart: the lean one names the route it took.
                const line = JSON.parse(h.logs.at(-1) ?? '{}') as {
                  route?: string;
                  status?: number;
                };
                assert.deepEqual([line.route, line.status], [t.loggedRoute(lastPath), 403]);
              },
            );
          });
        }
      }
    });
  });
}
