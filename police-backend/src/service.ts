import type { AddressInfo } from 'node:net';
import type { Server } from 'node:https';
import { fileURLToPath } from 'node:url';
import { type Clock, systemClock } from '../../backend-kit/clock.js';
import { type Database, openDatabase } from '../../backend-kit/db.js';
import { type Logger, createLogger } from '../../backend-kit/logger.js';
import { migrate, readMigrations } from '../../backend-kit/migrations.js';
import { SERVER_LIMITS } from '../../backend-kit/server-limits.js';
import { queueCounts } from './alerts.js';
import { appendAudit } from './audit.js';
import { sendCommands } from './commands.js';
import type { PoliceBackendConfig } from './config.js';
import { type HttpDeps, internalServer, officerServer, sessionOf, validSessions } from './http.js';
import { INTAKE_MAX_PENDING } from './intake.js';
import { LiveUpdates } from './live.js';

export const MIGRATIONS_DIR = fileURLToPath(
  new URL('../../../police-backend/migrations', import.meta.url),
);
export const DASHBOARD_DIR = fileURLToPath(
  new URL('../../../police-backend/dashboard/dist', import.meta.url),
);

const COUNTS_INTERVAL_MS = 1000;

export interface PoliceBackendOptions {
  readonly clock?: Clock;
  readonly log?: Logger;
  readonly db?: Database;
  readonly timers?: boolean;
}

export interface PoliceBackend {
  readonly officerPort: number;
  readonly internalPort: number;
  readonly db: Database;
  readonly live: LiveUpdates;
  sendCommands(): Promise<number>;
  close(): Promise<void>;
}

const listen = (server: Server, host: string, port: number) =>
  new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });

const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });

export async function startPoliceBackend(
  config: PoliceBackendConfig,
  options: PoliceBackendOptions = {},
): Promise<PoliceBackend> {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? createLogger({ name: 'police-backend', level: config.logLevel });
  const db =
    options.db ?? (await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir }));
  const applied = await migrate(db, readMigrations(MIGRATIONS_DIR), 815_010);
  if (applied.length) log.info({ applied }, 'migrations applied');

  // The HTTP handlers broadcast through this; the live server can only exist once the server does.
  const live: { current?: LiveUpdates } = {};
  let kick: () => void = () => undefined;
  // Dashboards show a long queue a page at a time, so they get its counts from here: at most
  // once a second while alerts change, one query for all of them.
  let countsTimer: NodeJS.Timeout | undefined;
  const pushCounts = () => {
    countsTimer = undefined;
    if (!live.current?.clients) return;
    const countsAt = clock();
    queueCounts(db)
      .then((counts) => live.current?.broadcast({ type: 'counts', counts, countsAt }))
      .catch((err: unknown) =>
        log.warn({ errorName: (err as Error)?.name }, 'queue counts failed'),
      );
  };
  const countsChanged = () => {
    if (countsTimer || !live.current?.clients) return;
    countsTimer = setTimeout(pushCounts, COUNTS_INTERVAL_MS);
    countsTimer.unref();
  };
  const deps: HttpDeps = {
    db,
    clock,
    log,
    sessionKeys: config.sessionKeys,
    appIdentity: config.app.identity,
    dashboardDir: DASHBOARD_DIR,
    tls: config.tls,
    limits: config.limits ?? SERVER_LIMITS,
    intakeMaxPending: config.intakeMaxPending ?? INTAKE_MAX_PENDING,
    onAlerts: (alerts) => {
      alerts.forEach((alert) => live.current?.broadcast({ type: 'alert', alert }));
      countsChanged();
    },
    onBeacon: (beacon) => live.current?.broadcast({ type: 'beacon', beacon }),
    onAbsence: (absence) => live.current?.broadcast({ type: 'absence', absence }),
    kickCommands: () => kick(),
    onSignedOut: (sid) => live.current?.endSession(sid),
  };
  const officer = officerServer(deps);
  const internal = internalServer(deps);
  // The live feed pushes addresses: opening it is an access to addresses, so it is audited.
  const updates = new LiveUpdates(
    officer,
    (req) => sessionOf(deps, req),
    validSessions(db, clock),
    (session) =>
      db.transaction((tx) =>
        appendAudit(
          tx,
          { officer: session.username, action: 'address.live_feed_opened', subject: 'alerts:live' },
          clock(),
        ),
      ),
  );
  live.current = updates;
  const officerPort = await listen(officer, config.host, config.officerPort);
  const internalPort = await listen(internal, config.host, config.internalPort);
  const peer = { url: config.app.url, identity: config.app.identity, tls: config.tls };
  const runCommands = () =>
    sendCommands(db, peer, clock, log, { onBeacon: deps.onBeacon, onAbsence: deps.onAbsence });

  let timer: NodeJS.Timeout | undefined;
  let busy = false;
  const loop = () => {
    if (busy) return;
    busy = true;
    runCommands()
      .catch((err: unknown) =>
        log.error({ errorName: (err as Error)?.name }, 'command loop failed'),
      )
      .finally(() => (busy = false));
  };
  if (options.timers !== false) {
    timer = setInterval(loop, config.commandIntervalMs);
    timer.unref();
    kick = () => setImmediate(loop);
  }
  log.info({ officerPort, internalPort, database: db.kind }, 'police backend started');
  return {
    officerPort,
    internalPort,
    db,
    live: updates,
    sendCommands: runCommands,
    async close() {
      if (timer) clearInterval(timer);
      clearTimeout(countsTimer);
      updates.close();
      await Promise.all([close(officer), close(internal)]);
      if (!options.db) await db.close();
    },
  };
}
