import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Database } from '../../backend-kit/db.js';
import { databaseTargets } from '../../test/support/databases.js';
import type { Absence } from '../src/absences.js';
import { verifyAudit } from '../src/audit.js';
import type { Beacon } from '../src/beacons.js';
import { type PoliceHarness, type Session, api, signIn, startPolice } from './harness.js';
import { StubApp } from './stub-app.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const NOTE = 'test appointment';

for (const target of databaseTargets()) {
  describe(`authorised absences on the police backend on ${target.name}`, function () {
    this.timeout(60_000);
    let db: Database;
    let h: PoliceHarness;
    let app: StubApp;
    let officer: Session;

    /** Register a beacon and have the (stub) app backend confirm monitoring. */
    const monitored = async (beaconId: string) => {
      await api(h, officer, 'POST', '/api/beacons', {
        beaconId,
        address: '1 High Street',
        caseRef: 'C-1',
      });
      await api(h, officer, 'POST', `/api/beacons/${beaconId}/enable`, {});
      assert.equal(await h.backend.sendCommands(), 1);
    };
    const schedule = (beaconId: string, body: unknown, s: Session = officer) =>
      api(h, s, 'POST', `/api/beacons/${beaconId}/absences`, body);
    const cancel = (id: string, s: Session = officer) =>
      api(h, s, 'POST', `/api/absences/${id}/cancel`, {});
    const absences = async (beaconId: string) =>
      (await api(h, officer, 'GET', `/api/beacons/${beaconId}/absences`)).json<{
        absences: Absence[];
      }>().absences;
    const beacon = async (beaconId: string) =>
      (await api(h, officer, 'GET', `/api/beacons/${beaconId}`)).json<{ beacon: Beacon }>().beacon;
    const soon = () => ({ startsAt: h.clock.ms + 10 * MIN, endsAt: h.clock.ms + 2 * HOUR });

    beforeEach(async () => {
      db = await target.open();
      app = await StubApp.start();
      h = await startPolice(db, { appUrl: app.url });
      officer = await signIn(h, 'officer1');
      await monitored('SB-1');
      app.requests.length = 0;
    });
    afterEach(async () => {
      await h.backend.close();
      await app.close();
      await db.close();
    });

    it('schedules, lists and cancels an absence over the officer API; the app backend gets the times only', async () => {
      const when = soon();
      const created = await schedule('SB-1', { ...when, reason: NOTE });
      assert.equal(created.status, 201);
      const absence = created.json<{ absence: Absence }>().absence;
      assert.deepEqual(
        [absence.beaconId, absence.startsAt, absence.endsAt, absence.reason, absence.delivery],
        ['SB-1', when.startsAt, when.endsAt, NOTE, 'pending'],
      );
      assert.equal(absence.createdBy, 'officer1');

      assert.equal(await h.backend.sendCommands(), 1);
      assert.deepEqual(app.requests, [
        {
          method: 'POST',
          path: '/internal/v1/beacons/SB-1/absences',
          body: { absenceId: absence.id, startsAt: when.startsAt, endsAt: when.endsAt },
          peer: 'police-backend',
        },
      ]);
      const listed = await absences('SB-1');
      assert.deepEqual(
        listed.map((a) => [a.id, a.delivery, a.lastError]),
        [[absence.id, 'scheduled', null]],
      );

      const cancelled = await cancel(absence.id);
      assert.equal(cancelled.status, 202);
      assert.deepEqual(
        [
          cancelled.json<{ absence: Absence }>().absence.delivery,
          cancelled.json<{ absence: Absence }>().absence.cancelledBy,
        ],
        ['cancel_pending', 'officer1'],
      );
      assert.equal(await h.backend.sendCommands(), 1);
      assert.deepEqual(app.requests[1], {
        method: 'POST',
        path: `/internal/v1/beacons/SB-1/absences/${absence.id}/cancel`,
        body: {},
        peer: 'police-backend',
      });
      assert.deepEqual(await absences('SB-1'), [], 'cancelled absences leave the list');
      const { rows } = await db.query<{ delivery: string }>(
        'SELECT delivery FROM absences WHERE id = $1',
        [absence.id],
      );
      assert.deepEqual(rows, [{ delivery: 'cancelled' }]);
      assert.deepEqual((await cancel(absence.id)).json(), { error: 'ABSENCE_CANCELLED' });
      assert.ok(
        app.requests.every((r) => !JSON.stringify(r.body).includes(NOTE)),
        'the reason never leaves the police backend',
      );
    });

    it('writes every schedule and cancel to the hash-chained audit log, without the reason', async () => {
      const a = (await schedule('SB-1', { ...soon(), reason: NOTE })).json<{ absence: Absence }>()
        .absence;
      await cancel(a.id);
      const { rows } = await db.query<{
        officer: string;
        action: string;
        subject: string;
        detail: string;
      }>(
        "SELECT officer, action, subject, detail FROM audit_log WHERE action LIKE 'absence.%' ORDER BY seq",
      );
      assert.deepEqual(
        rows.map((r) => [r.officer, r.action, r.subject]),
        [
          ['officer1', 'absence.scheduled', `absence:${a.id}`],
          ['officer1', 'absence.cancelled', `absence:${a.id}`],
        ],
      );
      assert.deepEqual(JSON.parse(rows[0]!.detail), {
        beaconId: 'SB-1',
        startsAt: a.startsAt,
        endsAt: a.endsAt,
      });
      assert.ok(rows.every((r) => !r.detail.includes(NOTE)));
      assert.equal((await verifyAudit(db)).ok, true);
    });

    it('needs the session and its CSRF value', async () => {
      const a = (await schedule('SB-1', soon())).json<{ absence: Absence }>().absence;
      const forged = { ...officer, csrf: 'forged' };
      assert.deepEqual((await schedule('SB-1', soon(), forged)).json(), { error: 'CSRF' });
      assert.deepEqual((await cancel(a.id, forged)).json(), { error: 'CSRF' });
      const anonymous = await api(h, undefined, 'GET', '/api/beacons/SB-1/absences');
      assert.deepEqual([anonymous.status, anonymous.json()], [401, { error: 'NOT_SIGNED_IN' }]);
      const { rows } = await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM absences WHERE cancelled_at IS NULL',
      );
      assert.equal(rows[0]?.n, 1);
    });

    it('answers unknown beacons, beacons not monitored and unknown or finished absences with stable codes', async () => {
      await api(h, officer, 'POST', '/api/beacons', {
        beaconId: 'SB-2',
        address: '2 High Street',
        caseRef: 'C-2',
      });
      const cases: [string, unknown, number, string][] = [
        ['/api/beacons/SB-404/absences', soon(), 404, 'NO_SUCH_BEACON'],
        ['/api/beacons/SB-2/absences', soon(), 409, 'NOT_MONITORING'],
        ['/api/beacons/no%20spaces/absences', soon(), 400, 'BAD_BEACON_ID'],
        ['/api/absences/not-a-uuid/cancel', {}, 400, 'BAD_ABSENCE_ID'],
        ['/api/absences/00000000-0000-4000-8000-000000000000/cancel', {}, 404, 'NO_SUCH_ABSENCE'],
      ];
      for (const [path, body, status, error] of cases) {
        const r = await api(h, officer, 'POST', path, body);
        assert.deepEqual([r.status, r.json()], [status, { error }], path);
      }
      const missing = await api(h, officer, 'GET', '/api/beacons/SB-404/absences');
      assert.deepEqual([missing.status, missing.json()], [404, { error: 'NO_SUCH_BEACON' }]);

      const a = (await schedule('SB-1', soon())).json<{ absence: Absence }>().absence;
      h.clock.advance(3 * HOUR);
      assert.deepEqual((await cancel(a.id)).json(), { error: 'ABSENCE_OVER' });
      await api(h, officer, 'POST', '/api/beacons/SB-1/end', {});
      assert.deepEqual((await schedule('SB-1', soon())).json(), { error: 'NOT_MONITORING' });
    });

    it('accepts exactly the absences the rules allow and answers every other body 400 BAD_ABSENCE', async () => {
      const now = h.clock.ms;
      // The rules, written out again here as the oracle.
      const acceptable = (s: number, e: number) =>
        e > s && e - s <= 24 * HOUR && e > now && s >= now - MIN;
      const edge = fc.constantFrom(-1, 0, 1);
      const time = fc.oneof(
        fc.integer({ min: now - 2 * HOUR, max: now + 30 * HOUR }),
        fc.tuple(fc.constantFrom(now - MIN, now, now + 24 * HOUR), edge).map(([t, d]) => t + d),
      );
      const body = fc.oneof(
        fc.record(
          {
            startsAt: time,
            endsAt: time,
            reason: fc.oneof(fc.string({ maxLength: 220 }), fc.string({ unit: 'binary' })),
          },
          { requiredKeys: ['startsAt', 'endsAt'] },
        ),
        time.chain((s) =>
          fc
            .tuple(edge, fc.constantFrom(1, 24 * HOUR))
            .map(([d, len]) => ({ startsAt: s, endsAt: s + len + d })),
        ),
        fc.anything(),
        fc.record({ startsAt: fc.anything(), endsAt: fc.anything(), extra: fc.anything() }),
      );
      let accepted = 0;
      await fc.assert(
        fc.asyncProperty(body, async (b) => {
          const r = await schedule('SB-1', b);
          // Judge what the server receives: the body after a JSON round trip.
          const v = (b === undefined ? undefined : JSON.parse(JSON.stringify(b))) as {
            startsAt?: unknown;
            endsAt?: unknown;
            reason?: unknown;
          } | null;
          const reason = typeof v?.reason === 'string' ? v.reason.trim() : v?.reason;
          const wellFormed =
            v !== null &&
            typeof v === 'object' &&
            !Array.isArray(v) &&
            Object.keys(v).every((k) => ['startsAt', 'endsAt', 'reason'].includes(k)) &&
            Number.isSafeInteger(v.startsAt) &&
            Number.isSafeInteger(v.endsAt) &&
            (v.startsAt as number) >= 0 &&
            (v.endsAt as number) >= 0 &&
            (reason === undefined ||
              (typeof reason === 'string' &&
                reason.length <= 200 &&
                // eslint-disable-next-line no-control-regex
                !/[\u0000-\u001f\u007f-\u009f]/.test(reason)));
          if (wellFormed && acceptable(v.startsAt as number, v.endsAt as number)) {
            assert.equal(r.status, 201, JSON.stringify(b));
            accepted++;
          } else {
            // Express's JSON parser takes only objects and arrays; a bare value is not JSON to it.
            const code =
              v === undefined || (typeof v === 'object' && v !== null) ? 'BAD_ABSENCE' : 'BAD_JSON';
            assert.deepEqual([r.status, r.json()], [400, { error: code }], JSON.stringify(b));
          }
        }),
        { numRuns: 150 },
      );
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM absences');
      assert.equal(rows[0]?.n, accepted, 'nothing stored for a refused body');
      assert.ok(accepted >= 10, `the generator reaches acceptable bodies (${accepted})`);
    });

    it('retries a schedule the app backend did not answer; the retry carries the same absence ID', async () => {
      let calls = 0;
      app.reply = (r) =>
        r.path.endsWith('/absences') && ++calls <= 2
          ? calls === 1
            ? 'drop'
            : { status: 503, body: { error: 'UNAVAILABLE' } }
          : undefined;
      const a = (await schedule('SB-1', soon())).json<{ absence: Absence }>().absence;
      assert.equal(await h.backend.sendCommands(), 0);
      const waiting = (await absences('SB-1'))[0];
      assert.equal(waiting?.delivery, 'pending');
      assert.match(String(waiting?.lastError), /unreachable.*retrying/);
      assert.match(String((await beacon('SB-1')).lastError), /unreachable/);

      h.clock.advance(10 * MIN);
      assert.equal(await h.backend.sendCommands(), 0, '503 is retried too');
      assert.match(String((await absences('SB-1'))[0]?.lastError), /UNAVAILABLE/);
      h.clock.advance(10 * MIN);
      assert.equal(await h.backend.sendCommands(), 1);
      const sent = app.to(/\/absences$/).map((r) => r.body);
      assert.equal(sent.length, 3);
      assert.deepEqual(new Set(sent.map((b) => JSON.stringify(b))).size, 1, 'same body each time');
      assert.equal((sent[0] as { absenceId: string }).absenceId, a.id);
      const done = (await absences('SB-1'))[0];
      assert.deepEqual([done?.delivery, done?.lastError], ['scheduled', null]);
      assert.equal((await beacon('SB-1')).lastError, null);
      h.clock.advance(HOUR);
      assert.equal(await h.backend.sendCommands(), 0);
      assert.equal(app.to(/\/absences$/).length, 3, 'nothing sent once confirmed');
    });

    it('takes a 4xx to an absence command as final: marked done, shown on the absence and the beacon, not retried', async () => {
      app.reply = (r) =>
        r.path.endsWith('/absences')
          ? { status: 404, body: { error: 'NO_ACTIVE_QUARANTINE' } }
          : undefined;
      const a = (await schedule('SB-1', soon())).json<{ absence: Absence }>().absence;
      assert.equal(await h.backend.sendCommands(), 0);
      const refused = (await absences('SB-1'))[0];
      assert.deepEqual(
        [refused?.delivery, refused?.lastError],
        ['refused', 'NO_ACTIVE_QUARANTINE'],
      );
      assert.equal(
        (await beacon('SB-1')).lastError,
        'absence refused by the app backend (NO_ACTIVE_QUARANTINE)',
      );
      const { rows } = await db.query<{ done: boolean; last_error: string }>(
        "SELECT done_at IS NOT NULL AS done, last_error FROM commands WHERE action = 'absence'",
      );
      assert.deepEqual(rows, [{ done: true, last_error: 'NO_ACTIVE_QUARANTINE' }]);
      h.clock.advance(24 * HOUR);
      assert.equal(await h.backend.sendCommands(), 0);
      assert.equal(app.requests.length, 1, 'never retried');

      // Cancelling what the app backend refused needs no message to it.
      h.clock.ms = a.createdAt;
      const c = (await cancel(a.id)).json<{ absence: Absence }>().absence;
      assert.equal(c.delivery, 'cancelled');
      assert.equal(await h.backend.sendCommands(), 0);
      assert.equal(app.requests.length, 1);
    });

    it('retries 429 but not 400, and treats a cancel the app backend no longer knows as done', async () => {
      let calls = 0;
      app.reply = (r) => {
        if (!r.path.endsWith('/absences')) return undefined;
        calls++;
        if (calls === 1) return { status: 429, body: { error: 'RATE_LIMITED' } };
        if (calls === 3) return { status: 400, body: { error: 'BAD_ABSENCE' } };
        return undefined;
      };
      await schedule('SB-1', soon());
      assert.equal(await h.backend.sendCommands(), 0);
      h.clock.advance(10 * MIN);
      assert.equal(await h.backend.sendCommands(), 1);
      const second = (await schedule('SB-1', soon())).json<{ absence: Absence }>().absence;
      assert.equal(await h.backend.sendCommands(), 0);
      assert.equal((await absences('SB-1')).find((x) => x.id === second.id)?.delivery, 'refused');

      app.reply = (r) =>
        r.path.endsWith('/cancel')
          ? { status: 404, body: { error: 'NO_SUCH_ABSENCE' } }
          : undefined;
      const first = (await absences('SB-1')).find((x) => x.id !== second.id) as Absence;
      await cancel(first.id);
      assert.equal(await h.backend.sendCommands(), 1);
      const { rows } = await db.query<{ delivery: string; last_error: string | null }>(
        'SELECT delivery, last_error FROM absences WHERE id = $1',
        [first.id],
      );
      assert.deepEqual(rows, [{ delivery: 'cancelled', last_error: null }]);
    });

    it('never sends a cancel ahead of its schedule, even while the schedule is being retried', async () => {
      let down = true;
      app.reply = () => (down ? { status: 503, body: { error: 'UNAVAILABLE' } } : undefined);
      const a = (await schedule('SB-1', soon())).json<{ absence: Absence }>().absence;
      await cancel(a.id);
      assert.equal(await h.backend.sendCommands(), 0);
      h.clock.advance(10 * MIN);
      assert.equal(await h.backend.sendCommands(), 0);
      assert.ok(
        app.requests.every((r) => r.path.endsWith('/absences')),
        'no cancel before the schedule is through',
      );
      down = false;
      h.clock.advance(10 * MIN);
      assert.equal(await h.backend.sendCommands(), 1, 'the schedule');
      assert.equal(await h.backend.sendCommands(), 1, 'then the cancel');
      assert.deepEqual(
        app.requests.slice(-2).map((r) => r.path.split('/').slice(-1)[0]),
        ['absences', 'cancel'],
      );
      const { rows } = await db.query<{ delivery: string }>(
        'SELECT delivery FROM absences WHERE id = $1',
        [a.id],
      );
      assert.deepEqual(rows, [{ delivery: 'cancelled' }]);
    });
  });
}
