import assert from 'node:assert/strict';
import type { Database } from '../../backend-kit/db.js';
import { databaseTargets } from '../../test/support/databases.js';
import type { Alert } from '../src/alerts.js';
import {
  type PoliceHarness,
  type Session,
  T0,
  alertMessage,
  api,
  postAlert,
  signIn,
  startPolice,
  updateMessage,
} from './harness.js';

const MIN = 60_000;

for (const target of databaseTargets()) {
  describe(`alert lifecycle on the police backend on ${target.name}`, function () {
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

    const list = async (query: string) => {
      const r = await api(h, officer, 'GET', `/api/alerts?${query}`);
      assert.equal(r.status, 200, query);
      return r.json<{ alerts: Alert[] }>().alerts;
    };
    const one = async (id: unknown) =>
      (await api(h, officer, 'GET', `/api/alerts/${String(id)}`)).json<{
        alert: Alert;
        timeline: Alert[];
      }>();
    const post = async (m: Record<string, unknown>) => {
      const r = await postAlert(h, m);
      assert.equal(r.status, 200, JSON.stringify(r.json()));
      return m;
    };
    const fault = (beaconId: string, reasons: string, extra: Record<string, unknown> = {}) =>
      alertMessage({
        kind: 'BEACON_FAULT',
        beaconId,
        gapStartedAt: null,
        detail: { reasons, ...extra },
      });

    it('splits violations from beacon maintenance and orders each by urgency, then age', async () => {
      const low = await post({
        ...fault('SB-1', 'low_battery', { batteryPercent: 14 }),
        occurredAt: T0 - 50 * MIN,
      });
      const violation = await post(alertMessage({ beaconId: 'SB-2', occurredAt: T0 }));
      const spoof = await post(
        alertMessage({
          kind: 'SUSPECTED_SPOOFING',
          beaconId: 'SB-3',
          occurredAt: T0 - 20 * MIN,
          detail: { invalidTokens: 12, since: T0 - 40 * MIN },
        }),
      );
      const dead = await post({
        ...fault('SB-4', 'battery_depleted', { batteryPercent: 1 }),
        occurredAt: T0 - 10 * MIN,
      });
      const clock = await post({
        ...fault('SB-5', 'rebooted,clock_not_set', { counter: 3 }),
        occurredAt: T0 - 5 * MIN,
      });
      const drift = await post({
        ...fault('SB-6', 'clock_drift', { offsetSeconds: 190 }),
        occurredAt: T0 - 60 * MIN,
      });

      const ids = (alerts: Alert[]) => alerts.map((a) => [a.id, a.queue, a.urgency]);
      assert.deepEqual(ids(await list('view=queue')), [
        [violation.alertId, 'violation', 3],
        [spoof.alertId, 'maintenance', 2],
        [dead.alertId, 'maintenance', 2],
        [clock.alertId, 'maintenance', 2],
        [drift.alertId, 'maintenance', 1],
        [low.alertId, 'maintenance', 1],
      ]);
      assert.deepEqual(ids(await list('view=queue&queue=violation')), [
        [violation.alertId, 'violation', 3],
      ]);
      assert.deepEqual(
        (await list('view=queue&queue=maintenance')).map((a) => a.kind),
        ['SUSPECTED_SPOOFING', 'BEACON_FAULT', 'BEACON_FAULT', 'BEACON_FAULT', 'BEACON_FAULT'],
      );
      assert.deepEqual(
        (await list('view=history&queue=maintenance&kind=SUSPECTED_SPOOFING')).map((a) => a.id),
        [spoof.alertId],
      );
      const shown = (await list('view=queue&queue=violation'))[0] as Alert;
      assert.deepEqual(
        [shown.occurrences, shown.coveredByEvidence, shown.conditionClearedAt, shown.detail],
        [1, null, null, violation.detail],
      );
      for (const bad of ['queue=both', 'queue=', 'kind=LOW_BATTERY', 'kind=RECOVERED']) {
        const r = await api(h, officer, 'GET', `/api/alerts?${bad}`);
        assert.deepEqual([r.status, r.json()], [400, { error: 'BAD_QUERY' }], bad);
      }
    });

    it('files RELAY_SILENT (a phone silent, then home without proof) in maintenance, below faults', async () => {
      const silent = await post(
        alertMessage({
          kind: 'RELAY_SILENT',
          beaconId: 'SB-7',
          occurredAt: T0,
          detail: { silentFrom: T0 - 420 * MIN, silentUntil: T0 },
        }),
      );
      const drift = await post({
        ...fault('SB-6', 'clock_drift', { offsetSeconds: 190 }),
        occurredAt: T0 - 60 * MIN,
      });
      assert.deepEqual(
        (await list('view=queue&queue=maintenance')).map((a) => [a.id, a.kind, a.urgency]),
        [
          [drift.alertId, 'BEACON_FAULT', 1],
          [silent.alertId, 'RELAY_SILENT', 1],
        ],
        'same urgency as a minor fault: oldest first',
      );
      assert.deepEqual(await list('view=queue&queue=violation'), []);
    });

    it('refuses the kinds that were removed, and unknown ones, with the stable 400', async () => {
      for (const kind of ['CLOCK_DRIFT', 'BEACON_RESTARTED', 'LOW_BATTERY', 'RECOVERED', 'X']) {
        const r = await postAlert(h, alertMessage({ kind }));
        assert.deepEqual([r.status, r.json()], [400, { error: 'BAD_ALERT' }], kind);
      }
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM alerts');
      assert.equal(rows[0]?.n, 0);
    });

    it('merges ALERT_UPDATED into the open alert, counts it, and never reopens a resolved one', async () => {
      const f = await post(fault('SB-1', 'low_battery', { batteryPercent: 14 }));
      const before = (await one(f.alertId)).alert;
      h.clock.advance(MIN);
      const repeat = updateMessage(f, 'ALERT_UPDATED', {
        reasons: 'low_battery,battery_depleted',
        batteryPercent: 2,
      });
      await post(repeat);
      await post(repeat); // a redelivery counts once
      const merged = await one(f.alertId);
      assert.deepEqual(merged.alert.detail, {
        reasons: 'low_battery,battery_depleted',
        batteryPercent: 2,
      });
      assert.equal(merged.alert.occurrences, 2);
      assert.equal(merged.alert.urgency, 2, 'a depleted battery raises the urgency');
      assert.ok(merged.alert.updatedAt > before.updatedAt);
      assert.equal(merged.alert.state, 'open');
      assert.deepEqual(
        merged.timeline.map((t) => [t.kind, t.state]),
        [
          ['BEACON_FAULT', 'open'],
          ['ALERT_UPDATED', 'info'],
        ],
      );
      assert.equal((await list('view=queue')).length, 1, 'still one alert in the queue');

      for (const step of [
        { action: 'acknowledge' },
        { action: 'resolve', outcome: 'beacon_fault' },
      ])
        await api(h, officer, 'POST', `/api/alerts/${String(f.alertId)}/actions`, step);
      await post(
        updateMessage(
          f,
          'ALERT_UPDATED',
          { batteryPercent: 1, counter: 7 },
          { occurredAt: T0 + 5 * MIN },
        ),
      );
      const after = (await one(f.alertId)).alert;
      assert.deepEqual(
        [after.state, after.outcome, after.occurrences],
        ['resolved', 'beacon_fault', 3],
      );
      assert.deepEqual(after.detail, {
        reasons: 'low_battery,battery_depleted',
        batteryPercent: 1,
        counter: 7,
      });
      assert.equal((await list('view=queue')).length, 0);
    });

    it('a repeated NO_PRESENCE with a later gap makes the alert describe that gap again', async () => {
      const m = await post(alertMessage());
      await post(
        updateMessage(m, 'RESOLVED_BY_EVIDENCE', {
          lastPresenceAt: T0 + MIN,
          coveredByEvidence: false,
        }),
      );
      assert.equal((await one(m.alertId)).alert.recoveredAt, T0 + MIN);
      await post(
        updateMessage(
          m,
          'ALERT_UPDATED',
          { lastPresenceAt: T0 + 2 * MIN, confirmedAt: T0 + 30 * MIN },
          { occurredAt: T0 + 30 * MIN, gapStartedAt: T0 + 2 * MIN },
        ),
      );
      const a = (await one(m.alertId)).alert;
      assert.deepEqual(
        [a.gapStartedAt, a.recoveredAt, a.coveredByEvidence, a.lastPresenceAt, a.occurrences],
        [T0 + 2 * MIN, null, null, T0 + 2 * MIN, 2],
      );
    });

    it('FAULT_CLEARED marks the condition cleared and leaves the alert in the queue until resolved', async () => {
      const f = await post(fault('SB-1', 'low_battery', { batteryPercent: 9 }));
      await post(updateMessage(f, 'FAULT_CLEARED', { batteryPercent: 100 }));
      const a = (await one(f.alertId)).alert;
      assert.deepEqual([a.conditionClearedAt, a.state], [Number(f.occurredAt) + MIN, 'open']);
      assert.deepEqual(
        (await list('view=queue&queue=maintenance')).map((x) => x.conditionClearedAt),
        [Number(f.occurredAt) + MIN],
      );
      // The condition comes back: the same alert says so.
      await post(
        updateMessage(
          f,
          'ALERT_UPDATED',
          { batteryPercent: 8 },
          { occurredAt: Number(f.occurredAt) + 9 * MIN },
        ),
      );
      assert.equal((await one(f.alertId)).alert.conditionClearedAt, null);
    });

    it('RESOLVED_BY_EVIDENCE tells a proven-present false alarm from a person who came back', async () => {
      const covered = await post(alertMessage({ beaconId: 'SB-1' }));
      const back = await post(alertMessage({ beaconId: 'SB-2' }));
      await post(
        updateMessage(covered, 'RESOLVED_BY_EVIDENCE', {
          lastPresenceAt: T0 + 3 * MIN,
          coveredByEvidence: true,
        }),
      );
      await post(
        updateMessage(back, 'RESOLVED_BY_EVIDENCE', {
          lastPresenceAt: T0 + 4 * MIN,
          coveredByEvidence: false,
        }),
      );
      const a = (await one(covered.alertId)).alert;
      const b = (await one(back.alertId)).alert;
      assert.deepEqual([a.coveredByEvidence, a.recoveredAt], [true, T0 + 3 * MIN]);
      assert.deepEqual([b.coveredByEvidence, b.recoveredAt], [false, T0 + 4 * MIN]);
      assert.deepEqual(
        [a.state, b.state],
        ['open', 'open'],
        'an officer still closes the alert with an outcome',
      );
    });

    it('an update naming an unknown alert is stored as info and changes nothing else', async () => {
      const lone = alertMessage({
        kind: 'FAULT_CLEARED',
        relatedAlertId: '00000000-0000-4000-8000-000000000001',
        detail: {},
      });
      assert.deepEqual((await postAlert(h, lone)).json(), { ok: true, duplicate: false });
      const { rows } = await db.query<{ state: string; queue: string | null }>(
        'SELECT state, queue FROM alerts',
      );
      assert.deepEqual(rows, [{ state: 'info', queue: null }]);
      assert.equal((await list('view=queue')).length, 0);
    });
  });
}
