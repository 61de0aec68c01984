/**
 * `npm run bench:scale-out`: one app backend process against two, each its own port, both on the
 * same PostgreSQL (a throw-away schema with BENCH_QUARANTINES, default 1,000,000), the load
 * generator spreading its connections over them; the same 90 % dummy / 10 % real mix as
 * bench:ingest, rounds alternating, medians. Reports what each process, the load generator and
 * PostgreSQL used, because on this 2-core machine they all share the same two cores — and from
 * the app's requests per CPU-second, how many machines 33,000 requests/s need.
 */
import { cpus } from 'node:os';
import { type Round, IngestRun, printRound } from './ingest-run.js';
import { machine, median } from './measure.js';
import { type Figure, writeReport } from './report.js';

const env = process.env;
const DATABASE_URL = env['DATABASE_URL'];
if (!DATABASE_URL) {
  console.error(
    'bench:scale-out needs PostgreSQL: set DATABASE_URL (two processes share one database)',
  );
  process.exit(2);
}
const SECONDS = Number(env['BENCH_SECONDS'] ?? 8);
const ROUNDS = Number(env['BENCH_ROUNDS'] ?? 3);
const CONNECTIONS = Number(env['BENCH_CONNECTIONS'] ?? 50);
const QUARANTINES = Number(env['BENCH_QUARANTINES'] ?? 1_000_000);
const REAL = Number(env['BENCH_REAL'] ?? 5000);
/** The national load: 10 million installs, a request every 5 minutes each. */
const NATIONAL_RPS = 33_000;
/** Run each process at most this busy, so p99 stays low (bench:ingest measures p99 at 70 %). */
const HEADROOM = 0.7;

const run = await IngestRun.open({
  databaseUrl: DATABASE_URL,
  quarantines: QUARANTINES,
  real: REAL,
  connections: CONNECTIONS,
});
const a = await run.startApp();
const b = await run.startApp();
console.log(
  `scale-out — ${machine()} — PostgreSQL, ${QUARANTINES.toLocaleString('en-US')} quarantines (${REAL.toLocaleString('en-US')} with real keys), set up in ${run.setupSeconds.toFixed(0)} s`,
);
console.log(
  `${ROUNDS} rounds × ${SECONDS} s, ${CONNECTIONS} connections (split over the processes), mix 90 % dummy / 10 % real:`,
);
await run.round('warm-up', [a, b], 'mix', 3);

const rounds: Round[] = [];
for (let r = 0; r < ROUNDS; r++) {
  for (const [label, servers] of [
    ['one', [a]],
    ['two', [a, b]],
  ] as const) {
    const x = await run.round(label, servers, 'mix', SECONDS);
    printRound(x);
    rounds.push(x);
  }
}
await a.close();
await b.close();
await run.close();

const of = (label: string) => rounds.filter((r) => r.label === label);
const med = (label: string, f: (r: Round) => number) => median(of(label).map(f));
const perSecond = (label: string, f: (r: Round) => number) => med(label, (r) => f(r) / SECONDS);
const summary = (label: string) => ({
  rps: med(label, (r) => r.rps),
  reqPerCpuSecond: med(label, (r) => r.reqPerCpuSecond),
  p99: med(label, (r) => r.latency.p99),
  appCores: perSecond(label, (r) => r.serverCpu.reduce((x, y) => x + y, 0)),
  perProcessCores: [0, 1]
    .filter((i) => of(label)[0]?.serverCpu[i] !== undefined)
    .map((i) => perSecond(label, (r) => r.serverCpu[i] ?? 0)),
  loadCores: perSecond(label, (r) => r.cpuSeconds),
  pgCores: perSecond(label, (r) => r.pgCpu ?? 0),
  machineCores: med(label, (r) => r.machineBusyCores),
});
const one = summary('one');
const two = summary('two');
const gain = two.rps / one.rps;

// Sizing: an app machine runs one process per core at HEADROOM of its CPU, nothing else (the load
// comes over the network; PostgreSQL has machines of its own).
const perCore = median(rounds.map((r) => r.reqPerCpuSecond));
const perMachine = perCore * cpus().length * HEADROOM;
const machines = Math.ceil(NATIONAL_RPS / perMachine);
// PostgreSQL's CPU per request of the mix (its backends serving the bench), scaled to the nation.
const pgCpuPerRequest = median(rounds.map((r) => (r.pgCpu ?? 0) / r.requests));
const pgCores = NATIONAL_RPS * pgCpuPerRequest;

console.log(
  `\n            req/s  req/CPU-s  p99 ms   app cores (per process)   load gen   PostgreSQL   machine`,
);
for (const [label, s] of [
  ['one', one],
  ['two', two],
] as const)
  console.log(
    `${label.padEnd(8)} ${Math.round(s.rps).toString().padStart(8)} ${Math.round(s.reqPerCpuSecond).toString().padStart(10)} ${s.p99.toFixed(1).padStart(7)}` +
      `   ${s.appCores.toFixed(2)} (${s.perProcessCores.map((c) => c.toFixed(2)).join(' + ')})`.padEnd(
        28,
      ) +
      `${s.loadCores.toFixed(2).padStart(8)} ${s.pgCores.toFixed(2).padStart(12)} ${s.machineCores.toFixed(2).padStart(9)}`,
  );
console.log(
  `\ntwo processes / one: ${gain.toFixed(2)} × the requests/s. One app core serves ~${Math.round(perCore)} req/s of this mix;` +
    ` a ${cpus().length}-core app machine at ${HEADROOM * 100} % ≈ ${Math.round(perMachine)} req/s → ${machines} machines for ${NATIONAL_RPS.toLocaleString('en-US')} req/s (+1 spare);` +
    ` PostgreSQL ≈ ${pgCores.toFixed(1)} cores busy at that load (its backends' CPU per request × ${NATIONAL_RPS.toLocaleString('en-US')}).`,
);

const figures: Figure[] = [
  {
    measure: 'two app processes on one PostgreSQL, requests/s',
    value: Math.round(two.rps),
    unit: 'req/s',
    baseline: { label: 'one process, same run', value: Math.round(one.rps), unit: 'req/s' },
  },
  {
    measure: 'app requests per CPU-second, two processes',
    value: Math.round(two.reqPerCpuSecond),
    unit: 'req/CPU-s',
    baseline: {
      label: 'one process, same run',
      value: Math.round(one.reqPerCpuSecond),
      unit: 'req/CPU-s',
    },
  },
  {
    measure: `app machines for ${NATIONAL_RPS.toLocaleString('en-US')} req/s (${cpus().length} cores at ${HEADROOM * 100} %, app only)`,
    value: machines,
    unit: 'machines',
    baseline: {
      label: 'requests/s one such machine sustains',
      value: Math.round(perMachine),
      unit: 'req/s',
    },
  },
  {
    measure: `PostgreSQL cores busy at ${NATIONAL_RPS.toLocaleString('en-US')} req/s (its backends' CPU per request, scaled)`,
    value: Number(pgCores.toFixed(1)),
    unit: 'cores',
    baseline: {
      label: 'PostgreSQL CPU per request, same run',
      value: Math.round(pgCpuPerRequest * 1e6),
      unit: 'µs',
    },
  },
];
writeReport('scale-out', figures, {
  quarantines: QUARANTINES,
  realKeys: REAL,
  seconds: SECONDS,
  rounds: ROUNDS,
  connections: CONNECTIONS,
  one,
  two,
  sizing: {
    nationalRps: NATIONAL_RPS,
    headroom: HEADROOM,
    reqPerAppCoreSecond: perCore,
    perMachine,
    machines,
    pgCpuPerRequest,
    pgCores,
    assumptions:
      'one app process per core, load arriving over the network (no load generator on the machine), PostgreSQL on machines of its own, the 90/10 mix, CPU the limit',
  },
  raw: rounds,
});
