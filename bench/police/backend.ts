/**
 * What the police benchmarks share: a real police backend (PGlite, or PostgreSQL in a throw-away
 * schema when DATABASE_URL is set), an officer, registered beacons with addresses, a sign-in.
 */
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { type Database, openDatabase } from '../../backend-kit/db.js';
import { createLogger } from '../../backend-kit/logger.js';
import { type DeploymentPki, createDeploymentPki } from '../../deploy/pki/pki.js';
import { registerBeacon } from '../../police-backend/src/beacons.js';
import { newSessionKeys } from '../../police-backend/src/config.js';
import { createOfficer } from '../../police-backend/src/officers.js';
import { type PoliceBackend, startPoliceBackend } from '../../police-backend/src/service.js';
import { httpsRequest } from '../../test/support/https-client.js';
import { beaconId } from './beacon-id.js';

export const PASSWORD = 'bench password, long enough';
export const OFFICER = 'bench-officer';

export interface BenchPolice {
  readonly backend: PoliceBackend;
  readonly db: Database;
  readonly pki: DeploymentPki;
  readonly officerId: string;
  /** Drops the schema on PostgreSQL, so nothing is left behind. */
  close(): Promise<void>;
}

let pkiOnce: Promise<DeploymentPki> | undefined;
export const benchPki = (): Promise<DeploymentPki> =>
  (pkiOnce ??= createDeploymentPki({ environment: 'bench' }));

/** Start a police backend on its own database; `logLevel` info goes to /dev/null (the real cost, no terminal). */
export async function startBenchPolice(logLevel = 'info'): Promise<BenchPolice> {
  const pki = await benchPki();
  // A throw-away schema on PostgreSQL, so runs never meet each other's rows.
  const schema = `bench_${randomBytes(6).toString('hex')}`;
  const db = await openDatabase({
    url: process.env.DATABASE_URL,
    dataDir: 'memory://',
    ...(process.env.DATABASE_URL ? { schema } : {}),
  });
  const log = createLogger({
    name: 'police-backend',
    level: logLevel,
    destination: pino.destination('/dev/null'),
  });
  const backend = await startPoliceBackend(
    {
      host: '127.0.0.1',
      officerPort: 0,
      internalPort: 0,
      databaseUrl: undefined,
      dataDir: 'memory://',
      tls: { cert: pki.policeBackend.cert, key: pki.policeBackend.key, ca: pki.ca.cert },
      app: { url: 'https://127.0.0.1:9', identity: 'app-backend' },
      sessionKeys: newSessionKeys(),
      commandIntervalMs: 600_000,
      logLevel,
    },
    { db, log, timers: false },
  );
  const officerId = await createOfficer(db, OFFICER, PASSWORD, 'officer', Date.now());
  return {
    backend,
    db,
    pki,
    officerId,
    async close() {
      await backend.close();
      if (db.kind === 'postgres') await db.query(`DROP SCHEMA ${schema} CASCADE`);
      await db.close();
    },
  };
}

export { beaconId };

/** Register `n` beacons (SB-000000 …) with addresses and case references. */
export async function registerBeacons(p: BenchPolice, n: number): Promise<void> {
  const now = Date.now();
  for (let start = 0; start < n; start += 500) {
    await p.db.transaction(async (tx) => {
      for (let i = start; i < Math.min(n, start + 500); i++) {
        await registerBeacon(
          tx,
          {
            beaconId: beaconId(i),
            address: `${(i % 180) + 1} ${STREETS[i % STREETS.length] as string}, ${10_000 + (i % 8_999)} ${TOWNS[i % TOWNS.length] as string}`,
            caseRef: `C-2026-${String(i).padStart(6, '0')}`,
          },
          p.officerId,
          now,
        );
      }
    });
  }
}

const STREETS = ['Harbour Road', 'Mill Lane', 'Station Street', 'Church Walk', 'Elm Avenue'];
const TOWNS = ['Northfield', 'Easton', 'Southport', 'Westbury', 'Middleton', 'Kingsbridge'];

/** Sign in over HTTPS; returns the session cookie (`sb_session=…`). */
export async function signInCookie(p: BenchPolice): Promise<string> {
  const r = await httpsRequest(
    p.backend.officerPort,
    'POST',
    '/api/session',
    { ca: p.pki.ca.cert },
    JSON.stringify({ username: OFFICER, password: PASSWORD }),
    { 'content-type': 'application/json' },
  );
  if (r.status !== 200) throw new Error(`sign-in failed: ${r.status}`);
  return String(r.headers['set-cookie']).split(';')[0] as string;
}
