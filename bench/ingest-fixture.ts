/**
 * What `bench:ingest` and `bench:scale-out` share: the people whose relays send real tokens, the
 * database they are registered in (plus rows standing in for everyone else), and their bodies.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Database } from '../backend-kit/db.js';
import { migrate, readMigrations } from '../backend-kit/migrations.js';
import { hashKey, encodePresenceBody } from '../protocol/presence.js';
import { nodeSuite } from '../protocol/token/keys-node.js';
import { type BeaconKeys, deriveKeyMaterial } from '../protocol/token/keys.js';
import { makeToken } from '../protocol/token/make.js';
import { sealBeaconKey, sealDerivedKeys } from '../app-backend/src/kek.js';
import { MIGRATIONS_DIR } from '../app-backend/src/service.js';
import { seedQuarantines } from './seed.js';

export interface Person {
  readonly beaconId: string;
  readonly skTPast: string;
  readonly skBeacon: string;
}

/** `n` people with real keys: their relays send real tokens. */
export function makePeople(n: number): Person[] {
  return Array.from({ length: n }, (_, i) => ({
    beaconId: `SB-REAL-${i}`,
    skTPast: randomBytes(32).toString('hex'),
    skBeacon: randomBytes(32).toString('hex'),
  }));
}

export function writePeople(path: string, people: readonly Person[]): void {
  writeFileSync(path, JSON.stringify(people));
}

export function readPeople(path: string): Person[] {
  return JSON.parse(readFileSync(path, 'utf8')) as Person[];
}

/**
 * Migrate, then `total` monitored quarantines: `people` registered for real (sealed SK_BEACON,
 * as registration stores it; monitoring, deadline one window ahead) and the rest seeded as rows
 * by the server itself (last heard an hour ago, deadlines a day ahead so the watchdog leaves them
 * alone).
 */
export async function prepareDatabase(
  db: Database,
  kek: Buffer,
  people: readonly Person[],
  total: number,
  now: number,
  windowSeconds = 360,
): Promise<void> {
  await migrate(db, readMigrations(MIGRATIONS_DIR));
  const seeded = Math.max(0, total - people.length);
  // Stamped an hour ago: a status cache's overlap re-reads recent changes, and these are not recent.
  if (seeded) await seedQuarantines(db, seeded, now - 3_600_000, now + 86_400_000);
  const chunk = 5000;
  for (let from = 0; from < people.length; from += chunk) {
    const part = people.slice(from, from + chunk);
    await db.query(
      `INSERT INTO quarantines (id, beacon_id, sk_t_past_hash, t_past, sk_beacon_sealed, keys_sealed, window_seconds,
                                state, registered_at, enabled_at, offset_updated_at, deadline, status_changed_at)
       SELECT gen_random_uuid(), b, h, 20000, s, d, $4::int, 'monitoring', $5::bigint, $5, $5, $5 + $4::int * 1000, $5
         FROM unnest($1::text[], $2::text[], $3::bytea[], $6::bytea[]) AS u(b, h, s, d)`,
      [
        part.map((p) => p.beaconId),
        part.map((p) => hashKey(Buffer.from(p.skTPast, 'hex'))),
        part.map((p) => sealBeaconKey(kek, p.beaconId, Buffer.from(p.skBeacon, 'hex'))),
        windowSeconds,
        now,
        part.map((p) => {
          const { kEnc, kMac } = deriveKeyMaterial(Buffer.from(p.skBeacon, 'hex'));
          return sealDerivedKeys(kek, p.beaconId, kEnc, kMac);
        }),
      ],
    );
  }
  // Vacuumed now, so autovacuum does not take a core in the middle of a measurement.
  await db.query('VACUUM (ANALYZE) quarantines, quarantine_marks');
}

/** Makes each person's next batch: `tokens` fresh tokens a minute apart, counters always rising. */
export class BodyMaker {
  readonly #keys: { skTPast: Buffer; keys: BeaconKeys; counter: number }[];

  constructor(people: readonly Person[]) {
    this.#keys = people.map((p) => ({
      skTPast: Buffer.from(p.skTPast, 'hex'),
      keys: nodeSuite.importKeys(Buffer.from(p.skBeacon, 'hex')),
      counter: 1,
    }));
  }

  /** One body per person, concatenated (each PRESENCE_BODY_LENGTH bytes), as the load generator reads them. */
  write(path: string, now: number, tokens = 5): void {
    const bodies = this.#keys.map((p) =>
      encodePresenceBody(
        p.skTPast,
        Array.from({ length: tokens }, (_, k) =>
          makeToken(p.keys, {
            unixSeconds: Math.floor(now / 1000) - 60 * (tokens - 1 - k),
            counter: p.counter++,
            batteryPercent: 80,
            clockNotSet: false,
            rebooted: false,
          }),
        ),
      ),
    );
    writeFileSync(path, Buffer.concat(bodies));
  }
}
