import assert from 'node:assert/strict';
import { SERVER_LIMITS, readServerLimits } from '../../backend-kit/server-limits.js';
import { loadConfig as appConfig } from '../../app-backend/src/config.js';
import { loadConfig as policeConfig } from '../../police-backend/src/config.js';
import { INTAKE_MAX_PENDING } from '../../police-backend/src/intake.js';

describe('floods: server limits and the intake bound from the environment', () => {
  it('defaults to deliberate values, takes overrides, and lists every bad one', () => {
    const problems: string[] = [];
    assert.deepEqual(readServerLimits({}, 'APP', problems), SERVER_LIMITS);
    assert.ok(SERVER_LIMITS.handshakeTimeoutMs < 120_000, "shorter than Node's default");
    assert.ok(SERVER_LIMITS.headersTimeoutMs <= SERVER_LIMITS.requestTimeoutMs);
    assert.ok(SERVER_LIMITS.keepAliveTimeoutMs > 4_000, 'outlives the clients’ 4 s idle');
    assert.deepEqual(
      readServerLimits(
        { POLICE_REQUEST_TIMEOUT_MS: '2000', POLICE_MAX_CONNECTIONS: '10' },
        'POLICE',
        problems,
      ),
      { ...SERVER_LIMITS, requestTimeoutMs: 2000, headersTimeoutMs: 10_000, maxConnections: 10 },
    );
    assert.deepEqual(problems, [
      'POLICE_HEADERS_TIMEOUT_MS must not exceed POLICE_REQUEST_TIMEOUT_MS',
    ]);
    problems.length = 0;
    readServerLimits(
      { APP_HANDSHAKE_TIMEOUT_MS: 'soon', APP_MAX_CONNECTIONS: '0' },
      'APP',
      problems,
    );
    assert.equal(problems.length, 2);
  });

  it('both services refuse to start on a bad limit; the police backend on an intake bound below one batch', () => {
    assert.throws(
      () => appConfig({ APP_KEEP_ALIVE_TIMEOUT_MS: '-1' }),
      (err: Error) => /APP_KEEP_ALIVE_TIMEOUT_MS must be an integer/.test(err.message),
    );
    const police = { APP_BACKEND_INTERNAL_URL: 'https://localhost:1' };
    assert.throws(
      () => policeConfig({ ...police, POLICE_INTAKE_MAX_PENDING: '255' }),
      (err: Error) => /POLICE_INTAKE_MAX_PENDING must be an integer in \[256,/.test(err.message),
    );
    assert.throws(
      () => policeConfig({ ...police, POLICE_MAX_INTERNAL_CONNECTIONS: '0' }),
      (err: Error) => /POLICE_MAX_INTERNAL_CONNECTIONS/.test(err.message),
    );
    assert.ok(INTAKE_MAX_PENDING >= 32 * 64, 'room for all one replica has in flight');
  });
});
