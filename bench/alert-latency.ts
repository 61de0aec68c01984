/**
 * `npm run bench:alert-latency`: how long after an alert falls due it is stored in the police
 * backend, with a real app backend (its watchdog, delivery and other loops on their normal
 * timers) and a real police backend in a process of its own, each on its own database (PGlite,
 * or PostgreSQL schemas when DATABASE_URL is set), BENCH_QUARANTINES (default 1,000,000)
 * quarantines monitored. Two cases: BENCH_BURST (10,000) quarantines falling due at once, and
 * BENCH_RATE (200) a second for BENCH_STEADY_SECONDS (60). The baseline, in the same run with
 * rounds alternating: as many alerts posted straight to the police backend at their due times
 * by a minimal keep-alive client (the ceiling the police intake sets).
 *
 * Due ("the deadline"): the end of the grace after the window — with BENCH_GRACE_SECONDS 0 (the
 * default) the quarantine's `deadline` itself, at which the watchdog makes the gap PROVISIONAL
 * and CONFIRMED in one tick and queues the NO_PRESENCE for the police. With a grace (as in
 * production: 20 min), the gaps open a grace before and only the confirmations fall due at t0,
 * as a real burst reaches the police. The police receive it as `provisionalAt + graceSeconds` in
 * the alert's detail; stored = the police alert row's `received_at` (its intake batch's time).
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:https';
import { fileURLToPath } from 'node:url';
import { type AppRequest, type AppStarted, type QueuedCurve, WINDOW_MS } from './app/process.js';
import { median } from './measure.js';
import { LOOP_DEFAULTS } from '../app-backend/src/config.js';
import { DELIVERY_DEFAULTS } from '../app-backend/src/delivery.js';
import type { PoliceRequest, PoliceStarted, StoredAlert } from './police/process.js';
import { type Figure, below, writeReport } from './report.js';

const env = process.env;
const N = Number(env.BENCH_QUARANTINES ?? 1_000_000);
const BURST = Number(env.BENCH_BURST ?? 10_000);
const RATE = Number(env.BENCH_RATE ?? 200);
const STEADY_SECONDS = Number(env.BENCH_STEADY_SECONDS ?? 60);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 2);
// The production defaults (app-backend/src/config.ts: APP_WATCHDOG_INTERVAL_MS, APP_DELIVERY_INTERVAL_MS).
const WATCHDOG_MS = Number(env.BENCH_WATCHDOG_INTERVAL_MS ?? LOOP_DEFAULTS.watchdogIntervalMs);
const DELIVERY_MS = Number(env.BENCH_DELIVERY_INTERVAL_MS ?? LOOP_DEFAULTS.deliveryIntervalMs);
/** The baseline client's connections: as many as the app backend's sender keeps. */
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? DELIVERY_DEFAULTS.concurrency);
/** The baseline client's alerts per post: as many as the app backend's sender puts in one. */
const PER_POST = Number(env.BENCH_PER_POST ?? DELIVERY_DEFAULTS.perPost);
const TARGET_MS = 2000;
const STEADY = RATE * STEADY_SECONDS;
/** Time to set a case up before its first alert falls due. */
const LEAD_MS = Number(env.BENCH_LEAD_SECONDS ?? 10) * 1000;
/** The grace after the window; it must end within the lead, after the gaps were opened. */
const GRACE_SECONDS = Number(env.BENCH_GRACE_SECONDS ?? 0);
if (GRACE_SECONDS * 1000 > LEAD_MS / 2)
  throw new Error('BENCH_GRACE_SECONDS must be at most half of BENCH_LEAD_SECONDS');
/** Give up on a case this long after its last alert fell due. */
const GIVE_UP_MS = Number(env.BENCH_GIVE_UP_SECONDS ?? 300) * 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const f = (n: number, digits = 0) =>
  n.toLocaleString('en-GB', { maximumFractionDigits: digits, minimumFractionDigits: digits });

// ---------------------------------------------------------------------------------------------
// Each backend in a process of its own, as on their own hosts; this one only drives and measures.
type Ask<M> = <T>(m: M extends unknown ? Omit<M, 'id'> : never) => Promise<T>;
function spawn<M extends { id: number }>(script: string): { ask: Ask<M>; close: () => void } {
  const child = fork(fileURLToPath(new URL(script, import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error !== undefined) w?.reject(new Error(m.error));
    else w?.resolve(m.result);
  });
  child.on('exit', (code) => {
    for (const w of waiting.values()) w.reject(new Error(`${script} exited (${code})`));
  });
  const ask = (<T>(m: object) =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ ...m, id });
    })) as Ask<M>;
  return { ask, close: () => child.disconnect() };
}
const policeProcess = spawn<PoliceRequest>('./police/process.js');
const appProcess = spawn<AppRequest>('./app/process.js');

// ---------------------------------------------------------------------------------------------
// Cases: each uses its own quarantines (a range of the seeded ones) and beacons.
interface Case {
  readonly kind: 'burst' | 'steady';
  readonly via: 'app' | 'direct';
  readonly round: number;
  readonly from: number;
  readonly count: number;
}
const plan: Case[] = [];
let next = 0;
const take = (kind: Case['kind'], via: Case['via'], round: number): Case => {
  const count = kind === 'burst' ? BURST : STEADY;
  const c = { kind, via, round, from: next, count };
  next += count;
  return c;
};
for (let r = 0; r < ROUNDS; r++) {
  // Alternate who goes first, so drift in the machine's load touches both alike.
  const order: Case['via'][] = r % 2 ? ['app', 'direct'] : ['direct', 'app'];
  for (const kind of ['burst', 'steady'] as const)
    for (const via of order) plan.push(take(kind, via, r));
}
// Before the first case, 1,000 alerts each way: straight to the police backend (its JIT, caches,
// first rows) and through the app backend (its first ticks and connections after the start).
const warmUps: Case[] = (['direct', 'app'] as const).map((via) => {
  const c: Case = { kind: 'burst', via, round: -1, from: next, count: 1000 };
  next += c.count;
  return c;
});
if (next > N) throw new Error(`BENCH_QUARANTINES must be at least ${next} for these cases`);
const beaconIds = (c: Case) => Array.from({ length: c.count }, (_, i) => `SB-${c.from + i}`);
/** When the i-th alert of a case falls due. */
const dueOffset = (c: Case, i: number) => (c.kind === 'burst' ? 0 : Math.floor((i * 1000) / RATE));

// ---------------------------------------------------------------------------------------------
const started = Date.now();
const police = await policeProcess.ask<PoliceStarted>({ type: 'start', beacons: N });
console.log(`seeding ${f(N)} quarantines (police: ${police.database})…`);
const app = await appProcess.ask<AppStarted>({
  type: 'start',
  quarantines: N,
  police: { port: police.port, tls: police.tls },
  watchdogIntervalMs: WATCHDOG_MS,
  deliveryIntervalMs: DELIVERY_MS,
  graceSeconds: GRACE_SECONDS,
});
const setupSeconds = (Date.now() - started) / 1000;
console.log(`both backends up in ${f(setupSeconds)} s (app: ${app.database})`);

// The ceiling: a minimal keep-alive client posting each alert at its due time, the alerts due
// together in batches of up to PER_POST (as the app backend's sender cuts its claims).
const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
function postDirect(body: string, key: string | null): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: police.port,
        servername: 'localhost',
        method: 'POST',
        path: key === null ? '/internal/v1/alert-batches' : '/internal/v1/alerts',
        ...police.tls,
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          ...(key === null ? {} : { 'idempotency-key': key }),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** Post every alert of the case at its due time (those due and not yet sent, CONNECTIONS at once). */
async function direct(c: Case, t0: number): Promise<number> {
  const queue: { body: string; key: string }[] = [];
  let made = 0;
  let failed = 0;
  const enqueue = () => {
    const now = Date.now();
    for (; made < c.count && t0 + dueOffset(c, made) <= now; made++) {
      const due = t0 + dueOffset(c, made);
      const alertId = randomUUID();
      queue.push({
        key: randomUUID(),
        body: JSON.stringify({
          alertId,
          kind: 'NO_PRESENCE',
          beaconId: `SB-${c.from + made}`,
          occurredAt: due,
          gapStartedAt: due - GRACE_SECONDS * 1000 - WINDOW_MS,
          relatedAlertId: null,
          detail: {
            lastPresenceAt: due - GRACE_SECONDS * 1000 - WINDOW_MS,
            provisionalAt: due - GRACE_SECONDS * 1000,
            confirmedAt: due,
            graceSeconds: GRACE_SECONDS,
            afterAbsence: false,
            relaySilent: false,
          },
        }),
      });
    }
  };
  const wakeups = new Set<() => void>();
  const worker = async () => {
    for (;;) {
      const ms = queue.splice(0, PER_POST);
      if (ms.length === 1) {
        const m = ms[0] as (typeof ms)[number];
        if ((await postDirect(m.body, m.key)) !== 200) failed++;
        continue;
      }
      if (ms.length) {
        const body = `{"alerts":[${ms.map((m) => m.body).join(',')}]}`;
        if ((await postDirect(body, null)) !== 200) failed += ms.length;
        continue;
      }
      if (made >= c.count) return;
      await new Promise<void>((r) => wakeups.add(r));
    }
  };
  const ticker = setInterval(() => {
    enqueue();
    for (const w of wakeups) w();
    wakeups.clear();
  }, 5);
  await sleep(Math.max(0, t0 - Date.now()));
  enqueue();
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  clearInterval(ticker);
  return failed;
}

interface Result {
  readonly case: Case;
  readonly stored: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Alerts stored per second, from the first due time to the last stored. */
  readonly perSecond: number;
  /** The watchdog's share: tick start (confirmedAt) minus due, p50/p99 (app cases). */
  readonly waitP50: number | null;
  readonly waitP99: number | null;
  /** Due → in the outbox (watchdog) and outbox → stored (delivery and police), p50/p99 (app cases). */
  readonly queuedP50: number | null;
  readonly queuedP99: number | null;
  readonly deliveredP50: number | null;
  readonly deliveredP99: number | null;
  readonly failedPosts: number;
}

const quantile = (sorted: number[], q: number) =>
  sorted.length
    ? (sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number)
    : NaN;

/**
 * Split each alert's latency at the moment it reached the outbox. The app's outbox count was
 * sampled over time; the k-th alert stored is matched with the k-th written (delivery goes in
 * outbox order), written at the first sample that counts k.
 */
function splitAtQueue(rows: StoredAlert[], curve: QueuedCurve) {
  if (!curve.length)
    return { queuedP50: null, queuedP99: null, deliveredP50: null, deliveredP99: null };
  const stored = [...rows].sort((a, b) => a.receivedAt - b.receivedAt);
  const byDue = [...rows].sort((a, b) => a.dueAt - b.dueAt);
  const toQueue: number[] = [];
  const toStore: number[] = [];
  let s = 0;
  stored.forEach((r, k) => {
    while (s < curve.length - 1 && (curve[s] as [number, number])[1] < k + 1) s++;
    const at = (curve[s] as [number, number])[0];
    toStore.push(r.receivedAt - at);
    toQueue.push(at - (byDue[k] as StoredAlert).dueAt);
  });
  toQueue.sort((a, b) => a - b);
  toStore.sort((a, b) => a - b);
  return {
    queuedP50: quantile(toQueue, 0.5),
    queuedP99: quantile(toQueue, 0.99),
    deliveredP50: quantile(toStore, 0.5),
    deliveredP99: quantile(toStore, 0.99),
  };
}

async function runCase(c: Case): Promise<Result> {
  const ids = beaconIds(c);
  const t0 = Date.now() + LEAD_MS;
  let failedPosts = 0;
  if (c.via === 'app') {
    const stepMs = c.kind === 'burst' ? 0 : 1000 / RATE;
    await appProcess.ask({
      type: 'due',
      from: c.from,
      count: c.count,
      t0,
      stepMs,
      graceMs: GRACE_SECONDS * 1000,
    });
    if (Date.now() > t0) console.warn(`setting ${c.kind} up took longer than ${LEAD_MS} ms`);
  }
  const lastDue = t0 + dueOffset(c, c.count - 1);
  const queued =
    c.via === 'app'
      ? appProcess.ask<QueuedCurve>({
          type: 'queued',
          since: t0,
          count: c.count,
          until: lastDue + GIVE_UP_MS,
        })
      : undefined;
  if (c.via === 'direct') failedPosts = await direct(c, t0);
  for (;;) {
    const n = await policeProcess.ask<number>({ type: 'count', beaconIds: ids });
    if (n >= c.count || Date.now() > lastDue + GIVE_UP_MS) break;
    await sleep(500);
  }
  const rows = await policeProcess.ask<StoredAlert[]>({ type: 'stored', beaconIds: ids });
  const split = splitAtQueue(rows, (await queued) ?? []);
  const latency = rows.map((r) => r.receivedAt - r.dueAt).sort((a, b) => a - b);
  const wait = rows
    .filter((r) => r.confirmedAt !== null && c.via === 'app')
    .map((r) => (r.confirmedAt as number) - r.dueAt)
    .sort((a, b) => a - b);
  const lastStored = Math.max(...rows.map((r) => r.receivedAt));
  return {
    case: c,
    stored: rows.length,
    p50: quantile(latency, 0.5),
    p99: quantile(latency, 0.99),
    max: latency[latency.length - 1] ?? NaN,
    perSecond: rows.length / Math.max(0.001, (lastStored - t0) / 1000),
    waitP50: wait.length ? quantile(wait, 0.5) : null,
    waitP99: wait.length ? quantile(wait, 0.99) : null,
    ...split,
    failedPosts,
  };
}

for (const c of warmUps) {
  const r = await runCase(c);
  console.log(`warm-up ${c.via.padEnd(6)}: p50 ${f(r.p50)} ms, p99 ${f(r.p99)} ms`);
}
const results: Result[] = [];
for (const c of plan) {
  const r = await runCase(c);
  results.push(r);
  console.log(
    `round ${c.round + 1} ${c.kind.padEnd(6)} ${c.via.padEnd(6)}: ${f(r.stored)}/${f(c.count)} stored, p50 ${f(r.p50)} ms, p99 ${f(r.p99)} ms, max ${f(r.max)} ms, ${f(r.perSecond)}/s` +
      (r.waitP50 === null
        ? ''
        : ` (tick wait p50 ${f(r.waitP50)} / p99 ${f(r.waitP99 ?? NaN)} ms; due → outbox p50 ${f(r.queuedP50 ?? NaN)} / p99 ${f(r.queuedP99 ?? NaN)} ms; outbox → stored p50 ${f(r.deliveredP50 ?? NaN)} / p99 ${f(r.deliveredP99 ?? NaN)} ms)`),
  );
  // Settle: the next case starts with the outbox and the intake idle.
  await sleep(2000);
}

agent.destroy();
await appProcess.ask({ type: 'stop' });
await policeProcess.ask({ type: 'stop' });
appProcess.close();
policeProcess.close();

// ---------------------------------------------------------------------------------------------
const summary = (kind: Case['kind'], via: Case['via']) => {
  const rs = results.filter((r) => r.case.kind === kind && r.case.via === via);
  const m = (pick: (r: Result) => number | null) => {
    const v = rs.map(pick).filter((x): x is number => x !== null);
    return v.length ? median(v) : null;
  };
  return {
    kind,
    via,
    rounds: rs.length,
    alerts: rs[0]?.case.count ?? 0,
    storedAll: rs.every((r) => r.stored === r.case.count),
    p50: m((r) => r.p50) as number,
    p99: m((r) => r.p99) as number,
    max: m((r) => r.max) as number,
    perSecond: m((r) => r.perSecond) as number,
    waitP50: m((r) => r.waitP50),
    waitP99: m((r) => r.waitP99),
    queuedP50: m((r) => r.queuedP50),
    queuedP99: m((r) => r.queuedP99),
    deliveredP50: m((r) => r.deliveredP50),
    deliveredP99: m((r) => r.deliveredP99),
    failedPosts: rs.reduce((s, r) => s + r.failedPosts, 0),
  };
};
const table = (['burst', 'steady'] as const).flatMap((k) => [
  summary(k, 'app'),
  summary(k, 'direct'),
]);
const label = (s: (typeof table)[number]) =>
  `${s.kind === 'burst' ? `${f(BURST)} due at once` : `${f(RATE)}/s for ${STEADY_SECONDS} s`}, ${s.via === 'app' ? 'app backend → police' : 'direct keep-alive client (ceiling)'}`;

console.log(
  `\nalert latency, due → stored by the police — ${f(N)} quarantines; app ${app.database}, police ${police.database}; watchdog every ${f(WATCHDOG_MS)} ms, delivery every ${f(DELIVERY_MS)} ms; grace ${f(GRACE_SECONDS)} s; median of ${ROUNDS} round(s)\n`,
);
console.log(
  '| case | p50 ms | p99 ms | max ms | alerts/s | watchdog tick wait p50/p99 ms | due → outbox p50/p99 ms | outbox → stored p50/p99 ms |',
);
console.log('|---|---|---|---|---|---|---|---|');
const pair = (a: number | null, b: number | null) =>
  a === null ? '—' : `${f(a)} / ${f(b ?? NaN)}`;
for (const s of table)
  console.log(
    `| ${label(s)}${s.storedAll ? '' : ' (NOT ALL STORED)'} | ${f(s.p50)} | ${f(s.p99)} | ${f(s.max)} | ${f(s.perSecond)} | ${pair(s.waitP50, s.waitP99)} | ${pair(s.queuedP50, s.queuedP99)} | ${pair(s.deliveredP50, s.deliveredP99)} |`,
  );

const figure = (kind: Case['kind']): Figure[] => {
  const a = table.find((s) => s.kind === kind && s.via === 'app');
  const d = table.find((s) => s.kind === kind && s.via === 'direct');
  const what =
    (kind === 'burst' ? `${f(BURST)} alerts due at once` : `${f(RATE)} alerts/s due`) +
    (GRACE_SECONDS ? ` (confirmations: gaps opened ${f(GRACE_SECONDS)} s before)` : '');
  return [
    {
      measure: `alert latency p99, due → stored by the police, ${what} (${app.database})`,
      value: a?.p99 ?? NaN,
      unit: 'ms',
      baseline: {
        label: 'posted straight to the police backend (keep-alive client)',
        value: d?.p99 ?? NaN,
        unit: 'ms',
      },
      target: below(a?.storedAll ? (a?.p99 ?? Infinity) : Infinity, TARGET_MS, 'ms'),
    },
    {
      measure: `alerts stored per second, ${what} (${app.database})`,
      value: a?.perSecond ?? NaN,
      unit: 'alerts/s',
      baseline: {
        label: 'posted straight to the police backend',
        value: d?.perSecond ?? NaN,
        unit: 'alerts/s',
      },
    },
  ];
};
const report = writeReport(
  GRACE_SECONDS ? 'alert-latency-grace' : 'alert-latency',
  [...figure('burst'), ...figure('steady')],
  {
    quarantines: N,
    burst: BURST,
    rate: RATE,
    steadySeconds: STEADY_SECONDS,
    rounds: ROUNDS,
    watchdogIntervalMs: WATCHDOG_MS,
    deliveryIntervalMs: DELIVERY_MS,
    graceSeconds: GRACE_SECONDS,
    appDatabase: app.database,
    policeDatabase: police.database,
    setupSeconds,
    appSeedSeconds: app.seedSeconds,
    due: 'the window end (quarantine deadline) = provisionalAt + graceSeconds in the alert; stored = police alerts.received_at',
    summary: table,
    perRound: results.map((r) => ({
      ...r,
      case: `${r.case.kind}/${r.case.via}/round ${r.case.round + 1}`,
    })),
  },
);
console.log(
  `\ntarget p99 < ${f(TARGET_MS)} ms: ${report.figures
    .filter((x) => x.target)
    .map((x) => `${x.measure}: ${x.target?.met ? 'met' : 'missed'}`)
    .join('; ')} (load average ${report.loadAverage})`,
);
