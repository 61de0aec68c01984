import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import type { Database } from '../../backend-kit/db.js';
import { LOCKOUT_MS, MAX_FAILED_SIGN_INS } from '../../police-backend/src/officers.js';
import { SESSION_ENDED } from '../../police-backend/src/live.js';
import { SESSION_LIFETIME_MS } from '../../police-backend/src/session.js';
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
import { StubApp } from '../../police-backend/test/stub-app.js';
import { databaseTargets } from '../support/databases.js';
import { type HttpResult, httpsRequest } from '../support/https-client.js';
import { testPki } from '../support/pki.js';
import { databaseDigest } from './db-digest.js';
import { type Route, appServing, recordRoutes, routeKey } from './route-inventory.js';

type Claims = Record<string, unknown>;

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const tokenOf = (s: Session) => s.cookie.slice(s.cookie.indexOf('=') + 1);
const claimsOf = (s: Session): Claims =>
  JSON.parse(Buffer.from(tokenOf(s).split('.')[1] as string, 'base64url').toString()) as Claims;
const without = (claims: Claims, name: string): Claims => {
  const copy = { ...claims };
  delete copy[name];
  return copy;
};
const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();
const randomBeaconId = () => `SB-${randomBytes(4).toString('hex')}`;

for (const target of databaseTargets()) {
  describe(`officer authentication on ${target.name}`, function () {
    this.timeout(60_000);
    let db: Database;
    let app: StubApp;
    let h: PoliceHarness;
    let officerRoutes: Route[];
    /** The session most requests use, a second officer's, and one kept for signing out. */
    let s: Session;
    let other: Session;
    let leaving: Session;
    const ids = { enable: randomBeaconId(), end: randomBeaconId(), monitored: randomBeaconId() };
    let alertId = '';
    let absenceId = '';

    /** Sign a session token with the police backend's own key (or another), as given. */
    const sign = (claims: Claims, key = h.sessionKeys.privateKey) =>
      jwt.sign(claims, key, { algorithm: 'ES256', noTimestamp: !('iat' in claims) });
    const withToken = (token: string): Session => ({ cookie: `sb_session=${token}`, csrf: s.csrf });
    const whoAmI = (session: Session) => api(h, session, 'GET', '/api/session');

    before(async () => {
      db = await target.open();
      app = await StubApp.start();
      const started = await recordRoutes(() => startPolice(db, { appUrl: app.url }));
      h = started.result;
      officerRoutes = appServing(started.apps, /^\/api\/session$/);
      s = await signIn(h, 'officer1');
      other = await signIn(h, 'officer2');
      leaving = await signIn(h, 'officer3');
      for (const beaconId of Object.values(ids))
        await api(h, s, 'POST', '/api/beacons', { beaconId, address: '1 High St', caseRef: 'C-1' });
      await api(h, s, 'POST', `/api/beacons/${ids.monitored}/enable`, {});
      assert.equal(await h.backend.sendCommands(), 1, 'the stub app backend confirms monitoring');
      const when = { startsAt: h.clock.ms + 600_000, endsAt: h.clock.ms + 3_600_000 };
      const scheduled = await api(h, s, 'POST', `/api/beacons/${ids.monitored}/absences`, when);
      absenceId = scheduled.json<{ absence: { id: string } }>().absence.id;
      const m = alertMessage({ beaconId: ids.monitored });
      assert.equal((await postAlert(h, m)).status, 200);
      alertId = String(m.alertId);
    });
    after(async () => {
      await h?.backend.close();
      await app?.close();
      await db?.close();
    });

    describe('session token matrix', () => {
      // Each forgery starts from a real, live session's claims: its only defect is the one named.
      const cases: [string, (c: Claims, now: number) => string][] = [
        ['alg none', (c) => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(c)}.`],
        [
          'HS256 keyed with the public key',
          (c) => {
            const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(c)}`;
            const mac = createHmac('sha256', h.sessionKeys.publicKey).update(input);
            return `${input}.${mac.digest('base64url')}`;
          },
        ],
        ['ES256 from another key', (c) => sign(c, otherKey)],
        [
          'tampered payload (role raised after signing)',
          (c) => {
            const [head, , sig] = sign(c).split('.');
            return `${head}.${b64({ ...c, role: 'supervisor' })}.${sig}`;
          },
        ],
        [
          'tampered payload (another officer after signing)',
          (c) => {
            const [head, , sig] = sign(c).split('.');
            return `${head}.${b64({ ...c, username: 'officer2' })}.${sig}`;
          },
        ],
        [
          'expired (the session row still live)',
          (c, n) => sign({ ...c, iat: n - 9 * 3600, exp: n - 1 }),
        ],
        ['not yet valid (nbf a minute ahead)', (c, n) => sign({ ...c, nbf: n + 60 })],
        ['wrong issuer', (c) => sign({ ...c, iss: 'app-backend' })],
        ['wrong audience', (c) => sign({ ...c, aud: 'smartbeacon-app-backend' })],
        ['no issuer', (c) => sign(without(c, 'iss'))],
        ['no audience', (c) => sign(without(c, 'aud'))],
        ['no session ID', (c) => sign(without(c, 'sid'))],
        ['no CSRF value', (c) => sign(without(c, 'csrf'))],
        ['no subject', (c) => sign(without(c, 'sub'))],
        ['an unknown role', (c) => sign({ ...c, role: 'admin' })],
        [
          'a session ID with no session row',
          (c) => sign({ ...c, sid: randomBytes(16).toString('hex') }),
        ],
      ];

      it('accepts the real token re-signed with the same claims (the control)', async () => {
        const r = await whoAmI(withToken(sign(claimsOf(s))));
        assert.deepEqual(
          [r.status, r.json()],
          [200, { username: 'officer1', role: 'officer', csrf: s.csrf }],
        );
      });
      for (const [name, forge] of cases) {
        it(`refuses ${name}`, async () => {
          const r = await whoAmI(withToken(forge(claimsOf(s), h.clock.seconds)));
          assert.deepEqual([r.status, r.json()], [401, { error: 'NOT_SIGNED_IN' }]);
        });
      }
      it('refuses the token anywhere but in its cookie', async () => {
        const pki = await testPki();
        const r = await httpsRequest(
          h.backend.officerPort,
          'GET',
          '/api/session',
          { ca: pki.ca.cert },
          undefined,
          {
            authorization: `Bearer ${tokenOf(s)}`,
            'x-csrf-token': s.csrf,
          },
        );
        assert.deepEqual([r.status, r.json()], [401, { error: 'NOT_SIGNED_IN' }]);
      });
    });

    describe('CSRF on every state-changing officer route', () => {
      interface RouteCase {
        readonly request: () => { path: string; body: unknown };
        readonly success: number;
        /** The session the cells use (signing out gets one of its own). */
        readonly session?: () => Session;
      }
      const routes: Record<string, RouteCase> = {
        'DELETE /api/session': {
          request: () => ({ path: '/api/session', body: undefined }),
          success: 204,
          session: () => leaving,
        },
        'POST /api/alerts/:id/actions': {
          request: () => ({
            path: `/api/alerts/${alertId}/actions`,
            body: { action: 'acknowledge' },
          }),
          success: 200,
        },
        'POST /api/beacons': {
          request: () => ({
            path: '/api/beacons',
            body: { beaconId: randomBeaconId(), address: '2 Low Road', caseRef: 'C-2' },
          }),
          success: 201,
        },
        'POST /api/beacons/:id/enable': {
          request: () => ({ path: `/api/beacons/${ids.enable}/enable`, body: {} }),
          success: 202,
        },
        'POST /api/beacons/:id/end': {
          request: () => ({ path: `/api/beacons/${ids.end}/end`, body: {} }),
          success: 202,
        },
        'POST /api/beacons/:id/absences': {
          request: () => ({
            path: `/api/beacons/${ids.monitored}/absences`,
            body: { startsAt: h.clock.ms + 600_000, endsAt: h.clock.ms + 1_200_000 },
          }),
          success: 201,
        },
        'POST /api/absences/:absenceId/cancel': {
          request: () => ({ path: `/api/absences/${absenceId}/cancel`, body: {} }),
          success: 202,
        },
      };
      const send = async (
        session: Session | undefined,
        csrf: string | undefined,
        method: string,
        path: string,
        body: unknown,
      ): Promise<HttpResult> => {
        const pki = await testPki();
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (session) headers.cookie = session.cookie;
        if (csrf !== undefined) headers['x-csrf-token'] = csrf;
        const text = body === undefined ? undefined : JSON.stringify(body);
        return httpsRequest(
          h.backend.officerPort,
          method,
          path,
          { ca: pki.ca.cert },
          text,
          headers,
        );
      };

      it('covers every route that changes state, sign-in apart', () => {
        const changing = officerRoutes
          .filter((r) => r.method !== 'GET' && routeKey(r) !== 'POST /api/session')
          .map(routeKey);
        assert.deepEqual(changing.sort(), Object.keys(routes).sort());
      });

      for (const [key, route] of Object.entries(routes)) {
        const method = key.split(' ')[0] as string;
        describe(key, () => {
          const session = () => (route.session ?? (() => s))();
          const refusals: [
            string,
            () => [Session | undefined, string | undefined],
            number,
            string,
          ][] = [
            ['no CSRF header', () => [session(), undefined], 403, 'CSRF'],
            ['a forged CSRF value', () => [session(), 'f'.repeat(32)], 403, 'CSRF'],
            ["another session's CSRF value", () => [session(), other.csrf], 403, 'CSRF'],
            [
              'the CSRF value without the cookie',
              () => [undefined, session().csrf],
              401,
              'NOT_SIGNED_IN',
            ],
          ];
          for (const [name, who, status, code] of refusals) {
            it(`refuses ${name} (${code}) and writes nothing`, async () => {
              const { path, body } = route.request();
              const before = await databaseDigest(db);
              const [cookieOf, csrf] = who();
              const r = await send(cookieOf, csrf, method, path, body);
              assert.deepEqual([r.status, r.json()], [status, { error: code }]);
              assert.deepEqual(await databaseDigest(db), before);
            });
          }
          it('accepts the session with its own CSRF value', async () => {
            const { path, body } = route.request();
            const before = await databaseDigest(db);
            const r = await send(session(), session().csrf, method, path, body);
            assert.equal(r.status, route.success, r.body.toString());
            assert.notDeepEqual(await databaseDigest(db), before);
          });
        });
      }

      it('refuses a sign-in a cross-site form can send (no JSON type): no session, no cookie', async () => {
        const pki = await testPki();
        for (const type of [
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data',
        ]) {
          const before = await databaseDigest(db);
          const r = await httpsRequest(
            h.backend.officerPort,
            'POST',
            '/api/session',
            { ca: pki.ca.cert },
            JSON.stringify({ username: 'officer1', password: PASSWORD }),
            { 'content-type': type },
          );
          assert.deepEqual(
            [r.status, r.json(), r.headers['set-cookie']],
            [400, { error: 'BAD_REQUEST' }, undefined],
            type,
          );
          assert.deepEqual(await databaseDigest(db), before, type);
        }
      });
    });

    describe('live updates WebSocket', () => {
      /** Open /api/live; resolves with the first message, or the HTTP status that refused it. */
      const connect = async (headers: Record<string, string>) => {
        const pki = await testPki();
        return new Promise<{ status: number; message?: string }>((resolve, reject) => {
          const ws = new WebSocket(`wss://127.0.0.1:${h.backend.officerPort}/api/live`, {
            ca: pki.ca.cert,
            headers,
          });
          ws.on('message', (data: Buffer) => {
            resolve({ status: 101, message: data.toString() });
            ws.close();
          });
          ws.on('unexpected-response', (_req, res) => {
            resolve({ status: res.statusCode ?? 0 });
            res.resume();
          });
          ws.on('error', reject);
        });
      };
      const self = () => `https://127.0.0.1:${h.backend.officerPort}`;
      const cases: [string, () => Record<string, string>, number][] = [
        ['another origin', () => ({ origin: 'https://evil.example', cookie: s.cookie }), 403],
        [
          'the same host on another port',
          () => ({ origin: 'https://127.0.0.1:1', cookie: s.cookie }),
          403,
        ],
        [
          'the same host over http',
          () => ({ origin: self().replace('https', 'http'), cookie: s.cookie }),
          403,
        ],
        ['an opaque origin (null)', () => ({ origin: 'null', cookie: s.cookie }), 403],
        ['our origin without a session', () => ({ origin: self() }), 401],
        [
          'our origin with a forged session',
          () => ({
            origin: self(),
            cookie: `sb_session=${b64({ alg: 'none' })}.${b64(claimsOf(s))}.`,
          }),
          401,
        ],
      ];
      for (const [name, headers, status] of cases) {
        it(`refuses ${name} (${status}) and opens no feed`, async () => {
          const before = await databaseDigest(db);
          assert.deepEqual(await connect(headers()), { status });
          // Opening the feed is an audited address access: a refused upgrade leaves no trace.
          assert.deepEqual(await databaseDigest(db), before);
        });
      }
      it('opens the feed for our origin with a session, and for a client that sends no origin', async () => {
        for (const headers of [{ origin: self(), cookie: s.cookie }, { cookie: s.cookie }]) {
          const r = await connect(headers);
          assert.equal(r.status, 101);
          assert.deepEqual(JSON.parse(String(r.message)), { type: 'hello', username: 'officer1' });
        }
      });
    });

    describe('sign-in lockout', () => {
      const attempt = async (username: string, password: string) => {
        const r = await signInRaw(h, username, password);
        return `${r.status} ${r.json<{ error?: string }>().error ?? 'signed in'}`;
      };
      const WRONG = 'not the password';

      it(`locks after ${MAX_FAILED_SIGN_INS} failures since the last success, for exactly ${LOCKOUT_MS / 60_000} min; failures meanwhile neither count nor extend it`, async () => {
        await addOfficer(h, 'lock-a');
        for (let i = 0; i < MAX_FAILED_SIGN_INS - 1; i++)
          assert.equal(await attempt('lock-a', WRONG), '401 BAD_CREDENTIALS');
        assert.equal(await attempt('lock-a', PASSWORD), '200 signed in');
        // Counted from that success: without the reset the first of these would lock.
        for (let i = 0; i < MAX_FAILED_SIGN_INS; i++)
          assert.equal(await attempt('lock-a', WRONG), '401 BAD_CREDENTIALS');
        assert.equal(await attempt('lock-a', PASSWORD), '423 LOCKED_OUT');
        assert.equal(await attempt('lock-a', WRONG), '423 LOCKED_OUT');
        h.clock.advance(LOCKOUT_MS - 1);
        assert.equal(await attempt('lock-a', PASSWORD), '423 LOCKED_OUT');
        h.clock.advance(1);
        assert.equal(await attempt('lock-a', PASSWORD), '200 signed in');
      });

      it('cannot be outrun by guesses sent in parallel', async () => {
        await addOfficer(h, 'lock-c');
        const answers = await Promise.all(
          Array.from({ length: 2 * MAX_FAILED_SIGN_INS }, () => attempt('lock-c', WRONG)),
        );
        // Exactly the first five counted; every guess after the lock is answered as locked.
        const failed = answers.filter((a) => a === '401 BAD_CREDENTIALS').length;
        assert.deepEqual(
          [failed, answers.length - failed],
          [MAX_FAILED_SIGN_INS, answers.length - MAX_FAILED_SIGN_INS],
          String(answers),
        );
        assert.ok(answers.every((a) => a === '401 BAD_CREDENTIALS' || a === '423 LOCKED_OUT'));
        assert.equal(await attempt('lock-c', PASSWORD), '423 LOCKED_OUT');
      });

      it('answers an unknown username like a wrong password, and never as locked', async () => {
        for (let i = 0; i <= MAX_FAILED_SIGN_INS; i++)
          assert.equal(await attempt('nobody', WRONG), '401 BAD_CREDENTIALS');
      });
    });

    describe('stored XSS defences (the browser side: dashboard.e2e.test.ts)', () => {
      const get = async (path: string) =>
        httpsRequest(h.backend.officerPort, 'GET', path, { ca: (await testPki()).ca.cert });
      const directives = (csp: unknown) =>
        new Map(
          String(csp)
            .split(';')
            .map((d) => d.trim().split(/\s+/))
            .map(([name, ...values]) => [name as string, values]),
        );

      it('serves the page, its script and the API under a CSP with no inline script, eval or framing', async () => {
        for (const path of ['/', '/assets/app.js', '/api/session']) {
          const r = await get(path);
          const csp = directives(r.headers['content-security-policy']);
          assert.deepEqual(csp.get('script-src'), ["'self'"], path);
          assert.deepEqual(csp.get('default-src'), ["'self'"], path);
          assert.deepEqual(csp.get('frame-ancestors'), ["'none'"], path);
          assert.deepEqual(csp.get('base-uri'), ["'none'"], path);
          assert.equal(r.headers['x-content-type-options'], 'nosniff', path);
        }
      });

      it('has no inline script or handler in the page, and no HTML-parsing sink in the script served', async () => {
        // Every server string (address, case, notes, reasons, names) reaches the page as text.
        const page = (await get('/')).body.toString();
        for (const tag of page.match(/<script\b[^>]*>[\s\S]*?<\/script>/gi) ?? [])
          assert.match(tag, /^<script\b[^>]*\bsrc="\/assets\/[^"]+"[^>]*><\/script>$/);
        assert.doesNotMatch(page, /\son[a-z]+\s*=/i);
        const script = (await get('/assets/app.js')).body.toString();
        assert.ok(script.length > 10_000, 'the dashboard bundle was served');
        for (const sink of [
          /\.innerHTML\b/,
          /\.outerHTML\b/,
          /insertAdjacentHTML/,
          /document\.write/,
          /DOMParser/,
          /createContextualFragment/,
          /\.srcdoc\b/,
          /\beval\(/,
          /\bnew Function\(/,
        ])
          assert.equal(
            sink.exec(script)?.[0],
            undefined,
            `HTML sink ${String(sink)} in the bundle`,
          );
      });
    });

    describe('session lifetime (last: moves the clock by hours)', () => {
      it('revokes at sign-out: that token, even re-signed fresh, is dead; other sessions live on', async () => {
        const mine = await signIn(h, 'officer4');
        const again = await signInRaw(h, 'officer4');
        const second: Session = {
          cookie: String(again.headers['set-cookie']).split(';')[0] as string,
          csrf: again.json<{ csrf: string }>().csrf,
        };
        assert.equal((await api(h, mine, 'DELETE', '/api/session')).status, 204);
        assert.equal((await whoAmI(mine)).status, 401);
        const fresh = { ...claimsOf(mine), iat: h.clock.seconds, exp: h.clock.seconds + 3600 };
        assert.equal((await whoAmI({ ...mine, cookie: `sb_session=${sign(fresh)}` })).status, 401);
        assert.equal((await whoAmI(second)).status, 200);
      });

      it(`expires after ${SESSION_LIFETIME_MS / 3_600_000} h, on the server's record too`, async () => {
        const mine = await signIn(h, 'officer5');
        const longer = sign({ ...claimsOf(mine), exp: h.clock.seconds + 48 * 3600 });
        h.clock.advance(SESSION_LIFETIME_MS - 1000);
        assert.equal((await whoAmI(mine)).status, 200);
        h.clock.advance(1000);
        assert.deepEqual((await whoAmI(mine)).json(), { error: 'NOT_SIGNED_IN' });
        // A token stretched past the lifetime still dies with its session row.
        assert.equal((await whoAmI({ ...mine, cookie: `sb_session=${longer}` })).status, 401);
        assert.equal((await api(h, mine, 'POST', '/api/beacons', {})).status, 401);
      });

      it('closes an open live feed at sign-out, and at the next check once its session expired', async () => {
        const pki = await testPki();
        /** An open feed (after its hello) and the close code it will end with. */
        const feed = (session: Session) =>
          new Promise<{ closed: Promise<number> }>((resolve, reject) => {
            const ws = new WebSocket(`wss://127.0.0.1:${h.backend.officerPort}/api/live`, {
              ca: pki.ca.cert,
              headers: { cookie: session.cookie },
            });
            const closed = new Promise<number>((done) => ws.on('close', (code) => done(code)));
            ws.once('message', () => resolve({ closed }));
            ws.on('error', reject);
          });
        const leaver = await signIn(h, 'officer6');
        const stayer = await signIn(h, 'officer7');
        const leaverFeed = (await feed(leaver)).closed;
        const stayerFeed = (await feed(stayer)).closed;
        let stayerClosed = false;
        void stayerFeed.then(() => (stayerClosed = true));
        assert.equal((await api(h, leaver, 'DELETE', '/api/session')).status, 204);
        assert.equal(await leaverFeed, SESSION_ENDED);
        await h.backend.live.recheckSessions();
        assert.equal(stayerClosed, false, 'a live session keeps its feed through a check');
        h.clock.advance(SESSION_LIFETIME_MS);
        await h.backend.live.recheckSessions();
        assert.equal(await stayerFeed, SESSION_ENDED);
        assert.equal(h.backend.live.clients, 0);
      });
    });
  });
}
