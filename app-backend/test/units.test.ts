import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { openDatabase } from '../../backend-kit/db.js';
import { migrate, readMigrations } from '../../backend-kit/migrations.js';
import { ConfigError, DEFAULT_RULES, loadConfig } from '../src/config.js';
import { type QuarantineState, decide, nextOffset } from '../src/decide.js';
import { openBeaconKey, sealBeaconKey } from '../src/kek.js';
import { backoffMs } from '../../backend-kit/mtls-client.js';
import { MIGRATIONS_DIR } from '../src/service.js';
import { StatusCache } from '../src/status-cache.js';
import { openAppDatabase } from './harness.js';

const NOW = 1_795_400_000_000;
const state = (over: Partial<QuarantineState> = {}): QuarantineState => ({
  id: 'q',
  beaconId: 'SB-1',
  state: 'monitoring',
  windowSeconds: 360,
  registeredAt: NOW - 86_400_000,
  enabledAt: NOW - 86_400_000,
  lastPresenceAt: NOW - 60_000,
  lastReceivedAt: NOW - 60_000,
  lastCounter: 100,
  offsetSeconds: 0,
  offsetUpdatedAt: NOW - 300_000,
  battery: 80,
  flags: 0,
  deadline: NOW + 300_000,
  gap: null,
  fault: null,
  spoof: null,
  invalidStreak: 0,
  invalidSince: null,
  clockNotSetAt: null,
  lastRequestAt: null,
  relayBackAt: null,
  ...over,
});
const token = (unixSeconds: number, counter: number) => ({
  fields: {
    version: 1,
    unixSeconds,
    counter,
    batteryPercent: 80,
    clockNotSet: false,
    rebooted: false,
  },
  receivedAt: NOW,
});

describe('presence rules', () => {
  it('moves the learned offset no faster than the slew bound, whatever the tokens claim', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -3600, max: 3600, noNaN: true }),
        fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        fc.double({ min: 0, max: 86_400, noNaN: true }),
        (current, observed, elapsed) => {
          const next = nextOffset(current, observed, elapsed, 1000);
          assert.ok(Math.abs(next - current) <= (1000 / 1e6) * elapsed + 1e-9);
        },
      ),
    );
  });

  it('cannot be walked into accepting a day-old token within a day', () => {
    let offset = 0;
    for (let minute = 0; minute < 24 * 60; minute += 5)
      offset = nextOffset(offset, -86_400, 300, 1000);
    assert.ok(offset >= -86.4 - 1e-6, `offset ${offset}`); // 1,000 ppm of a day, no more
  });

  it('judges freshness on the corrected clock, rejects replays and the future', () => {
    const d = decide(
      state({ offsetSeconds: 100 }),
      [
        token(NOW / 1000 + 100, 101),
        token(NOW / 1000 + 100, 101),
        token(NOW / 1000 + 300, 102),
        token(NOW / 1000 - 400, 103),
      ],
      DEFAULT_RULES,
      NOW,
    );
    assert.equal(d.accepted, 1);
    assert.deepEqual(d.rejected, { replay: 1, future: 1, stale: 1 });
    assert.equal(d.next.lastCounter, 101);
    assert.equal(d.next.deadline, NOW + 360_000);
  });

  it('counts a stale token as evidence only inside the gap, and only without a window-long hole', () => {
    const gap = {
      id: 'a1',
      status: 'confirmed' as const,
      queue: 'violation' as const,
      gapStartedAt: NOW - 3_600_000,
      closedAt: null,
      evidenceUntil: null,
      heldAt: null,
      silentReported: false,
    };
    const q = state({ gap, lastPresenceAt: gap.gapStartedAt, deadline: null });
    const contiguous = decide(q, [token(NOW / 1000 - 3400, 50)], DEFAULT_RULES, NOW);
    assert.equal(contiguous.evidence, 1);
    assert.deepEqual(contiguous.effects, [
      { type: 'late_evidence', gap, evidenceUntil: NOW - 3_400_000 },
    ]);
    // Twenty minutes after the gap began, with nothing in between: proves nothing about the gap.
    const holed = decide(q, [token(NOW / 1000 - 2400, 50)], DEFAULT_RULES, NOW);
    assert.equal(holed.evidence, 1);
    assert.deepEqual(holed.effects, []);
    const beforeGap = decide(q, [token(NOW / 1000 - 7200, 50)], DEFAULT_RULES, NOW);
    assert.deepEqual([beforeGap.evidence, beforeGap.rejected.stale], [0, 1]);
  });

  it('never counts a clock-not-set token as presence, however fresh its counter', () => {
    const notSet = {
      ...token(1000, 101),
      fields: { ...token(1000, 101).fields, clockNotSet: true },
    };
    const d = decide(state(), [notSet], DEFAULT_RULES, NOW);
    assert.equal(d.accepted, 0);
    assert.deepEqual(d.rejected, { clock_not_set: 1 });
    assert.equal(d.next.lastPresenceAt, NOW - 60_000);
    assert.equal(d.next.clockNotSetAt, NOW);
    assert.deepEqual(
      d.effects.map((e) => (e.type === 'fault' ? e.reasons : e.type)),
      [['clock_not_set']],
    );
  });

  it('suspects spoofing when invalid tokens keep arriving during a silence, and reports growth by doubling', () => {
    const silent = state({ lastPresenceAt: NOW - 20 * 60_000 });
    let q = silent;
    const reported: number[] = [];
    for (let i = 0; i < 12; i++) {
      const d = decide(q, [], DEFAULT_RULES, NOW, { invalidTokens: 5 });
      for (const e of d.effects) if (e.type === 'spoofing') reported.push(e.invalidTokens);
      q = { ...d.next, spoof: d.next.spoof && { ...d.next.spoof, id: d.next.spoof.id || 's1' } };
    }
    assert.deepEqual(reported, [10, 20, 40]);
    const home = decide(state(), [], DEFAULT_RULES, NOW, { invalidTokens: 50 });
    assert.deepEqual(home.effects, [], 'a neighbour heard while at home is no spoofing');
    const back = decide(q, [token(NOW / 1000, 101)], DEFAULT_RULES, NOW);
    assert.ok(back.effects.some((e) => e.type === 'spoofing_cleared'));
    assert.equal(back.next.invalidStreak, 0);
  });
});

describe('key-encryption key', () => {
  it('seals SK_BEACON so only the same KEK and beacon ID open it', () => {
    const kek = randomBytes(32);
    const sk = new Uint8Array(randomBytes(32));
    const sealed = sealBeaconKey(kek, 'SB-1', sk);
    assert.ok(!sealed.toString('hex').includes(Buffer.from(sk).toString('hex')));
    assert.deepEqual(openBeaconKey(kek, 'SB-1', sealed), sk);
    assert.throws(() => openBeaconKey(kek, 'SB-2', sealed));
    assert.throws(() => openBeaconKey(randomBytes(32), 'SB-1', sealed));
  });
});

describe('delivery backoff', () => {
  it('grows exponentially with full jitter, capped at five minutes', () => {
    assert.equal(
      backoffMs(1, () => 1),
      2000,
    );
    assert.equal(
      backoffMs(4, () => 1),
      16_000,
    );
    assert.equal(
      backoffMs(30, () => 1),
      300_000,
    );
    assert.equal(
      backoffMs(30, () => 0),
      0,
    );
  });
});

describe('migrations', () => {
  it('apply once and refuse a migration edited after it landed', async () => {
    const db = await openDatabase({ dataDir: 'memory://' });
    const migrations = readMigrations(MIGRATIONS_DIR);
    assert.deepEqual(
      await migrate(db, migrations),
      migrations.map((m) => m.version),
    );
    assert.deepEqual(await migrate(db, migrations), []);
    const edited = migrations.map((m, i) => (i === 0 ? { ...m, sql: `${m.sql}\n-- edited` } : m));
    await assert.rejects(migrate(db, edited), { code: 'MIGRATION_EDITED' });
    await db.close();
  });
});

describe('status cache', () => {
  it('pages through every changed quarantine, even thousands sharing one timestamp', async () => {
    const db = await openAppDatabase(() => openDatabase({ dataDir: 'memory://' }));
    await db.query(
      `INSERT INTO quarantines (id, beacon_id, sk_t_past_hash, t_past, sk_beacon_sealed, window_seconds, state,
                                registered_at, enabled_at, offset_updated_at, last_presence_at, status_changed_at)
       SELECT md5('q' || i)::uuid, 'SB-' || i, md5('k' || i) || md5('h' || i), 1, '\\x00'::bytea, 360,
              'monitoring', $1::bigint, $1, $1, $1, $1 FROM generate_series(1, 1234) AS i`,
      [NOW],
    );
    const cache = new StatusCache(db, () => NOW, 100);
    await cache.refresh();
    assert.equal(cache.size, 1234);
    const key =
      createHash('md5').update('k7').digest('hex') + createHash('md5').update('h7').digest('hex');
    assert.equal(cache.statusFor(key, NOW)?.code, 'all_clear');
    await db.query(
      `UPDATE quarantines SET state = 'ended', sk_t_past_hash = NULL, status_changed_at = $1 WHERE beacon_id = 'SB-7'`,
      [NOW + 1],
    );
    await cache.refresh();
    assert.equal(cache.size, 1233, 'an ended one is dropped on the next look');
    assert.equal(cache.statusFor(key, NOW), undefined);
    await db.close();
  });
});

describe('configuration', () => {
  it('refuses to start without secrets and certificates, naming each', () => {
    assert.throws(
      () => loadConfig({}),
      (err: unknown) =>
        err instanceof ConfigError &&
        [
          'APP_KEK',
          'APP_TLS_CERT',
          'APP_TLS_KEY',
          'APP_TLS_CA',
          'APP_HA_PUBLIC_KEY',
          'POLICE_BACKEND_URL',
        ].every((n) => err.message.includes(n)),
    );
  });

  it('refuses a short KEK and an out-of-range rule', () => {
    assert.throws(
      () => loadConfig({ APP_KEK: Buffer.alloc(16).toString('base64'), APP_WINDOW_SECONDS: '5' }),
      /APP_KEK must decode to exactly 32 bytes[\s\S]*APP_WINDOW_SECONDS/,
    );
  });

  it('exits with a clear message, not a stack trace', async () => {
    const main = fileURLToPath(new URL('../src/main.js', import.meta.url));
    const err = await promisify(execFile)(process.execPath, [main], {
      env: { PATH: process.env.PATH ?? '' },
    }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((err as { code: number }).code, 78);
    assert.match(
      (err as { stderr: string }).stderr,
      /configuration is incomplete[\s\S]*APP_KEK is required/,
    );
    assert.doesNotMatch((err as { stderr: string }).stderr, /at .*\.js:\d+/);
  });
});
