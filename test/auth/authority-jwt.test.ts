import assert from 'node:assert/strict';
import { createHash, createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Database } from '../../backend-kit/db.js';
import {
  type Harness,
  PoliceStub,
  TestBeacon,
  authority,
  authorityKeys,
  police,
  register,
  startBackend,
} from '../../app-backend/test/harness.js';
import { databaseTargets } from '../support/databases.js';
import { httpsRequest } from '../support/https-client.js';
import { testPki } from '../support/pki.js';
import { databaseDigest } from './db-digest.js';
import { type Route, appServing, recordRoutes, routeKey } from './route-inventory.js';

type Claims = Record<string, unknown>;

const ISSUER = 'health-authority';
const AUDIENCE = 'smartbeacon-app-backend';
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const pem = (key: { export(o: { type: 'pkcs8'; format: 'pem' }): string | Buffer }) =>
  key.export({ type: 'pkcs8', format: 'pem' }).toString();
const otherEcKey = pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
const p384Key = pem(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey);

/** The claims the health authority's CLI sends for `body` at `now` (seconds). */
const goodClaims = (body: string, now: number, request: string): Claims => ({
  iss: ISSUER,
  aud: AUDIENCE,
  iat: now,
  exp: now + 60,
  jti: randomUUID(),
  body_sha256: sha256(body),
  req: request,
});
// jsonwebtoken keeps a given iat, adds one (from the wall clock) to claims without it.
const es256 = (
  claims: Claims,
  key = authorityKeys.privateKey,
  algorithm: 'ES256' | 'ES384' = 'ES256',
) => jwt.sign(claims, key, { algorithm, noTimestamp: !('iat' in claims) });
const without = (claims: Claims, name: string): Claims => {
  const copy = { ...claims };
  delete copy[name];
  return copy;
};
/** An unsigned token, or one whose payload was changed after signing. */
const unsigned = (claims: Claims) => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
const hs256WithPublicKey = (claims: Claims) => {
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  const mac = createHmac('sha256', authorityKeys.publicKey).update(input).digest('base64url');
  return `${input}.${mac}`;
};
const tampered = (claims: Claims, change: Claims) => {
  const [head, , sig] = es256(claims).split('.');
  return `${head}.${b64({ ...claims, ...change })}.${sig}`;
};

interface JwtCase {
  readonly name: string;
  /**
   * The Authorization header for `body` at `now` (seconds) on `request` (method and path);
   * `spent` is a jti already used.
   */
  readonly header: (body: string, now: number, spent: string, request: string) => string;
  readonly code: string;
}

const bearer = (token: string) => `Bearer ${token}`;
const good = (body: string, now: number, request: string) => goodClaims(body, now, request);

/** Every way a request's token can be wrong, each otherwise exactly what the CLI sends. */
const CASES: JwtCase[] = [
  { name: 'no token', header: () => '', code: 'AUTH_MISSING' },
  {
    name: 'another scheme (Basic)',
    header: (b, n, _spent, r) => `Basic ${es256(good(b, n, r))}`,
    code: 'AUTH_MISSING',
  },
  {
    name: 'alg none',
    header: (b, n, _spent, r) => bearer(unsigned(good(b, n, r))),
    code: 'AUTH_INVALID',
  },
  {
    name: 'HS256 keyed with the public key',
    header: (b, n, _spent, r) => bearer(hs256WithPublicKey(good(b, n, r))),
    code: 'AUTH_INVALID',
  },
  {
    name: 'ES256 from another key',
    header: (b, n, _spent, r) => bearer(es256(good(b, n, r), otherEcKey)),
    code: 'AUTH_INVALID',
  },
  {
    name: 'ES384 (another algorithm, another key)',
    header: (b, n, _spent, r) => bearer(es256(good(b, n, r), p384Key, 'ES384')),
    code: 'AUTH_INVALID',
  },
  {
    name: 'tampered payload (lifetime stretched after signing)',
    header: (b, n, _spent, r) => {
      const c = good(b, n, r);
      return bearer(tampered(c, { exp: Number(c.exp) + 3600 }));
    },
    code: 'AUTH_INVALID',
  },
  {
    name: 'tampered payload (body hash swapped after signing)',
    header: (b, n, _spent, r) => bearer(tampered(good(`${b} `, n, r), { body_sha256: sha256(b) })),
    code: 'AUTH_INVALID',
  },
  {
    name: 'wrong issuer',
    header: (b, n, _spent, r) => bearer(es256({ ...good(b, n, r), iss: 'someone-else' })),
    code: 'AUTH_INVALID',
  },
  {
    name: 'no issuer',
    header: (b, n, _spent, r) => bearer(es256(without(good(b, n, r), 'iss'))),
    code: 'AUTH_INVALID',
  },
  {
    name: 'wrong audience',
    header: (b, n, _spent, r) => bearer(es256({ ...good(b, n, r), aud: 'police-backend' })),
    code: 'AUTH_INVALID',
  },
  {
    name: 'no audience',
    header: (b, n, _spent, r) => bearer(es256(without(good(b, n, r), 'aud'))),
    code: 'AUTH_INVALID',
  },
  {
    name: 'expired (beyond the 5 s tolerance)',
    header: (b, n, _spent, r) => bearer(es256({ ...good(b, n, r), iat: n - 66, exp: n - 6 })),
    code: 'AUTH_EXPIRED',
  },
  {
    name: 'not yet valid (nbf a minute ahead)',
    header: (b, n, _spent, r) => bearer(es256({ ...good(b, n, r), nbf: n + 60 })),
    code: 'AUTH_NOT_YET_VALID',
  },
  {
    name: 'not yet valid (issued an hour ahead, lifetime within bounds)',
    header: (b, n, _spent, r) => bearer(es256({ ...good(b, n, r), iat: n + 3600, exp: n + 3660 })),
    code: 'AUTH_NOT_YET_VALID',
  },
  {
    name: 'expiry not a number',
    // A string payload is signed as it is: jsonwebtoken checks claim types only for objects.
    header: (b, n, _spent, r) =>
      bearer(
        jwt.sign(
          JSON.stringify({ ...good(b, n, r), exp: String(n + 60) }),
          authorityKeys.privateKey,
          {
            algorithm: 'ES256',
          },
        ),
      ),
    code: 'AUTH_INVALID',
  },
  {
    name: 'lifetime over the maximum (301 s)',
    header: (b, n, _spent, r) => bearer(es256({ ...good(b, n, r), exp: n + 301 })),
    code: 'AUTH_LIFETIME',
  },
  {
    name: 'backdated issue time (lifetime over the maximum)',
    header: (b, n, _spent, r) => bearer(es256({ ...good(b, n, r), iat: n - 3600 })),
    code: 'AUTH_LIFETIME',
  },
  {
    name: 'no iat',
    header: (b, n, _spent, r) => bearer(es256(without(good(b, n, r), 'iat'))),
    code: 'AUTH_LIFETIME',
  },
  {
    name: 'no exp',
    header: (b, n, _spent, r) => bearer(es256(without(good(b, n, r), 'exp'))),
    code: 'AUTH_LIFETIME',
  },
  {
    name: 'no jti',
    header: (b, n, _spent, r) => bearer(es256(without(good(b, n, r), 'jti'))),
    code: 'AUTH_NO_JTI',
  },
  {
    name: 'malformed jti',
    header: (b, n, _spent, r) => bearer(es256({ ...good(b, n, r), jti: 'short' })),
    code: 'AUTH_NO_JTI',
  },
  {
    name: 'replayed jti (a new token reusing a spent one)',
    header: (b, n, spent, r) => bearer(es256({ ...good(b, n, r), jti: spent })),
    code: 'AUTH_REPLAYED',
  },
  {
    name: 'body hash of another body',
    header: (b, n, _spent, r) => bearer(es256({ ...good(b, n, r), body_sha256: sha256(`${b} `) })),
    code: 'AUTH_BODY_MISMATCH',
  },
  {
    name: 'no body hash',
    header: (b, n, _spent, r) => bearer(es256(without(good(b, n, r), 'body_sha256'))),
    code: 'AUTH_BODY_MISMATCH',
  },
  {
    // Two requests with the same body (any two empty ones) must not share a token.
    name: 'a token for another request with the same body',
    header: (b, n, _spent, r) =>
      bearer(
        es256({
          ...good(b, n, r),
          req: r.startsWith('GET') ? 'POST /v1/quarantines' : `GET ${r.slice(r.indexOf(' ') + 1)}`,
        }),
      ),
    code: 'AUTH_WRONG_REQUEST',
  },
  {
    name: 'no request claim',
    header: (b, n, _spent, r) => bearer(es256(without(good(b, n, r), 'req'))),
    code: 'AUTH_WRONG_REQUEST',
  },
];

/** One request an authority route takes: path and body (the control makes it succeed). */
interface RouteCase {
  readonly request: () => { path: string; body: string };
  readonly success: number;
}

for (const target of databaseTargets()) {
  describe(`health authority JWT matrix on ${target.name}`, function () {
    this.timeout(60_000);
    let db: Database;
    let stub: PoliceStub;
    let h: Harness;
    let served: Route[];
    let spent = '';
    const ended = new TestBeacon();
    const withAbsences = new TestBeacon();
    let absenceId = '';
    const absenceBody = () =>
      JSON.stringify({ startsAt: h.clock.ms + 60_000, endsAt: h.clock.ms + 3_600_000 });
    const routes: Record<string, RouteCase> = {
      'POST /v1/quarantines': {
        request: () => ({ path: '/v1/quarantines', body: new TestBeacon().registration() }),
        success: 201,
      },
      'POST /v1/quarantines/:beaconId/end': {
        request: () => ({ path: `/v1/quarantines/${ended.beaconId}/end`, body: '{}' }),
        success: 200,
      },
      'POST /v1/quarantines/:beaconId/absences': {
        request: () => ({
          path: `/v1/quarantines/${withAbsences.beaconId}/absences`,
          body: absenceBody(),
        }),
        success: 201,
      },
      'GET /v1/quarantines/:beaconId/absences': {
        request: () => ({ path: `/v1/quarantines/${withAbsences.beaconId}/absences`, body: '' }),
        success: 200,
      },
      'POST /v1/quarantines/:beaconId/absences/:absenceId/cancel': {
        request: () => ({
          path: `/v1/quarantines/${withAbsences.beaconId}/absences/${absenceId}/cancel`,
          body: '',
        }),
        success: 200,
      },
    };
    const send = async (method: string, path: string, body: string, authorization: string) =>
      httpsRequest(
        h.backend.publicPort,
        method,
        path,
        { ca: (await testPki()).ca.cert },
        body,
        authorization ? { authorization, 'content-type': 'application/json' } : {},
      );

    before(async () => {
      db = await target.open();
      stub = new PoliceStub();
      await stub.up();
      const started = await recordRoutes(() => startBackend(db, stub));
      h = started.result;
      served = appServing(started.apps, /^\/v1\/quarantines/);
      for (const b of [ended, withAbsences]) assert.equal((await register(h, b)).status, 201);
      await police(h, `/internal/v1/beacons/${withAbsences.beaconId}/enable`);
      const body = absenceBody();
      const path = `/v1/quarantines/${withAbsences.beaconId}/absences`;
      const claims = goodClaims(body, h.clock.seconds, `POST ${path}`);
      spent = String(claims.jti);
      const r = await send('POST', path, body, bearer(es256(claims)));
      assert.equal(r.status, 201, r.body.toString());
      absenceId = r.json<{ absenceId: string }>().absenceId;
    });
    after(async () => {
      await h?.backend.close();
      await stub?.down();
      await db?.close();
    });

    it('covers every route that takes the health authority token', () => {
      const authorityRoutes = served.filter((r) => r.path.startsWith('/v1/quarantines'));
      assert.deepEqual(authorityRoutes.map(routeKey).sort(), Object.keys(routes).sort());
    });

    for (const [key, route] of Object.entries(routes)) {
      const method = key.split(' ')[0] as string;
      describe(key, () => {
        for (const c of CASES) {
          it(`refuses ${c.name} (${c.code}) and writes nothing`, async () => {
            const { path, body } = route.request();
            const before = await databaseDigest(db);
            const header = c.header(body, h.clock.seconds, spent, `${method} ${path}`);
            const r = await send(method, path, body, header);
            assert.deepEqual([r.status, r.json()], [401, { error: c.code }]);
            assert.deepEqual(await databaseDigest(db), before);
          });
        }
        it('accepts the same request with the token the CLI makes, once', async () => {
          const { path, body } = route.request();
          const token = bearer(es256(goodClaims(body, h.clock.seconds, `${method} ${path}`)));
          const r = await send(method, path, body, token);
          assert.equal(r.status, route.success, r.body.toString());
          const again = await send(method, path, body, token);
          assert.deepEqual([again.status, again.json()], [401, { error: 'AUTH_REPLAYED' }]);
        });
      });
    }

    describe('boundaries', () => {
      const post = (claims: Claims) => {
        const body = new TestBeacon().registration();
        const c = { ...goodClaims(body, h.clock.seconds, 'POST /v1/quarantines'), ...claims };
        return send('POST', '/v1/quarantines', body, bearer(es256(c)));
      };

      it('accepts a lifetime of exactly the maximum (300 s)', async () => {
        assert.equal((await post({ exp: h.clock.seconds + 300 })).status, 201);
      });

      it('accepts an nbf that has passed, and a clock 5 s behind the issuer', async () => {
        assert.equal((await post({ nbf: h.clock.seconds - 1 })).status, 201);
        assert.equal(
          (await post({ iat: h.clock.seconds + 5, exp: h.clock.seconds + 65 })).status,
          201,
        );
      });

      it('refuses a token replayed in the seconds its expiry tolerance still accepts it', async () => {
        const body = absenceBody();
        const path = `/v1/quarantines/${withAbsences.beaconId}/absences`;
        const token = bearer(es256(goodClaims(body, h.clock.seconds, `POST ${path}`)));
        assert.equal((await send('POST', path, body, token)).status, 201);
        // Past exp, inside the tolerance: the token still verifies, so its jti must still be held.
        h.clock.advance(63_000);
        const before = await databaseDigest(db);
        const r = await send('POST', path, body, token);
        assert.deepEqual([r.status, r.json()], [401, { error: 'AUTH_REPLAYED' }]);
        h.clock.advance(3_000);
        const late = await send('POST', path, body, token);
        assert.deepEqual([late.status, late.json()], [401, { error: 'AUTH_EXPIRED' }]);
        assert.deepEqual(await databaseDigest(db), before);
      });
    });

    it('is what the authority helper of the test harness sends', async () => {
      // The harness' own signer (used across the suites) must pass the same verifier.
      const r = await authority(h, 'GET', `/v1/quarantines/${withAbsences.beaconId}/absences`);
      assert.equal(r.status, 200);
    });
  });
}
