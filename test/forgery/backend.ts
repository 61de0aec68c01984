import { randomBytes } from 'node:crypto';
import type { Database } from '../../backend-kit/db.js';
import {
  type Harness,
  type PoliceStub,
  T0,
  authorityKeys,
} from '../../app-backend/test/harness.js';
import { DEFAULT_RULES, loopbackConfig } from '../../app-backend/src/config.js';
import { startAppBackend } from '../../app-backend/src/service.js';
import { ManualClock } from '../support/clock.js';
import { capturedLogger } from '../support/log-capture.js';
import { testPki } from '../support/pki.js';

/**
 * The real app backend on a manual clock, as the app backend's own tests start it, but with a
 * per-key presence limit high enough for hundreds of requests under one key at one instant:
 * the forgery matrix and the timing comparison test what happens after the limiter, not it.
 */
export async function startForgeryBackend(
  db: Database,
  police: PoliceStub,
  presencePer10Min = 100_000,
): Promise<Harness> {
  const pki = await testPki();
  const clock = new ManualClock(T0);
  const { log, lines } = capturedLogger('app-backend');
  const config = loopbackConfig({
    tls: { cert: pki.appBackend.cert, key: pki.appBackend.key, ca: pki.ca.cert },
    kek: randomBytes(32),
    healthAuthority: {
      publicKey: authorityKeys.publicKey,
      issuer: 'health-authority',
      audience: 'smartbeacon-app-backend',
    },
    police: { url: `https://localhost:${police.port}`, identity: 'police-backend' },
    rules: DEFAULT_RULES,
    presencePer10Min,
    logLevel: 'debug',
  });
  const backend = await startAppBackend(config, { clock: clock.now, log, db, timers: false });
  return { backend, clock, logs: lines, config };
}
