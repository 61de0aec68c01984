import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { connect } from 'node:tls';
import fc from 'fast-check';
import type { Database } from '../../backend-kit/db.js';
import {
  PASSWORD,
  type PoliceHarness,
  type Session,
  addOfficer,
  alertMessage,
  api,
  postAlert,
  signIn,
  signInRaw,
  startPolice,
} from '../../police-backend/test/harness.js';
import { SESSION_COOKIE } from '../../police-backend/src/session.js';
import { StubApp } from '../../police-backend/test/stub-app.js';
import { databaseTargets } from '../support/databases.js';
import { testPki } from '../support/pki.js';
import {
  type Endpoint,
  type FuzzTarget,
  type Listener,
  assertStillAnswering,
  formatTally,
  fuzzHttp,
} from './http-property.js';
import { coverageGaps, recordRoutes } from './routes.js';
import { changedTables, tableNames, tableSums } from './checksums.js';
import { fuzzRuns, fuzzSeed } from './runs.js';

const MIN = 60_000;
/** The officer whose session signs the fuzzed requests (a supervisor: every route is open to them). */
const FUZZER = 'fuzz-supervisor';
/** The account the sign-in bodies name, so failed sign-ins never lock the fuzzer out. */
const SIGN_IN_TARGET = 'fuzz-signin';

interface Known {
  readonly beacons: string[];
  readonly alerts: string[];
  readonly absences: string[];
}

const at = <T>(list: readonly T[], pick: number): T => list[pick % list.length] as T;

function policeEndpoints(h: PoliceHarness, known: Known): Endpoint[] {
  const beacon = (p: number) => at(known.beacons, p);
  const officer = (
    method: string,
    pattern: string,
    path: Endpoint['path'],
    body?: Endpoint['body'],
  ) =>
    ({
      listener: 'officer',
      method,
      pattern,
      express: true,
      path,
      ...(body ? { body } : {}),
    }) as Endpoint;
  const internal = (pattern: string, body: Endpoint['body']) =>
    ({
      listener: 'internal',
      method: 'POST',
      pattern,
      express: true,
      path: () => pattern,
      body,
    }) as Endpoint;
  return [
    officer('GET', '/healthz', () => '/healthz'),
    officer('GET', '/', () => '/'),
    officer(
      'POST',
      '/api/session',
      () => '/api/session',
      () => ({
        username: SIGN_IN_TARGET,
        password: PASSWORD,
      }),
    ),
    officer('GET', '/api/session', () => '/api/session'),
    officer('DELETE', '/api/session', () => '/api/session'),
    officer('GET', '/api/alerts', () => '/api/alerts?view=queue'),
    officer('GET', '/api/alerts/:id', (p) => `/api/alerts/${at(known.alerts, p)}`),
    officer(
      'POST',
      '/api/alerts/:id/actions',
      (p) => `/api/alerts/${at(known.alerts, p)}/actions`,
      (p) =>
        at(
          [
            { action: 'acknowledge' },
            { action: 'dispatch' },
            { action: 'resolve', outcome: 'false_alarm', note: 'checked' },
          ],
          p,
        ),
    ),
    officer('GET', '/api/beacons', () => '/api/beacons'),
    officer(
      'POST',
      '/api/beacons',
      () => '/api/beacons',
      () => ({
        beaconId: `SB-${randomBytes(4).toString('hex')}`,
        address: '12 Fuzz Street',
        caseRef: 'C-FUZZ',
      }),
    ),
    officer(
      'POST',
      '/api/beacons/:id/enable',
      (p) => `/api/beacons/${beacon(p)}/enable`,
      () => ({}),
    ),
    officer(
      'POST',
      '/api/beacons/:id/end',
      (p) => `/api/beacons/${beacon(p)}/end`,
      () => ({}),
    ),
    officer('GET', '/api/beacons/:id', (p) => `/api/beacons/${beacon(p)}`),
    officer('GET', '/api/beacons/:id/absences', (p) => `/api/beacons/${beacon(p)}/absences`),
    officer(
      'POST',
      '/api/beacons/:id/absences',
      (p) => `/api/beacons/${beacon(p)}/absences`,
      () => ({
        startsAt: h.clock.ms + MIN,
        endsAt: h.clock.ms + 60 * MIN,
        reason: 'test appointment',
      }),
    ),
    officer(
      'POST',
      '/api/absences/:absenceId/cancel',
      (p) => `/api/absences/${at(known.absences, p)}/cancel`,
      () => ({}),
    ),
    officer('GET', '/api/stats/daily', () => '/api/stats/daily?days=7'),
    officer('GET', '/api/audit', () => '/api/audit?limit=5'),
    // Outside the routers: the dashboard's static files and the live feed (a WebSocket upgrade
    // on this path; here it is asked as plain HTTP).
    {
      listener: 'officer',
      method: 'GET',
      pattern: '/assets',
      express: false,
      path: () => '/assets/app.js',
    },
    {
      listener: 'officer',
      method: 'GET',
      pattern: '/api/live',
      express: false,
      path: () => '/api/live',
    },
    {
      listener: 'internal',
      method: 'GET',
      pattern: '/healthz',
      express: true,
      path: () => '/healthz',
    },
    internal('/internal/v1/alerts', (p) => alertMessage({ beaconId: beacon(p) })),
    internal('/internal/v1/alert-batches', (p) => ({
      alerts: [alertMessage({ beaconId: beacon(p) }), alertMessage({ beaconId: beacon(p + 1) })],
    })),
  ];
}

async function policeListeners(h: PoliceHarness, session: () => Session): Promise<Listener[]> {
  const pki = await testPki();
  return [
    {
      // Forged and expired sessions are refused in police.test.ts; here the session is real and
      // "wrong" is a missing or wrong CSRF value.
      name: 'officer',
      port: () => h.backend.officerPort,
      client: (auth) => ({
        tls: { ca: pki.ca.cert },
        headers:
          auth === 'none'
            ? {}
            : {
                cookie: session().cookie,
                'x-csrf-token':
                  auth === 'valid' ? session().csrf : randomBytes(16).toString('base64url'),
              },
      }),
    },
    {
      name: 'internal',
      port: () => h.backend.internalPort,
      client: (auth) => {
        const cert = auth === 'valid' ? pki.appBackend : pki.policeBackend;
        return {
          tls: { ca: pki.ca.cert, cert: cert.cert, key: cert.key },
          headers: { 'idempotency-key': randomUUID() },
        };
      },
    },
  ];
}

/**
 * One WebSocket upgrade request over TLS; the status of the answer's first line (0: none). An
 * accepted upgrade is read up to the feed's hello, which follows the opening's audit row.
 */
function upgradeStatus(
  port: number,
  ca: string,
  path: string,
  headers: readonly (readonly [string, string])[],
): Promise<number> {
  return new Promise((resolve, reject) => {
    let head = '';
    const status = () => Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const lines = [`GET ${path} HTTP/1.1`, `Host: localhost:${port}`];
      for (const [k, v] of headers) lines.push(`${k}: ${v}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n') && (status() !== 101 || head.includes('"hello"'))) {
        socket.destroy();
        resolve(status());
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(status()));
  });
}

for (const target of databaseTargets()) {
  describe(`fuzzing every police backend endpoint on ${target.name}`, function () {
    this.timeout(120_000);
    let db: Database;
    let h: PoliceHarness;
    let app: StubApp;
    let routes: string[];
    let session: Session;
    const known: Known = { beacons: [], alerts: [], absences: [] };

    before(async () => {
      db = await target.open();
      app = await StubApp.start();
      ({ result: h, routes } = await recordRoutes(() => startPolice(db, { appUrl: app.url })));
      session = await signIn(h, FUZZER, 'supervisor');
      await addOfficer(h, SIGN_IN_TARGET);
      for (let i = 0; i < 3; i++) {
        const beaconId = `SB-${randomBytes(4).toString('hex')}`;
        const b = await api(h, session, 'POST', '/api/beacons', {
          beaconId,
          address: `${i + 1} Fuzz Street`,
          caseRef: `C-${i}`,
        });
        assert.equal(b.status, 201);
        known.beacons.push(beaconId);
        await api(h, session, 'POST', `/api/beacons/${beaconId}/enable`, {});
        await h.backend.sendCommands(); // the (stub) app backend confirms monitoring
        const alert = alertMessage({ beaconId });
        assert.equal((await postAlert(h, alert)).status, 200);
        known.alerts.push(String(alert.alertId));
        const a = await api(h, session, 'POST', `/api/beacons/${beaconId}/absences`, {
          startsAt: h.clock.ms + 10 * MIN,
          endsAt: h.clock.ms + 70 * MIN,
          reason: 'test appointment',
        });
        assert.equal(a.status, 201);
        known.absences.push(a.json<{ absence: { id: string } }>().absence.id);
      }
      known.beacons.push('SB-unknown');
    });
    after(async () => {
      await h.backend.close();
      await app.close();
      await db.close();
    });

    it('fuzzes every route its routers register, and no route that is gone', () => {
      const fuzzed = policeEndpoints(h, known)
        .filter((e) => e.express)
        .map((e) => `${e.method} ${e.pattern}`);
      assert.ok(routes.length >= 15, `routes were read from the routers (${routes.length})`);
      assert.deepEqual(coverageGaps(routes, fuzzed), { notFuzzed: [], stale: [] });
    });

    it('answers random WebSocket upgrades to the live feed with 101 or a refusal, writing nothing for a refusal', async () => {
      const pki = await testPki();
      const tables = await tableNames(db);
      const own = () => `https://localhost:${h.backend.officerPort}`;
      const upgrade = fc.record({
        path: fc.oneof(
          { weight: 4, arbitrary: fc.constant('/api/live') },
          {
            weight: 1,
            arbitrary: fc.constantFrom(
              '/api/live?x=1',
              '/api/live/',
              '/api/other',
              '/',
              '/api/live%00',
            ),
          },
        ),
        origin: fc.option(
          fc.constantFrom('own', 'https://evil.example', 'null', 'https://localhost'),
        ),
        cookie: fc.constantFrom('valid', 'valid', 'none', 'forged'),
        version: fc.constantFrom('13', '13', '13', '8', 'x', ''),
        key: fc.constantFrom('valid', 'valid', 'valid', 'short', ''),
        connection: fc.constantFrom('Upgrade', 'Upgrade', 'keep-alive, Upgrade', 'upgrade'),
      });
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(upgrade, async (u) => {
          const headers: [string, string][] = [
            ['Connection', u.connection],
            ['Upgrade', 'websocket'],
            ['Sec-WebSocket-Version', u.version],
            [
              'Sec-WebSocket-Key',
              u.key === 'valid'
                ? randomBytes(16).toString('base64')
                : u.key === 'short'
                  ? 'abc'
                  : '',
            ],
          ];
          if (u.origin !== null) headers.push(['Origin', u.origin === 'own' ? own() : u.origin]);
          if (u.cookie === 'valid') headers.push(['Cookie', session.cookie]);
          if (u.cookie === 'forged') headers.push(['Cookie', `${SESSION_COOKIE}=e30.e30.x`]);
          const before = await tableSums(db, tables);
          const status = await upgradeStatus(h.backend.officerPort, pki.ca.cert, u.path, headers);
          const after = await tableSums(db, tables);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          assert.ok(
            [101, 400, 401, 403, 404, 426].includes(status),
            `${status} for ${JSON.stringify(u)}`,
          );
          // Opening the feed is an access to addresses: audited when it succeeds, never otherwise.
          const written = changedTables(before, after);
          if (status === 101) assert.deepEqual(written, ['audit_log']);
          else
            assert.deepEqual(
              written,
              [],
              `refused with ${status}, yet wrote to ${written.join(', ')}: ${JSON.stringify(u)}`,
            );
        }),
        { numRuns: fuzzRuns(60), ...fuzzSeed() },
      );
      assert.ok(
        (statuses.get(101) ?? 0) > 0 && statuses.size > 2,
        `a mix of answers: ${[...statuses]}`,
      );
      if (process.env.FUZZ_RUNS)
        console.log(
          `      live feed upgrades (${target.name}): ${[...statuses].map(([k, n]) => `${k}×${n}`).join(' ')}`,
        );
      const r = await api(h, session, 'GET', '/healthz');
      assert.equal(r.status, 200);
    });

    it('answers random methods, paths, headers and bodies below 500, with a stable code for every 4xx, and writes no row for a refusal', async () => {
      const fuzz: FuzzTarget = {
        listeners: await policeListeners(h, () => session),
        endpoints: policeEndpoints(h, known),
        db,
        settle: () => Promise.resolve(),
        // A refused sign-in is counted against the account and audited: by design (lockout).
        writesOnRefusal: (method, path) =>
          method === 'POST' && path === '/api/session' ? ['officers', 'audit_log'] : [],
        afterEach: async (e, r) => {
          if (e.pattern === '/api/session' && r.status === 204) {
            // The fuzzer signed itself out: sign in again, outside the measured request.
            const again = await signInRaw(h, FUZZER);
            assert.equal(again.status, 200);
            session = {
              cookie: String(again.headers['set-cookie']).split(';')[0] as string,
              csrf: again.json<{ csrf: string }>().csrf,
            };
          }
        },
      };
      assert.ok(session.cookie.startsWith(`${SESSION_COOKIE}=`));
      const tally = await fuzzHttp(fuzz, fuzzRuns(150));
      await assertStillAnswering(fuzz);
      assert.ok(tally.refusedWithoutWrites > tally.cases / 4, 'most cases were refusals');
      if (process.env.FUZZ_RUNS)
        console.log(`      ${formatTally(`police backend (${target.name})`, tally)}`);
    });
  });
}
