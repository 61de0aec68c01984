/**
 * The real app backend as a process of its own for the indistinguishability campaign, so the
 * client's work never shares an event loop with the server it times. Its loops run on their
 * timers (validation every 100 ms) on the real clock, as in production.
 *
 * `node dist/test/forgery/app-process.js` with an IPC channel (child_process.fork): send one
 * `AppStart`, read back `AppListening`; on disconnect it closes the backend and drops its schema.
 */
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { type Database, openDatabase } from '../../backend-kit/db.js';
import { createLogger } from '../../backend-kit/logger.js';
import { DEFAULT_RULES, loopbackConfig } from '../../app-backend/src/config.js';
import { type AppBackend, startAppBackend } from '../../app-backend/src/service.js';

export interface AppStart {
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
  /** The health authority's ES256 public key (PEM) the campaign signs registrations with. */
  readonly authorityPublicKey: string;
  /** PostgreSQL when set (a schema of its own, dropped at the end); PGlite in memory otherwise. */
  readonly databaseUrl?: string;
}

export interface AppListening {
  readonly publicPort: number;
  readonly internalPort: number;
  readonly database: string;
}

async function start(m: AppStart): Promise<{ backend: AppBackend; db: Database; drop: string }> {
  const schema = `forgery_${randomBytes(6).toString('hex')}`;
  const db = m.databaseUrl
    ? await openDatabase({ url: m.databaseUrl, schema, poolSize: 4 })
    : await openDatabase({ dataDir: 'memory://' });
  const backend = await startAppBackend(
    loopbackConfig({
      tls: m.tls,
      kek: randomBytes(32),
      healthAuthority: {
        publicKey: m.authorityPublicKey,
        issuer: 'health-authority',
        audience: 'smartbeacon-app-backend',
      },
      // Nothing falls due during a campaign; an unused port stands in for the police backend.
      police: { url: 'https://127.0.0.1:9', identity: 'police-backend' },
      rules: DEFAULT_RULES,
      // Thousands of requests per key in a minute: the limiter runs, but never refuses.
      presencePer10Min: 1_000_000_000,
      logLevel: 'warn',
    }),
    {
      db,
      timers: true,
      log: createLogger({
        name: 'app-backend',
        level: 'warn',
        destination: pino.destination(2),
      }),
    },
  );
  return { backend, db, drop: m.databaseUrl ? schema : '' };
}

let running: Promise<{ backend: AppBackend; db: Database; drop: string }> | undefined;

process.on('message', (m: AppStart) => {
  running ??= start(m);
  running.then(
    ({ backend, db }) =>
      process.send?.({
        publicPort: backend.publicPort,
        internalPort: backend.internalPort,
        database: db.kind,
      } satisfies AppListening),
    (err: unknown) => {
      process.stderr.write(`app backend failed to start: ${String(err)}\n`);
      process.exit(1);
    },
  );
});

process.on('disconnect', () => {
  void (async () => {
    if (running) {
      const { backend, db, drop } = await running;
      await backend.close();
      if (drop) await db.query(`DROP SCHEMA ${drop} CASCADE`);
      await db.close();
    }
    process.exit(0);
  })();
});
