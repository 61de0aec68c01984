/**
 * `npm run bench:watchdog`: the watchdog with a national number of active quarantines
 * (BENCH_QUARANTINES, default 1,000,000) in the app backend's database: the cost of a tick with
 * nothing due, next to a bare `SELECT 1` round trip in the same run; then 10,000 quarantines
 * falling due at once (no grace: one tick takes each to PROVISIONAL and on to CONFIRMED, with its
 * outbox row), next to the bare writes of as many alerts, outbox rows and quarantine rows; then
 * the tick that drops one second of national presence's stale marks (app migration 006).
 * (The app backend's memory and start time: bench/memory.ts.)
 */
import { randomUUID } from 'node:crypto';
import { DEFAULT_RULES } from '../app-backend/src/config.js';
import { createMetrics } from '../app-backend/src/metrics.js';
import { lookUpEachRow } from '../app-backend/src/store.js';
import { watchdogTick } from '../app-backend/src/watchdog.js';
import { createLogger } from '../backend-kit/logger.js';
import { machine, median } from './measure.js';
import { type Figure, writeReport } from './report.js';
import { benchDatabase, seedQuarantines } from './seed.js';

const N = Number(process.env.BENCH_QUARANTINES ?? 1_000_000);
const DUE = 10_000;
const TARGET_MS = 2000;
const IDLE_TARGET_MS = 10;
const log = createLogger({ name: 'bench', level: 'warn' });
const metrics = createMetrics();
const rules = { ...DEFAULT_RULES, graceSeconds: 0 };
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

const { db, drop } = await benchDatabase();
const now = Date.now();
let t = process.hrtime.bigint();
console.log(`seeding ${N.toLocaleString('en-GB')} quarantines on ${db.kind}…`);
// Deadlines from an hour on: nothing is due yet.
await seedQuarantines(db, N, now, now + 3_600_000);
const seedSeconds = ms(t) / 1000;

const idle: number[] = [];
const ping: number[] = [];
for (let i = 0; i < 30; i++) {
  t = process.hrtime.bigint();
  await watchdogTick(db, rules, now, metrics, log);
  idle.push(ms(t));
  t = process.hrtime.bigint();
  await db.query('SELECT 1');
  ping.push(ms(t));
}

// 10,000 fall due at once; their relays are online (they keep sending), so they confirm.
await db.query(
  `UPDATE quarantines SET deadline = $1 WHERE id IN (SELECT id FROM quarantines ORDER BY id LIMIT ${DUE})`,
  [now - 1],
);
t = process.hrtime.bigint();
const first = await watchdogTick(db, rules, now, metrics, log);
const burstMs = ms(t);
t = process.hrtime.bigint();
const second = await watchdogTick(db, rules, now + 1000, metrics, log);
const nextMs = ms(t);
const { rows: counted } = await db.query<{ outbox: number; alerts: number }>(
  `SELECT (SELECT count(*)::int FROM outbox) AS outbox,
          (SELECT count(*)::int FROM alerts WHERE status = 'confirmed') AS alerts`,
);

/**
 * The same run's reference: as many alerts, outbox rows and quarantine updates for 10,000 other
 * quarantines, 1,000 per statement, with nothing decided and nothing read but their ids.
 */
async function bareWrites(): Promise<number> {
  const { rows } = await db.query<{ id: string; beacon_id: string }>(
    `SELECT id, beacon_id FROM quarantines ORDER BY id DESC LIMIT ${DUE}`,
  );
  const started = process.hrtime.bigint();
  for (let from = 0; from < rows.length; from += 1000) {
    const chunk = rows.slice(from, from + 1000);
    const alertIds = chunk.map(() => randomUUID());
    await db.transaction(async (tx) => {
      await lookUpEachRow(tx);
      await tx.query(
        `INSERT INTO alerts (id, quarantine_id, beacon_id, kind, created_at, gap_started_at, detail, status, queue, updated_at)
         SELECT u.id, u.qid, u.bid, 'NO_PRESENCE', $4, $4, '{"bench":true}', 'confirmed', 'violation', $4
           FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS u(id, qid, bid)`,
        [alertIds, chunk.map((r) => r.id), chunk.map((r) => r.beacon_id), now],
      );
      await tx.query(
        `INSERT INTO outbox (id, alert_id, payload, created_at, next_attempt_at)
         SELECT u.id, u.aid, '{"bench":true}', $3, $3 FROM unnest($1::uuid[], $2::uuid[]) AS u(id, aid)`,
        [chunk.map(() => randomUUID()), alertIds, now],
      );
      await tx.query(
        `UPDATE quarantines q SET deadline = NULL, open_alert_id = u.aid, status_changed_at = $3
           FROM unnest($1::uuid[], $2::uuid[]) AS u(id, aid) WHERE q.id = u.id`,
        [chunk.map((r) => r.id), alertIds, now],
      );
    });
  }
  return ms(started);
}
const bareMs = await bareWrites();

/**
 * National presence, 3,300 uploads a second, leaves as many marks that fall due one window later
 * with their quarantines' deadlines moved on since: what a tick costs to drop one second of them.
 */
const STALE = 3_300;
const staleMs: number[] = [];
let staleLeft = 0;
for (let r = 0; r < 5; r++) {
  await db.query(
    `INSERT INTO quarantine_marks (due, quarantine_id)
     SELECT $1::bigint - 1, id FROM quarantines ORDER BY random() LIMIT ${STALE}`,
    [now],
  );
  t = process.hrtime.bigint();
  const moved = await watchdogTick(db, rules, now, metrics, log);
  staleMs.push(ms(t));
  if (moved.provisional + moved.confirmed) throw new Error('a stale mark moved a quarantine');
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM quarantine_marks WHERE due <= $1',
    [now],
  );
  staleLeft += rows[0]?.n ?? 0;
}

const f = (n: number) => n.toLocaleString('en-GB', { maximumFractionDigits: 1 });
console.log(
  `\n${machine()}; ${db.kind}; ${f(N)} active quarantines (seeded in ${f(seedSeconds)} s)\n`,
);
console.log('| measure | result |\n|---|---|');
console.log(
  `| watchdog tick, nothing due (median of 30) | ${f(median(idle))} ms (a bare SELECT 1: ${f(median(ping))} ms) |`,
);
console.log(
  `| ${f(DUE)} fall due at once → alerts and outbox rows (one tick: ${f(first.provisional)} provisional, ${f(first.confirmed)} confirmed) | ${f(burstMs)} ms; ${f(counted[0]?.outbox ?? 0)} outbox rows (bare writes of as many: ${f(bareMs)} ms) |`,
);
console.log(`| the next tick, nothing left to do | ${f(nextMs)} ms |`);
console.log(
  `| ${f(STALE)} stale marks (one second of national presence, a window later) dropped by one tick (median of 5) | ${f(median(staleMs))} ms; ${f(staleLeft)} left due |`,
);

const figures: Figure[] = [
  {
    measure: `watchdog tick with nothing due, ${f(N)} active quarantines (${db.kind})`,
    value: Number(median(idle).toFixed(2)),
    unit: 'ms',
    baseline: {
      label: 'bare SELECT 1, same run',
      value: Number(median(ping).toFixed(2)),
      unit: 'ms',
    },
    target: { text: `< ${IDLE_TARGET_MS} ms`, met: median(idle) < IDLE_TARGET_MS },
  },
  {
    measure: `${f(DUE)} quarantines falling due at once → confirmed alerts and outbox rows, ${f(N)} active (${db.kind})`,
    value: Math.round(burstMs),
    unit: 'ms',
    baseline: {
      label: `bare writes of ${f(DUE)} alerts, outbox rows and quarantine updates (1,000 per statement), same run`,
      value: Math.round(bareMs),
      unit: 'ms',
    },
    target: {
      text: `< ${TARGET_MS.toLocaleString('en-US')} ms`,
      met: burstMs < TARGET_MS && first.confirmed === DUE && counted[0]?.outbox === DUE,
    },
  },
  {
    measure: `a tick dropping ${f(STALE)} stale marks (one second of national presence), ${f(N)} active (${db.kind})`,
    value: Number(median(staleMs).toFixed(1)),
    unit: 'ms',
    baseline: {
      label: 'watchdog tick with nothing due, same run',
      value: Number(median(idle).toFixed(2)),
      unit: 'ms',
    },
  },
];
writeReport('watchdog', figures, {
  database: db.kind,
  quarantines: N,
  seedSeconds,
  idleTickMs: idle,
  selectOneMs: ping,
  due: DUE,
  burst: {
    ms: burstMs,
    ...first,
    confirmedAlerts: counted[0]?.alerts,
    outboxRows: counted[0]?.outbox,
  },
  nextTick: { ms: nextMs, ...second },
  staleMarks: { perTick: STALE, ms: staleMs, leftDue: staleLeft },
  bareWritesMs: bareMs,
});
await drop();
