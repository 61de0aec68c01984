import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { Database } from '../../backend-kit/db.js';
import { openStatus } from '../../protocol/presence-status.js';
import { databaseTargets } from '../../test/support/databases.js';
import { DEFAULT_RULES } from '../src/config.js';
import { FAULT_REASONS, type FaultReason, nextFault } from '../src/faults.js';
import {
  type DueQuarantine,
  absenceAt,
  absenceProblem,
  relayStatus,
  watchAction,
} from '../src/lifecycle.js';
import {
  type Harness,
  PoliceStub,
  TestBeacon,
  authority,
  monitored,
  police,
  presence,
  relayAlive,
  startBackend,
} from './harness.js';

const MIN = 60_000;
const NOW = 1_795_400_000_000;
const due = (over: Partial<DueQuarantine> = {}): DueQuarantine => ({
  deadline: NOW,
  lastPresenceAt: NOW - 6 * MIN,
  enabledAt: NOW - 86_400_000,
  gap: null,
  battery: 80,
  clockNotSetAt: null,
  lastRequestAt: NOW - MIN,
  relayBackAt: null,
  absences: [],
  ...over,
});

describe('gap lifecycle rules', () => {
  it('goes provisional when the window passes, and confirms only when the grace has passed too', () => {
    assert.deepEqual(watchAction(due({ deadline: NOW + 1 }), DEFAULT_RULES, NOW), {
      type: 'none',
    });
    assert.deepEqual(watchAction(due(), DEFAULT_RULES, NOW), {
      type: 'provisional',
      gapStartedAt: NOW - 6 * MIN,
      confirmAt: NOW + DEFAULT_RULES.graceSeconds * 1000,
    });
    const gap = {
      status: 'provisional' as const,
      gapStartedAt: NOW - 16 * MIN,
      provisionalAt: NOW - 10 * MIN,
      heldAt: null,
    };
    assert.deepEqual(watchAction(due({ gap }), DEFAULT_RULES, NOW), {
      type: 'confirm',
      queue: 'violation',
      reason: null,
      relaySilent: false,
    });
    const confirmed = due({ gap: { ...gap, status: 'confirmed' } });
    assert.deepEqual(watchAction(confirmed, DEFAULT_RULES, NOW), { type: 'none' });
  });

  it('waits for a silent relay (flat phone, no network) up to the silent grace, then files it for maintenance', () => {
    const gap = {
      status: 'provisional' as const,
      gapStartedAt: NOW - 16 * MIN,
      provisionalAt: NOW - 10 * MIN,
      heldAt: null,
    };
    const silent = due({ gap, lastRequestAt: NOW - 12 * MIN });
    assert.deepEqual(watchAction(silent, DEFAULT_RULES, NOW), {
      type: 'hold',
      recheckAt: NOW + 200_000,
    });
    const limit = gap.provisionalAt + DEFAULT_RULES.silentGraceSeconds * 1000;
    assert.deepEqual(watchAction(silent, DEFAULT_RULES, limit - 60_000), {
      type: 'hold',
      recheckAt: limit,
    });
    assert.deepEqual(watchAction(silent, DEFAULT_RULES, limit), {
      type: 'confirm',
      queue: 'maintenance',
      reason: null,
      relaySilent: true,
    });
    // Back online but still not hearing the beacon: away from it, told at once…
    assert.equal(
      watchAction({ ...silent, lastRequestAt: NOW - MIN }, DEFAULT_RULES, NOW).type,
      'confirm',
    );
    // …unless it only just came back: one full cycle to hear the beacon first.
    const held = { ...gap, heldAt: NOW - 5 * MIN };
    const back = { ...silent, gap: held, lastRequestAt: NOW - MIN, relayBackAt: NOW - MIN };
    assert.deepEqual(watchAction(back, DEFAULT_RULES, NOW), {
      type: 'hold',
      recheckAt: NOW - MIN + 400_000,
    });
  });

  it('routes a silence after a critical battery or a lost clock to maintenance, never a healthy beacon', () => {
    const gap = {
      status: 'provisional' as const,
      gapStartedAt: NOW - 16 * MIN,
      provisionalAt: NOW - 10 * MIN,
      heldAt: null,
    };
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.option(fc.integer({ min: -60, max: 60 })),
        (battery, clockMinutes) => {
          const clockNotSetAt = clockMinutes === null ? null : NOW - 16 * MIN + clockMinutes * MIN;
          const a = watchAction(due({ gap, battery, clockNotSetAt }), DEFAULT_RULES, NOW);
          assert.equal(a.type, 'confirm');
          if (a.type !== 'confirm') return;
          const dead = battery <= DEFAULT_RULES.criticalBatteryPercent;
          const lostClock = clockNotSetAt !== null && clockNotSetAt >= gap.gapStartedAt;
          assert.equal(a.queue, dead || lostClock ? 'maintenance' : 'violation');
          if (dead) assert.equal(a.reason, 'battery_depleted');
        },
      ),
    );
  });

  it('defers to the end of an absence (followed through back-to-back ones) and clears a provisional gap it covers', () => {
    const absences = [
      { startsAt: NOW - 30 * MIN, endsAt: NOW + 30 * MIN },
      { startsAt: NOW + 30 * MIN, endsAt: NOW + 90 * MIN },
      { startsAt: NOW + 120 * MIN, endsAt: NOW + 180 * MIN },
    ];
    assert.deepEqual(absenceAt(absences, NOW), {
      startsAt: NOW - 30 * MIN,
      endsAt: NOW + 90 * MIN,
    });
    assert.equal(absenceAt(absences, NOW + 100 * MIN), undefined);
    assert.deepEqual(watchAction(due({ absences }), DEFAULT_RULES, NOW), {
      type: 'defer',
      until: NOW + 90 * MIN,
      clearGap: false,
    });
    const gap = {
      status: 'provisional' as const,
      gapStartedAt: NOW - 16 * MIN,
      provisionalAt: NOW - 10 * MIN,
      heldAt: null,
    };
    assert.deepEqual(watchAction(due({ absences, gap }), DEFAULT_RULES, NOW), {
      type: 'defer',
      until: NOW + 90 * MIN,
      clearGap: true,
    });
    // After the absence: the window counts from its end, then the grace.
    const after = watchAction(due({ deadline: NOW + 90 * MIN }), DEFAULT_RULES, NOW + 90 * MIN);
    assert.deepEqual(after, {
      type: 'provisional',
      gapStartedAt: NOW - 6 * MIN,
      confirmAt: NOW + 90 * MIN + DEFAULT_RULES.graceSeconds * 1000,
    });
  });

  it('accepts only absences that are forward-looking, ordered and no longer than allowed', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -3 * 86_400_000, max: 3 * 86_400_000 }),
        fc.integer({ min: -3 * 86_400_000, max: 3 * 86_400_000 }),
        (start, length) => {
          const a = { startsAt: NOW + start, endsAt: NOW + start + length };
          const ok =
            length > 0 &&
            length <= DEFAULT_RULES.maxAbsenceSeconds * 1000 &&
            a.endsAt > NOW &&
            a.startsAt >= NOW - 60_000;
          assert.equal(absenceProblem(a, DEFAULT_RULES, NOW) === null, ok);
        },
      ),
    );
  });

  it('tells the relay: all clear, not heard, warning with the time police will be told, reported, absence', () => {
    const base = {
      state: 'monitoring' as const,
      windowSeconds: 360,
      lastPresenceAt: NOW - MIN,
      gap: null,
      deadline: NOW + 5 * MIN,
      absences: [],
    };
    const code = (over: object, now = NOW) => {
      const s = relayStatus({ ...base, ...over }, now);
      return [s.code, s.since, s.until];
    };
    assert.deepEqual(code({}), ['all_clear', NOW - MIN, null]);
    assert.deepEqual(code({ lastPresenceAt: NOW - 4 * MIN }), [
      'not_heard',
      NOW - 4 * MIN,
      NOW + 2 * MIN,
    ]);
    const gap = { status: 'provisional', gapStartedAt: NOW - 7 * MIN };
    assert.deepEqual(code({ gap, deadline: NOW + 9 * MIN }), [
      'warning_grace',
      NOW - 7 * MIN,
      NOW + 9 * MIN,
    ]);
    assert.deepEqual(code({ gap: { ...gap, status: 'confirmed' } }), [
      'reported',
      NOW - 7 * MIN,
      null,
    ]);
    const absences = [{ startsAt: NOW - MIN, endsAt: NOW + 60 * MIN }];
    assert.deepEqual(code({ absences }), ['absence', NOW - MIN, NOW + 60 * MIN]);
    assert.deepEqual(code({ absences }, NOW - 2 * MIN), ['all_clear', NOW - MIN, null]);
    assert.deepEqual(code({ state: 'registered' }), ['not_monitored', null, null]);
  });

  it('keeps at most one fault open: raises on a new reason, clears only when no condition holds', () => {
    const reason = fc.constantFrom(...FAULT_REASONS);
    fc.assert(
      fc.property(
        fc.uniqueArray(reason),
        fc.record({
          accepted: fc.boolean(),
          battery: fc.option(fc.integer({ min: 0, max: 100 })),
          offsetSeconds: fc.integer({ min: -600, max: 600 }),
          clockNotSetSeen: fc.boolean(),
          clockSetSeen: fc.boolean(),
          rebooted: fc.boolean(),
        }),
        (current: FaultReason[], i) => {
          const c = nextFault(current, { ...i, lowBatteryPercent: 15, driftAlertSeconds: 120 });
          assert.ok(!(c.raise && c.clear), 'never both');
          if (c.clear) {
            assert.ok(current.length > 0);
            assert.ok(!c.reasons.some((r) => r !== 'rebooted'), 'nothing but the restart left');
          }
          if (c.raise) assert.ok(c.reasons.length > 0);
          if (i.rebooted) assert.ok(c.reasons.includes('rebooted'));
        },
      ),
    );
  });
});

for (const target of databaseTargets()) {
  describe(`alert lifecycle on ${target.name}`, function () {
    this.timeout(60_000);
    let db: Database;
    let stub: PoliceStub;
    let h: Harness;

    beforeEach(async () => {
      db = await target.open();
      stub = new PoliceStub();
      await stub.up();
      h = await startBackend(db, stub);
    });
    afterEach(async () => {
      await h.backend.close();
      await stub.down();
      await db.close();
    });

    const status = async (b: TestBeacon) =>
      openStatus(b.skTPast, (await presence(h, b.skTPast, [])).body);

    it('an absence scheduled by the health authority suspends alerts; a late return is told after its end plus grace', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      const start = h.clock.ms + 2 * MIN;
      const end = start + 60 * MIN;
      const made = await authority(h, 'POST', `/v1/quarantines/${b.beaconId}/absences`, {
        startsAt: start,
        endsAt: end,
      });
      assert.equal(made.status, 201);
      const { absenceId } = made.json<{ absenceId: string }>();
      const listed = await authority(h, 'GET', `/v1/quarantines/${b.beaconId}/absences`);
      assert.deepEqual(
        listed.json<{ absences: { absenceId: string }[] }>().absences.map((a) => a.absenceId),
        [absenceId],
      );
      h.clock.advance(3 * MIN);
      await h.backend.refreshStatuses();
      assert.deepEqual([(await status(b))?.code, (await status(b))?.until], ['absence', end]);
      for (let t = 0; t < 55; t += 5) {
        h.clock.advance(5 * MIN);
        await h.backend.watchdog();
      }
      assert.equal(await h.backend.deliver(), 0, 'nothing during the absence');
      h.clock.advance(end - h.clock.ms + 9 * MIN); // nine minutes late: still inside the grace
      const late = await h.backend.watchdog();
      assert.deepEqual([late.provisional, late.confirmed], [1, 0]);
      assert.equal((await status(b))?.code, 'warning_grace');
      assert.equal((await status(b))?.until, end + 10 * MIN);
      h.clock.advance(2 * MIN);
      await relayAlive(h, b); // still out, phone on, beacon not heard
      assert.equal((await h.backend.watchdog()).confirmed, 1);
      await h.backend.deliver();
      const [alert] = stub.shown();
      assert.equal(alert?.kind, 'NO_PRESENCE');
      assert.equal(alert?.detail.afterAbsence, true);
      assert.equal(alert?.detail.provisionalAt, end);
    });

    it('an absence scheduled by the police (idempotent on its ID) and cancelled: monitoring resumes', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      const absenceId = randomUUID();
      const body = { absenceId, startsAt: h.clock.ms, endsAt: h.clock.ms + 120 * MIN };
      const path = `/internal/v1/beacons/${b.beaconId}/absences`;
      for (let i = 0; i < 2; i++) {
        const r = await police(h, path, 'POST', body);
        assert.deepEqual([r.status, r.json()], [200, { absenceId, status: 'scheduled' }]);
      }
      const clash = await police(h, path, 'POST', { ...body, endsAt: body.endsAt + 1 });
      assert.deepEqual([clash.status, clash.json()], [409, { error: 'ABSENCE_ID_IN_USE' }]);
      h.clock.advance(30 * MIN);
      await h.backend.watchdog(); // deferred to the absence's end
      const cancel = await police(h, `${path}/${absenceId}/cancel`, 'POST', {});
      assert.deepEqual(cancel.json(), { absenceId, status: 'cancelled' });
      assert.equal((await h.backend.watchdog()).provisional, 1, 'the window had long passed');
      const missing = await police(h, `${path}/${randomUUID()}/cancel`, 'POST', {});
      assert.deepEqual([missing.status, missing.json()], [404, { error: 'NO_SUCH_ABSENCE' }]);
    });

    it('refuses bad absences with one stable code and writes nothing', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      const now = h.clock.ms;
      for (const body of [
        { startsAt: now + MIN, endsAt: now },
        { startsAt: now - 2 * MIN, endsAt: now + MIN },
        { startsAt: now, endsAt: now + 25 * 60 * MIN },
        { startsAt: now, endsAt: 'later' },
        { startsAt: now, endsAt: now + MIN, reason: 'dentist' },
      ]) {
        const r = await authority(h, 'POST', `/v1/quarantines/${b.beaconId}/absences`, body);
        assert.deepEqual(
          [r.status, r.json()],
          [400, { error: 'BAD_ABSENCE' }],
          JSON.stringify(body),
        );
      }
      const unknown = await authority(h, 'POST', '/v1/quarantines/SB-nobody/absences', {
        startsAt: now,
        endsAt: now + MIN,
      });
      assert.deepEqual([unknown.status, unknown.json()], [404, { error: 'NO_ACTIVE_QUARANTINE' }]);
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM absences');
      assert.equal(rows[0]?.n, 0);
    });

    it('a phone that goes flat overnight is waited for; in the morning the gap clears and officers get a RELAY_SILENT note', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      const flat = h.clock.ms;
      for (let minute = 1; minute <= 7 * 60; minute++) {
        h.clock.advance(MIN);
        await h.backend.watchdog();
      }
      assert.equal(await h.backend.deliver(), 0, 'nothing told during the night');
      await presence(h, b.skTPast, [b.token(h.clock.ms)]); // charged, at home
      await h.backend.flush();
      await h.backend.deliver();
      assert.deepEqual(
        stub.shown().map((a) => [a.kind, a.detail.silentFrom, a.detail.silentUntil]),
        [['RELAY_SILENT', flat, h.clock.ms]],
      );
      const { rows } = await db.query<{ status: string }>(
        "SELECT status FROM alerts WHERE kind = 'NO_PRESENCE'",
      );
      assert.deepEqual(rows, [{ status: 'cleared' }]);
    });

    it('a phone switched off to leave is told as soon as it is back on while still away', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      // Held while silent (looked at again every 200 s), then one cycle once it is back on.
      for (let minute = 1; minute <= 100; minute++) {
        h.clock.advance(MIN);
        if (minute === 90 || minute === 95) await relayAlive(h, b); // back on, every cycle
        await h.backend.watchdog();
      }
      await h.backend.deliver();
      assert.deepEqual(
        stub.shown().map((a) => [a.kind, a.detail.relaySilent]),
        [['NO_PRESENCE', false]],
      );
    });

    it('a beacon that dies after reporting a critical battery goes to maintenance, not to the violation queue', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      await presence(h, b.skTPast, [b.token(h.clock.ms, { battery: 4 })]);
      await h.backend.flush();
      h.clock.advance(20 * MIN); // the beacon is silent from here on
      // Window and grace both over by now: the gap is opened and routed in one tick.
      const r = await h.backend.watchdog();
      assert.deepEqual([r.provisional, r.confirmed, r.maintenance], [1, 0, 1]);
      await h.backend.deliver();
      const kinds = stub.shown().map((a) => [a.kind, a.detail.reasons ?? null]);
      assert.deepEqual(kinds, [
        ['BEACON_FAULT', 'low_battery'],
        ['ALERT_UPDATED', 'low_battery,battery_depleted'],
      ]);
      assert.equal(stub.shown()[1]?.relatedAlertId, stub.shown()[0]?.alertId);
      assert.equal((await status(b))?.code, 'reported', 'an officer will come: the person is told');
    });

    it('a beacon that lost its clock keeps signing tokens: maintenance, and the tokens prove nothing', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      for (let i = 0; i < 20; i++) {
        h.clock.advance(MIN);
        await presence(h, b.skTPast, [
          b.token(h.clock.ms, { clockNotSet: true, rebooted: i === 0 }),
        ]);
        await h.backend.flush();
        await h.backend.watchdog();
      }
      await h.backend.deliver();
      assert.deepEqual(
        stub.shown().map((a) => [a.kind, a.detail.reasons ?? null]),
        [['BEACON_FAULT', 'rebooted,clock_not_set']],
        'one fault; the silence it causes updates nothing new and is no violation',
      );
      const { rows } = await db.query<{ status: string; queue: string }>(
        "SELECT status, queue FROM alerts WHERE kind = 'NO_PRESENCE'",
      );
      assert.deepEqual(rows, [{ status: 'confirmed', queue: 'maintenance' }]);
    });

    it('tokens failing authentication during a silence raise SUSPECTED_SPOOFING beside the violation', async () => {
      const b = new TestBeacon();
      const neighbour = new TestBeacon();
      await monitored(h, b);
      for (let i = 0; i < 17; i++) {
        h.clock.advance(MIN);
        // The person's relay hears only someone else's beacon.
        await presence(h, b.skTPast, [neighbour.token(h.clock.ms)]);
        await h.backend.flush();
        await h.backend.watchdog();
      }
      await h.backend.deliver();
      const kinds = stub.shown().map((a) => a.kind);
      assert.deepEqual(kinds.sort(), ['NO_PRESENCE', 'SUSPECTED_SPOOFING']);
      const spoof = stub.shown().find((a) => a.kind === 'SUSPECTED_SPOOFING');
      assert.equal(spoof?.detail.invalidTokens, 10);
    });
  });
}
