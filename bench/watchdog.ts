/**
 * `npm run bench:watchdog`: the watchdog with a national number of active quarantines
 * (BENCH_QUARANTINES, default 1,000,000) in the app backend's database: the cost of a tick with
 * nothing due, next to a bare `SELECT 1` round trip in the same run; then 10,000 quarantines
 * falling due at once, taken to PROVISIONAL (one tick) and confirmed with their outbox rows (the
 * next); and the resident memory of a real app backend started on that database.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { DEFAULT_RULES, loopbackConfig } from '../app-backend/src/config.js';
import { createMetrics } from '../app-backend/src/metrics.js';
import { startAppBackend } from '../app-backend/src/service.js';
import { watchdogTick } from '../app-backend/src/watchdog.js';
import { createLogger } from '../backend-kit/logger.js';
import { createDeploymentPki } from '../deploy/pki/pki.js';
import { machine, median } from './measure.js';
import { benchDatabase, seedQuarantines } from './seed.js';

const N = Number(process.env.BENCH_QUARANTINES ?? 1_000_000);
const DUE = 10_000;
const log = createLogger({ name: 'bench', level: 'warn' });
const metrics = createMetrics();
const rules = { ...DEFAULT_RULES, graceSeconds: 0 };
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

const { db, drop } = await benchDatabase();
const now = Date.now();
let t = process.hrtime.bigint();
console.log(`seeding ${N.toLocaleString('en-GB')} quarantines on ${db.kind}…`);
// Deadlines spread over the next day: nothing is due yet.
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
const provisionalMs = ms(t);
t = process.hrtime.bigint();
const second = await watchdogTick(db, rules, now + 1000, metrics, log);
const confirmMs = ms(t);
const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox');

// A real app backend on this database: its status cache holds every quarantine.
const pki = await createDeploymentPki({ environment: 'bench' });
global.gc?.();
const before = process.memoryUsage().rss;
t = process.hrtime.bigint();
const backend = await startAppBackend(
  loopbackConfig({
    tls: { cert: pki.appBackend.cert, key: pki.appBackend.key, ca: pki.ca.cert },
    kek: randomBytes(32),
    healthAuthority: {
      publicKey: '',
      issuer: 'health-authority',
      audience: 'smartbeacon-app-backend',
    },
    police: { url: 'https://127.0.0.1:9', identity: 'police-backend' },
    logLevel: 'warn',
  }),
  { db, timers: false, log },
);
const startSeconds = ms(t) / 1000;
global.gc?.();
const after = process.memoryUsage().rss;
await backend.close();

const out = {
  date: new Date().toISOString().slice(0, 10),
  machine: machine(),
  database: db.kind,
  quarantines: N,
  seedSeconds,
  idleTickMs: median(idle),
  selectOneMs: median(ping),
  due: DUE,
  provisional: { count: first.provisional, ms: provisionalMs },
  confirmed: { count: second.confirmed, ms: confirmMs, outboxRows: rows[0]?.n ?? 0 },
  appBackend: { startSeconds, rssBeforeMb: before / 2 ** 20, rssAfterMb: after / 2 ** 20 },
};
const f = (n: number) => n.toLocaleString('en-GB', { maximumFractionDigits: 1 });
console.log(
  `\n${out.machine}; ${db.kind}; ${f(N)} active quarantines (seeded in ${f(seedSeconds)} s)\n`,
);
console.log('| measure | result |\n|---|---|');
console.log(
  `| watchdog tick, nothing due (median of 30) | ${f(out.idleTickMs)} ms (a bare SELECT 1: ${f(out.selectOneMs)} ms) |`,
);
// With no grace, one tick takes each gap to PROVISIONAL and straight on to CONFIRMED.
console.log(
  `| ${f(DUE)} fall due at once → alerts and outbox rows (one tick: ${f(first.provisional)} provisional, ${f(first.confirmed + second.confirmed)} confirmed) | ${f(provisionalMs)} ms; ${f(out.confirmed.outboxRows)} outbox rows |`,
);
console.log(`| the next tick, nothing left to do | ${f(confirmMs)} ms |`);
console.log(
  `| app backend start on this database (status cache of every quarantine) | ${f(startSeconds)} s; RSS ${f(out.appBackend.rssBeforeMb)} → ${f(out.appBackend.rssAfterMb)} MB |`,
);
mkdirSync('bench-results', { recursive: true });
writeFileSync(`bench-results/watchdog-${db.kind}.json`, JSON.stringify(out, null, 2));
await drop();
