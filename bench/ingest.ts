/**
 * `npm run bench:ingest`: presence requests/s and tokens/s through the real app backend (HTTPS,
 * lean presence path, validation queue, database), next to a bare Node HTTPS server that reads
 * the same bodies and sends the same fixed answer, measured in the same run, rounds alternating.
 * Mix: 90 % dummy requests (random keys, no tokens), 10 % real ones (5 tokens each).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openDatabase } from '../backend-kit/db.js';
import { createLogger } from '../backend-kit/logger.js';
import { hexToBytes } from '../protocol/bytes.js';
import { loopbackConfig } from '../app-backend/src/config.js';
import {
  PRESENCE_BODY_LENGTH,
  PRESENCE_RESPONSE,
  encodePresenceBody,
} from '../protocol/presence.js';
import { registerQuarantine } from '../app-backend/src/quarantines.js';
import { startAppBackend } from '../app-backend/src/service.js';
import { makeToken } from '../protocol/token/make.js';
import { nodeSuite } from '../protocol/token/keys-node.js';
import { createDeploymentPki } from '../deploy/pki/pki.js';
import { machine, median } from './measure.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const QUARANTINES = 1000;
const BODIES = 2000;

const pki = await createDeploymentPki({ environment: 'bench' });
// A throw-away schema on PostgreSQL, so runs never meet each other's rows.
const schema = `bench_${randomBytes(6).toString('hex')}`;
const db = await openDatabase({
  url: process.env.DATABASE_URL,
  dataDir: 'memory://',
  ...(process.env.DATABASE_URL ? { schema } : {}),
});
const kek = randomBytes(32);
const backend = await startAppBackend(
  loopbackConfig({
    tls: { cert: pki.appBackend.cert, key: pki.appBackend.key, ca: pki.ca.cert },
    kek,
    healthAuthority: {
      publicKey: '',
      issuer: 'health-authority',
      audience: 'smartbeacon-app-backend',
    },
    police: { url: 'https://127.0.0.1:9', identity: 'police-backend' },
    deliveryIntervalMs: 600_000,
    presencePer10Min: 1_000_000_000,
    logLevel: 'warn',
  }),

  { db, log: createLogger({ name: 'app-backend', level: 'warn' }) },
);

// A realistic mix: registered quarantines with fresh tokens, and dummies with random keys.
const now = Date.now();
const people = await db.transaction(async (tx) => {
  const out: { skTPast: Uint8Array; keys: ReturnType<typeof nodeSuite.importKeys> }[] = [];
  for (let i = 0; i < QUARANTINES; i++) {
    const sk = randomBytes(32).toString('hex');
    const skTPast = randomBytes(32).toString('hex');
    await registerQuarantine(
      tx,
      kek,
      { skTPast, tPast: 20_000, beaconId: `B-${i}`, skBeacon: sk },
      360,
      now,
    );
    out.push({ skTPast: hexToBytes(skTPast), keys: nodeSuite.importKeys(hexToBytes(sk)) });
  }
  return out;
});
const bodies: Buffer[] = [];
let counter = 0;
for (let i = 0; i < BODIES; i++) {
  if (i % 10 === 0) {
    const p = people[(i / 10) % people.length]!;
    const tokens = Array.from({ length: 5 }, (_, k) =>
      makeToken(p.keys, {
        unixSeconds: Math.floor(now / 1000) - 60 * (5 - k),
        counter: counter++,
        batteryPercent: 80,
        clockNotSet: false,
        rebooted: false,
      }),
    );
    bodies.push(encodePresenceBody(p.skTPast, tokens));
  } else bodies.push(encodePresenceBody(randomBytes(32), []));
}
const dir = `${tmpdir()}/smartbeacon-bench`;
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}/bodies.bin`, Buffer.concat(bodies));

// The baseline: the same TLS, the same body read, the same answer, nothing else.
const bare = createServer({ cert: pki.appBackend.cert, key: pki.appBackend.key }, (req, res) => {
  const body = Buffer.allocUnsafe(PRESENCE_BODY_LENGTH);
  let at = 0;
  req.on('data', (c: Buffer) => {
    c.copy(body, at);
    at += c.length;
  });
  req.on('end', () => {
    res.writeHead(202, {
      'content-type': 'application/octet-stream',
      'content-length': PRESENCE_RESPONSE.length,
      'cache-control': 'no-store',
    });
    res.end(PRESENCE_RESPONSE);
  });
});
await new Promise<void>((r) => bare.listen(0, '127.0.0.1', () => r()));
const barePort = (bare.address() as AddressInfo).port;

const loadScript = fileURLToPath(new URL('./load.js', import.meta.url));
interface Load {
  requests: number;
  non2xx: number;
  errors: number;
  p50: number;
  p99: number;
  rps: number;
}

async function round(
  port: number,
): Promise<Load & { reqPerCpuSecond: number; tokensPerSecond: number }> {
  const tokensBefore = await tokenCount();
  const cpu = process.cpuUsage();
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [loadScript, String(port), `${dir}/bodies.bin`, String(SECONDS), String(CONNECTIONS)],
    { maxBuffer: 1 << 20 },
  );
  const used = process.cpuUsage(cpu);
  await backend.flush();
  const load = JSON.parse(stdout) as Load;
  return {
    ...load,
    reqPerCpuSecond: load.requests / ((used.user + used.system) / 1e6),
    tokensPerSecond: ((await tokenCount()) - tokensBefore) / SECONDS,
  };
}

async function tokenCount(): Promise<number> {
  const metric = await backend.metrics.tokens.get();
  return metric.values.reduce((sum, v) => sum + v.value, 0);
}

const results: Record<'bare' | 'app', Awaited<ReturnType<typeof round>>[]> = { bare: [], app: [] };
for (let r = 0; r < ROUNDS; r++) {
  results.bare.push(await round(barePort));
  results.app.push(await round(backend.publicPort));
}
const summary = (k: 'bare' | 'app') => ({
  rps: median(results[k].map((x) => x.rps)),
  reqPerCpuSecond: median(results[k].map((x) => x.reqPerCpuSecond)),
  p99: median(results[k].map((x) => x.p99)),
  tokensPerSecond: median(results[k].map((x) => x.tokensPerSecond)),
  errors: results[k].reduce((s, x) => s + x.errors + x.non2xx, 0),
});
const bareS = summary('bare');
const appS = summary('app');
const date = new Date().toISOString();
console.log(`presence ingest — ${machine()} — ${date}`);
console.log(
  `${ROUNDS} rounds × ${SECONDS} s, ${CONNECTIONS} keep-alive connections, 90 % dummy / 10 % real (5 tokens), ${QUARANTINES} quarantines, ${db.kind}\n`,
);
console.log('server                         req/s   req/CPU-s   p99 ms   tokens/s   errors');
for (const [name, s] of [
  ['bare node:https', bareS],
  ['app backend', appS],
] as const) {
  console.log(
    `${name.padEnd(24)} ${Math.round(s.rps).toString().padStart(9)} ${Math.round(s.reqPerCpuSecond).toString().padStart(11)} ${s.p99.toString().padStart(8)} ${Math.round(s.tokensPerSecond).toString().padStart(10)} ${s.errors.toString().padStart(8)}`,
  );
}
console.log(
  `\napp backend / bare: ${((appS.rps / bareS.rps) * 100).toFixed(0)} % of requests/s, ${((appS.reqPerCpuSecond / bareS.reqPerCpuSecond) * 100).toFixed(0)} % of requests per CPU-second`,
);
mkdirSync('bench-results', { recursive: true });
writeFileSync(
  'bench-results/ingest.json',
  JSON.stringify(
    {
      date,
      machine: machine(),
      seconds: SECONDS,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      database: db.kind,
      bare: bareS,
      app: appS,
      raw: results,
    },
    null,
    2,
  ) + '\n',
);
await backend.close();
bare.close();
bare.closeAllConnections();
if (db.kind === 'postgres') await db.query(`DROP SCHEMA ${schema} CASCADE`);
await db.close();
