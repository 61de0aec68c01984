import { randomUUID } from 'node:crypto';
import type { Database } from '../../backend-kit/db.js';
import { ManualClock } from '../../test/support/clock.js';
import { type HttpResult, type TlsClient, httpsRequest } from '../../test/support/https-client.js';
import { capturedLogger } from '../../test/support/log-capture.js';
import { testPki } from '../../test/support/pki.js';
import { newSessionKeys } from '../src/config.js';
import type { Role } from '../src/officers.js';
import { createOfficer } from '../src/officers.js';
import { type PoliceBackend, startPoliceBackend } from '../src/service.js';

export const T0 = 1_795_400_000_000;
export const PASSWORD = 'correct horse battery staple';

export interface PoliceHarness {
  readonly backend: PoliceBackend;
  readonly clock: ManualClock;
  readonly logs: string[];
  readonly sessionKeys: ReturnType<typeof newSessionKeys>;
}

export async function startPolice(
  db: Database,
  options: { appUrl?: string; clock?: ManualClock; timers?: boolean } = {},
): Promise<PoliceHarness> {
  const pki = await testPki();
  const clock = options.clock ?? new ManualClock(T0);
  const { log, lines } = capturedLogger('police-backend');
  const sessionKeys = newSessionKeys();
  const backend = await startPoliceBackend(
    {
      host: '127.0.0.1',
      officerPort: 0,
      internalPort: 0,
      databaseUrl: undefined,
      dataDir: 'memory://',
      tls: { cert: pki.policeBackend.cert, key: pki.policeBackend.key, ca: pki.ca.cert },
      app: { url: options.appUrl ?? 'https://localhost:9', identity: 'app-backend' },
      sessionKeys,
      commandIntervalMs: 60_000,
      logLevel: 'debug',
    },
    { clock: clock.now, log, db, timers: options.timers ?? false },
  );
  return { backend, clock, logs: lines, sessionKeys };
}

export interface Session {
  readonly cookie: string;
  readonly csrf: string;
}

export async function addOfficer(
  h: PoliceHarness,
  username: string,
  role: Role = 'officer',
): Promise<void> {
  await createOfficer(h.backend.db, username, PASSWORD, role, h.clock.ms);
}

export async function signInRaw(
  h: PoliceHarness,
  username: string,
  password = PASSWORD,
): Promise<HttpResult> {
  const pki = await testPki();
  return httpsRequest(
    h.backend.officerPort,
    'POST',
    '/api/session',
    { ca: pki.ca.cert },
    JSON.stringify({ username, password }),
    { 'content-type': 'application/json' },
  );
}

export async function signIn(
  h: PoliceHarness,
  username: string,
  role: Role = 'officer',
): Promise<Session> {
  await addOfficer(h, username, role);
  const r = await signInRaw(h, username);
  if (r.status !== 200) throw new Error(`sign-in failed: ${r.status}`);
  const cookie = String(r.headers['set-cookie']).split(';')[0] as string;
  return { cookie, csrf: r.json<{ csrf: string }>().csrf };
}

/** An officer API call with the session's cookie and CSRF header. */
export async function api(
  h: PoliceHarness,
  s: Session | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<HttpResult> {
  const pki = await testPki();
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (s) {
    headers.cookie = s.cookie;
    headers['x-csrf-token'] = s.csrf;
  }
  return httpsRequest(
    h.backend.officerPort,
    method,
    path,
    { ca: pki.ca.cert },
    body === undefined ? undefined : JSON.stringify(body),
    headers,
  );
}

/** A confirmed NO_PRESENCE by default: window passed at T0 − 10 min, grace of 10 min. */
export function alertMessage(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    alertId: randomUUID(),
    kind: 'NO_PRESENCE',
    beaconId: 'SB-0001',
    occurredAt: T0,
    gapStartedAt: T0 - 960_000,
    relatedAlertId: null,
    detail: {
      lastPresenceAt: T0 - 960_000,
      provisionalAt: T0 - 600_000,
      confirmedAt: T0,
      graceSeconds: 600,
      afterAbsence: false,
    },
    ...over,
  };
}

/** An update to `related` (RESOLVED_BY_EVIDENCE, LATE_EVIDENCE, ALERT_UPDATED, FAULT_CLEARED). */
export function updateMessage(
  related: Record<string, unknown>,
  kind: string,
  detail: Record<string, unknown>,
  over: Record<string, unknown> = {},
): Record<string, unknown> {
  return alertMessage({
    kind,
    beaconId: related.beaconId,
    relatedAlertId: related.alertId,
    occurredAt: Number(related.occurredAt) + 60_000,
    gapStartedAt: null,
    detail,
    ...over,
  });
}

/** Post an alert to the internal listener, by default as the app backend. */
export async function postAlert(
  h: PoliceHarness,
  message: unknown,
  tls?: TlsClient,
): Promise<HttpResult> {
  const pki = await testPki();
  const client = tls ?? { ca: pki.ca.cert, cert: pki.appBackend.cert, key: pki.appBackend.key };
  const body = JSON.stringify(message);
  const id = (message as { alertId?: unknown } | null)?.alertId;
  return httpsRequest(h.backend.internalPort, 'POST', '/internal/v1/alerts', client, body, {
    'content-type': 'application/json',
    'idempotency-key': typeof id === 'string' ? id : 'x',
  });
}

/**
 * Post a batch (`{"alerts": [...]}`, or any body) to the internal listener as the app backend;
 * `chunked` sends it without a length, so the Express route takes it instead of the lean one.
 */
export async function postAlertBatch(
  h: PoliceHarness,
  body: unknown,
  options: { tls?: TlsClient; chunked?: boolean; raw?: string } = {},
): Promise<HttpResult> {
  const pki = await testPki();
  const tls = options.tls ?? {
    ca: pki.ca.cert,
    cert: pki.appBackend.cert,
    key: pki.appBackend.key,
  };
  const text = options.raw ?? JSON.stringify(body);
  return httpsRequest(
    h.backend.internalPort,
    'POST',
    '/internal/v1/alert-batches',
    tls,
    text,
    { 'content-type': 'application/json' },
    options.chunked,
  );
}
