/**
 * `npm run bench:presence-answer`: the CPU the app backend spends answering one presence request,
 * without TLS or sockets, so the figures hold on a busy machine: the answer alone (a dummy's
 * random bytes, a registered key's sealed status) and the per-key rate limit once full, each next
 * to the previous implementation; and the whole lean handler (shape check, key hash, rate limit,
 * status lookup, admission) for a dummy and for a real request, up to handing it to the journal.
 * The answer itself (sealed or random) is made while the journal's group is being written, and the
 * group write is left to bench:ingest: here the journal writes nowhere, between rounds.
 */
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Database } from '../backend-kit/db.js';
import { createLogger } from '../backend-kit/logger.js';
import { DEFAULT_RULES } from '../app-backend/src/config.js';
import { type HttpDeps, presenceHandler } from '../app-backend/src/http.js';
import { type StatusInput, relayStatus } from '../app-backend/src/lifecycle.js';
import { createMetrics } from '../app-backend/src/metrics.js';
import { KeyRateLimiter } from '../app-backend/src/rate-limit.js';
import type { StatusCache } from '../app-backend/src/status-cache.js';
import { PresenceJournal } from '../app-backend/src/journal.js';
import { PresenceValidator } from '../app-backend/src/validator.js';
import {
  type PresenceStatus,
  STATUS_AAD,
  encodeStatusPlaintext,
  randomStatus,
} from '../protocol/presence-status.js';
import { randomStatusNode, sealStatusNode } from '../protocol/presence-status-node.js';
import { PRESENCE_BODY_LENGTH, encodePresenceBody, hashKey } from '../protocol/presence.js';
import { nodeSuite } from '../protocol/token/keys-node.js';
import { makeToken } from '../protocol/token/make.js';
import { machine, median, opsPerCpuSecond } from './measure.js';
import { type Figure, writeReport } from './report.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 700);
const PEOPLE = 1000;

/** The seal as it was before issue 9: an OpenSSL HKDF context and a CSPRNG call per answer. */
function previousSeal(skTPast: Uint8Array, status: PresenceStatus): Buffer {
  const key = Buffer.from(hkdfSync('sha256', skTPast, new Uint8Array(0), STATUS_AAD, 32));
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce).setAAD(STATUS_AAD);
  const sealed = Buffer.concat([
    nonce,
    cipher.update(encodeStatusPlaintext(status)),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  key.fill(0);
  return sealed;
}

/** The limiter as it was before issue 9: one Map in least-recently-used order. */
class PreviousKeyRateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly capacity: number,
    private readonly refillPerSecond: number,
    private readonly maxKeys: number,
  ) {}
  take(key: string, now: number): boolean {
    const b = this.#buckets.get(key);
    const tokens = b
      ? Math.min(this.capacity, b.tokens + ((now - b.at) / 1000) * this.refillPerSecond)
      : this.capacity;
    if (b) this.#buckets.delete(key);
    const allowed = tokens >= 1;
    this.#buckets.set(key, { tokens: allowed ? tokens - 1 : tokens, at: now });
    if (this.#buckets.size > this.maxKeys) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    return allowed;
  }
}

// Both limiters full, as at national scale (33,000 fresh keys a second against a 500,000 bound).
const LIMIT = 500_000;
const keyOf = (i: number) => `${i.toString(16).padStart(16, '0')}${'0'.repeat(48)}`;
const limiters = {
  previous: new PreviousKeyRateLimiter(20, 20 / 600, LIMIT),
  now: new KeyRateLimiter(20, 20 / 600, LIMIT),
};
for (let i = 0; i < LIMIT; i++) {
  limiters.previous.take(keyOf(i), Date.now());
  limiters.now.take(keyOf(i), Date.now());
}
let freshKey = LIMIT;

// Registered people: a status each (monitored, heard a minute ago) and a body with 5 tokens.
const now = Date.now();
const entries = new Map<string, StatusInput>();
const realBodies = Array.from({ length: PEOPLE }, (_, i) => {
  const skTPast = randomBytes(32);
  const keys = nodeSuite.importKeys(randomBytes(32));
  entries.set(hashKey(skTPast), {
    state: 'monitoring',
    windowSeconds: 360,
    lastPresenceAt: now - 60_000,
    gap: null,
    deadline: now + 300_000,
    absences: [],
  });
  const tokens = Array.from({ length: 5 }, (_, k) =>
    makeToken(keys, {
      unixSeconds: Math.floor(now / 1000) - 60 * k,
      counter: i * 10 + k,
      batteryPercent: 80,
      clockNotSet: false,
      rebooted: false,
    }),
  );
  return encodePresenceBody(skTPast, tokens);
});
const dummyBody = encodePresenceBody(randomBytes(32), []);
const status: PresenceStatus = relayStatus(entries.values().next().value as StatusInput, now);

// The handler's dependencies: the real limiter, metrics and queue; the status cache's contract
// (hash → relayStatus) over the map above; a database that finds nothing, for draining the queue.
const emptyDb = {
  kind: 'postgres',
  query: async () => ({ rows: [], rowCount: 0 }),
  transaction: async <T>(fn: (tx: Database) => Promise<T>) => fn(emptyDb),
  close: async () => undefined,
} as unknown as Database;
const metrics = createMetrics();
const log = createLogger({ name: 'bench', level: 'warn' });
const validator = new PresenceValidator({
  db: emptyDb,
  kek: randomBytes(32),
  rules: DEFAULT_RULES,
  clock: Date.now,
  metrics,
  log,
  bound: { maxRequests: 50_000_000, maxTokens: Number.MAX_SAFE_INTEGER },
});
const journal = new PresenceJournal(emptyDb, Date.now);
const deps = {
  clock: Date.now,
  metrics,
  log,
  validator,
  journal,
  rateLimiter: new KeyRateLimiter(1e9, 1e9 / 600, 500_000),
  statuses: {
    statusFor: (hash: string, at: number) => {
      const e = entries.get(hash);
      return e ? relayStatus(e, at) : undefined;
    },
  } as unknown as StatusCache,
} as unknown as HttpDeps;
const handle = presenceHandler(deps);

/** Just enough of a request and a response for the handler; what it answers is checked. */
class FakeRequest extends EventEmitter {
  readonly headers = { 'content-length': String(PRESENCE_BODY_LENGTH) };
  resume(): void {}
  destroy(): void {}
}
let answered = 0;
const res = {
  writeHead(code: number) {
    if (code !== 202) throw new Error(`answered ${code}`);
    return res;
  },
  setHeader() {},
  end(body: Uint8Array) {
    if (body.length !== 64) throw new Error('wrong answer size');
    answered++;
  },
} as unknown as ServerResponse;

function request(body: Buffer): void {
  const req = new FakeRequest();
  handle(req as unknown as IncomingMessage, res);
  req.emit('data', body);
  req.emit('end');
}

const cases: Record<string, (i: number) => void> = {
  'dummy answer, previous (@noble randomBytes → WebCrypto)': () => void randomStatus(),
  'dummy answer, now (pooled randomFillSync)': () => void randomStatusNode(),
  'sealed answer, previous (hkdfSync + GCM + randomBytes nonce)': (i) =>
    void previousSeal(realBodies[i % PEOPLE]!.subarray(2, 34), status),
  'sealed answer, now (HKDF as 2 HMACs + GCM + pooled nonce)': (i) =>
    void sealStatusNode(realBodies[i % PEOPLE]!.subarray(2, 34), status),
  'rate limiter full (500,000 keys), fresh key, previous (LRU Map)': () =>
    void limiters.previous.take(keyOf(freshKey++), now),
  'rate limiter full (500,000 keys), fresh key, now (two generations)': () =>
    void limiters.now.take(keyOf(freshKey++), now),
  'handler, dummy request (fresh key each)': (i) => {
    dummyBody.writeUInt32BE(i >>> 0, 30);
    request(dummyBody);
  },
  'handler, real request (registered key, 5 tokens)': (i) => request(realBodies[i % PEOPLE]!),
};

const samples: Record<string, number[]> = Object.fromEntries(
  Object.keys(cases).map((k) => [k, []]),
);
/** Answer what the round admitted (its group write), then validate it: both outside the timing. */
const settle = async () => {
  await journal.write(undefined);
  await validator.flush();
};
for (const fn of Object.values(cases)) opsPerCpuSecond(fn, 200);
await settle();
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of Object.entries(cases)) {
    samples[name]?.push(opsPerCpuSecond(fn, ROUND_MS));
    // Drain the queue between rounds, outside the timing: validation is not the answer's cost.
    await settle();
  }
}
if (answered === 0) throw new Error('the handler never answered');

const µs = (name: string) => 1e6 / median(samples[name] as number[]);
const results = Object.keys(cases).map((name) => ({
  name,
  microseconds: Number(µs(name).toFixed(2)),
}));
console.log(`presence answer, CPU per request — ${machine()} — ${new Date().toISOString()}`);
console.log(`${ROUNDS} rounds × ${ROUND_MS} ms, median CPU time; no TLS, no socket\n`);
const width = Math.max(...results.map((r) => r.name.length));
for (const r of results)
  console.log(`${r.name.padEnd(width)}  ${r.microseconds.toFixed(2).padStart(8)} µs`);
const dummy = µs('handler, dummy request (fresh key each)');
const real = µs('handler, real request (registered key, 5 tokens)');
console.log(
  `\nreal − dummy in the handler: ${(real - dummy).toFixed(2)} µs of CPU before the answer`,
);

const fig = (measure: string, now_: string, before: string, label: string): Figure => ({
  measure,
  value: Number(µs(now_).toFixed(2)),
  unit: 'µs CPU',
  baseline: { label, value: Number(µs(before).toFixed(2)), unit: 'µs CPU' },
});
writeReport(
  'presence-answer',
  [
    fig(
      'sealed status answer (registered key)',
      'sealed answer, now (HKDF as 2 HMACs + GCM + pooled nonce)',
      'sealed answer, previous (hkdfSync + GCM + randomBytes nonce)',
      'previous seal, same run',
    ),
    fig(
      'random answer (dummy or unknown key)',
      'dummy answer, now (pooled randomFillSync)',
      'dummy answer, previous (@noble randomBytes → WebCrypto)',
      'previous random answer, same run',
    ),
    fig(
      'rate limit per request, limiter full, fresh key',
      'rate limiter full (500,000 keys), fresh key, now (two generations)',
      'rate limiter full (500,000 keys), fresh key, previous (LRU Map)',
      'previous limiter, same run',
    ),
    {
      measure: 'presence handler, real request (5 tokens), before the answer',
      value: Number(real.toFixed(2)),
      unit: 'µs CPU',
      baseline: {
        label: 'dummy request, same run',
        value: Number(dummy.toFixed(2)),
        unit: 'µs CPU',
      },
    },
  ],
  { rounds: ROUNDS, roundMs: ROUND_MS, people: PEOPLE, results },
);
