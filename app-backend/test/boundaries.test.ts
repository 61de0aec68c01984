import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import type { Database } from '../../backend-kit/db.js';
import { bytesToHex } from '../../protocol/bytes.js';
import { httpsRequest } from '../../test/support/https-client.js';
import { expiredClient, foreignClient, testPki } from '../../test/support/pki.js';
import { openDatabase } from '../../backend-kit/db.js';
import { PRESENCE_BODY_LENGTH } from '../../protocol/presence.js';
import {
  type Harness,
  PoliceStub,
  TestBeacon,
  authorityJwt,
  authorityKeys,
  monitored,
  police,
  presence,
  register,
  startBackend,
} from './harness.js';

describe('app backend boundaries', function () {
  this.timeout(60_000);
  let db: Database;
  let stub: PoliceStub;
  let h: Harness;

  before(async () => {
    db = await openDatabase({ dataDir: 'memory://' });
    stub = new PoliceStub();
    await stub.up();
    h = await startBackend(db, stub);
  });
  after(async () => {
    await h.backend.close();
    await stub.down();
    await db.close();
  });

  const rowCount = async () =>
    Number(
      (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM quarantines')).rows[0]?.n,
    );

  describe('health authority JWT', () => {
    const attempt = async (
      o: Parameters<typeof authorityJwt>[3],
      body = new TestBeacon().registration(),
      sign = authorityJwt,
    ) => {
      const pki = await testPki();
      return httpsRequest(
        h.backend.publicPort,
        'POST',
        '/v1/quarantines',
        { ca: pki.ca.cert },
        body,
        { authorization: `Bearer ${sign('POST /v1/quarantines', body, h.clock.ms, o)}` },
      );
    };

    it('accepts a valid registration exactly once per jti', async () => {
      const b = new TestBeacon();
      const body = b.registration();
      const token = authorityJwt('POST /v1/quarantines', body, h.clock.ms, {
        jti: 'jti-0123456789abcdef',
      });
      const pki = await testPki();
      const send = () =>
        httpsRequest(h.backend.publicPort, 'POST', '/v1/quarantines', { ca: pki.ca.cert }, body, {
          authorization: `Bearer ${token}`,
        });
      assert.equal((await send()).status, 201);
      const again = await send();
      assert.deepEqual([again.status, again.json()], [401, { error: 'AUTH_REPLAYED' }]);
    });

    const cases: [string, Parameters<typeof authorityJwt>[3], string][] = [
      ['wrong issuer', { issuer: 'someone-else' }, 'AUTH_INVALID'],
      ['wrong audience', { audience: 'another-service' }, 'AUTH_INVALID'],
      ['expired', { issuedAt: Math.floor(1_795_400_000_000 / 1000) - 10_000 }, 'AUTH_EXPIRED'],
      ['lifetime over five minutes', { lifetimeSeconds: 3600 }, 'AUTH_LIFETIME'],
      ['no jti', { jti: null }, 'AUTH_NO_JTI'],
      ['another body', { bodyHash: 'ab'.repeat(32) }, 'AUTH_BODY_MISMATCH'],
      [
        'another key',
        {
          privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' })
            .privateKey.export({ type: 'pkcs8', format: 'pem' })
            .toString(),
        },
        'AUTH_INVALID',
      ],
    ];
    for (const [name, overrides, code] of cases) {
      it(`refuses a JWT with ${name} (${code}) and stores nothing`, async () => {
        const before = await rowCount();
        const r = await attempt(overrides);
        assert.deepEqual([r.status, r.json()], [401, { error: code }]);
        assert.equal(await rowCount(), before);
      });
    }

    it('refuses HS256 keyed with the public key (algorithm pinned) and unsigned tokens', async () => {
      const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const claims = b64({
        iss: 'health-authority',
        aud: 'smartbeacon-app-backend',
        jti: 'x'.repeat(20),
        iat: h.clock.seconds,
        exp: h.clock.seconds + 60,
      });
      const hsInput = `${b64({ alg: 'HS256', typ: 'JWT' })}.${claims}`;
      const hs = `${hsInput}.${createHmac('sha256', authorityKeys.publicKey).update(hsInput).digest('base64url')}`;
      for (const token of [hs, `${b64({ alg: 'none', typ: 'JWT' })}.${claims}.`]) {
        const pki = await testPki();
        const r = await httpsRequest(
          h.backend.publicPort,
          'POST',
          '/v1/quarantines',
          { ca: pki.ca.cert },
          new TestBeacon().registration(),
          { authorization: `Bearer ${token}` },
        );
        assert.equal(r.status, 401);
      }
      const none = await httpsRequest(
        h.backend.publicPort,
        'POST',
        '/v1/quarantines',
        { ca: (await testPki()).ca.cert },
        '{}',
      );
      assert.deepEqual([none.status, none.json()], [401, { error: 'AUTH_MISSING' }]);
    });

    it('refuses a second active quarantine for the same beacon or key', async () => {
      const b = new TestBeacon();
      assert.equal((await register(h, b)).status, 201);
      const r = await register(h, b);
      assert.deepEqual([r.status, r.json()], [409, { error: 'BEACON_IN_USE' }]);
    });

    it('lets the health authority end a quarantine', async () => {
      const b = new TestBeacon();
      assert.equal((await register(h, b)).status, 201);
      const pki = await testPki();
      const body = '{}';
      const r = await httpsRequest(
        h.backend.publicPort,
        'POST',
        `/v1/quarantines/${b.beaconId}/end`,
        { ca: pki.ca.cert },
        body,
        {
          authorization: `Bearer ${authorityJwt(`POST /v1/quarantines/${b.beaconId}/end`, body, h.clock.ms)}`,
        },
      );
      assert.deepEqual([r.status, r.json()], [200, { state: 'ended' }]);
    });
  });

  describe('mutual TLS on the internal listener', () => {
    const path = '/internal/v1/beacons/SB-1/enable';

    it('accepts the police backend', async () => {
      assert.equal((await police(h, path)).status, 200);
    });

    it('refuses at the handshake a client with no certificate, a foreign CA or an expired certificate', async () => {
      const pki = await testPki();
      const foreign = await foreignClient();
      const expired = await expiredClient();
      for (const tls of [
        { ca: pki.ca.cert },
        { ca: pki.ca.cert, cert: foreign.cert, key: foreign.key },
        { ca: pki.ca.cert, cert: expired.cert, key: expired.key },
      ]) {
        await assert.rejects(httpsRequest(h.backend.internalPort, 'POST', path, tls));
      }
    });

    it('refuses at the route a certificate from our CA with another identity', async () => {
      const pki = await testPki();
      const r = await httpsRequest(h.backend.internalPort, 'POST', path, {
        ca: pki.ca.cert,
        cert: pki.appBackend.cert,
        key: pki.appBackend.key,
      });
      assert.deepEqual([r.status, r.json()], [403, { error: 'PEER_NOT_ALLOWED' }]);
    });

    it('does not serve the internal routes on the public listener', async () => {
      const pki = await testPki();
      const r = await httpsRequest(h.backend.publicPort, 'POST', path, {
        ca: pki.ca.cert,
        cert: pki.policeBackend.cert,
        key: pki.policeBackend.key,
      });
      assert.equal(r.status, 404);
    });
  });

  describe('bad input', () => {
    it('answers random bodies on every endpoint with 4xx and a stable code, writes nothing, never crashes', async () => {
      const pki = await testPki();
      const before = await rowCount();
      const routes: [number, string][] = [
        [h.backend.publicPort, '/v1/quarantines'],
        [h.backend.publicPort, '/v1/quarantines/SB-1/end'],
        [h.backend.publicPort, '/v1/presence'],
        [h.backend.internalPort, '/internal/v1/beacons/SB-1/end'],
        [h.backend.internalPort, '/internal/v1/beacons/%00%ff/enable'],
      ];
      await fc.assert(
        fc.asyncProperty(
          fc.nat(routes.length - 1),
          fc.oneof(
            fc.uint8Array({ maxLength: 300 }),
            fc.json().map((j) => new Uint8Array(Buffer.from(j))),
            fc.uint8Array({ minLength: PRESENCE_BODY_LENGTH, maxLength: PRESENCE_BODY_LENGTH }),
          ),
          async (i, bytes) => {
            const [port, path] = routes[i]!;
            const tls =
              port === h.backend.internalPort
                ? { ca: pki.ca.cert, cert: pki.policeBackend.cert, key: pki.policeBackend.key }
                : { ca: pki.ca.cert };
            const r = await httpsRequest(port, 'POST', path, tls, Buffer.from(bytes), {
              authorization: 'Bearer x.y.z',
            });
            if (path === '/v1/presence' && r.status === 202) return; // a well-formed body of random bytes: the constant answer
            assert.ok(r.status >= 400 && r.status < 500, `${path}: ${r.status}`);
            assert.equal(typeof r.json().error, 'string');
          },
        ),
        { numRuns: 150 },
      );
      await h.backend.flush();
      assert.equal(await rowCount(), before);
      assert.equal(
        (await httpsRequest(h.backend.publicPort, 'GET', '/healthz', { ca: pki.ca.cert })).status,
        200,
      );
    });

    it('refuses oversize presence and admin bodies before reading them', async () => {
      const pki = await testPki();
      const big = await httpsRequest(
        h.backend.publicPort,
        'POST',
        '/v1/presence',
        { ca: pki.ca.cert },
        Buffer.alloc(PRESENCE_BODY_LENGTH + 1),
      );
      assert.deepEqual([big.status, big.json()], [413, { error: 'BAD_LENGTH' }]);
      const admin = await httpsRequest(
        h.backend.publicPort,
        'POST',
        '/v1/quarantines',
        { ca: pki.ca.cert },
        Buffer.alloc(64 * 1024, 0x20),
      );
      assert.deepEqual([admin.status, admin.json()], [413, { error: 'BODY_TOO_LARGE' }]);
    });

    it('rate-limits presence per key that holds or sends anything; a dummy key costs nothing to track', async () => {
      const send = async (key: Uint8Array, tokens: Uint8Array[]) => {
        const statuses: number[] = [];
        for (let i = 0; i < 25; i++) statuses.push((await presence(h, key, tokens)).status);
        return [statuses.filter((s) => s === 202).length, statuses.filter((s) => s === 429).length];
      };
      // A registered key: its first request was the monitoring set-up, so 19 more get through.
      const b = new TestBeacon();
      await monitored(h, b);
      assert.deepEqual(await send(b.skTPast, []), [19, 6]);
      // An unknown key sending tokens (they would be looked up): limited alike.
      const stranger = new TestBeacon();
      assert.deepEqual(await send(stranger.skTPast, [stranger.token(h.clock.ms)]), [20, 5]);
      // Token-less and unknown (a dummy): never queued, never limited, nothing remembered.
      const before = h.backend.validator.depth;
      assert.deepEqual(await send(new Uint8Array(randomBytes(32)), []), [25, 0]);
      assert.equal(h.backend.validator.depth, before);
      await h.backend.flush();
    });
  });

  describe('privacy', () => {
    it('logs no IP address, key, token or JWT while every endpoint is driven', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      const token = b.token(h.clock.ms);
      await presence(h, b.skTPast, [token]);
      await presence(h, b.skTPast, [token]); // a replay
      await police(h, '/metrics', 'GET');
      await police(h, `/internal/v1/beacons/${b.beaconId}/enable`);
      await police(h, '/internal/v1/beacons/bad%20id/enable');
      await register(h, b, { audience: 'wrong' });
      h.clock.advance(30 * 60_000);
      await h.backend.watchdog();
      await stub.down();
      await h.backend.deliver();
      await stub.up();
      await h.backend.flush();
      const logs = h.logs.join('\n');
      assert.ok(h.logs.length > 5, 'the service did log');
      for (const secret of [
        '127.0.0.1',
        '::1',
        '::ffff:',
        bytesToHex(b.skTPast),
        bytesToHex(b.skBeacon),
        bytesToHex(token),
        'Bearer',
        'eyJ',
      ]) {
        assert.ok(!logs.includes(secret), `log contains ${secret}`);
      }
    });
  });
});
