/**
 * One server of `bench:ingest` / `bench:scale-out`, in a process of its own so its CPU (and a
 * `--cpu-prof` profile) is its own: the real app backend, or the bare baseline that reads the
 * same body and sends the same fixed answer. Configured by the JSON in BENCH_SERVER; talks to the
 * parent over IPC ('usage', 'flush', 'close').
 */
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { openDatabase } from '../backend-kit/db.js';
import { createLogger } from '../backend-kit/logger.js';
import { LOOP_DEFAULTS, loopbackConfig } from '../app-backend/src/config.js';
import { type AppBackend, startAppBackend } from '../app-backend/src/service.js';
import {
  PRESENCE_BODY_LENGTH,
  PRESENCE_RESPONSE,
  parsePresenceBody,
} from '../protocol/presence.js';
import { prepareDatabase, readPeople } from './ingest-fixture.js';

export interface ServerSpec {
  readonly mode: 'app' | 'bare';
  readonly certFile: string;
  readonly keyFile: string;
  /** base64 */
  readonly kek: string;
  /** PostgreSQL (prepared by the parent); without it the app opens PGlite and prepares it here. */
  readonly databaseUrl?: string;
  readonly schema?: string;
  /** PGlite only: whom to register and how many rows in all. */
  readonly peopleFile?: string;
  readonly quarantines?: number;
}

export interface Usage {
  /** CPU seconds used by this process since it started. */
  readonly cpuSeconds: number;
  readonly rssMb: number;
  readonly tokens: number;
}

const spec = JSON.parse(process.env['BENCH_SERVER'] ?? '{}') as ServerSpec;
const cert = readFileSync(spec.certFile, 'utf8');
const key = readFileSync(spec.keyFile, 'utf8');

function bare(): Promise<number> {
  const server = createServer({ cert, key }, (req, res) => {
    const body = Buffer.allocUnsafe(PRESENCE_BODY_LENGTH);
    let at = 0;
    req.on('data', (c: Buffer) => {
      if (at + c.length <= PRESENCE_BODY_LENGTH) c.copy(body, at);
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
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

async function app(): Promise<{ port: number; backend: AppBackend }> {
  const kek = Buffer.from(spec.kek, 'base64');
  const db = await openDatabase({
    url: spec.databaseUrl,
    dataDir: 'memory://',
    ...(spec.schema ? { schema: spec.schema } : {}),
  });
  if (!spec.databaseUrl)
    await prepareDatabase(
      db,
      kek,
      readPeople(spec.peopleFile as string),
      spec.quarantines ?? 0,
      Date.now(),
    );
  const backend = await startAppBackend(
    loopbackConfig({
      tls: { cert, key, ca: cert },
      kek,
      healthAuthority: { publicKey: '', issuer: 'health-authority', audience: 'bench' },
      police: { url: 'https://127.0.0.1:9', identity: 'police-backend' },
      // Production's watchdog cadence; nothing to deliver to.
      watchdogIntervalMs: LOOP_DEFAULTS.watchdogIntervalMs,
      deliveryIntervalMs: 600_000,
      presencePer10Min: 1_000_000_000,
      logLevel: 'warn',
    }),
    { db, log: createLogger({ name: 'app-backend', level: 'warn' }) },
  );
  return { port: backend.publicPort, backend };
}

async function tokenCount(backend: AppBackend | undefined): Promise<number> {
  if (!backend) return 0;
  const metric = await backend.metrics.tokens.get();
  return metric.values.reduce((sum, v) => sum + v.value, 0);
}

const started = spec.mode === 'app' ? await app() : { port: await bare(), backend: undefined };
const usage = async (): Promise<Usage> => {
  const u = process.cpuUsage();
  return {
    cpuSeconds: (u.user + u.system) / 1e6,
    rssMb: Math.round(process.memoryUsage.rss() / 2 ** 20),
    tokens: await tokenCount(started.backend),
  };
};

/**
 * The validation's own cost, without HTTP: every body in `file` queued as a request from a
 * registered key, `batch` at a time, each batch validated and the status cache refreshed, as the
 * service's loops do. CPU seconds of this process for all of it.
 */
async function validate(
  file: string,
  batch: number,
): Promise<{ cpuSeconds: number; requests: number }> {
  const backend = started.backend as AppBackend;
  const all = readFileSync(file);
  await backend.flush();
  const cpu = process.cpuUsage();
  let requests = 0;
  for (let at = 0; at < all.length; at += batch * PRESENCE_BODY_LENGTH) {
    for (
      let k = at;
      k < Math.min(all.length, at + batch * PRESENCE_BODY_LENGTH);
      k += PRESENCE_BODY_LENGTH
    ) {
      const parsed = parsePresenceBody(all.subarray(k, k + PRESENCE_BODY_LENGTH), Date.now());
      if (typeof parsed !== 'string' && backend.validator.enqueue(parsed, true)) requests++;
    }
    await backend.flush();
  }
  const used = process.cpuUsage(cpu);
  return { cpuSeconds: (used.user + used.system) / 1e6, requests };
}

process.on('message', (m: { cmd: string; id: number; file?: string; batch?: number }) => {
  const reply = (value: unknown) => process.send?.({ id: m.id, value });
  if (m.cmd === 'usage') void usage().then(reply);
  else if (m.cmd === 'validate') void validate(m.file as string, m.batch as number).then(reply);
  else if (m.cmd === 'flush')
    void (started.backend?.flush() ?? Promise.resolve()).then(() => usage()).then(reply);
  else if (m.cmd === 'close')
    // A normal exit, so `--cpu-prof` writes its profile.
    void (started.backend?.close() ?? Promise.resolve()).then(() => {
      reply(null);
      process.disconnect();
      process.exit(0);
    });
});
process.send?.({ ready: true, port: started.port });
