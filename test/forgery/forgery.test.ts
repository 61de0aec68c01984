import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Database } from '../../backend-kit/db.js';
import {
  type Harness,
  PoliceStub,
  TestBeacon,
  monitored,
  police,
  presence,
} from '../../app-backend/test/harness.js';
import { MAX_TOKENS_PER_REQUEST } from '../../protocol/presence.js';
import { makeToken } from '../../protocol/token/make.js';
import { databaseTargets } from '../support/databases.js';
import { startForgeryBackend } from './backend.js';
import { everyBitFlip } from './tokens.js';

const MIN = 60_000;
/** A day in seconds: the age of a recording made yesterday. */
const DAY = 86_400;

/** What a token may change in a quarantine's row; a forgery must change none of it. */
interface PresenceRow {
  last_presence_at: number | null;
  last_received_at: number | null;
  last_counter: number | null;
  clock_offset_seconds: number;
  offset_updated_at: number;
  battery: number | null;
  flags: number | null;
  deadline: number | null;
  state: string;
}

for (const target of databaseTargets()) {
  describe(`forged and replayed presence against the app backend on ${target.name}`, function () {
    this.timeout(60_000);
    let db: Database;
    let stub: PoliceStub;
    let h: Harness;
    /** The quarantined person's beacon, and the one in the flat next door. */
    const b = new TestBeacon();
    const neighbour = new TestBeacon();
    let rules: Harness['config']['rules'];

    before(async () => {
      db = await target.open();
      stub = new PoliceStub();
      await stub.up();
      h = await startForgeryBackend(db, stub);
      rules = h.config.rules;
      await monitored(h, b);
      await monitored(h, neighbour);
      // A few minutes of established presence, so the row holds a counter, an offset and a time.
      for (let i = 0; i < 3; i++) {
        h.clock.advance(MIN);
        await genuine(b);
      }
    });
    after(async () => {
      await h.backend.close();
      await stub.down();
      await db.close();
    });

    async function row(beacon: TestBeacon): Promise<PresenceRow> {
      const { rows } = await db.query<PresenceRow>(
        `SELECT last_presence_at, last_received_at, last_counter, clock_offset_seconds,
                offset_updated_at, battery, flags, deadline, state
           FROM quarantines WHERE beacon_id = $1`,
        [beacon.beaconId],
      );
      assert.ok(rows[0], `no row for ${beacon.beaconId}`);
      return rows[0];
    }

    const alertCount = async () =>
      (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM alerts')).rows[0]?.n ?? 0;

    /** Every `presence_tokens_total` result label with its count, read from /metrics. */
    async function tokenCounts(): Promise<Map<string, number>> {
      const text = (await police(h, '/metrics', 'GET')).body.toString();
      const counts = new Map<string, number>();
      for (const line of text.split('\n')) {
        const m = /^presence_tokens_total\{result="([a-z_]+)"\} (\d+)$/.exec(line);
        if (m) counts.set(m[1] as string, Number(m[2]));
      }
      return counts;
    }

    /** Through the real endpoint, 64 tokens a request as a relay batches them; then validate. */
    async function submit(key: Uint8Array, tokens: readonly Uint8Array[]): Promise<void> {
      for (let i = 0; i < tokens.length; i += MAX_TOKENS_PER_REQUEST) {
        const r = await presence(h, key, tokens.slice(i, i + MAX_TOKENS_PER_REQUEST));
        assert.equal(r.status, 202, 'forgeries are answered like everything else');
      }
      await h.backend.flush();
    }

    /**
     * Submit `tokens` under `key` and require each to be counted under `reason` and nothing else,
     * with the presence state of both beacons and the alerts exactly as before.
     */
    async function expectRejected(
      tokens: readonly Uint8Array[],
      reason: string,
      key: Uint8Array = b.skTPast,
    ): Promise<void> {
      const before = { mine: await row(b), next: await row(neighbour), alerts: await alertCount() };
      const counted = await tokenCounts();
      await submit(key, tokens);
      const after = await tokenCounts();
      const delta = new Map(
        [...after].map(([k, v]) => [k, v - (counted.get(k) ?? 0)] as const).filter(([, v]) => v),
      );
      assert.deepEqual(Object.fromEntries(delta), { [reason]: tokens.length });
      assert.deepEqual(
        { mine: await row(b), next: await row(neighbour), alerts: await alertCount() },
        before,
        'presence, counter, clock offset and alerts unchanged',
      );
    }

    /** `token` of `beacon`, sent by its relay, is accepted: counted, and its row heard from now. */
    async function accepted(beacon: TestBeacon, token: Uint8Array): Promise<void> {
      const before = (await tokenCounts()).get('accepted') ?? 0;
      await submit(beacon.skTPast, [token]);
      assert.equal((await tokenCounts()).get('accepted'), before + 1, 'the genuine token counts');
      assert.equal((await row(beacon)).last_received_at, h.clock.ms);
    }

    /** A genuine, current token of `beacon` (its next, or `token`) counts as presence now. */
    async function genuine(beacon: TestBeacon, token = beacon.token(h.clock.ms)): Promise<void> {
      await accepted(beacon, token);
      const at = Number((await row(beacon)).last_presence_at);
      assert.ok(at >= h.clock.ms - 1000, 'presence moved to now');
    }

    /** A genuine token of `beacon` with the given clock reading and counter (default: its next). */
    const signed = (beacon: TestBeacon, unixSeconds: number, counter = beacon.counter++) =>
      makeToken(beacon.keys, {
        unixSeconds,
        counter,
        batteryPercent: 80,
        clockNotSet: false,
        rebooted: false,
      });

    it('rejects every single-bit flip of a fresh token (all 512 bits) at the tag, then accepts the original', async () => {
      const original = b.token(h.clock.ms);
      const flips = everyBitFlip(original);
      assert.equal(flips.length, 512);
      await expectRejected(flips, 'tag');
      // None of them burnt the original's counter or moved anything: it still counts.
      await genuine(b, original);
    });

    it('rejects a neighbouring beacon’s fresh tokens under the person’s key, and the person’s tokens under a stranger’s key', async () => {
      const theirs = neighbour.token(h.clock.ms);
      await expectRejected([theirs], 'tag', b.skTPast);
      const mine = b.token(h.clock.ms);
      await expectRejected([mine], 'unknown_key', new Uint8Array(randomBytes(32)));
      // Neither token was used up: each still counts when its own relay sends it.
      await genuine(neighbour, theirs);
      await genuine(b, mine);
    });

    it('rejects stale tokens: one second past the maximum age, and a day old, with fresh counters', async () => {
      const now = Math.floor(h.clock.ms / 1000);
      await expectRejected(
        [signed(b, now - rules.maxAgeSeconds - 1), signed(b, now - DAY)],
        'stale',
      );
      await genuine(b);
    });

    it('rejects tokens replayed after their window as stale, and inside it as replays', async () => {
      const recorded = b.token(h.clock.ms);
      await genuine(b, recorded);
      await expectRejected([recorded], 'replay');
      // The person goes on being present; the recording is replayed once its window has passed.
      for (let t = 0; t <= rules.maxAgeSeconds; t += 60) {
        h.clock.advance(MIN);
        await genuine(b);
      }
      await expectRejected([recorded], 'stale');
      await genuine(b);
    });

    it('rejects future tokens: one second past the allowed skew, and a day ahead, without taking their counters', async () => {
      const now = Math.floor(h.clock.ms / 1000);
      // Counters far ahead: were either accepted, every genuine token after it would be a replay.
      await expectRejected(
        [
          signed(b, now + rules.maxSkewSeconds + 1, b.counter + 1000),
          signed(b, now + DAY, 0xffff_fffe),
        ],
        'future',
      );
      await genuine(b);
    });

    it('rejects counters that go backwards or repeat, however fresh the time', async () => {
      const last = (await row(b)).last_counter as number;
      const now = Math.floor(h.clock.ms / 1000);
      await expectRejected(
        [signed(b, now, last), signed(b, now, last - 1), signed(b, now, 0)],
        'replay',
      );
      await genuine(b);
    });

    for (const direction of ['slow', 'fast'] as const) {
      it(`rejects a beacon clock running ${direction} at a minute a minute, far beyond the slew: the offset moves no faster than the bound`, async () => {
        // A beacon of its own whose offset starts learned at zero.
        const walker = new TestBeacon();
        await monitored(h, walker);
        const start = (await row(walker)).offset_updated_at;
        const sign = direction === 'slow' ? -1 : 1;
        const limit = direction === 'slow' ? rules.maxAgeSeconds : rules.maxSkewSeconds;
        const reason = direction === 'slow' ? 'stale' : 'future';
        let rejected = 0;
        for (let step = 1; rejected < 3; step++) {
          h.clock.advance(MIN);
          const now = Math.floor(h.clock.ms / 1000);
          const token = signed(walker, now + sign * 60 * step);
          const offset = (await row(walker)).clock_offset_seconds;
          // Within the limit on the learned clock the token is fresh; beyond, it must be refused.
          if (60 * step - Math.abs(offset) <= limit) {
            await accepted(walker, token);
          } else {
            const state = await row(walker);
            const counted = (await tokenCounts()).get(reason) ?? 0;
            await submit(walker.skTPast, [token]);
            assert.equal((await tokenCounts()).get(reason), counted + 1, reason);
            assert.deepEqual(await row(walker), state, 'nothing moved');
            rejected++;
          }
          const r = await row(walker);
          const bound = (rules.slewPpm / 1e6) * ((r.offset_updated_at - start) / 1000);
          assert.ok(Math.abs(r.clock_offset_seconds) <= bound + 1e-9, `offset within slew`);
        }
        // The beacon, re-synced, counts again at once.
        const now = Math.floor(h.clock.ms / 1000);
        await genuine(walker, signed(walker, now));
      });
    }
  });
}
