/**
 * `npm run bench:memory`: the resident memory of a real app backend (its own process, `main.js`,
 * as deployed) at national scale on PostgreSQL. Seeds BENCH_QUARANTINES (default 1,000,000)
 * quarantines, of which BENCH_RELAYS (default 20,000) get real sealed keys; measures the start
 * time and RSS after start next to the same backend started on an empty database (rounds
 * alternating); then runs BENCH_MINUTES (default 10) of presence over HTTPS — every relay and
 * BENCH_DUMMIES (default 130,000) dummy installs, each once per BENCH_CYCLE_SECONDS (default 300),
 * 1 % of the relays away from home — with the watchdog, status and delivery loops running,
 * sampling RSS every BENCH_SAMPLE_SECONDS. Also measures, in this process, what one row of each
 * in-memory structure costs. BENCH_BEFORE_MAIN=<another build's main.js> starts that build on the
 * same database too, for a before/after comparison; BENCH_NODE_OPTIONS passes Node flags to the
 * backend processes, BENCH_NODE_FLAGS command-line flags NODE_OPTIONS refuses.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeyCache } from '../app-backend/src/key-cache.js';
import { sealBeaconKey, sealDerivedKeys } from '../app-backend/src/kek.js';
import type { StatusInput } from '../app-backend/src/lifecycle.js';
import { KeyRateLimiter } from '../app-backend/src/rate-limit.js';
import { StatusTable } from '../app-backend/src/status-table.js';
import { createDeploymentPki } from '../deploy/pki/pki.js';
import { APP_NODE_FLAGS, APP_RUNTIME_ENV } from '../deploy/runtime-env.js';
import { encodePresenceBody, hashKey } from '../protocol/presence.js';
import { type BeaconKeys, deriveKeyMaterial } from '../protocol/token/keys.js';
import { nodeSuite } from '../protocol/token/keys-node.js';
import { makeToken } from '../protocol/token/make.js';
import { median } from './measure.js';
import { type Figure, below, writeReport } from './report.js';
import { benchDatabase, seedQuarantines } from './seed.js';

type Target = NonNullable<Figure['target']>;

const N = Number(process.env.BENCH_QUARANTINES ?? 1_000_000);
const RELAYS = Math.min(N, Number(process.env.BENCH_RELAYS ?? 20_000));
const DUMMIES = Number(process.env.BENCH_DUMMIES ?? 130_000);
const MINUTES = Number(process.env.BENCH_MINUTES ?? 10);
const CYCLE_MS = Number(process.env.BENCH_CYCLE_SECONDS ?? 300) * 1000;
const SAMPLE_MS = Number(process.env.BENCH_SAMPLE_SECONDS ?? 5) * 1000;
const ROUNDS = Number(process.env.BENCH_START_ROUNDS ?? 2);
const BEFORE_MAIN = process.env.BENCH_BEFORE_MAIN;
/** Node flags for the backend processes: as deployed unless another setting is to be weighed. */
const NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS ?? APP_RUNTIME_ENV.NODE_OPTIONS;
/** V8 flags NODE_OPTIONS refuses, on the command line: as deployed unless BENCH_NODE_FLAGS (space-separated). */
const NODE_FLAGS = process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? APP_NODE_FLAGS;
const TARGET_MB = 200;
/** "Flat": the slope of the RSS floor (each minute's lowest sample) over the second half stays under this. */
const FLAT_MB_PER_MIN = 1;
const MAIN = fileURLToPath(new URL('../app-backend/src/main.js', import.meta.url));

const url = process.env.DATABASE_URL;
if (!url) {
  console.error(
    'bench:memory needs DATABASE_URL (a PostgreSQL server): it measures national scale',
  );
  process.exit(2);
}
const gc = (): void => {
  for (let i = 0; i < 3; i++) global.gc?.();
};
if (!global.gc) console.warn('run with node --expose-gc for the per-row figures');
const f = (n: number, digits = 1) => n.toLocaleString('en-GB', { maximumFractionDigits: digits });
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

// ---------------------------------------------------------------- per-row costs, in this process

/** Heap + off-heap bytes per entry that `fill` keeps alive, measured after full collections. */
function bytesPerEntry(count: number, fill: (n: number) => unknown): number {
  gc();
  const m0 = process.memoryUsage();
  const kept = fill(count);
  gc();
  const m1 = process.memoryUsage();
  void kept;
  return (m1.heapUsed + m1.arrayBuffers - m0.heapUsed - m0.arrayBuffers) / count;
}

const uuidOf = (i: number) => {
  const h = i.toString(16).padStart(32, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
const statusInput = (i: number): StatusInput => ({
  state: 'monitoring',
  windowSeconds: 360,
  lastPresenceAt: 1_795_400_000_000 + i,
  gap: null,
  deadline: null,
  absences: [],
});

/** The table's typed arrays per row when it holds `n` rows (chunks and index cells included). */
function typedBytesPerRow(n: number): number {
  const table = new StatusTable();
  for (let i = 0; i < n; i++) {
    const id = uuidOf(i);
    table.set(id, id.replaceAll('-', '').repeat(2), statusInput(i));
  }
  return table.byteLength / table.size;
}

function perRowCosts() {
  const rows = 200_000;
  const ids = Array.from({ length: rows }, (_, i) => uuidOf(i));
  const keys = ids.map((id) => hashKey(Buffer.from(id)));
  // What status-cache.ts held before: one object per quarantine in a Map by key, and id → key.
  const mapBytes = bytesPerEntry(rows, (n) => {
    const byHash = new Map<string, StatusInput>();
    const hashOfId = new Map<string, string>();
    for (let i = 0; i < n; i++) {
      // Fresh strings, as each database row brings its own.
      const key = (keys[i] as string).split('').join('');
      byHash.set(key, statusInput(i));
      hashOfId.set((ids[i] as string).split('').join(''), key);
    }
    return [byHash, hashOfId];
  });
  const table = new StatusTable();
  const tableBytes = bytesPerEntry(rows, (n) => {
    for (let i = 0; i < n; i++) table.set(ids[i] as string, keys[i] as string, statusInput(i));
    return table;
  });

  // Imported beacon keys, from the sealed K_enc ‖ K_mac registration stores (migration 004).
  const kek = randomBytes(32);
  const entries = 20_000;
  const sealed = Array.from({ length: entries * 2 }, (_, i) =>
    sealBeaconKey(kek, `SB-${i}`, randomBytes(32)),
  );
  const sealedDerived = Array.from({ length: entries * 2 }, (_, i) =>
    sealDerivedKeys(kek, `SB-${i}`, randomBytes(16), randomBytes(32)),
  );
  const cache = new KeyCache(kek, entries * 2);
  gc();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  let t = cpuMs();
  for (let i = 0; i < entries; i++)
    cache.keysFor(ids[i] as string, `SB-${i}`, sealed[i] as Uint8Array, sealedDerived[i] ?? null);
  const missUs = ((cpuMs() - t) * 1000) / entries;
  gc();
  const keyRss = (process.memoryUsage().rss - rss0) / entries;
  const keyHeap = (process.memoryUsage().heapUsed - heap0) / entries;
  t = cpuMs();
  for (let r = 0; r < 5; r++)
    for (let i = 0; i < entries; i++)
      cache.keysFor(ids[i] as string, `SB-${i}`, sealed[i] as Uint8Array, sealedDerived[i] ?? null);
  const hitUs = ((cpuMs() - t) * 1000) / (5 * entries);

  const limiter = new KeyRateLimiter(20, 20 / 600, 1_000_000);
  gc();
  const lim0 = process.memoryUsage();
  for (let i = 0; i < rows; i++) limiter.take((keys[i] as string).split('').join(''), 1000 + i);
  gc();
  const lim1 = process.memoryUsage();
  return {
    statusMapBytesPerRow: mapBytes,
    statusTableBytesPerRow: tableBytes,
    statusTableTypedBytesPerRowAtN: typedBytesPerRow(N),
    keyCache: { rssBytesPerEntry: keyRss, heapBytesPerEntry: keyHeap, missUs, hitUs },
    rateLimiterBytesPerKey: {
      // Read its size after the measurement, so the collector cannot take it early.
      rss: (lim1.rss - lim0.rss) / limiter.size,
      heap: (lim1.heapUsed - lim0.heapUsed) / limiter.size,
    },
  };
}

/**
 * The imported-key cache's hit rate (FIFO, as key-cache.ts) when `relays` relays each upload once
 * per cycle with ±30 s of jitter, over three cycles after the first: it holds or it misses.
 */
function keyCacheHitRate(relays: number, limit: number): number {
  // Each event packed as (time in ms) · 2²³ + (cycle · relays + relay), sorted natively.
  const events = new Float64Array(4 * relays);
  for (let cycle = 0; cycle < 4; cycle++)
    for (let r = 0; r < relays; r++) {
      const ms = Math.round((cycle * 300 + (r / relays) * 300 + Math.random() * 60) * 1000);
      events[cycle * relays + r] = ms * 2 ** 23 + cycle * relays + r;
    }
  events.sort();
  // key-cache.ts's rule: oldest in goes first (a ring of what came in).
  const cached = new Uint8Array(relays);
  const ring = new Int32Array(limit).fill(-1);
  let oldest = 0;
  let hits = 0;
  let counted = 0;
  for (const packed of events) {
    const e = packed % 2 ** 23;
    const r = e % relays;
    // The first cycle only fills the cache.
    const measured = e >= relays;
    if (cached[r]) hits += measured ? 1 : 0;
    else {
      const out = ring[oldest] as number;
      if (out >= 0) cached[out] = 0;
      ring[oldest] = r;
      oldest = (oldest + 1) % limit;
      cached[r] = 1;
    }
    counted += measured ? 1 : 0;
  }
  return hits / counted;
}

// ---------------------------------------------------------------- the backend, in its own process

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function procStatus(pid: number): { rssMb: number; hwmMb: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(text)?.[1] ?? NaN);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** CPU seconds a process has used (user + system): unlike wall time, barely moved by other load. */
function cpuSecondsOf(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

interface Started {
  child: ChildProcess;
  publicPort: number;
  internalPort: number;
  startSeconds: number;
  startCpuSeconds: number;
  rssAtStartMb: number;
  /** Five seconds later, with the loops running. */
  rssSettledMb: number;
  hwmMb: number;
}

async function startBackend(main: string, env: Record<string, string>): Promise<Started> {
  const publicPort = await freePort();
  const internalPort = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, [...NODE_FLAGS, main], {
    env: {
      ...env,
      APP_PUBLIC_PORT: String(publicPort),
      APP_INTERNAL_PORT: String(internalPort),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => void (stderr = (stderr + c.toString()).slice(-4000)));
  for (;;) {
    if (child.exitCode !== null) throw new Error(`app backend exited ${child.exitCode}: ${stderr}`);
    if (await accepts(publicPort)) break;
    await sleep(100);
  }
  const startSeconds = (performance.now() - t0) / 1000;
  const pid = child.pid as number;
  const startCpuSeconds = cpuSecondsOf(pid);
  const atStart = procStatus(pid);
  await sleep(5000);
  const settled = procStatus(pid);
  return {
    child,
    publicPort,
    internalPort,
    startSeconds,
    startCpuSeconds,
    rssAtStartMb: atStart?.rssMb ?? NaN,
    rssSettledMb: settled?.rssMb ?? NaN,
    hwmMb: settled?.hwmMb ?? NaN,
  };
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

// ---------------------------------------------------------------- the load: relays and dummies

const relaySecret = randomBytes(32);
const derive = (label: string, i: number) =>
  createHmac('sha256', relaySecret).update(`${label}/${i}`).digest();
const skTPastOf = (i: number) => derive('sk-t-past', i);
const skBeaconOf = (i: number) => derive('sk-beacon', i);

interface LoadResult {
  sent: number;
  byStatus: Record<string, number>;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  /** How far behind its schedule the generator fell at worst (the machine was too busy). */
  maxLagMs: number;
}

/** Every install sends once per cycle at its own phase; 1 % of relays leave home after the first. */
async function runLoad(port: number, ca: string, ms: number): Promise<LoadResult> {
  const installs = RELAYS + DUMMIES;
  const dummyKeys = Array.from({ length: DUMMIES }, () => randomBytes(32));
  const relayKeys = new Map<number, BeaconKeys>();
  const lastMinute = new Int32Array(RELAYS);
  const agent = new Agent({ keepAlive: true, maxSockets: 64, ca });
  const latencies: number[] = [];
  const byStatus: Record<string, number> = {};
  let errors = 0;
  let maxLagMs = 0;

  const body = (j: number, round: number): Buffer => {
    if (j >= RELAYS) return encodePresenceBody(dummyKeys[j - RELAYS] as Buffer, []);
    const now = Math.floor(Date.now() / 1000);
    const minute = Math.floor(now / 60);
    // Away from home after the first upload: the phone still sends, with no tokens.
    const away = j % 100 === 0 && round > 0;
    const from = Math.max(lastMinute[j] || minute - 5, minute - 5);
    lastMinute[j] = minute;
    let keys = relayKeys.get(j);
    if (!keys) relayKeys.set(j, (keys = nodeSuite.importKeys(skBeaconOf(j))));
    const tokens = away
      ? []
      : Array.from({ length: minute - from }, (_, k) =>
          makeToken(keys, {
            unixSeconds: (from + k + 1) * 60,
            counter: from + k + 1,
            batteryPercent: 80,
            clockNotSet: false,
            rebooted: false,
          }),
        );
    return encodePresenceBody(skTPastOf(j), tokens);
  };

  const send = (payload: Buffer) =>
    new Promise<void>((resolve) => {
      const t = performance.now();
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path: '/v1/presence', agent },
        (res) => {
          res.resume();
          res.on('end', () => {
            latencies.push(performance.now() - t);
            byStatus[res.statusCode ?? 0] = (byStatus[res.statusCode ?? 0] ?? 0) + 1;
            resolve();
          });
        },
      );
      req.on('error', () => (errors++, resolve()));
      req.setHeader('content-type', 'application/octet-stream');
      req.end(payload);
    });

  // Installs in phase order; each tick sends whoever is due.
  const phase = (j: number) => ((j * 0x9e3779b1) >>> 0) % CYCLE_MS;
  const order = Array.from({ length: installs }, (_, j) => j).sort((a, b) => phase(a) - phase(b));
  const t0 = Date.now();
  let sent = 0;
  let next = 0;
  let round = 0;
  const inFlight = new Set<Promise<void>>();
  while (Date.now() - t0 < ms) {
    const elapsed = Date.now() - t0;
    while (next < order.length && Date.now() - t0 < ms) {
      const j = order[next] as number;
      const due = round * CYCLE_MS + phase(j);
      if (due > elapsed) break;
      maxLagMs = Math.max(maxLagMs, elapsed - due);
      const p = send(body(j, round)).finally(() => inFlight.delete(p));
      inFlight.add(p);
      sent++;
      if (++next === order.length) {
        next = 0;
        round++;
      }
      // Keep the queue bounded: a generator that outruns the server measures the queue instead.
      if (inFlight.size >= 256) await Promise.race(inFlight);
    }
    await sleep(20);
  }
  await Promise.all(inFlight);
  agent.destroy();
  const sorted = latencies.sort((a, b) => a - b);
  return {
    sent,
    byStatus,
    errors,
    p50Ms: sorted[Math.floor(sorted.length * 0.5)] ?? NaN,
    p99Ms: sorted[Math.floor(sorted.length * 0.99)] ?? NaN,
    maxLagMs,
  };
}

/** The backend's own Prometheus figures, over mutual TLS as the police backend. */
function backendMetrics(port: number, tls: { ca: string; cert: string; key: string }) {
  return new Promise<Record<string, number>>((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', ...tls }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        const out: Record<string, number> = {};
        for (const line of text.split('\n')) {
          const m =
            /^(nodejs_heap_size_used_bytes|nodejs_heap_size_total_bytes|nodejs_heap_space_size_(?:used|total)_bytes\{space="(?:new|old)"\}|nodejs_external_memory_bytes|process_resident_memory_bytes|presence_queue_depth|presence_tokens_total\{result="(accepted|unknown_key|replay)"\}|alerts_raised_total\{kind="[A-Z_]+"\}|presence_gaps_total\{step="\w+"\}) (\S+)$/.exec(
              line,
            );
          if (m) out[m[1] as string] = Number(m[3]);
        }
        resolve(out);
      });
    });
    req.on('error', () => resolve({}));
    req.end();
  });
}

/** Least-squares slope of RSS over time, MB per minute. */
function slope(points: readonly { t: number; rssMb: number }[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mt = points.reduce((s, p) => s + p.t, 0) / n;
  const mr = points.reduce((s, p) => s + p.rssMb, 0) / n;
  const num = points.reduce((s, p) => s + (p.t - mt) * (p.rssMb - mr), 0);
  const den = points.reduce((s, p) => s + (p.t - mt) ** 2, 0);
  return (num / den) * 60;
}

// ---------------------------------------------------------------- the run

console.log('per-row costs in this process…');
const rows = perRowCosts();
const hitRates = [10_000, 100_000].flatMap((limit) =>
  [5_000, 50_000, 1_000_000].map((relays) => ({
    limit,
    relays,
    hitRate: keyCacheHitRate(relays, limit),
  })),
);

const dir = mkdtempSync(join(tmpdir(), 'bench-memory-'));
const pki = await createDeploymentPki({ environment: 'bench' });
const authority = generateKeyPairSync('ec', {
  namedCurve: 'P-256',
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});
const file = (name: string, text: string) => {
  writeFileSync(join(dir, name), text, { mode: 0o600 });
  return join(dir, name);
};
const kek = randomBytes(32);
const baseEnv: Record<string, string> = {
  // The deployment's tuning, the operator's environment over it, then the backend's configuration.
  MALLOC_ARENA_MAX: APP_RUNTIME_ENV.MALLOC_ARENA_MAX,
  ...(process.env as Record<string, string>),
  NODE_OPTIONS,
  APP_TLS_CERT: file('app.crt', pki.appBackend.cert),
  APP_TLS_KEY: file('app.key', pki.appBackend.key),
  APP_TLS_CA: file('ca.crt', pki.ca.cert),
  APP_HA_PUBLIC_KEY: file('ha.pub', authority.publicKey),
  APP_KEK: kek.toString('base64'),
  // No police backend: nothing is confirmed within the run (the grace is 20 minutes).
  POLICE_BACKEND_URL: 'https://127.0.0.1:9',
  APP_LOG_LEVEL: 'warn',
};
const schemaUrl = async (db: { query: (sql: string) => Promise<{ rows: unknown[] }> }) => {
  const { rows: r } = await db.query('SELECT current_schema() AS s');
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${(r[0] as { s: string }).s}`);
  return u.toString();
};

const empty = await benchDatabase();
const full = await benchDatabase();
const now = Date.now();
const t = performance.now();
console.log(`seeding ${f(N)} quarantines on PostgreSQL…`);
// Deadlines from two hours on: only the relays that leave home fall due within the run.
await seedQuarantines(full.db, N, now, now + 2 * 3_600_000);
for (let from = 0; from < RELAYS; from += 5000) {
  const ids = Array.from({ length: Math.min(5000, RELAYS - from) }, (_, k) => from + k);
  await full.db.query(
    `UPDATE quarantines q SET sk_t_past_hash = u.h, sk_beacon_sealed = u.s, keys_sealed = u.d
       FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[]) AS u(beacon_id, h, s, d)
      WHERE q.beacon_id = u.beacon_id`,
    [
      ids.map((i) => `SB-${i}`),
      ids.map((i) => hashKey(skTPastOf(i))),
      ids.map((i) => sealBeaconKey(kek, `SB-${i}`, skBeaconOf(i))),
      ids.map((i) => {
        const { kEnc, kMac } = deriveKeyMaterial(skBeaconOf(i));
        return sealDerivedKeys(kek, `SB-${i}`, kEnc, kMac);
      }),
    ],
  );
}
const seedSeconds = (performance.now() - t) / 1000;
const emptyEnv = { ...baseEnv, DATABASE_URL: await schemaUrl(empty.db) };
const fullEnv = { ...baseEnv, DATABASE_URL: await schemaUrl(full.db) };

const starts: Record<'empty' | 'full' | 'before', Started[]> = { empty: [], full: [], before: [] };
for (let r = 0; r < ROUNDS; r++) {
  for (const [kind, main, env] of [
    ['empty', MAIN, emptyEnv],
    ['full', MAIN, fullEnv],
    ...(BEFORE_MAIN ? [['before', BEFORE_MAIN, fullEnv] as const] : []),
  ] as const) {
    console.log(`round ${r + 1}: starting the app backend (${kind})…`);
    const s = await startBackend(main, env);
    starts[kind].push(s);
    await stop(s.child);
  }
}

console.log(`load: ${f(RELAYS)} relays + ${f(DUMMIES)} dummies for ${MINUTES} min…`);
const run = await startBackend(MAIN, fullEnv);
starts.full.push(run);
const pid = run.child.pid as number;
const policeTls = { ca: pki.ca.cert, cert: pki.policeBackend.cert, key: pki.policeBackend.key };
const samples: { t: number; rssMb: number; heapTotalMb?: number; externalMb?: number }[] = [];
const t0 = performance.now();
const sampler = setInterval(() => {
  const s = procStatus(pid);
  if (!s) return;
  const sample = { t: (performance.now() - t0) / 1000, rssMb: s.rssMb };
  samples.push(sample);
  // What the RSS is made of: the JS heap and off-heap buffers, as the backend reports them.
  void backendMetrics(run.internalPort, policeTls).then((m) =>
    Object.assign(sample, {
      heapTotalMb: (m['nodejs_heap_size_total_bytes'] ?? NaN) / 2 ** 20,
      externalMb: (m['nodejs_external_memory_bytes'] ?? NaN) / 2 ** 20,
    }),
  );
}, SAMPLE_MS);
const cpu0 = process.cpuUsage();
const load = await runLoad(run.publicPort, pki.ca.cert, MINUTES * 60_000);
clearInterval(sampler);
const loadCpuSeconds = (() => {
  const u = process.cpuUsage(cpu0);
  return (u.user + u.system) / 1e6;
})();
const end = procStatus(pid);
const metrics = await backendMetrics(run.internalPort, policeTls);
await stop(run.child);
await empty.drop();
await full.drop();
rmSync(dir, { recursive: true, force: true });

// ---------------------------------------------------------------- figures

const med = (
  kind: keyof typeof starts,
  k: 'startSeconds' | 'startCpuSeconds' | 'rssAtStartMb' | 'rssSettledMb',
) => median(starts[kind].map((s) => s[k]));
const emptyRss = med('empty', 'rssSettledMb');
const fullRss = med('full', 'rssSettledMb');
const peakSampleMb = Math.max(...samples.map((s) => s.rssMb));
const peakMb = Math.max(peakSampleMb, end?.hwmMb ?? NaN);
const endMb = end?.rssMb ?? NaN;
const lastHalf = samples.filter((s) => s.t >= (MINUTES * 60) / 2);
// Each minute's lowest sample is what survived the collector: its trend is growth, the rest is GC.
const floorOf = new Map<number, { t: number; rssMb: number }>();
for (const s of lastHalf) {
  const low = floorOf.get(Math.floor(s.t / 60));
  if (!low || s.rssMb < low.rssMb) floorOf.set(Math.floor(s.t / 60), s);
}
const floors = [...floorOf.values()];
const slopeMbPerMin = slope(floors);
const baseline = { label: 'same backend, empty database', value: emptyRss, unit: 'MB' };
const figures: Figure[] = [
  {
    measure: `app backend RSS after start, ${f(N)} quarantines (PostgreSQL)`,
    value: fullRss,
    unit: 'MB',
    baseline,
    target: below(fullRss, TARGET_MB, 'MB') as Target,
  },
  {
    measure: `app backend peak RSS (start and ${MINUTES} min of load)`,
    value: peakMb,
    unit: 'MB',
    baseline,
    target: below(peakMb, TARGET_MB, 'MB') as Target,
  },
  {
    measure: `app backend RSS at the end of ${MINUTES} min of load`,
    value: endMb,
    unit: 'MB',
    baseline,
    target: below(endMb, TARGET_MB, 'MB') as Target,
  },
  {
    measure: `RSS floor slope (each minute's lowest sample), second half of the load`,
    value: slopeMbPerMin,
    unit: 'MB/min',
    target: below(Math.abs(slopeMbPerMin), FLAT_MB_PER_MIN, 'MB/min (flat)') as Target,
  },
  {
    measure: `app backend start, ${f(N)} quarantines`,
    value: med('full', 'startSeconds'),
    unit: 's',
    baseline: {
      label: 'same backend, empty database',
      value: med('empty', 'startSeconds'),
      unit: 's',
    },
  },
  {
    measure: `app backend start, ${f(N)} quarantines: its own CPU time`,
    value: med('full', 'startCpuSeconds'),
    unit: 'CPU-s',
    baseline: {
      label: 'same backend, empty database',
      value: med('empty', 'startCpuSeconds'),
      unit: 'CPU-s',
    },
  },
];
const report = writeReport('memory', figures, {
  quarantines: N,
  relays: RELAYS,
  dummies: DUMMIES,
  cycleSeconds: CYCLE_MS / 1000,
  minutes: MINUTES,
  nodeOptions: NODE_OPTIONS,
  nodeFlags: NODE_FLAGS,
  seedSeconds,
  starts: Object.fromEntries(
    Object.entries(starts).map(([k, list]) => [
      k,
      list.map(({ startSeconds, startCpuSeconds, rssAtStartMb, rssSettledMb, hwmMb }) => ({
        startSeconds,
        startCpuSeconds,
        rssAtStartMb,
        rssSettledMb,
        hwmMb,
      })),
    ]),
  ),
  load: { ...load, generatorCpuSeconds: loadCpuSeconds },
  backendMetricsAtEnd: metrics,
  samples,
  rawSlopeMbPerMinSecondHalf: slope(lastHalf),
  perRow: rows,
  keyCacheHitRates: hitRates,
});

console.log(
  `\n${report.machine}; load average ${report.loadAverage}; seeded in ${f(seedSeconds)} s\n`,
);
console.log('| measure | result | baseline (same run) | target |\n|---|---|---|---|');
for (const x of figures)
  console.log(
    `| ${x.measure} | ${f(x.value, 2)} ${x.unit} | ${x.baseline ? `${f(x.baseline.value, 2)} ${x.baseline.unit} (${x.baseline.label})` : '—'} | ${x.target ? `${x.target.text}: ${x.target.met ? 'met' : 'NOT met'}` : '—'} |`,
  );
if (starts.before.length)
  console.log(
    `| before (${BEFORE_MAIN}): start, RSS after start | ${f(med('before', 'startSeconds'))} s (${f(med('before', 'startCpuSeconds'))} CPU-s), ${f(med('before', 'rssSettledMb'))} MB (peak ${f(Math.max(...starts.before.map((s) => s.hwmMb)))} MB) | | |`,
  );
console.log(
  `\nload: ${f(load.sent)} requests (${Object.entries(load.byStatus)
    .map(([k, v]) => `${k}: ${f(v)}`)
    .join(
      ', ',
    )}; errors ${load.errors}), p50 ${f(load.p50Ms)} ms, p99 ${f(load.p99Ms)} ms, generator at most ${f(load.maxLagMs / 1000)} s behind`,
);
console.log(
  `per row: status ${f(rows.statusMapBytesPerRow, 0)} B (Map of objects, before) → ${f(rows.statusTableBytesPerRow, 0)} B (table); imported key ${f(rows.keyCache.rssBytesPerEntry, 0)} B RSS (${f(rows.keyCache.heapBytesPerEntry, 0)} B heap), miss ${f(rows.keyCache.missUs, 0)} µs CPU, hit ${f(rows.keyCache.hitUs, 2)} µs; rate-limit key ${f(rows.rateLimiterBytesPerKey.heap, 0)} B heap`,
);
console.log(
  `key cache hit rate (relays uploading every 5 min): ${hitRates.map((h) => `${f(h.relays)} relays, limit ${f(h.limit)}: ${f(h.hitRate * 100, 0)} %`).join('; ')}`,
);
