/**
 * Both backends in this process, wired to each other over real mutual TLS, with the timeouts
 * and intake bound the flood tests choose, on manual clocks (their loops are driven by hand).
 */
import { randomBytes } from 'node:crypto';
import type { Database } from '../../backend-kit/db.js';
import type { ServerLimits } from '../../backend-kit/server-limits.js';
import type { QueueBound } from '../../app-backend/src/validator.js';
import { DEFAULT_RULES, loopbackConfig } from '../../app-backend/src/config.js';
import { type AppBackend, startAppBackend } from '../../app-backend/src/service.js';
import { authorityKeys } from '../../app-backend/test/harness.js';
import { newSessionKeys } from '../../police-backend/src/config.js';
import { type PoliceBackend, startPoliceBackend } from '../../police-backend/src/service.js';
import { ManualClock } from '../support/clock.js';
import { capturedLogger } from '../support/log-capture.js';
import { testPki } from '../support/pki.js';

export const T0 = 1_795_400_000_000;

export interface Services {
  readonly app: AppBackend;
  readonly police: PoliceBackend;
  /** The app backend's clock (the police backend's is separate, as on two machines). */
  readonly clock: ManualClock;
  readonly appLogs: string[];
  readonly policeLogs: string[];
  close(): Promise<void>;
}

export interface ServiceOptions {
  readonly limits?: ServerLimits;
  readonly intakeMaxPending?: number;
  /** The app backend's validation queue bound (validator.ts). */
  readonly presenceQueue?: QueueBound;
  /** The police backend's database as its service sees it (a gate around the real one, say). */
  readonly policeDb?: Database;
}

/** Start the police backend, then the app backend pointing at it; both on loopback. */
export async function startServices(
  appDb: Database,
  policeDb: Database,
  options: ServiceOptions = {},
): Promise<Services> {
  const pki = await testPki();
  const clock = new ManualClock(T0);
  const policeClock = new ManualClock(T0);
  const policeLog = capturedLogger('police-backend');
  const police = await startPoliceBackend(
    {
      host: '127.0.0.1',
      officerPort: 0,
      internalPort: 0,
      databaseUrl: undefined,
      dataDir: 'memory://',
      tls: { cert: pki.policeBackend.cert, key: pki.policeBackend.key, ca: pki.ca.cert },
      app: { url: 'https://localhost:9', identity: 'app-backend' },
      sessionKeys: newSessionKeys(),
      commandIntervalMs: 60_000,
      logLevel: 'debug',
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.intakeMaxPending ? { intakeMaxPending: options.intakeMaxPending } : {}),
    },
    { clock: policeClock.now, log: policeLog.log, db: options.policeDb ?? policeDb, timers: false },
  );
  const appLog = capturedLogger('app-backend');
  const app = await startAppBackend(
    loopbackConfig({
      tls: { cert: pki.appBackend.cert, key: pki.appBackend.key, ca: pki.ca.cert },
      kek: randomBytes(32),
      healthAuthority: {
        publicKey: authorityKeys.publicKey,
        issuer: 'health-authority',
        audience: 'smartbeacon-app-backend',
      },
      police: { url: `https://localhost:${police.internalPort}`, identity: 'police-backend' },
      rules: { ...DEFAULT_RULES, graceSeconds: 600 },
      logLevel: 'debug',
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.presenceQueue ? { presenceQueue: options.presenceQueue } : {}),
    }),
    { clock: clock.now, log: appLog.log, db: appDb, timers: false },
  );
  return {
    app,
    police,
    clock,
    appLogs: appLog.lines,
    policeLogs: policeLog.lines,
    async close() {
      await app.close();
      await police.close();
    },
  };
}

/** A database whose transactions wait while the gate is shut: storage stalls, reads do not. */
export class GatedDatabase implements Database {
  readonly kind: Database['kind'];
  #open: Promise<void> = Promise.resolve();
  #release: () => void = () => undefined;

  constructor(private readonly db: Database) {
    this.kind = db.kind;
  }

  shut(): void {
    this.#open = new Promise((resolve) => (this.#release = resolve));
  }

  open(): void {
    this.#release();
  }

  query: Database['query'] = (sql, params) => this.db.query(sql, params);

  transaction: Database['transaction'] = async (fn) => {
    await this.#open;
    return this.db.transaction(fn);
  };

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** What each flood's tests get from the suite: one set of services shared by all of them. */
export interface FloodContext {
  services(): Services;
  appDb(): Database;
  policeDb(): Database;
  /** The police backend's view of its database: shut it to stall storage. */
  gatedPoliceDb(): GatedDatabase;
}

/** Poll `check` until it holds or `ms` pass (real processes and sockets, not time, are awaited). */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
