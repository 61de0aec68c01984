import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { nodeSuite } from '../../protocol/token/keys-node.js';
import { makeToken } from '../../protocol/token/make.js';
import type { TokenFields } from '../../protocol/token/fields.js';
import { openDatabase } from '../../backend-kit/db.js';
import { ManualClock } from '../../test/support/clock.js';
import { DEFAULT_RULES } from '../../app-backend/src/config.js';
import {
  PoliceStub,
  TestBeacon,
  authority,
  police,
  presence,
  register,
  startBackend,
} from '../../app-backend/test/harness.js';
import { DEFAULT_MODEL, withOverrides } from '../false-alarms/model.js';
import { type Upload, requestsOf } from '../false-alarms/person.js';
import { SIM_START, runPerson, simulate } from '../false-alarms/run.js';

const MIN = 60_000;

describe('false-alarm simulation (short version of npm run sim:false-alarms)', function () {
  this.timeout(120_000);

  it('reports every departure longer than window + grace made with an online phone, and is repeatable', () => {
    const a = simulate({ people: 150, days: 7, seed: 11 });
    const d = a.departures;
    assert.ok(
      d.mustDetectWithPhoneOnline > 10,
      `departures to catch: ${d.mustDetectWithPhoneOnline}`,
    );
    assert.equal(d.detectedWithPhoneOnline, d.mustDetectWithPhoneOnline);
    assert.ok(
      d.minutesToPolice.max <=
        (DEFAULT_RULES.windowSeconds + DEFAULT_RULES.graceSeconds) / 60 + 2 || d.phoneSilent > 0,
    );
    assert.equal(d.lateReturnsDetected, d.lateReturns);
    const small = { people: 20, days: 7 };
    const b = simulate({ ...small, seed: 11 });
    assert.deepEqual(simulate({ ...small, seed: 11 }), b, 'same seed, same figures');
    assert.notDeepEqual(simulate({ ...small, seed: 12 }).faults, b.faults);
  });

  it('the grace and the silent-relay wait are what keep false alarms away', () => {
    const o = { people: 80, days: 7, seed: 5 };
    const ours = simulate(o);
    const noGrace = simulate({ ...o, rules: { ...DEFAULT_RULES, graceSeconds: 0 } });
    assert.ok(
      noGrace.violationAlerts.false > 10 * Math.max(1, ours.violationAlerts.false),
      `false alerts: ${ours.violationAlerts.false} with the grace, ${noGrace.violationAlerts.false} without`,
    );
    // Without waiting for silent phones, every flat night would be a violation.
    const impatient = simulate({ ...o, rules: { ...DEFAULT_RULES, relaySilentSeconds: 86_400 } });
    assert.ok(
      Object.keys(impatient.falseByCause).some((k) => k.includes('phone_flat')),
      JSON.stringify(impatient.falseByCause),
    );
    assert.ok(!Object.keys(ours.falseByCause).some((k) => k === 'phone_flat'));
  });
});

describe('false-alarm simulation mirrors the real app backend', function () {
  this.timeout(300_000);

  // Busy days, so a short replay meets every path: departures, faults, silences, absences.
  const busy = withOverrides(DEFAULT_MODEL, {
    departuresPerDay: 6,
    bluetoothOffPerDay: 4,
    relayOfflinePerDay: 3,
    relayOfflineMedianMin: 40,
    phoneFlatNightShare: 1,
    usedCellShare: 0.3,
    neighbourShare: 1,
    absencesPerDay: 2,
    lateReturnShare: 0.5,
    rcClockShare: 0.5,
  });

  // Person 4 meets a low cell, its replacement and a silent night; person 5 departures, a late
  // return, resolved alerts and a silent relay.
  for (const person of [4, 5]) {
    it(`person ${person}: the same requests give the police the same messages, minute by minute`, async () => {
      const o = { people: 1, days: 1, seed: 21 };
      const uploads: Upload[] = [];
      const sim = runPerson(person, o, busy, DEFAULT_RULES, (u) => uploads.push(u));
      assert.ok(sim.messages.length >= 2, `messages: ${sim.messages.map((m) => m.kind).join(',')}`);

      const db = await openDatabase({ dataDir: 'memory://' });
      const stub = new PoliceStub();
      await stub.up();
      const h = await startBackend(db, stub, {
        clock: new ManualClock(SIM_START),
        rules: DEFAULT_RULES,
      });
      try {
        const beacon = new TestBeacon();
        const neighbour = nodeSuite.importKeys(new Uint8Array(randomBytes(32)));
        const seal = (f: TokenFields) => makeToken(beacon.keys, f);
        assert.equal((await register(h, beacon)).status, 201);
        await police(h, `/internal/v1/beacons/${beacon.beaconId}/enable`);
        for (const a of sim.person.absences) {
          const r = await authority(h, 'POST', `/v1/quarantines/${beacon.beaconId}/absences`, a);
          assert.equal(r.status, 201);
        }
        let next = 0;
        for (let t = SIM_START; t < SIM_START + o.days * 86_400_000; t += MIN) {
          h.clock.ms = t;
          const u = uploads[next];
          if (u && u.at === t) {
            next++;
            for (const r of requestsOf(u)) {
              const junk = Array.from({ length: r.invalid }, () =>
                makeToken(neighbour, {
                  unixSeconds: t / 1000,
                  counter: 1,
                  batteryPercent: 50,
                  clockNotSet: false,
                  rebooted: false,
                }),
              );
              await presence(h, beacon.skTPast, [...r.tokens.map(seal), ...junk]);
              await h.backend.flush();
            }
          }
          if (t > SIM_START) await h.backend.watchdog();
        }
        await h.backend.deliver();
        const real = stub.shown().map((m) => [m.kind, m.occurredAt, m.gapStartedAt]);
        const mirrored = sim.messages.map((m) => [m.kind, m.at, m.gapStartedAt]);
        assert.deepEqual(real, mirrored);
      } finally {
        await h.backend.close();
        await stub.down();
        await db.close();
      }
    });
  }
});
