import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type ServerLimits, readServerLimits } from '../../backend-kit/server-limits.js';
import { MAX_ALERTS_PER_BATCH } from './alert-batch.js';
import { INTAKE_MAX_PENDING } from './intake.js';
import type { SessionKeys } from './session.js';

export interface PoliceBackendConfig {
  readonly host: string;
  readonly officerPort: number;
  readonly internalPort: number;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
  readonly app: { readonly url: string; readonly identity: string };
  readonly sessionKeys: SessionKeys;
  readonly commandIntervalMs: number;
  /** Timeouts and connection cap of both listeners (backend-kit/server-limits.ts); SERVER_LIMITS when absent. */
  readonly limits?: ServerLimits;
  /** Alerts waiting to be stored before intake answers 503 OVERLOADED; INTAKE_MAX_PENDING when absent. */
  readonly intakeMaxPending?: number;
  readonly logLevel: string;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly problems: string[]) {
    super(`police backend configuration is incomplete:\n  - ${problems.join('\n  - ')}`);
  }
}

/** A fresh ES256 key pair for sessions (sessions then end when the process restarts). */
export function newSessionKeys(): SessionKeys {
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { privateKey, publicKey };
}

/** POLICE_INTAKE_MAX_PENDING: at least one full batch post, so the app backend can always get through. */
function intakeBound(raw: string | undefined, problems: string[]): number {
  if (raw === undefined || raw === '') return INTAKE_MAX_PENDING;
  const n = Number(raw);
  if (Number.isInteger(n) && n >= MAX_ALERTS_PER_BATCH && n <= 10_000_000) return n;
  problems.push(
    `POLICE_INTAKE_MAX_PENDING must be an integer in [${MAX_ALERTS_PER_BATCH}, 10000000]`,
  );
  return INTAKE_MAX_PENDING;
}

/** Environment variables (table in police-backend/README.md); refuses to start on any problem. */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
): PoliceBackendConfig {
  const problems: string[] = [];
  const file = (name: string, required = true): string => {
    const path = env[name];
    if (!path) {
      if (required) problems.push(`${name} is required (path to a PEM file)`);
      return '';
    }
    try {
      return readFileSync(path, 'utf8');
    } catch {
      problems.push(`${name}: cannot read ${path}`);
      return '';
    }
  };
  const port = (name: string, fallback: number) => {
    const n = env[name] === undefined ? fallback : Number(env[name]);
    if (!Number.isInteger(n) || n < 0 || n > 65535) problems.push(`${name} must be a port number`);
    return n;
  };
  const appUrl = env.APP_BACKEND_INTERNAL_URL ?? '';
  if (!/^https:\/\//.test(appUrl))
    problems.push('APP_BACKEND_INTERNAL_URL is required and must be https://');
  const sessionPrivate = file('POLICE_SESSION_PRIVATE_KEY', false);
  const sessionPublic = file('POLICE_SESSION_PUBLIC_KEY', false);
  const config: PoliceBackendConfig = {
    host: env.POLICE_HOST ?? '127.0.0.1',
    officerPort: port('POLICE_OFFICER_PORT', 9443),
    internalPort: port('POLICE_INTERNAL_PORT', 9444),
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: env.POLICE_DATA_DIR ?? '.data/police-backend',
    tls: { cert: file('POLICE_TLS_CERT'), key: file('POLICE_TLS_KEY'), ca: file('POLICE_TLS_CA') },
    app: { url: appUrl, identity: env.POLICE_APP_IDENTITY ?? 'app-backend' },
    sessionKeys:
      sessionPrivate && sessionPublic
        ? { privateKey: sessionPrivate, publicKey: sessionPublic }
        : newSessionKeys(),
    commandIntervalMs: Number(env.POLICE_COMMAND_INTERVAL_MS ?? 2000),
    limits: readServerLimits(env, 'POLICE', problems),
    intakeMaxPending: intakeBound(env.POLICE_INTAKE_MAX_PENDING, problems),
    logLevel: env.POLICE_LOG_LEVEL ?? 'info',
  };
  if (problems.length) throw new ConfigError(problems);
  return config;
}
