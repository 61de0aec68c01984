import type { AlertMessage } from '../src/store.js';
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import jwt from 'jsonwebtoken';
import type { Database } from '../../backend-kit/db.js';
import { bytesToHex } from '../../protocol/bytes.js';
import { nodeSuite } from '../../protocol/token/keys-node.js';
import { makeToken } from '../../protocol/token/make.js';
import { ManualClock } from '../../test/support/clock.js';
import { httpsRequest } from '../../test/support/https-client.js';
import { capturedLogger } from '../../test/support/log-capture.js';
import { testPki } from '../../test/support/pki.js';
import { type AppBackendConfig, DEFAULT_RULES, type Rules, loopbackConfig } from '../src/config.js';
import { encodePresenceBody } from '../../protocol/presence.js';
import { migrate, readMigrations } from '../../backend-kit/migrations.js';
import { type AppBackend, MIGRATIONS_DIR, startAppBackend } from '../src/service.js';

export const T0 = 1_795_400_000_000;

/** A fresh database with the app backend's schema, for tests that drive its modules directly. */
export async function openAppDatabase(open: () => Promise<Database>): Promise<Database> {
  const db = await open();
  await migrate(db, readMigrations(MIGRATIONS_DIR));
  return db;
}

/** The health authority's ES256 key pair, made once per run. */
export const authorityKeys = generateKeyPairSync('ec', {
  namedCurve: 'P-256',
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});

export interface JwtOverrides {
  readonly jti?: string | null;
  readonly issuer?: string;
  readonly audience?: string;
  readonly lifetimeSeconds?: number;
  readonly issuedAt?: number;
  readonly bodyHash?: string;
  readonly privateKey?: string;
}

/** A health-authority JWT for exactly this request (`POST /v1/…`) and body, as the CLI makes it. */
export function authorityJwt(
  request: string,
  body: string,
  now: number,
  o: JwtOverrides = {},
): string {
  const iat = o.issuedAt ?? Math.floor(now / 1000);
  const claims: Record<string, unknown> = {
    body_sha256: o.bodyHash ?? createHash('sha256').update(body).digest('hex'),
    req: request,
    iat,
    exp: iat + (o.lifetimeSeconds ?? 120),
  };
  if (o.jti !== null) claims.jti = o.jti ?? randomUUID();
  return jwt.sign(claims, o.privateKey ?? authorityKeys.privateKey, {
    algorithm: 'ES256',
    issuer: o.issuer ?? 'health-authority',
    audience: o.audience ?? 'smartbeacon-app-backend',
  });
}

/**
 * An HTTPS server with the police backend's certificate that requires the app backend's client
 * certificate, on `port` (0: any), handing each request's whole body to `handle`.
 */
export async function listenAsPolice(
  port: number,
  handle: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void,
): Promise<Server> {
  const pki = await testPki();
  const server = createServer(
    {
      cert: pki.policeBackend.cert,
      key: pki.policeBackend.key,
      ca: pki.ca.cert,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => handle(req, Buffer.concat(chunks), res));
    },
  );
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return server;
}

/**
 * A police backend stand-in on real mutual TLS: records alerts posted alone (with their
 * idempotency key) or in a batch (with their alert ID); can go down and up.
 */
export class PoliceStub {
  readonly received: { id: string; body: AlertMessage }[] = [];
  /** When set, the stub reads the alerts, then drops the connection without answering. */
  dropBeforeAnswer = false;
  #server: Server | undefined;
  port = 0;

  async up(): Promise<void> {
    this.#server = await listenAsPolice(this.port, (req, raw, res) => {
      const body = JSON.parse(raw.toString('utf8')) as AlertMessage | { alerts: AlertMessage[] };
      const batch = 'alerts' in body ? body.alerts : undefined;
      if (batch) for (const m of batch) this.received.push({ id: m.alertId, body: m });
      else
        this.received.push({
          id: String(req.headers['idempotency-key']),
          body: body as AlertMessage,
        });
      if (this.dropBeforeAnswer) return void req.socket.destroy();
      const answer = batch ? { results: batch.map(() => ({ ok: true })) } : { ok: true };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
    this.port = (this.#server.address() as AddressInfo).port;
  }

  async down(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s)
      await new Promise<void>((resolve) => (s.close(() => resolve()), s.closeAllConnections()));
  }

  /** Alerts as the police would show them: one per alert ID. */
  shown(): AlertMessage[] {
    const seen = new Map<string, AlertMessage>();
    for (const r of this.received) if (!seen.has(r.body.alertId)) seen.set(r.body.alertId, r.body);
    return [...seen.values()];
  }
}

export interface Harness {
  readonly backend: AppBackend;
  readonly clock: ManualClock;
  readonly logs: string[];
  readonly config: AppBackendConfig;
}

export async function startBackend(
  db: Database,
  police: PoliceStub,
  options: { rules?: Partial<Rules>; clock?: ManualClock; kek?: Buffer } = {},
): Promise<Harness> {
  const pki = await testPki();
  const clock = options.clock ?? new ManualClock(T0);
  const { log, lines } = capturedLogger('app-backend');
  const config = loopbackConfig({
    tls: { cert: pki.appBackend.cert, key: pki.appBackend.key, ca: pki.ca.cert },
    kek: options.kek ?? randomBytes(32),
    healthAuthority: {
      publicKey: authorityKeys.publicKey,
      issuer: 'health-authority',
      audience: 'smartbeacon-app-backend',
    },
    police: { url: `https://localhost:${police.port}`, identity: 'police-backend' },
    // A 10-minute grace keeps the tests' timelines short; the default is longer (config.ts).
    rules: { ...DEFAULT_RULES, graceSeconds: 600, ...options.rules },
    logLevel: 'debug',
  });
  const backend = await startAppBackend(config, { clock: clock.now, log, db, timers: false });
  return { backend, clock, logs: lines, config };
}

/** A beacon and its person's relay key, making tokens on the test clock. */
export class TestBeacon {
  readonly beaconId = `SB-${randomBytes(4).toString('hex')}`;
  readonly skBeacon = new Uint8Array(randomBytes(32));
  readonly skTPast = new Uint8Array(randomBytes(32));
  readonly keys = nodeSuite.importKeys(this.skBeacon);
  counter = 0;
  /** Beacon clock − true time, seconds. */
  offsetSeconds = 0;

  token(
    atMs: number,
    fields: {
      battery?: number | null;
      rebooted?: boolean;
      counter?: number;
      clockNotSet?: boolean;
    } = {},
  ): Uint8Array {
    return makeToken(this.keys, {
      // A beacon that lost its time counts from 2000-01-01, as Espruino does after a power loss.
      unixSeconds: fields.clockNotSet
        ? 946_684_800 + (this.counter % 3600) * 60
        : Math.floor(atMs / 1000 + this.offsetSeconds),
      counter: fields.counter ?? this.counter++,
      batteryPercent: fields.battery === undefined ? 80 : fields.battery,
      clockNotSet: fields.clockNotSet ?? false,
      rebooted: fields.rebooted ?? false,
    });
  }

  registration(windowSeconds?: number): string {
    return JSON.stringify({
      skTPast: bytesToHex(this.skTPast),
      tPast: 20_000,
      beaconId: this.beaconId,
      skBeacon: bytesToHex(this.skBeacon),
      ...(windowSeconds ? { windowSeconds } : {}),
    });
  }
}

/** What a client of the service needs: its ports and the clock. */
export type Client = Pick<Harness, 'backend' | 'clock'>;

export async function register(h: Client, b: TestBeacon, jwtOverrides: JwtOverrides = {}) {
  const pki = await testPki();
  const body = b.registration();
  return httpsRequest(h.backend.publicPort, 'POST', '/v1/quarantines', { ca: pki.ca.cert }, body, {
    authorization: `Bearer ${authorityJwt('POST /v1/quarantines', body, h.clock.ms, jwtOverrides)}`,
    'content-type': 'application/json',
  });
}

/** A request from the police backend to the internal listener, with its client certificate. */
export async function police(h: Client, path: string, method = 'POST', body?: unknown) {
  const pki = await testPki();
  return httpsRequest(
    h.backend.internalPort,
    method,
    path,
    { ca: pki.ca.cert, cert: pki.policeBackend.cert, key: pki.policeBackend.key },
    body === undefined ? undefined : JSON.stringify(body),
    body === undefined ? {} : { 'content-type': 'application/json' },
  );
}

/** A request from the health authority: a JWT bound to this exact body. */
export async function authority(h: Client, method: string, path: string, body?: unknown) {
  const pki = await testPki();
  const text = body === undefined ? '' : JSON.stringify(body);
  return httpsRequest(h.backend.publicPort, method, path, { ca: pki.ca.cert }, text, {
    authorization: `Bearer ${authorityJwt(`${method} ${path}`, text, h.clock.ms)}`,
    'content-type': 'application/json',
  });
}

export async function presence(h: Client, skTPast: Uint8Array, tokens: Uint8Array[]) {
  const pki = await testPki();
  return httpsRequest(
    h.backend.publicPort,
    'POST',
    '/v1/presence',
    { ca: pki.ca.cert },
    encodePresenceBody(skTPast, tokens),
  );
}

/** Register, enable and send a first token: a monitored quarantine with presence now. */
export async function monitored(h: Harness, b: TestBeacon): Promise<void> {
  const r = await register(h, b);
  if (r.status !== 201) throw new Error(`register failed: ${r.status} ${r.body.toString()}`);
  const e = await police(h, `/internal/v1/beacons/${b.beaconId}/enable`);
  if (e.status !== 200) throw new Error(`enable failed: ${e.status}`);
  await presence(h, b.skTPast, [b.token(h.clock.ms)]);
  await h.backend.flush();
}

export async function metric(h: Client, name: string, label: string): Promise<number> {
  const text = (await police(h, '/metrics', 'GET')).body.toString();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** The person is away with their phone: the relay is up and sends its request, hearing nothing. */
export async function relayAlive(h: Client, b: TestBeacon): Promise<void> {
  await presence(h, b.skTPast, []);
  await h.backend.flush();
}
