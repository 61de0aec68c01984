import { readFileSync } from 'node:fs';
import { type ServerLimits, readServerLimits } from '../../backend-kit/server-limits.js';
import type { QueueBound } from './validator.js';

/** Everything the app backend needs, already read and checked. Secrets are contents, not paths. */
export interface AppBackendConfig {
  readonly host: string;
  readonly publicPort: number;
  readonly internalPort: number;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
  /** 32-byte key-encryption key for SK_BEACON at rest. */
  readonly kek: Buffer;
  readonly healthAuthority: {
    readonly publicKey: string;
    readonly issuer: string;
    readonly audience: string;
  };
  readonly police: { readonly url: string; readonly identity: string };
  readonly rules: Rules;
  readonly watchdogIntervalMs: number;
  readonly deliveryIntervalMs: number;
  /** Presence requests one key may make in 10 minutes (a relay needs 2, plus retries). */
  readonly presencePer10Min: number;
  /** Timeouts and connection cap of both listeners (backend-kit/server-limits.ts); SERVER_LIMITS when absent. */
  readonly limits?: ServerLimits;
  /** Presence waiting for validation (validator.ts); QUEUE_BOUND when absent. */
  readonly presenceQueue?: QueueBound;
  readonly logLevel: string;
}

/** The presence and alert rules; each has a safe default (app-backend/README.md). */
export interface Rules {
  readonly windowSeconds: number;
  readonly maxAgeSeconds: number;
  readonly maxSkewSeconds: number;
  readonly lateEvidenceMaxAgeSeconds: number;
  readonly slewPpm: number;
  readonly driftAlertSeconds: number;
  readonly lowBatteryPercent: number;
  /** After the window passes: the person is warned, police is told only when this passes too. */
  readonly graceSeconds: number;
  /** A gap starting at or below this signed battery level is a dead beacon: maintenance, not violation. */
  readonly criticalBatteryPercent: number;
  /** Tokens failing authentication under a quarantine's key, none valid, during a gap: possible spoofing. */
  readonly spoofingThreshold: number;
  /** No request from the relay for this long: it is silent (phone off or offline), not away. */
  readonly relaySilentSeconds: number;
  /** How long a silent relay's gap waits for the relay (and its late evidence) before police is told. */
  readonly silentGraceSeconds: number;
  /** Longest authorised absence. */
  readonly maxAbsenceSeconds: number;
}

export const DEFAULT_RULES: Rules = {
  windowSeconds: 360,
  maxAgeSeconds: 420,
  maxSkewSeconds: 60,
  lateEvidenceMaxAgeSeconds: 86_400,
  slewPpm: 1000,
  driftAlertSeconds: 120,
  lowBatteryPercent: 15,
  // 20 minutes: with relays uploading every 5, 10 left too little time to react (docs/BENCHMARKS.md).
  graceSeconds: 1200,
  criticalBatteryPercent: 5,
  spoofingThreshold: 10,
  relaySilentSeconds: 400,
  silentGraceSeconds: 12 * 3600,
  maxAbsenceSeconds: 86_400,
};

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly problems: string[]) {
    super(`app backend configuration is incomplete:\n  - ${problems.join('\n  - ')}`);
  }
}

type Env = Record<string, string | undefined>;

/** Read the configuration from environment variables (table in app-backend/README.md); refuse to start on any problem. */
/**
 * Loop periods. An idle watchdog tick is one index probe (0.3 ms at 1M quarantines), so a quarter
 * second keeps an alert's wait for its tick short; delivery is also woken by every watchdog batch.
 */
export const LOOP_DEFAULTS = { watchdogIntervalMs: 250, deliveryIntervalMs: 1000 } as const;

export function loadConfig(env: Env = process.env): AppBackendConfig {
  const problems: string[] = [];
  const file = (name: string): string => {
    const path = env[name];
    if (!path) {
      problems.push(`${name} is required (path to a PEM file)`);
      return '';
    }
    try {
      return readFileSync(path, 'utf8');
    } catch {
      problems.push(`${name}: cannot read ${path}`);
      return '';
    }
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max)
      problems.push(`${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
  const kekText = env.APP_KEK;
  const kek = kekText ? Buffer.from(kekText, 'base64') : Buffer.alloc(0);
  if (!kekText) problems.push('APP_KEK is required (32 random bytes, base64)');
  else if (kek.length !== 32) problems.push('APP_KEK must decode to exactly 32 bytes');
  const policeUrl = env.POLICE_BACKEND_URL ?? '';
  if (!/^https:\/\//.test(policeUrl))
    problems.push('POLICE_BACKEND_URL is required and must be https://');

  const config: AppBackendConfig = {
    host: env.APP_HOST ?? '127.0.0.1',
    publicPort: int('APP_PUBLIC_PORT', 8443, 0, 65535),
    internalPort: int('APP_INTERNAL_PORT', 8444, 0, 65535),
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: env.APP_DATA_DIR ?? '.data/app-backend',
    tls: { cert: file('APP_TLS_CERT'), key: file('APP_TLS_KEY'), ca: file('APP_TLS_CA') },
    kek,
    healthAuthority: {
      publicKey: file('APP_HA_PUBLIC_KEY'),
      issuer: env.APP_HA_ISSUER ?? 'health-authority',
      audience: env.APP_JWT_AUDIENCE ?? 'smartbeacon-app-backend',
    },
    police: { url: policeUrl, identity: env.APP_POLICE_IDENTITY ?? 'police-backend' },
    rules: {
      // Down to 10 s so a demonstration can run in minutes (npm start shows what it set).
      windowSeconds: int('APP_WINDOW_SECONDS', DEFAULT_RULES.windowSeconds, 10, 86_400),
      maxAgeSeconds: int('APP_MAX_AGE_SECONDS', DEFAULT_RULES.maxAgeSeconds, 60, 86_400),
      maxSkewSeconds: int('APP_MAX_SKEW_SECONDS', DEFAULT_RULES.maxSkewSeconds, 0, 3600),
      lateEvidenceMaxAgeSeconds: int(
        'APP_LATE_EVIDENCE_MAX_AGE_SECONDS',
        DEFAULT_RULES.lateEvidenceMaxAgeSeconds,
        0,
        7 * 86_400,
      ),
      slewPpm: int('APP_SLEW_PPM', DEFAULT_RULES.slewPpm, 0, 100_000),
      driftAlertSeconds: int('APP_DRIFT_ALERT_SECONDS', DEFAULT_RULES.driftAlertSeconds, 1, 86_400),
      lowBatteryPercent: int('APP_LOW_BATTERY_PERCENT', DEFAULT_RULES.lowBatteryPercent, 0, 100),
      graceSeconds: int('APP_GRACE_SECONDS', DEFAULT_RULES.graceSeconds, 0, 86_400),
      criticalBatteryPercent: int(
        'APP_CRITICAL_BATTERY_PERCENT',
        DEFAULT_RULES.criticalBatteryPercent,
        0,
        100,
      ),
      spoofingThreshold: int('APP_SPOOFING_THRESHOLD', DEFAULT_RULES.spoofingThreshold, 1, 100_000),
      relaySilentSeconds: int(
        'APP_RELAY_SILENT_SECONDS',
        DEFAULT_RULES.relaySilentSeconds,
        5,
        86_400,
      ),
      silentGraceSeconds: int(
        'APP_SILENT_GRACE_SECONDS',
        DEFAULT_RULES.silentGraceSeconds,
        0,
        7 * 86_400,
      ),
      maxAbsenceSeconds: int(
        'APP_MAX_ABSENCE_SECONDS',
        DEFAULT_RULES.maxAbsenceSeconds,
        60,
        7 * 86_400,
      ),
    },
    watchdogIntervalMs: int(
      'APP_WATCHDOG_INTERVAL_MS',
      LOOP_DEFAULTS.watchdogIntervalMs,
      100,
      600_000,
    ),
    deliveryIntervalMs: int(
      'APP_DELIVERY_INTERVAL_MS',
      LOOP_DEFAULTS.deliveryIntervalMs,
      50,
      600_000,
    ),
    presencePer10Min: int('APP_PRESENCE_PER_10MIN', 20, 1, 1_000_000_000),
    limits: readServerLimits(env, 'APP', problems),
    logLevel: env.APP_LOG_LEVEL ?? 'info',
  };
  if (problems.length) throw new ConfigError(problems);
  return config;
}

/** A complete configuration on loopback with safe defaults: tests, benchmarks and the local simulator. */
export function loopbackConfig(
  parts: Pick<AppBackendConfig, 'tls' | 'kek' | 'healthAuthority' | 'police'> &
    Partial<AppBackendConfig>,
): AppBackendConfig {
  return {
    host: '127.0.0.1',
    publicPort: 0,
    internalPort: 0,
    databaseUrl: undefined,
    dataDir: 'memory://',
    rules: DEFAULT_RULES,
    ...LOOP_DEFAULTS,
    presencePer10Min: 20,
    logLevel: 'info',
    ...parts,
  };
}
