import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import jwt from 'jsonwebtoken';
import type { Database } from '../../backend-kit/db.js';
import { databaseTargets } from '../../test/support/databases.js';
import { expiredClient, foreignClient, testPki } from '../../test/support/pki.js';
import { verifyAudit } from '../src/audit.js';
import { nextState } from '../src/alerts.js';
import {
  type PoliceHarness,
  type Session,
  addOfficer,
  alertMessage,
  api,
  postAlert,
  postAlertBatch,
  signIn,
  signInRaw,
  startPolice,
  updateMessage,
} from './harness.js';

const XSS = '<img src=x onerror=alert(1)><script>alert(2)</script> 12 Example Street';

for (const target of databaseTargets()) {
  describe(`police backend on ${target.name}`, function () {
    this.timeout(60_000);
    let db: Database;
    let h: PoliceHarness;
    let officer: Session;

    beforeEach(async () => {
      db = await target.open();
      h = await startPolice(db);
      officer = await signIn(h, 'officer1');
    });
    afterEach(async () => {
      await h.backend.close();
      await db.close();
    });

    describe('alert intake (mutual TLS)', () => {
      it('accepts the app backend and shows a redelivered alert once', async () => {
        await api(h, officer, 'POST', '/api/beacons', {
          beaconId: 'SB-0001',
          address: '1 High Street',
          caseRef: 'C-1',
        });
        const m = alertMessage();
        const first = await postAlert(h, m);
        const again = await postAlert(h, m);
        assert.deepEqual([first.status, first.json()], [200, { ok: true, duplicate: false }]);
        assert.deepEqual([again.status, again.json()], [200, { ok: true, duplicate: true }]);
        const { alerts } = (await api(h, officer, 'GET', '/api/alerts?view=queue')).json<{
          alerts: { id: string; address: string }[];
        }>();
        assert.equal(alerts.length, 1);
        assert.equal(alerts[0]?.address, '1 High Street');
      });

      it('refuses no certificate, a foreign CA and an expired certificate at the handshake, another identity at the route', async () => {
        const pki = await testPki();
        const foreign = await foreignClient();
        const expired = await expiredClient('app-backend');
        for (const tls of [
          { ca: pki.ca.cert },
          { ca: pki.ca.cert, cert: foreign.cert, key: foreign.key },
          { ca: pki.ca.cert, cert: expired.cert, key: expired.key },
        ]) {
          await assert.rejects(postAlert(h, alertMessage(), tls));
        }
        const wrong = await postAlert(h, alertMessage(), {
          ca: pki.ca.cert,
          cert: pki.policeBackend.cert,
          key: pki.policeBackend.key,
        });
        assert.deepEqual([wrong.status, wrong.json()], [403, { error: 'PEER_NOT_ALLOWED' }]);
        assert.equal(
          Number(
            (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM alerts')).rows[0]?.n,
          ),
          0,
        );
      });

      it('updates the alert an officer is looking at when LATE_EVIDENCE and RESOLVED_BY_EVIDENCE arrive', async () => {
        const m = alertMessage();
        await postAlert(h, m);
        await postAlert(h, updateMessage(m, 'LATE_EVIDENCE', { evidenceUntil: 1234 }));
        await postAlert(
          h,
          updateMessage(
            m,
            'RESOLVED_BY_EVIDENCE',
            { lastPresenceAt: 100_000 + Number(m.occurredAt), coveredByEvidence: false },
            { occurredAt: 120_000 + Number(m.occurredAt) },
          ),
        );
        const detail = (await api(h, officer, 'GET', `/api/alerts/${String(m.alertId)}`)).json<{
          alert: { recoveredAt: number; evidenceUntil: number; coveredByEvidence: boolean };
          timeline: { kind: string; state: string; queue: string | null }[];
        }>();
        assert.equal(
          detail.alert.recoveredAt,
          100_000 + Number(m.occurredAt),
          'when presence returned',
        );
        assert.equal(detail.alert.coveredByEvidence, false);
        assert.equal(detail.alert.evidenceUntil, 1234);
        assert.deepEqual(
          detail.timeline.map((t) => [t.kind, t.state, t.queue]),
          [
            ['NO_PRESENCE', 'open', 'violation'],
            ['LATE_EVIDENCE', 'info', null],
            ['RESOLVED_BY_EVIDENCE', 'info', null],
          ],
        );
      });

      it('answers malformed alert bodies with 400 and stores nothing', async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.oneof(
              fc.json(),
              fc.record({
                alertId: fc.string(),
                kind: fc.string(),
                beaconId: fc.string(),
                occurredAt: fc.anything(),
              }),
            ),
            async (body) => {
              const r = await postAlert(h, typeof body === 'string' ? JSON.parse(body) : body);
              assert.equal(r.status, 400);
            },
          ),
          { numRuns: 60 },
        );
        assert.equal(
          Number(
            (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM alerts')).rows[0]?.n,
          ),
          0,
        );
      });
    });

    describe('alert batches (mutual TLS)', () => {
      const count = async () =>
        Number((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM alerts')).rows[0]?.n);

      it('stores a batch alert by alert and answers each in order, on the lean and the Express route alike', async () => {
        for (const chunked of [false, true]) {
          const m = alertMessage();
          const fault = alertMessage({
            kind: 'BEACON_FAULT',
            beaconId: 'SB-0002',
            gapStartedAt: null,
            detail: { reasons: 'low_battery', batteryPercent: 12 },
          });
          const r = await postAlertBatch(
            h,
            {
              alerts: [
                m,
                { ...m, alertId: 'not-a-uuid' },
                m,
                updateMessage(m, 'LATE_EVIDENCE', { evidenceUntil: 1234 }),
                fault,
              ],
            },
            { chunked },
          );
          assert.equal(r.status, 200);
          assert.deepEqual(r.json(), {
            results: [
              { ok: true, duplicate: false },
              { ok: false, error: 'BAD_ALERT' },
              { ok: true, duplicate: true },
              { ok: true, duplicate: false },
              { ok: true, duplicate: false },
            ],
          });
          const stored = await api(h, officer, 'GET', `/api/alerts/${String(m.alertId)}`);
          assert.equal(
            stored.json<{ alert: { evidenceUntil: number } }>().alert.evidenceUntil,
            1234,
            'the update reached the alert before it in the batch',
          );
        }
        assert.equal(await count(), 6, 'three alerts per batch, none twice');
        assert.ok(
          h.logs.some(
            (l) => l.includes('"route":"/internal/v1/alert-batches"') && l.includes('"status":200'),
          ),
        );
      });

      it('refuses what is not a batch with a stable code, on both routes, and stores nothing', async () => {
        const m = alertMessage();
        const cases: [unknown, number, string][] = [
          [[m], 400, 'BAD_BATCH'],
          [{}, 400, 'BAD_BATCH'],
          [{ alerts: [] }, 400, 'BAD_BATCH'],
          [{ alerts: m }, 400, 'BAD_BATCH'],
          [{ alerts: [m], more: [] }, 400, 'BAD_BATCH'],
          [{ alerts: Array.from({ length: 257 }, () => alertMessage()) }, 400, 'BAD_BATCH'],
        ];
        for (const chunked of [false, true]) {
          for (const [body, status, error] of cases) {
            const r = await postAlertBatch(h, body, { chunked });
            assert.deepEqual(
              [r.status, r.json()],
              [status, { error }],
              JSON.stringify(body).slice(0, 80),
            );
          }
          const junk = await postAlertBatch(h, null, { chunked, raw: '{"alerts": [' });
          assert.deepEqual([junk.status, junk.json()], [400, { error: 'BAD_JSON' }]);
          const huge = await postAlertBatch(h, null, {
            chunked,
            raw: JSON.stringify({
              alerts: [alertMessage({ detail: { note: 'x'.repeat(1024 * 1024) } })],
            }),
          });
          assert.deepEqual([huge.status, huge.json()], [413, { error: 'BODY_TOO_LARGE' }]);
        }
        const pki = await testPki();
        const other = await postAlertBatch(
          h,
          { alerts: [m] },
          { tls: { ca: pki.ca.cert, cert: pki.policeBackend.cert, key: pki.policeBackend.key } },
        );
        assert.deepEqual([other.status, other.json()], [403, { error: 'PEER_NOT_ALLOWED' }]);
        await assert.rejects(postAlertBatch(h, { alerts: [m] }, { tls: { ca: pki.ca.cert } }));
        assert.equal(await count(), 0);
      });

      it('answers any mix of alerts and junk item by item, never 5xx, storing exactly the alerts', async () => {
        const valid = fc
          .record({
            alertId: fc.uuid({ version: 4 }),
            kind: fc.constantFrom('NO_PRESENCE', 'BEACON_FAULT', 'RELAY_SILENT'),
            beaconId: fc.stringMatching(/^SB-[0-9]{1,4}$/),
          })
          .map((over) => ({ valid: true, item: alertMessage(over) as unknown }));
        const junk = fc
          .oneof(fc.anything(), fc.record({ alertId: fc.uuid({ version: 4 }), kind: fc.string() }))
          .map((item) => ({ valid: false, item }));
        let stored = 0;
        await fc.assert(
          fc.asyncProperty(
            fc.array(fc.oneof(valid, junk), { minLength: 1, maxLength: 12 }),
            async (items) => {
              const r = await postAlertBatch(h, { alerts: items.map((i) => i.item) });
              assert.equal(r.status, 200);
              const fresh = new Set(
                items.filter((i) => i.valid).map((i) => (i.item as { alertId: string }).alertId),
              );
              assert.deepEqual(
                r
                  .json<{ results: { ok: boolean; error?: string }[] }>()
                  .results.map((x) => (x.ok ? 'ok' : x.error)),
                items.map((i) => (i.valid ? 'ok' : 'BAD_ALERT')),
              );
              stored += fresh.size;
              assert.equal(await count(), stored);
            },
          ),
          { numRuns: 40 },
        );
      });
    });

    describe('review', () => {
      let alertId: string;
      beforeEach(async () => {
        const m = alertMessage();
        alertId = String(m.alertId);
        await postAlert(h, m);
      });
      const act = (action: string, extra: Record<string, unknown> = {}) =>
        api(h, officer, 'POST', `/api/alerts/${alertId}/actions`, { action, ...extra });

      it('walks acknowledge → dispatch → resolve, recording who did what', async () => {
        assert.equal(
          (await act('acknowledge')).json<{ alert: { state: string } }>().alert.state,
          'acknowledged',
        );
        assert.equal(
          (await act('dispatch', { note: 'unit 12' })).json<{ alert: { state: string } }>().alert
            .state,
          'dispatched',
        );
        const resolved = (
          await act('resolve', { outcome: 'false_alarm', note: 'phone battery died' })
        ).json<{ alert: { state: string; outcome: string } }>().alert;
        assert.deepEqual([resolved.state, resolved.outcome], ['resolved', 'false_alarm']);
        const detail = (await api(h, officer, 'GET', `/api/alerts/${alertId}`)).json<{
          reviews: { action: string; officer: string }[];
        }>();
        assert.deepEqual(
          detail.reviews.map((r) => `${r.officer}:${r.action}`),
          ['officer1:acknowledge', 'officer1:dispatch', 'officer1:resolve'],
        );
        assert.equal(
          (await api(h, officer, 'GET', '/api/alerts?view=queue')).json<{ alerts: unknown[] }>()
            .alerts.length,
          0,
        );
      });

      it('refuses illegal transitions and a resolution without an outcome', async () => {
        assert.deepEqual((await act('dispatch')).json(), { error: 'ILLEGAL_TRANSITION' });
        assert.deepEqual((await act('resolve', { outcome: 'false_alarm' })).json(), {
          error: 'ILLEGAL_TRANSITION',
        });
        await act('acknowledge');
        assert.equal((await act('acknowledge')).status, 409);
        assert.deepEqual(
          [(await act('resolve')).status, (await act('resolve')).json()],
          [400, { error: 'OUTCOME_REQUIRED' }],
        );
        assert.equal((await act('launch')).status, 400);
        for (const state of ['open', 'acknowledged', 'dispatched', 'resolved', 'info'] as const) {
          for (const action of ['acknowledge', 'dispatch', 'resolve'] as const) {
            const to = nextState(state, action);
            if (to) assert.ok(['acknowledged', 'dispatched', 'resolved'].includes(to));
            if (state === 'resolved' || state === 'info')
              assert.equal(to, undefined, `${state} is final`);
          }
        }
      });
    });

    describe('officers and sessions', () => {
      it('sets a session cookie that scripts and other sites cannot use', async () => {
        const r = await signInRaw(h, 'officer1');
        assert.match(String(r.headers['set-cookie']), /HttpOnly; Secure; SameSite=Strict/);
      });

      it('locks an account after five failed sign-ins, even for the right password', async () => {
        for (let i = 0; i < 5; i++)
          assert.equal((await signInRaw(h, 'officer1', 'wrong password!')).status, 401);
        assert.deepEqual((await signInRaw(h, 'officer1')).json(), { error: 'LOCKED_OUT' });
        h.clock.advance(16 * 60_000);
        assert.equal((await signInRaw(h, 'officer1')).status, 200);
        assert.equal((await signInRaw(h, 'nobody', 'whatever')).status, 401);
      });

      it('refuses state changes without the CSRF value and requests without a session', async () => {
        assert.deepEqual(
          (
            await api(h, { ...officer, csrf: 'forged' }, 'POST', '/api/beacons', {
              beaconId: 'SB-9',
              address: 'x street',
              caseRef: 'C',
            })
          ).json(),
          { error: 'CSRF' },
        );
        assert.deepEqual((await api(h, undefined, 'GET', '/api/alerts')).json(), {
          error: 'NOT_SIGNED_IN',
        });
      });

      it('refuses forged session tokens: none, HS256 keyed with the public key, expired, tampered', async () => {
        const claims = {
          sid: 'x',
          sub: '00000000-0000-0000-0000-000000000000',
          username: 'officer1',
          role: 'supervisor',
          csrf: 'c',
          iss: 'police-backend',
          aud: 'smartbeacon-dashboard',
        };
        const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const now = Math.floor(h.clock.ms / 1000);
        const body = b64({ ...claims, iat: now, exp: now + 600 });
        const hsInput = `${b64({ alg: 'HS256', typ: 'JWT' })}.${body}`;
        const [head, payload, sig] = officer.cookie.split('=')[1]!.split('.');
        const tampered = `${head}.${b64({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), role: 'supervisor' })}.${sig}`;
        const expired = jwt.sign(
          { ...claims, iat: now - 100_000, exp: now - 50_000 },
          h.sessionKeys.privateKey,
          { algorithm: 'ES256' },
        );
        for (const token of [
          `${b64({ alg: 'none' })}.${body}.`,
          `${hsInput}.${createHmac('sha256', h.sessionKeys.publicKey).update(hsInput).digest('base64url')}`,
          expired,
          tampered,
        ]) {
          const r = await api(
            h,
            { cookie: `sb_session=${token}`, csrf: 'c' },
            'GET',
            '/api/session',
          );
          assert.equal(r.status, 401);
        }
      });

      it('ends the session for good on sign-out', async () => {
        assert.equal((await api(h, officer, 'DELETE', '/api/session')).status, 204);
        assert.equal((await api(h, officer, 'GET', '/api/session')).status, 401);
      });

      it('keeps the audit log for supervisors only', async () => {
        assert.deepEqual((await api(h, officer, 'GET', '/api/audit')).json(), {
          error: 'FORBIDDEN_ROLE',
        });
        const boss = await signIn(h, 'supervisor1', 'supervisor');
        const audit = (await api(h, boss, 'GET', '/api/audit')).json<{ verify: { ok: boolean } }>();
        assert.equal(audit.verify.ok, true);
      });
    });

    describe('audit log', () => {
      it('records every officer action and address access, chained; detects an edited row', async () => {
        await api(h, officer, 'POST', '/api/beacons', {
          beaconId: 'SB-7',
          address: XSS,
          caseRef: 'C-7',
        });
        await api(h, officer, 'GET', '/api/beacons');
        const { rows } = await db.query<{ action: string }>(
          'SELECT action FROM audit_log ORDER BY seq',
        );
        assert.deepEqual(
          rows.map((r) => r.action),
          ['officer.created', 'session.signed_in', 'beacon.registered', 'address.viewed'],
        );
        assert.deepEqual(await verifyAudit(db), { ok: true, checked: 4, firstBroken: null });
        await assert.rejects(
          db.query("UPDATE audit_log SET officer = 'someone' WHERE seq = 3"),
          /append-only/,
        );
        await assert.rejects(db.query('DELETE FROM audit_log WHERE seq = 4'), /append-only/);
        // Someone with the database owner's rights goes round the trigger: the chain still tells.
        await db.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change');
        await db.query("UPDATE audit_log SET officer = 'someone' WHERE seq = 3");
        assert.deepEqual(await verifyAudit(db), { ok: false, checked: 4, firstBroken: 3 });
      });

      it('stores an address with markup as the text it is', async () => {
        const r = await api(h, officer, 'POST', '/api/beacons', {
          beaconId: 'SB-8',
          address: XSS,
          caseRef: 'C-8',
        });
        assert.equal(r.json<{ beacon: { address: string } }>().beacon.address, XSS);
        assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
      });
    });

    describe('bad input', () => {
      it('answers random officer API bodies with 4xx codes and never crashes', async () => {
        await addOfficer(h, 'fuzzer');
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom(
              '/api/beacons',
              '/api/beacons/SB-1/enable',
              '/api/session',
              '/api/alerts/00000000-0000-4000-8000-000000000000/actions',
              '/api/beacons/SB-1/absences',
              '/api/absences/00000000-0000-4000-8000-000000000000/cancel',
            ),
            fc.json(),
            async (path, body) => {
              const r = await api(h, officer, 'POST', path, JSON.parse(body));
              assert.ok(r.status >= 400 && r.status < 500, `${path} ${r.status}`);
              assert.equal(typeof r.json().error, 'string');
            },
          ),
          { numRuns: 80 },
        );
        assert.equal((await api(h, officer, 'GET', '/api/session')).status, 200);
      });
    });
  });
}
