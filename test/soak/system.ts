/**
 * The whole system for a soak run: both backends as child processes from their real entry points,
 * each on a database of its own (PGlite on disk, so a SIGKILL leaves what a crash leaves; or a
 * throw-away database on the PostgreSQL server, reached by the app backend through a proxy the
 * harness can cut), the police link relayed by the harness, an officer, and the people —
 * beacons registered and enabled by the officer, quarantines registered by the health authority.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import {
  type DeploymentPki,
  PKI_FILES,
  createDeploymentPki,
  writePki,
} from '../../deploy/pki/pki.js';
import { authorityJwt, authorityKeys } from '../../app-backend/test/harness.js';
import { OfficerClient } from './officer.js';
import { Person, Relays } from './people.js';
import { PoliceLink } from './police-link.js';
import { PrivateCluster, clusterBinaries } from './cluster.js';
import { BackendProcess, freePort } from './processes.js';
import { TcpProxy } from './tcp-proxy.js';

export interface SoakOptions {
  readonly quarantines: number;
  /** PostgreSQL server for throw-away databases; PGlite on disk without it. */
  readonly databaseUrl: string | undefined;
  readonly windowSeconds: number;
  readonly graceSeconds: number;
  readonly uploadSeconds: number;
  /** Keep the run's data, logs and databases (else removed at the end). */
  readonly keepDir?: boolean;
  /**
   * PostgreSQL only: the app backend's database on a private cluster the harness makes and can
   * restart (cluster.ts); the police backend's stays on the server.
   */
  readonly privateCluster?: boolean;
  readonly say?: (line: string) => void;
}

const OFFICER = 'soak-officer';
const PASSWORD = 'soak officer password, long enough';
const DIST = fileURLToPath(new URL('../../', import.meta.url));

/** Run `fn` over `items`, `n` at a time. */
export async function eachLimited<T>(items: T[], n: number, fn: (t: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) await fn(items[i] as T);
    }),
  );
}

export class SoakSystem {
  readonly dir: string;
  readonly app: BackendProcess;
  /** A second app backend instance on the same database (PostgreSQL only). */
  readonly app2: BackendProcess | undefined;
  readonly police: BackendProcess;
  readonly link: PoliceLink;
  /** Between the app backend(s) and PostgreSQL; undefined on PGlite. */
  readonly dbProxy: TcpProxy | undefined;
  /** The app backend's private PostgreSQL cluster, when asked for. */
  readonly cluster: PrivateCluster | undefined;
  readonly officer: OfficerClient;
  readonly people: Person[];
  readonly relays: Relays;
  /** People uploading to the second instance while it runs. */
  secondInstanceFor: ((p: Person) => boolean) | undefined;

  private constructor(
    readonly options: SoakOptions,
    readonly pki: DeploymentPki,
    readonly ports: {
      appPublic: number;
      appInternal: number;
      app2Public: number;
      app2Internal: number;
      policeOfficer: number;
      policeInternal: number;
    },
    parts: {
      dir: string;
      app: BackendProcess;
      app2: BackendProcess | undefined;
      police: BackendProcess;
      link: PoliceLink;
      dbProxy: TcpProxy | undefined;
      cluster: PrivateCluster | undefined;
      databases: { app: string; police: string } | undefined;
    },
  ) {
    this.cluster = parts.cluster;
    this.dir = parts.dir;
    this.app = parts.app;
    this.app2 = parts.app2;
    this.police = parts.police;
    this.link = parts.link;
    this.dbProxy = parts.dbProxy;
    this.#databases = parts.databases;
    this.officer = new OfficerClient(() => ports.policeOfficer, pki.ca.cert, OFFICER, PASSWORD);
    this.people = Array.from({ length: options.quarantines }, (_, i) => new Person(i));
    this.relays = new Relays(
      this.people,
      pki.ca.cert,
      (p) =>
        this.secondInstanceFor?.(p) && this.app2?.running ? ports.app2Public : ports.appPublic,
      options.uploadSeconds * 1000,
    );
  }

  readonly #databases: { app: string; police: string } | undefined;

  get database(): 'PostgreSQL' | 'PGlite' {
    return this.options.databaseUrl ? 'PostgreSQL' : 'PGlite';
  }

  /** A direct connection to the app backend's database (PostgreSQL only), for the harness's checks. */
  appDatabase(): pg.Client | undefined {
    return this.#databases ? new pg.Client({ connectionString: this.#databases.app }) : undefined;
  }

  static async start(options: SoakOptions): Promise<SoakSystem> {
    const say = options.say ?? (() => undefined);
    const dir = mkdtempSync(join(tmpdir(), 'smartbeacon-soak-'));
    const pki = await createDeploymentPki({ environment: 'soak' });
    const pkiDir = join(dir, 'pki');
    await writePki(pkiDir, pki);
    const file = (name: string, text: string) => {
      const path = join(dir, name);
      writeFileSync(path, text, { mode: 0o600 });
      return path;
    };
    const haPub = file('authority.pub', authorityKeys.publicKey);
    const session = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const sessionKey = file(
      'session.key',
      String(session.privateKey.export({ type: 'pkcs8', format: 'pem' })),
    );
    const sessionPub = file(
      'session.pub',
      String(session.publicKey.export({ type: 'spki', format: 'pem' })),
    );
    const ports = {
      appPublic: await freePort(),
      appInternal: await freePort(),
      app2Public: await freePort(),
      app2Internal: await freePort(),
      policeOfficer: await freePort(),
      policeInternal: await freePort(),
    };
    const link = new PoliceLink(pki, () => ports.policeInternal);
    await link.listen();

    let databases: { app: string; police: string } | undefined;
    let dbProxy: TcpProxy | undefined;
    let cluster: PrivateCluster | undefined;
    let appDbEnv: Record<string, string> = { APP_DATA_DIR: join(dir, 'app-db') };
    let policeDbEnv: Record<string, string> = { POLICE_DATA_DIR: join(dir, 'police-db') };
    if (options.databaseUrl) {
      if (options.privateCluster) {
        const found = clusterBinaries();
        if ('reason' in found) throw new Error(`no private cluster: ${found.reason}`);
        cluster = await PrivateCluster.create(found.bin);
      }
      databases = await createDatabases(options.databaseUrl, cluster?.url);
      const url = new URL(databases.app);
      dbProxy = new TcpProxy(url.hostname, Number(url.port || 5432));
      url.host = `127.0.0.1:${await dbProxy.listen()}`;
      appDbEnv = { DATABASE_URL: url.toString() };
      policeDbEnv = { DATABASE_URL: databases.police };
    }

    const cert = (part: keyof DeploymentPki, kind: 'cert' | 'key') =>
      join(pkiDir, PKI_FILES[part][kind]);
    const appEnv = (publicPort: number, internalPort: number): Record<string, string> => ({
      APP_TLS_CERT: cert('appBackend', 'cert'),
      APP_TLS_KEY: cert('appBackend', 'key'),
      APP_TLS_CA: cert('ca', 'cert'),
      APP_KEK: kek,
      APP_HA_PUBLIC_KEY: haPub,
      POLICE_BACKEND_URL: `https://localhost:${link.port}`,
      APP_PUBLIC_PORT: String(publicPort),
      APP_INTERNAL_PORT: String(internalPort),
      APP_WINDOW_SECONDS: String(options.windowSeconds),
      APP_GRACE_SECONDS: String(options.graceSeconds),
      // A relay uploading every U seconds is silent only after missing two uploads and more.
      APP_RELAY_SILENT_SECONDS: String(Math.max(5, Math.ceil(options.uploadSeconds * 2.5))),
      APP_PRESENCE_PER_10MIN: '1000000',
      APP_WATCHDOG_INTERVAL_MS: '250',
      APP_DELIVERY_INTERVAL_MS: '500',
      APP_LOG_LEVEL: 'info',
      ...appDbEnv,
    });
    const kek = randomBytes(32).toString('base64');
    const app = new BackendProcess(
      'app backend',
      'app-backend/src/main.js',
      appEnv(ports.appPublic, ports.appInternal),
      join(dir, 'app-backend.log'),
      ports.appPublic,
      pki.ca.cert,
    );
    const app2 = options.databaseUrl
      ? new BackendProcess(
          'app backend (second instance)',
          'app-backend/src/main.js',
          appEnv(ports.app2Public, ports.app2Internal),
          join(dir, 'app-backend-2.log'),
          ports.app2Public,
          pki.ca.cert,
        )
      : undefined;
    const policeEnv: Record<string, string> = {
      POLICE_TLS_CERT: cert('policeBackend', 'cert'),
      POLICE_TLS_KEY: cert('policeBackend', 'key'),
      POLICE_TLS_CA: cert('ca', 'cert'),
      APP_BACKEND_INTERNAL_URL: `https://localhost:${ports.appInternal}`,
      POLICE_OFFICER_PORT: String(ports.policeOfficer),
      POLICE_INTERNAL_PORT: String(ports.policeInternal),
      POLICE_SESSION_PRIVATE_KEY: sessionKey,
      POLICE_SESSION_PUBLIC_KEY: sessionPub,
      POLICE_COMMAND_INTERVAL_MS: '100',
      POLICE_LOG_LEVEL: 'info',
      ...policeDbEnv,
    };
    const police = new BackendProcess(
      'police backend',
      'police-backend/src/main.js',
      policeEnv,
      join(dir, 'police-backend.log'),
      ports.policeOfficer,
      pki.ca.cert,
    );
    const system = new SoakSystem(options, pki, ports, {
      dir,
      app,
      app2,
      police,
      link,
      dbProxy,
      cluster,
      databases,
    });
    say(
      `soak: ${system.database}${cluster ? ' (app database on a private cluster)' : ''}, ` +
        `${options.quarantines} quarantines, data in ${dir}`,
    );
    // Side by side: neither needs the other to start (each retries the other until it is up).
    await Promise.all([addOfficer(policeEnv).then(() => police.start()), app.start()]);
    await system.officer.signIn();
    await system.#enrol(say);
    system.relays.start();
    return system;
  }

  /** The officer registers and enables every beacon; the health authority registers each quarantine. */
  async #enrol(say: (line: string) => void): Promise<void> {
    const t = Date.now();
    await eachLimited(this.people, 8, async (p) => {
      await this.officer.registerBeacon(
        p.beacon.beaconId,
        `${(p.index % 180) + 1} Soak Street, Northfield`,
        `C-SOAK-${p.index}`,
      );
      await this.officer.enable(p.beacon.beaconId);
    });
    const agent = new Agent({ keepAlive: true, ca: this.pki.ca.cert, servername: 'localhost' });
    await eachLimited(this.people, 8, async (p) => {
      const body = p.beacon.registration();
      const status = await post(agent, this.ports.appPublic, '/v1/quarantines', body, {
        authorization: `Bearer ${authorityJwt('POST /v1/quarantines', body, Date.now())}`,
        'content-type': 'application/json',
      });
      if (status !== 201) throw new Error(`registration failed: HTTP ${status}`);
    });
    agent.destroy();
    // The police backend passes each enable to the app backend over mutual TLS.
    const deadline = Date.now() + 120_000 + this.people.length * 100;
    for (;;) {
      const statuses = await this.officer.beaconStatuses();
      const pending = this.people.filter((p) => statuses.get(p.beacon.beaconId) !== 'monitoring');
      if (!pending.length) break;
      if (Date.now() > deadline) throw new Error(`${pending.length} beacons never monitored`);
      await new Promise((r) => setTimeout(r, 250));
    }
    say(
      `soak: ${this.people.length} quarantines enrolled in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );
  }

  async close(): Promise<void> {
    await this.relays.stop();
    this.officer.close();
    await this.app2?.stop();
    await this.app.stop();
    await this.police.stop();
    await this.link.close();
    await this.dbProxy?.close();
    if (this.#databases && this.options.databaseUrl && !this.options.keepDir)
      await dropDatabases(this.options.databaseUrl, this.#databases, this.cluster?.url);
    await this.cluster?.destroy();
    if (!this.options.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

function post(
  agent: Agent,
  port: number,
  path: string,
  body: string,
  headers: Record<string, string>,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path, agent, headers },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The police backend's own command creates the officer, before the backend opens its database. */
function addOfficer(env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [`${DIST}police-backend/src/add-officer.js`, OFFICER, 'officer'],
      {
        env: { PATH: process.env.PATH ?? '', ...env, POLICE_NEW_PASSWORD: PASSWORD },
        stdio: 'ignore',
      },
    );
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`add-officer exited ${code}`)),
    );
  });
}

const withDb = (url: string, db: string) => {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
};

async function onServer(url: string, sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** Two throw-away databases (one per backend: no table shared); the app's on `appServer` if given. */
async function createDatabases(
  url: string,
  appServer = url,
): Promise<{ app: string; police: string }> {
  const name = `soak_${randomBytes(5).toString('hex')}`;
  await onServer(appServer, `CREATE DATABASE ${name}_app`);
  await onServer(url, `CREATE DATABASE ${name}_police`);
  return { app: withDb(appServer, `${name}_app`), police: withDb(url, `${name}_police`) };
}

async function dropDatabases(
  url: string,
  dbs: { app: string; police: string },
  appServer = url,
): Promise<void> {
  const drop = (db: string) =>
    `DROP DATABASE IF EXISTS ${new URL(db).pathname.slice(1)} WITH (FORCE)`;
  await onServer(appServer, drop(dbs.app));
  await onServer(url, drop(dbs.police));
}
