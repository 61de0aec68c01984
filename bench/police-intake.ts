/**
 * `npm run bench:police`: alerts/s through the real police backend's intake (`POST
 * /internal/v1/alerts`, mutual TLS, validation, database, live pushes), next to a bare
 * `node:https` server with the same mutual TLS that reads the same bodies and answers 200,
 * measured in the same run with rounds alternating. The load comes from a separate process
 * (autocannon) with keep-alive connections; also with a dashboard live feed connected, and with
 * a new TLS connection per alert (what the app backend's sender does today).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TLS_DEFAULTS } from '../backend-kit/tls.js';
import { DELIVERY_DEFAULTS } from '../app-backend/src/delivery.js';
import { machine, median } from './measure.js';
import { type Figure, atLeast, writeReport } from './report.js';
import { registerBeacons, signInCookie, startBenchPolice } from './police/backend.js';
import type { LoadConfig } from './police/intake-load.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const BEACONS = Number(process.env.BENCH_BEACONS ?? 1000);
const FRESH = process.env.BENCH_FRESH !== '0';
// For profiling one case: BENCH_ONLY=<regular expression over the case names>.
const ONLY = new RegExp(process.env.BENCH_ONLY ?? '');
const TARGET = 1000;
const PER_POST = Number(process.env.BENCH_PER_POST ?? DELIVERY_DEFAULTS.perPost);

const police = await startBenchPolice();
await registerBeacons(police, BEACONS);
const cookie = await signInCookie(police);
const { pki } = police;
const client = { ca: pki.ca.cert, cert: pki.appBackend.cert, key: pki.appBackend.key };

// The baseline: the same mutual TLS, the same body read, a 200 with a JSON answer, nothing else.
const ANSWER = JSON.stringify({ ok: true, duplicate: false });
const bare = createServer(
  {
    cert: pki.policeBackend.cert,
    key: pki.policeBackend.key,
    ca: pki.ca.cert,
    requestCert: true,
    rejectUnauthorized: true,
    ...TLS_DEFAULTS,
  },
  (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      Buffer.concat(chunks);
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(ANSWER),
      });
      res.end(ANSWER);
    });
  },
);
await new Promise<void>((r) => bare.listen(0, '127.0.0.1', () => r()));
const barePort = (bare.address() as AddressInfo).port;

interface Load {
  requests: number;
  non2xx: number;
  errors: number;
  p50: number;
  p99: number;
  rps: number;
  mix: Record<string, number>;
  live?: { pushes: number; lagP50: number | null; lagP99: number | null };
}
type Round = Load & { alertsPerCpuSecond: number };

const dir = `${tmpdir()}/smartbeacon-bench`;
mkdirSync(dir, { recursive: true });
const loadScript = fileURLToPath(new URL('./police/intake-load.js', import.meta.url));

async function round(
  port: number,
  options: { fresh?: boolean; live?: boolean; connections?: number; perPost?: number } = {},
): Promise<Round> {
  const perPost = options.perPost ?? 1;
  const config: LoadConfig = {
    port,
    seconds: SECONDS,
    connections: options.connections ?? CONNECTIONS,
    freshConnections: options.fresh ?? false,
    perPost,
    beacons: BEACONS,
    tls: client,
    ...(options.live ? { live: { port: police.backend.officerPort, cookie } } : {}),
  };
  const file = `${dir}/police-load-${process.pid}.json`;
  writeFileSync(file, JSON.stringify(config));
  const cpu = process.cpuUsage();
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [loadScript, file], {
      maxBuffer: 1 << 20,
    });
    const used = process.cpuUsage(cpu);
    const load = JSON.parse(stdout) as Load;
    // Counted in alerts: a batch request carries perPost of them.
    return {
      ...load,
      requests: load.requests * perPost,
      rps: load.rps * perPost,
      alertsPerCpuSecond: (load.requests * perPost) / ((used.user + used.system) / 1e6),
    };
  } finally {
    rmSync(file, { force: true });
  }
}

interface Case {
  readonly server: 'bare' | 'police';
  readonly connections: number;
  /** A new TLS connection (full mutual-TLS handshake) for every alert. */
  readonly fresh: boolean;
  readonly live: boolean;
  /** Alerts per request (above 1: the batch route). */
  readonly perPost?: number;
}
const label = (c: Case) =>
  `${c.server === 'bare' ? 'bare node:https' : 'police backend'}, ${c.fresh ? (c.connections === 1 ? 'one at a time, new connection each' : `${c.connections} at a time, new connection each`) : `${c.connections} keep-alive connections`}${c.live ? ', live feed open' : ''}${(c.perPost ?? 1) > 1 ? `, batches of ${c.perPost}` : ''}`;
const ALL_CASES: Case[] = [
  { server: 'bare', connections: CONNECTIONS, fresh: false, live: false },
  { server: 'police', connections: CONNECTIONS, fresh: false, live: false },
  { server: 'police', connections: CONNECTIONS, fresh: false, live: true },
  // What the app backend's sender does (delivery.ts: up to 64 alerts a post, 8 posts of a claim at once).
  { server: 'bare', connections: 8, fresh: false, live: false, perPost: PER_POST },
  { server: 'police', connections: 8, fresh: false, live: false, perPost: PER_POST },
  { server: 'bare', connections: CONNECTIONS, fresh: true, live: false },
  { server: 'police', connections: CONNECTIONS, fresh: true, live: false },
  // What one app-backend replica's sender does today (delivery.ts: one alert, one handshake, in turn).
  { server: 'bare', connections: 1, fresh: true, live: false },
  { server: 'police', connections: 1, fresh: true, live: false },
];
const CASES = ALL_CASES.filter((c) => (FRESH || !c.fresh) && ONLY.test(label(c)));
const baselineOf = (c: Case) =>
  CASES.find(
    (b) =>
      b.server === 'bare' &&
      b.connections === c.connections &&
      b.fresh === c.fresh &&
      b.perPost === c.perPost,
  );

const results = new Map<Case, Round[]>(CASES.map((c) => [c, []]));
const policePort = police.backend.internalPort;
await round(policePort); // warm-up: JIT, caches, the first rows
for (let r = 0; r < ROUNDS; r++) {
  for (const c of CASES) {
    results.get(c)?.push(
      await round(c.server === 'bare' ? barePort : policePort, {
        fresh: c.fresh,
        live: c.live,
        connections: c.connections,
        ...(c.perPost ? { perPost: c.perPost } : {}),
      }),
    );
  }
}

const summary = (rounds: Round[]) => ({
  rps: median(rounds.map((x) => x.rps)),
  alertsPerCpuSecond: median(rounds.map((x) => x.alertsPerCpuSecond)),
  p50: median(rounds.map((x) => x.p50)),
  p99: median(rounds.map((x) => x.p99)),
  errors: rounds.reduce((s, x) => s + x.errors + x.non2xx, 0),
  ...(rounds[0]?.live
    ? {
        livePushesPerSecond: median(rounds.map((x) => (x.live?.pushes ?? 0) / SECONDS)),
        liveLagP50: median(rounds.map((x) => x.live?.lagP50 ?? NaN)),
        liveLagP99: median(rounds.map((x) => x.live?.lagP99 ?? NaN)),
      }
    : {}),
});
const summaries = CASES.map((c) => {
  const s = summary(results.get(c) ?? []);
  const base = baselineOf(c);
  const b = base && base !== c ? summary(results.get(base) ?? []) : undefined;
  return { case: label(c), ...c, ...s, ofBaseline: b ? s.rps / b.rps : null };
});
const { rows } = await police.db.query<{ kind: string; n: number }>(
  'SELECT kind, count(*)::int AS n FROM alerts GROUP BY kind ORDER BY n DESC',
);

const date = new Date().toISOString();
console.log(`police backend intake — ${machine()} — ${date}`);
console.log(
  `${ROUNDS} rounds × ${SECONDS} s, median; ${BEACONS} beacons; ${police.db.kind}; log level info (to /dev/null)\n`,
);
const width = Math.max(...summaries.map((s) => s.case.length));
console.log(
  `${'case'.padEnd(width)}  alerts/s  of bare  alerts/CPU-s  p50 ms  p99 ms  errors  pushes/s  push lag p50/p99 ms`,
);
for (const s of summaries) {
  console.log(
    [
      s.case.padEnd(width),
      Math.round(s.rps).toString().padStart(9),
      (s.ofBaseline === null ? '—' : `${(s.ofBaseline * 100).toFixed(0)} %`).padStart(8),
      Math.round(s.alertsPerCpuSecond).toString().padStart(13),
      s.p50.toString().padStart(7),
      s.p99.toString().padStart(7),
      s.errors.toString().padStart(7),
      (s.livePushesPerSecond === undefined
        ? '—'
        : Math.round(s.livePushesPerSecond).toString()
      ).padStart(9),
      `  ${s.liveLagP50 === undefined ? '—' : `${s.liveLagP50} / ${s.liveLagP99}`}`,
    ].join(' '),
  );
}
const main = summaries.find((s) => s.server === 'police' && !s.fresh && !s.live && !s.perPost);
const batched = summaries.find((s) => s.server === 'police' && (s.perPost ?? 1) > 1);
console.log(
  `\ntarget ${TARGET} alerts/s (keep-alive): ${main ? (main.rps >= TARGET ? 'met' : 'missed') : 'not measured'}`,
);
console.log(`stored by kind: ${rows.map((r) => `${r.kind} ${r.n}`).join(', ')}`);

const bareMain = summaries.find((s) => s.server !== 'police' && !s.fresh && !s.live && !s.perPost);
const withLive = summaries.find((s) => s.server === 'police' && !s.fresh && s.live);
const figures: Figure[] = [];
if (main)
  figures.push({
    measure: `alert intake, keep-alive mTLS (${police.db.kind})`,
    value: Math.round(main.rps),
    unit: 'alerts/s',
    ...(bareMain
      ? {
          baseline: {
            label: 'bare node:https, same mTLS',
            value: Math.round(bareMain.rps),
            unit: 'req/s',
          },
        }
      : {}),
    target: atLeast(main.rps, TARGET, 'alerts/s'),
  });
if (batched && main)
  figures.push({
    measure: `alert intake, batches of ${PER_POST} over ${batched.connections} keep-alive connections (${police.db.kind})`,
    value: Math.round(batched.rps),
    unit: 'alerts/s',
    baseline: { label: 'one alert a request', value: Math.round(main.rps), unit: 'alerts/s' },
  });
if (withLive && main)
  figures.push({
    measure: 'alert intake with a dashboard live feed open',
    value: Math.round(withLive.rps),
    unit: 'alerts/s',
    baseline: { label: 'without the feed', value: Math.round(main.rps), unit: 'alerts/s' },
  });
writeReport('police-intake', figures, {
  seconds: SECONDS,
  rounds: ROUNDS,
  beacons: BEACONS,
  database: police.db.kind,
  summaries,
  stored: rows,
  raw: CASES.map((c) => ({ case: label(c), rounds: results.get(c) })),
});
bare.close();
bare.closeAllConnections();
await police.close();
