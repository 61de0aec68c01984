import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { Server } from 'node:https';
import { fileURLToPath } from 'node:url';
import { type Clock, systemClock } from '../../backend-kit/clock.js';
import { type Database, openDatabase } from '../../backend-kit/db.js';
import { type Logger, createLogger } from '../../backend-kit/logger.js';
import { migrate, readMigrations } from '../../backend-kit/migrations.js';
import { SERVER_LIMITS } from '../../backend-kit/server-limits.js';
import type { AppBackendConfig } from './config.js';
import { AlertDelivery } from './delivery.js';
import { type HttpDeps, internalServer, publicServer } from './http.js';
import { BEAT_MS, PresenceJournal } from './journal.js';
import { type Metrics, createMetrics } from './metrics.js';
import { KeyRateLimiter } from './rate-limit.js';
import { StatusCache } from './status-cache.js';
import { PresenceValidator, QUEUE_BOUND } from './validator.js';
import { type WatchdogResult, watchdogTick } from './watchdog.js';

export const MIGRATIONS_DIR = fileURLToPath(
  new URL('../../../app-backend/migrations', import.meta.url),
);

export interface AppBackendOptions {
  readonly clock?: Clock;
  readonly log?: Logger;
  /** A database already open (tests share one between two instances); otherwise opened from config. */
  readonly db?: Database;
  /** Run the flush, watchdog and delivery loops on timers (off in tests, which call them directly). */
  readonly timers?: boolean;
}

export interface AppBackend {
  readonly publicPort: number;
  readonly internalPort: number;
  readonly db: Database;
  readonly metrics: Metrics;
  readonly validator: PresenceValidator;
  readonly journal: PresenceJournal;
  /** Validate everything queued so far. */
  flush(): Promise<void>;
  /** One watchdog tick; `onQueued` after each of its batches that queued alerts for the police. */
  watchdog(onQueued?: () => void): Promise<WatchdogResult>;
  deliver(): Promise<number>;
  /** Pick up status changes made by other replicas. */
  refreshStatuses(): Promise<void>;
  /** Queue the journal rows of processes gone silent (crashed); how many were taken over. */
  recover(): Promise<number>;
  close(): Promise<void>;
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startAppBackend(
  config: AppBackendConfig,
  options: AppBackendOptions = {},
): Promise<AppBackend> {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? createLogger({ name: 'app-backend', level: config.logLevel });
  const db =
    options.db ?? (await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir }));
  const applied = await migrate(db, readMigrations(MIGRATIONS_DIR));
  if (applied.length) log.info({ applied }, 'migrations applied');
  const metrics = createMetrics();
  const statuses = new StatusCache(db, clock);
  await statuses.refresh();
  const journal = new PresenceJournal(db, clock);
  const validator = new PresenceValidator({
    db,
    kek: config.kek,
    rules: config.rules,
    clock,
    metrics,
    log,
    bound: config.presenceQueue ?? QUEUE_BOUND,
    journal,
  });
  /** Take over what gone processes accepted (`everyone`: PGlite, which only this process can open). */
  const recover = async (everyone = false): Promise<number> => {
    const rows = await journal.adopt(clock(), everyone);
    for (const row of rows) validator.push(row, false);
    if (rows.length) log.warn({ requests: rows.length }, 'presence taken over from the journal');
    return rows.length;
  };
  const deps: HttpDeps = {
    db,
    kek: config.kek,
    clock,
    log,
    metrics,
    validator,
    journal,
    statuses,
    rateLimiter: new KeyRateLimiter(
      config.presencePer10Min,
      config.presencePer10Min / 600,
      500_000,
    ),
    authority: config.healthAuthority,
    policeIdentity: config.police.identity,
    rules: config.rules,
    tls: config.tls,
    limits: config.limits ?? SERVER_LIMITS,
  };
  const pub = publicServer(deps);
  const internal = internalServer(deps);
  const publicPort = await listen(pub, config.host, config.publicPort);
  const internalPort = await listen(internal, config.host, config.internalPort);
  // Our port now: whoever served here before is gone, and what it accepted is ours to validate.
  journal.servesAt(`${hostname()}:${publicPort}`);
  await recover(db.kind === 'pglite');
  const target = { url: config.police.url, identity: config.police.identity, tls: config.tls };
  const delivery = new AlertDelivery(db, target, clock, metrics, log);

  const loops: NodeJS.Timeout[] = [];
  let delivering: Promise<unknown> = Promise.resolve();
  /** Run `fn` every `ms`, never twice at once; wake() runs it now, or again right after the current run. */
  const every = (ms: number, name: string, fn: () => Promise<unknown>) => {
    let busy = false;
    let again = false;
    const run = (): Promise<unknown> => {
      busy = true;
      return fn()
        .catch((err: unknown) =>
          log.error(
            { loop: name, errorName: (err as Error)?.name, code: (err as { code?: string })?.code },
            'background loop failed',
          ),
        )
        .finally(() => {
          busy = false;
          if (again && loops.length) {
            again = false;
            void run();
          }
        });
    };
    const t = setInterval(() => {
      if (!busy) void run();
    }, ms);
    t.unref();
    loops.push(t);
    return {
      wake: () => {
        if (busy) again = true;
        else void run();
      },
    };
  };
  const backend: AppBackend = {
    publicPort,
    internalPort,
    db,
    metrics,
    validator,
    journal,
    // After each decision, the answers reflect it at once on this replica (others within a second).
    flush: () => validator.flush().then(() => statuses.refresh()),
    watchdog: async (onQueued) => {
      const raised = await watchdogTick(db, config.rules, clock(), metrics, log, onQueued);
      await statuses.refresh();
      return raised;
    },
    refreshStatuses: () => statuses.refresh(),
    recover: () => recover(),
    deliver: () => {
      const p = delivery.drain();
      delivering = p.catch(() => undefined);
      return p;
    },
    async close() {
      loops.forEach(clearInterval);
      loops.length = 0;
      // A delivery in flight fails fast once its connections are gone; its results are still written.
      delivery.close();
      await Promise.all([close(pub), close(internal), delivering]);
      // Answered requests queued, validated, and nothing left: no owner stays behind to wait on.
      await journal
        .settle()
        .then(() => validator.flush())
        .then(() => journal.leave())
        .catch(() => undefined);
      if (!options.db) await db.close();
    },
  };
  if (options.timers !== false) {
    // Validation alone on the fast loop; the status cache has its own once-a-second refresh below.
    every(100, 'validate', () => validator.flush());
    const deliveries = every(config.deliveryIntervalMs, 'delivery', backend.deliver);
    // Alerts the watchdog just confirmed go out now (each batch's), not at the next delivery tick.
    every(config.watchdogIntervalMs, 'watchdog', () => backend.watchdog(deliveries.wake));
    every(1000, 'statuses', backend.refreshStatuses);
    // Heartbeat when idle, and take over what a crashed process accepted.
    every(BEAT_MS, 'journal', () => journal.beat().then(() => recover()));
  }
  log.info({ publicPort, internalPort, database: db.kind }, 'app backend started');
  return backend;
}
