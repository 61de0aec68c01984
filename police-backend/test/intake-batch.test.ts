import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { Database } from '../../backend-kit/db.js';
import { databaseTargets } from '../../test/support/databases.js';
import { capturedLogger } from '../../test/support/log-capture.js';
import {
  type Alert,
  type AlertMessage,
  type Detail,
  REVIEWABLE,
  UPDATES,
  alertMessageSchema,
  urgency,
} from '../src/alerts.js';
import { AlertIntake } from '../src/intake.js';
import {
  MIN,
  type ReviewState,
  UNKNOWN_BEACON,
  addBeaconRecords,
  clearAlerts,
  lastAuditSeq,
  setStates,
  storedAlerts,
  storeAlerts,
  tableRows,
} from './alert-fixtures.js';
import { type PoliceHarness, T0, postAlert, startPolice } from './harness.js';

/** One clock for both runs: the rows then match to the millisecond, received and updated times included. */
const NOW = T0 + 3 * 60 * MIN;
/** Cases per database in the normal run; PROPERTY_RUNS raises it for a deep run. */
const RUNS = Number(process.env.PROPERTY_RUNS ?? 30);
const NOBODY = '00000000-0000-4000-8000-0000000000ff';

type Kind = AlertMessage['kind'];

const message = (
  alertId: string,
  kind: Kind,
  beaconId: string,
  detail: Detail,
  over: Partial<AlertMessage> = {},
): AlertMessage => ({
  alertId,
  kind,
  beaconId,
  occurredAt: T0,
  gapStartedAt: null,
  relatedAlertId: null,
  detail,
  ...over,
});

/** Alerts already stored when a case starts, in each review state (updates must leave it). */
const SEEDS: readonly { m: AlertMessage; state?: ReviewState }[] = [
  {
    m: message('5eed0000-0000-4000-8000-000000000001', 'NO_PRESENCE', 'SB-1', {
      lastPresenceAt: T0 - 16 * MIN,
      confirmedAt: T0,
      graceSeconds: 600,
    }),
  },
  {
    m: message('5eed0000-0000-4000-8000-000000000002', 'BEACON_FAULT', 'SB-2', {
      reasons: 'low_battery',
      batteryPercent: 12,
    }),
    state: 'acknowledged',
  },
  {
    m: message(
      '5eed0000-0000-4000-8000-000000000003',
      'NO_PRESENCE',
      'SB-3',
      { lastPresenceAt: T0 - 30 * MIN },
      { gapStartedAt: T0 - 30 * MIN },
    ),
    state: 'resolved',
  },
  {
    m: message('5eed0000-0000-4000-8000-000000000004', 'SUSPECTED_SPOOFING', UNKNOWN_BEACON, {
      invalidTokens: 4,
      since: T0 - 9 * MIN,
    }),
    state: 'dispatched',
  },
];

async function seed(db: Database): Promise<void> {
  await storeAlerts(
    db,
    SEEDS.map((s) => s.m),
    T0 - 60 * MIN,
  );
  await setStates(
    db,
    SEEDS.flatMap(({ m, state }) =>
      state
        ? [{ id: m.alertId, state, ...(state === 'resolved' ? { outcome: 'false_alarm' } : {}) }]
        : [],
    ),
  );
}

// A small range of times, so ties (GREATEST, "a later gap", queue order) come up often.
const time = fc.integer({ min: -90, max: 90 }).map((k) => T0 + k * MIN);
const orNull = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null });
const beacon = fc.constantFrom('SB-1', 'SB-2', 'SB-3', UNKNOWN_BEACON);
const reasons = fc
  .subarray(['low_battery', 'battery_depleted', 'rebooted', 'clock_not_set', 'clock_drift'], {
    minLength: 1,
  })
  .map((r) => r.join(','));
const percent = fc.integer({ min: 0, max: 100 });
// Detail fields are read only when of the right type: wrong types must be ignored the same way.
const oddly = <T>(a: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: a, weight: 4 }, fc.constantFrom<Detail[string]>('soon', null, true));

const DETAIL: Record<Kind, fc.Arbitrary<Detail>> = {
  NO_PRESENCE: fc.record({
    lastPresenceAt: orNull(time),
    provisionalAt: time,
    confirmedAt: time,
    graceSeconds: fc.constant(600),
    afterAbsence: fc.boolean(),
  }),
  BEACON_FAULT: fc.record(
    { reasons: oddly(reasons), batteryPercent: percent, counter: fc.nat(9) },
    { requiredKeys: ['reasons'] },
  ),
  SUSPECTED_SPOOFING: fc.record({ invalidTokens: fc.integer({ min: 1, max: 50 }), since: time }),
  RELAY_SILENT: fc.record({ silentFrom: time, silentUntil: orNull(time) }),
  RESOLVED_BY_EVIDENCE: fc.record(
    { lastPresenceAt: oddly(time), coveredByEvidence: oddly(fc.boolean()) },
    { requiredKeys: [] },
  ),
  LATE_EVIDENCE: fc.record({ evidenceUntil: oddly(time) }, { requiredKeys: [] }),
  ALERT_UPDATED: fc.record(
    { reasons: oddly(reasons), batteryPercent: percent, lastPresenceAt: oddly(time) },
    { requiredKeys: [] },
  ),
  FAULT_CLEARED: fc.record({ batteryPercent: percent }, { requiredKeys: [] }),
};

type Op =
  | {
      readonly t: 'alert';
      readonly id: string;
      readonly kind: Kind;
      readonly beaconId: string;
      readonly occurredAt: number;
      readonly gapStartedAt: number | null;
      readonly detail: Detail;
    }
  | {
      readonly t: 'update';
      readonly id: string;
      readonly kind: Kind;
      readonly occurredAt: number;
      readonly gapStartedAt: number | null;
      readonly detail: Detail;
      /** Which alert it names: an earlier message, a seeded alert, none stored, or itself. */
      readonly target: 'earlier' | 'seed' | 'unknown' | 'self';
      readonly pick: number;
      readonly upperCase: boolean;
    }
  | { readonly t: 'redeliver'; readonly pick: number; readonly upperCase: boolean };

const alertOp: fc.Arbitrary<Op> = fc.constantFrom(...REVIEWABLE).chain((kind) =>
  fc.record({
    t: fc.constant('alert' as const),
    id: fc.uuid({ version: 4 }),
    kind: fc.constant(kind),
    beaconId: beacon,
    occurredAt: time,
    gapStartedAt: orNull(time),
    detail: DETAIL[kind],
  }),
);
const updateOp: fc.Arbitrary<Op> = fc.constantFrom(...UPDATES).chain((kind) =>
  fc.record({
    t: fc.constant('update' as const),
    id: fc.uuid({ version: 4 }),
    kind: fc.constant(kind),
    occurredAt: time,
    gapStartedAt: kind === 'ALERT_UPDATED' ? orNull(time) : fc.constant(null),
    detail: DETAIL[kind],
    target: fc.constantFrom('earlier', 'earlier', 'earlier', 'earlier', 'seed', 'unknown', 'self'),
    pick: fc.nat(),
    upperCase: fc.boolean(),
  }),
);
const redeliverOp: fc.Arbitrary<Op> = fc.record({
  t: fc.constant('redeliver' as const),
  pick: fc.nat(),
  upperCase: fc.boolean(),
});

/** A sequence of messages and where it is cut into intake batches. */
const scenario = fc.record({
  ops: fc.array(
    fc.oneof(
      { arbitrary: alertOp, weight: 4 },
      { arbitrary: updateOp, weight: 5 },
      { arbitrary: redeliverOp, weight: 2 },
    ),
    { minLength: 2, maxLength: 30, size: 'medium' },
  ),
  cuts: fc.array(fc.nat(30), { maxLength: 4 }),
});

/** The messages the ops describe; updates name only alerts sent before them (the app backend's order). */
function messages(ops: readonly Op[]): AlertMessage[] {
  const out: AlertMessage[] = [];
  const seeds = SEEDS.map((s) => s.m);
  const pickFrom = (list: readonly AlertMessage[], i: number) =>
    list[i % list.length] as AlertMessage;
  for (const op of ops) {
    if (op.t === 'redeliver') {
      const m = pickFrom(out.length ? out : seeds, op.pick);
      // The same idempotency key; UUIDs in upper case are the same key too.
      out.push({ ...m, alertId: op.upperCase ? m.alertId.toUpperCase() : m.alertId });
      continue;
    }
    if (op.t === 'alert') {
      out.push(
        message(op.id, op.kind, op.beaconId, op.detail, {
          occurredAt: op.occurredAt,
          gapStartedAt: op.gapStartedAt,
        }),
      );
      continue;
    }
    const related =
      op.target === 'earlier' && out.length
        ? pickFrom(out, op.pick)
        : op.target === 'earlier' || op.target === 'seed'
          ? pickFrom(seeds, op.pick)
          : undefined;
    const relatedId = related?.alertId ?? (op.target === 'self' ? op.id : NOBODY);
    out.push(
      message(op.id, op.kind, related?.beaconId ?? 'SB-1', op.detail, {
        occurredAt: op.occurredAt,
        gapStartedAt: op.gapStartedAt,
        relatedAlertId: op.upperCase ? relatedId.toUpperCase() : relatedId,
      }),
    );
  }
  // What the HTTP route would accept: the test feeds valid messages only.
  for (const m of out) alertMessageSchema.parse(m);
  return out;
}

/** Two batches with every kind, several updates of one alert in a batch, and redeliveries. */
const EVERY_KIND = (() => {
  const fault = message('b0000000-0000-4000-8000-000000000001', 'BEACON_FAULT', 'SB-2', {
    reasons: 'low_battery',
    batteryPercent: 14,
  });
  const gone = message(
    'b0000000-0000-4000-8000-000000000002',
    'NO_PRESENCE',
    UNKNOWN_BEACON,
    { lastPresenceAt: T0 - 16 * MIN },
    { gapStartedAt: T0 - 16 * MIN },
  );
  const silent = message('b0000000-0000-4000-8000-000000000003', 'RELAY_SILENT', 'SB-3', {
    silentFrom: T0 - 400 * MIN,
    silentUntil: null,
  });
  const update = (
    n: number,
    related: AlertMessage,
    kind: Kind,
    detail: Detail,
    over: Partial<AlertMessage> = {},
  ) =>
    message(`c0000000-0000-4000-8000-00000000000${n}`, kind, related.beaconId, detail, {
      relatedAlertId: related.alertId,
      occurredAt: T0 + n * MIN,
      ...over,
    });
  const first: AlertMessage[] = [
    fault,
    gone,
    silent,
    update(1, fault, 'ALERT_UPDATED', { reasons: 'low_battery,battery_depleted' }),
    update(2, fault, 'FAULT_CLEARED', {}),
    update(3, gone, 'LATE_EVIDENCE', { evidenceUntil: T0 - 5 * MIN }),
    update(4, gone, 'LATE_EVIDENCE', { evidenceUntil: T0 - 9 * MIN }),
    update(5, gone, 'RESOLVED_BY_EVIDENCE', { lastPresenceAt: T0 + MIN, coveredByEvidence: false }),
    update(6, silent, 'RESOLVED_BY_EVIDENCE', { coveredByEvidence: true }),
    update(1, fault, 'ALERT_UPDATED', { reasons: 'low_battery,battery_depleted' }),
    update(7, SEEDS[2]!.m, 'ALERT_UPDATED', { lastPresenceAt: T0 }),
  ];
  const second: AlertMessage[] = [
    fault,
    update(1, fault, 'ALERT_UPDATED', { reasons: 'low_battery,battery_depleted' }),
    update(
      8,
      gone,
      'ALERT_UPDATED',
      { lastPresenceAt: T0 + 20 * MIN },
      { gapStartedAt: T0 + 20 * MIN },
    ),
  ];
  return { fault, gone, silent, first, second };
})();

function batches<T>(items: readonly T[], cuts: readonly number[]): T[][] {
  const at = [...new Set(cuts.map((c) => c % items.length))]
    .filter((c) => c > 0)
    .sort((a, b) => a - b);
  return [0, ...at].map((start, i) => items.slice(start, at[i] ?? items.length));
}

const ids = (changed: readonly Alert[][]) => changed.map((list) => list.map((a) => a.id));

for (const target of databaseTargets()) {
  describe(`batched alert intake on ${target.name}: the same rows as one message at a time`, function () {
    // A deep run (PROPERTY_RUNS) takes longer than the normal one.
    this.timeout(Math.max(120_000, RUNS * 5_000));
    let db: Database;
    let h: PoliceHarness;
    let transactions = 0;
    /** The database the intake under test uses: counts transactions, so a batch is seen to be one. */
    let counted: Database;

    before(async () => {
      db = await target.open();
      h = await startPolice(db);
      await addBeaconRecords(db);
      counted = {
        kind: db.kind,
        query: (sql, params) => db.query(sql, params),
        transaction: (fn) => (transactions++, db.transaction(fn)),
        close: () => Promise.resolve(),
      };
    });
    after(async () => {
      await h?.backend.close();
      await db?.close();
    });

    /** Through AlertIntake, each batch's messages received together: one transaction each. */
    async function runBatched(list: AlertMessage[][]) {
      await clearAlerts(db);
      await seed(db);
      const auditFrom = await lastAuditSeq(db);
      const { log, lines } = capturedLogger('intake');
      const pushed: Alert[][] = [];
      const intake = new AlertIntake(
        counted,
        () => NOW,
        log,
        (alerts) => pushed.push(alerts),
      );
      const changed: Alert[][] = [];
      transactions = 0;
      for (const batch of list) {
        pushed.length = 0;
        const results = await Promise.all(batch.map((m) => intake.receive(m)));
        changed.push(...results);
        // What is answered and pushed live is the alert as stored (and its urgency the stored one).
        const stored = await storedAlerts(
          db,
          results.flat().map((a) => a.id),
        );
        for (const a of results.flat()) assert.deepEqual(a, stored.get(a.id), a.id);
        assert.deepEqual(
          new Set(pushed.flat().map((a) => a.id)),
          new Set(results.flat().map((a) => a.id)),
          'live updates: the alerts that changed',
        );
      }
      assert.equal(transactions, list.length, 'one transaction per batch');
      assert.deepEqual(
        lines.filter((l) => l.includes('batch failed')),
        [],
        'no batch fell back to one by one',
      );
      return { rows: await tableRows(db, auditFrom), changed: ids(changed) };
    }

    /** The reference: each message in a transaction of its own. */
    async function runOneByOne(list: AlertMessage[]) {
      await clearAlerts(db);
      await seed(db);
      const auditFrom = await lastAuditSeq(db);
      const changed: Alert[][] = [];
      for (const m of list) changed.push(...(await storeAlerts(db, [m], NOW)));
      return { rows: await tableRows(db, auditFrom), changed: ids(changed) };
    }

    it('stores any sequence of alerts, updates and redeliveries, cut into batches anywhere, as one by one would', async () => {
      await fc.assert(
        fc.asyncProperty(scenario, async ({ ops, cuts }) => {
          const list = messages(ops);
          const batched = await runBatched(batches(list, cuts));
          const single = await runOneByOne(list);
          assert.deepEqual(batched.rows, single.rows);
          for (const r of single.rows.alerts)
            assert.equal(r.urgency, urgency(String(r.kind), r.detail as Detail), 'stored urgency');
          assert.deepEqual(
            batched.changed,
            single.changed,
            'per message: what changed (empty: duplicate)',
          );
        }),
        { numRuns: RUNS, seed: 20_261_129 },
      );
    });

    it('applies every kind in one batch as documented, and a redelivery in a later batch changes nothing', async () => {
      const { fault, gone, silent, first, second } = EVERY_KIND;
      const run = await runBatched([first, second]);
      const byId = new Map(run.rows.alerts.map((r) => [String(r.id), r]));
      const pick = (id: string, ...cols: string[]) => cols.map((c) => byId.get(id)?.[c]);
      assert.deepEqual(
        pick(fault.alertId, 'queue', 'state', 'occurrences', 'urgency', 'condition_cleared_at'),
        ['maintenance', 'open', 2, 2, T0 + 2 * MIN],
        'repeat counted once (redelivered twice), urgency raised, cleared after it',
      );
      assert.deepEqual(
        pick(
          gone.alertId,
          'queue',
          'beacon_record',
          'evidence_until',
          'occurrences',
          'gap_started_at',
        ),
        ['violation', null, T0 - 5 * MIN, 2, T0 + 20 * MIN],
        'unknown beacon: no record; the later evidence kept; a later gap replaces the first',
      );
      assert.deepEqual(
        pick(gone.alertId, 'recovered_at', 'covered_by_evidence'),
        [null, null],
        'the later gap has not ended',
      );
      assert.deepEqual(
        pick(silent.alertId, 'queue', 'urgency', 'recovered_at', 'covered_by_evidence'),
        ['maintenance', 1, T0 + 6 * MIN, true],
      );
      assert.deepEqual(
        pick(SEEDS[2]!.m.alertId, 'state', 'occurrences'),
        ['resolved', 2],
        'a repeat never reopens a resolved alert',
      );
      assert.equal(run.rows.alerts.filter((r) => r.state === 'info').length, 8);
      assert.deepEqual(
        run.changed.slice(first.length),
        [[], [], ['c0000000-0000-4000-8000-000000000008', gone.alertId]],
        'redeliveries in a later batch: duplicates',
      );
      assert.deepEqual(run.rows.audit, [], 'intake writes no audit entry');
      assert.deepEqual(await runOneByOne([...first, ...second]), run);
    });

    it('a batch that cannot be stored is stored one by one: the others as if alone, the failing one refused', async () => {
      const list = [...EVERY_KIND.first, ...EVERY_KIND.second];
      const poison = message('dead0000-0000-4000-8000-000000000001', 'NO_PRESENCE', 'SB-1', {});
      const withPoison = [...list.slice(0, 3), poison, ...list.slice(3)];
      // A database that fails any write naming the poisoned alert, as a constraint or a disk would.
      const failing: Database = {
        ...counted,
        transaction: (fn) =>
          db.transaction((tx) =>
            fn({
              query: (sql, params) =>
                JSON.stringify(params ?? []).includes(poison.alertId)
                  ? Promise.reject(new Error('injected failure'))
                  : tx.query(sql, params),
            }),
          ),
      };
      await clearAlerts(db);
      await seed(db);
      const auditFrom = await lastAuditSeq(db);
      const { log, lines } = capturedLogger('intake');
      const intake = new AlertIntake(
        failing,
        () => NOW,
        log,
        () => undefined,
      );
      const results = await Promise.allSettled(withPoison.map((m) => intake.receive(m)));
      assert.deepEqual(
        results.map((r) => r.status),
        withPoison.map((m) => (m === poison ? 'rejected' : 'fulfilled')),
      );
      assert.equal(lines.filter((l) => l.includes('alert batch failed')).length, 1);
      const rows = await tableRows(db, auditFrom);
      const changed = ids(results.filter((r) => r.status === 'fulfilled').map((r) => r.value));
      const single = await runOneByOne(list);
      assert.deepEqual({ rows, changed }, single);
    });

    // These pass the schema (detail values are any JSON number) but the time columns are bigint: a
    // 5xx here would make the app backend retry forever and hold that beacon's later alerts.
    it('answers a detail time that is not a whole number of ms with a stable 4xx or stores the alert, never 5xx', async () => {
      await clearAlerts(db);
      await seed(db);
      const related = SEEDS[0]?.m as AlertMessage;
      const odd: [string, AlertMessage][] = [
        [
          'NO_PRESENCE lastPresenceAt 1.5',
          message(NOBODY, 'NO_PRESENCE', 'SB-1', { lastPresenceAt: 1.5 }),
        ],
        [
          'NO_PRESENCE lastPresenceAt 1e300',
          message(NOBODY, 'NO_PRESENCE', 'SB-1', { lastPresenceAt: 1e300 }),
        ],
        [
          'LATE_EVIDENCE evidenceUntil 1.5',
          message(
            NOBODY,
            'LATE_EVIDENCE',
            'SB-1',
            { evidenceUntil: 1.5 },
            { relatedAlertId: related.alertId },
          ),
        ],
        [
          'RESOLVED_BY_EVIDENCE lastPresenceAt 1e300',
          message(
            NOBODY,
            'RESOLVED_BY_EVIDENCE',
            'SB-1',
            { lastPresenceAt: 1e300 },
            { relatedAlertId: related.alertId },
          ),
        ],
        [
          'ALERT_UPDATED lastPresenceAt 0.5',
          message(
            NOBODY,
            'ALERT_UPDATED',
            'SB-1',
            { lastPresenceAt: 0.5 },
            { relatedAlertId: related.alertId },
          ),
        ],
      ];
      const answers: { name: string; status: number; body: unknown }[] = [];
      for (const [name, m] of odd) {
        const r = await postAlert(h, { ...m, alertId: randomUUID() });
        answers.push({ name, status: r.status, body: r.json() });
      }
      assert.deepEqual(
        answers.filter((a) => a.status >= 500),
        [],
        'no 5xx',
      );
      for (const a of answers.filter((x) => x.status !== 200))
        assert.deepEqual([a.status, a.body], [400, { error: 'BAD_ALERT' }], a.name);
    });
  });
}
