/**
 * `npm run bench:ingest`: presence ingest through the real app backend (HTTPS, lean presence
 * path, validation queue, database) against a bare Node HTTPS server that reads the same bodies
 * and sends the same fixed answer — each server a process of its own, the load generator a third,
 * rounds alternating, medians. Mix: 90 % dummies (a key never seen before, no tokens), 10 % real
 * (a registered person's next 5 tokens). BENCH_QUARANTINES registered in all (default 1,000,000
 * on PostgreSQL, 100,000 on PGlite): BENCH_REAL with real keys, the rest seeded as rows.
 *
 * 1. Maximum throughput: bare (mix), app (mix), app (dummies only) — req/s and req per server
 *    CPU-second; the dummy-only rounds separate a dummy's cost from a real request's.
 * 2. Latency at 70 % of the app's maximum (autocannon's overallRate), the bare server at the same
 *    rate as its baseline; dummy and real answers' latencies apart, as an observer would see them.
 *
 * BENCH_PROFILE=<dir> runs both servers under `--cpu-prof` (app.cpuprofile, bare.cpuprofile in <dir>);
 * BENCH_PHASES=profile runs only the app with the mix, for such a profile.
 * BENCH_COMPARE_NODE_OPTIONS="<flags>" starts a second app process with those Node flags and
 * measures it in the same maximum-throughput rounds (printed, not reported): an A/B of a runtime
 * setting on a machine whose speed drifts between runs.
 */
import { type Round, IngestRun, printRound } from './ingest-run.js';
import type { ServerProcess } from './ingest-procs.js';
import type { LoadResult } from './load.js';
import { machine, median } from './measure.js';
import { type Figure, atLeast, below, writeReport } from './report.js';

/** report.ts's helpers type their result as optional; here they always give one. */
type Target = NonNullable<Figure['target']>;

const env = process.env;
const DATABASE_URL = env['DATABASE_URL'];
const SECONDS = Number(env['BENCH_SECONDS'] ?? 8);
const ROUNDS = Number(env['BENCH_ROUNDS'] ?? 3);
const CONNECTIONS = Number(env['BENCH_CONNECTIONS'] ?? 50);
const QUARANTINES = Number(env['BENCH_QUARANTINES'] ?? (DATABASE_URL ? 1_000_000 : 100_000));
const REAL = Number(env['BENCH_REAL'] ?? 5000);
const PHASES = new Set((env['BENCH_PHASES'] ?? 'max,rate').split(','));
const PROFILE = env['BENCH_PROFILE'];
const LOAD_SHARE = 0.7;

const run = await IngestRun.open({
  databaseUrl: DATABASE_URL,
  quarantines: QUARANTINES,
  real: REAL,
  connections: CONNECTIONS,
});
const bare = await run.startBare(PROFILE);
const app = await run.startApp(PROFILE);
const COMPARE = env['BENCH_COMPARE_NODE_OPTIONS'];
let other: ServerProcess | undefined;
if (COMPARE !== undefined) {
  const deployed = env['BENCH_APP_NODE_OPTIONS'];
  env['BENCH_APP_NODE_OPTIONS'] = COMPARE;
  other = await run.startApp();
  if (deployed === undefined) delete env['BENCH_APP_NODE_OPTIONS'];
  else env['BENCH_APP_NODE_OPTIONS'] = deployed;
}
const otherRounds: Round[] = [];
const { database } = run;

const rounds: Round[] = [];
async function measure(
  label: 'bare' | 'app',
  server: ServerProcess,
  kind: 'mix' | 'dummy',
  rate?: number,
): Promise<void> {
  const r = await run.round(label, [server], kind, SECONDS, rate);
  printRound(r);
  rounds.push(r);
}

console.log(
  `presence ingest — ${machine()} — ${database}, ${QUARANTINES.toLocaleString('en-US')} quarantines (${REAL.toLocaleString('en-US')} with real keys), set up in ${run.setupSeconds.toFixed(0)} s`,
);
// Warm-up (JIT, TLS sessions, caches), not counted.
await run.round('bare', [bare], 'mix', 3);
await run.round('app', [app], 'mix', 3);
if (other) await run.round('app', [other], 'mix', 3);
// What the app burns with no requests at all (its validation, status and watchdog loops over
// QUARANTINES rows): at low request rates this, not the requests, dominates its CPU.
const IDLE_SECONDS = 5;
const idleBefore = await app.usage();
await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
const idleCores = ((await app.usage()).cpuSeconds - idleBefore.cpuSeconds) / IDLE_SECONDS;
console.log(`app idle: ${idleCores.toFixed(3)} cores`);

const pick = (server: 'bare' | 'app', kind: 'mix' | 'dummy', rated: boolean) =>
  rounds.filter((r) => r.label === server && r.kind === kind && (r.rate !== null) === rated);
const med = (rs: Round[], f: (r: Round) => number) => (rs.length ? median(rs.map(f)) : NaN);

if (PHASES.has('max')) {
  console.log(`\nmaximum throughput, ${ROUNDS} rounds × ${SECONDS} s, ${CONNECTIONS} connections:`);
  for (let r = 0; r < ROUNDS; r++) {
    await measure('bare', bare, 'mix');
    await measure('app', app, 'mix');
    await measure('app', app, 'dummy');
    if (other) {
      const r = await run.round(`app ${COMPARE}`, [other], 'mix', SECONDS);
      printRound(r);
      otherRounds.push(r);
    }
  }
  if (other) {
    const share = (rs: Round[]) =>
      rs.map((r, i) => (100 * r.rps) / (pick('bare', 'mix', false)[i]?.rps ?? NaN));
    console.log(
      `A/B, share of the bare server's req/s in each round: app ${share(pick('app', 'mix', false))
        .map((v) => v.toFixed(1))
        .join(' / ')} %; app with "${COMPARE}" ${share(otherRounds)
        .map((v) => v.toFixed(1))
        .join(' / ')} %`,
    );
  }
}
if (PHASES.has('profile')) {
  console.log(`\napp only (for a profile), ${ROUNDS} rounds × ${SECONDS} s:`);
  for (let r = 0; r < ROUNDS; r++) await measure('app', app, 'mix');
}
// Validation alone, off HTTP, in batches the size a national load gives each 100 ms flush of
// one process (3,300 real requests/s ÷ 10 flushes/s): the real request's cost after its answer.
const VALIDATION_BATCH = 330;
const validationUs: number[] = [];
if (PHASES.has('max') || PHASES.has('validation'))
  for (let r = 0; r < ROUNDS; r++)
    validationUs.push((await run.validationCost(app, VALIDATION_BATCH)) * 1e6);
const validationMedianUs = validationUs.length ? median(validationUs) : NaN;
if (validationUs.length)
  console.log(
    `\nvalidation alone (no HTTP), batches of ${VALIDATION_BATCH}: ${validationUs.map((v) => v.toFixed(0)).join(', ')} µs CPU per real request`,
  );
const appMax = med(pick('app', 'mix', false), (r) => r.rps);
const rate = Math.round(
  LOAD_SHARE * (Number.isFinite(appMax) ? appMax : Number(env['BENCH_RATE'] ?? 5000)),
);
if (PHASES.has('rate')) {
  console.log(`\nfixed rate ${rate} req/s (${LOAD_SHARE * 100} % of the app's maximum):`);
  for (let r = 0; r < ROUNDS; r++) {
    await measure('bare', bare, 'mix', rate);
    await measure('app', app, 'mix', rate);
  }
}

await app.close();
await other?.close();
await bare.close();
await run.close();

// Figures: each next to its same-run baseline.
const bareMax = pick('bare', 'mix', false);
const appMix = pick('app', 'mix', false);
const appDummy = pick('app', 'dummy', false);
const bareRps = med(bareMax, (r) => r.rps);
const bareCpuRate = med(bareMax, (r) => r.reqPerCpuSecond);
const appCpuRate = med(appMix, (r) => r.reqPerCpuSecond);
const dummyCpuRate = med(appDummy, (r) => r.reqPerCpuSecond);
const µs = (perCpuSecond: number) => 1e6 / perCpuSecond;
/** CPU per request above the idle burn (µs), median over the rounds. */
const marginalUs = (rs: Round[]) =>
  med(rs, (r) => ((r.serverCpu[0] ?? 0) - idleCores * SECONDS) / r.requests) * 1e6;
const dummyMarginalUs = marginalUs(appDummy);
const realMarginalUs = 10 * marginalUs(appMix) - 9 * dummyMarginalUs;
// A mix is 9 dummies and 1 real request: what is left over after the dummies is the real one's.
const realCostUs = 10 * µs(appCpuRate) - 9 * µs(dummyCpuRate);
const bareRated = pick('bare', 'mix', true);
const appRated = pick('app', 'mix', true);
const appP99 = med(appRated, (r) => r.latency.p99);
const bareP99 = med(bareRated, (r) => r.latency.p99);
const gap = (rs: Round[], f: (l: LoadResult['real']) => number) =>
  med(rs, (r) => f(r.real) - f(r.dummy));
const appGapUs = gap(appRated, (l) => l.mean) * 1000;
const bareGapUs = gap(bareRated, (l) => l.mean) * 1000;
const ratio = appMix.length ? appMax / bareRps : NaN;
const cpuRatio = appCpuRate / bareCpuRate;
const percent = (x: number) => Math.round(x * 1000) / 10;

const figures: Figure[] = [];
if (PHASES.has('max'))
  figures.push(
    {
      measure: `presence ingest, app backend (${database}), share of the bare server's requests/s`,
      value: percent(ratio),
      unit: '%',
      baseline: { label: 'bare node:https, same run', value: Math.round(bareRps), unit: 'req/s' },
      target: atLeast(percent(ratio), 60, '%') as Target,
    },
    {
      measure: `presence ingest, app backend (${database}), requests/s`,
      value: Math.round(appMax),
      unit: 'req/s',
      baseline: { label: 'bare node:https, same run', value: Math.round(bareRps), unit: 'req/s' },
    },
    {
      measure: `presence ingest, app backend (${database}), requests per server CPU-second`,
      value: Math.round(appCpuRate),
      unit: 'req/CPU-s',
      baseline: {
        label: 'bare node:https, same run',
        value: Math.round(bareCpuRate),
        unit: 'req/CPU-s',
      },
      target: atLeast(percent(cpuRatio), 60, '% of the bare server') as Target,
    },
    {
      measure: 'CPU per dummy request above the idle burn (app, dummies only)',
      value: Number(dummyMarginalUs.toFixed(1)),
      unit: 'µs',
      baseline: {
        label: 'bare node:https per request, same run',
        value: Number(µs(bareCpuRate).toFixed(1)),
        unit: 'µs',
      },
    },
    {
      measure: `validation CPU per real request, no HTTP (5 fresh tokens, batches of ${VALIDATION_BATCH})`,
      value: Number(validationMedianUs.toFixed(1)),
      unit: 'µs',
      baseline: {
        label: 'bare node:https per request, same run',
        value: Number(µs(bareCpuRate).toFixed(1)),
        unit: 'µs',
      },
    },
    {
      measure: 'CPU per real request above the idle burn (5 tokens; the mix minus 9 dummies)',
      value: Number(realMarginalUs.toFixed(1)),
      unit: 'µs',
      baseline: {
        label: 'bare node:https per request, same run',
        value: Number(µs(bareCpuRate).toFixed(1)),
        unit: 'µs',
      },
    },
  );
if (PHASES.has('rate'))
  figures.push(
    {
      measure: `p99 latency at ${rate} req/s (70 % of the app's maximum), app backend`,
      value: appP99,
      unit: 'ms',
      baseline: { label: 'bare node:https at the same rate', value: bareP99, unit: 'ms' },
      target: below(appP99, 50, 'ms') as Target,
    },
    {
      measure: 'real − dummy answer latency, mean, at the fixed rate (app)',
      value: Math.round(appGapUs),
      unit: 'µs',
      baseline: {
        label: 'same difference on the bare server (noise: it treats both alike)',
        value: Math.round(bareGapUs),
        unit: 'µs',
      },
    },
  );

console.log(`\n${'figure'.padEnd(86)} ${'value'.padStart(10)}   baseline`);
for (const f of figures)
  console.log(
    `${f.measure.padEnd(86)} ${`${f.value} ${f.unit}`.padStart(10)}   ${f.baseline ? `${f.baseline.value} ${f.baseline.unit} (${f.baseline.label})` : ''}${f.target ? `   target ${f.target.text}: ${f.target.met ? 'met' : 'NOT met'}` : ''}`,
  );

writeReport('ingest', figures, {
  database,
  quarantines: QUARANTINES,
  realKeys: REAL,
  seconds: SECONDS,
  rounds: ROUNDS,
  connections: CONNECTIONS,
  rate,
  setupSeconds: run.setupSeconds,
  mix: '90 % dummies (fresh key each, no tokens), 10 % real (5 fresh tokens)',
  idleCores,
  dummyCostUs: µs(dummyCpuRate),
  realCostUs,
  dummyMarginalUs,
  realMarginalUs,
  validationBatch: VALIDATION_BATCH,
  validationUs,
  raw: rounds,
});
