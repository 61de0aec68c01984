import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Database } from '../../backend-kit/db.js';
import { sealBlock } from '../../protocol/token/make.js';
import { deriveKeyMaterial } from '../../protocol/token/keys.js';
import { databaseTargets } from '../../test/support/databases.js';
import { PRESENCE_RESPONSE_LENGTH } from '../../protocol/presence.js';
import { openStatus } from '../../protocol/presence-status.js';
import type { WatchdogResult } from '../src/watchdog.js';
import {
  type Harness,
  PoliceStub,
  T0,
  TestBeacon,
  metric,
  monitored,
  police,
  presence,
  register,
  relayAlive,
  startBackend,
} from './harness.js';

const MIN = 60_000;
const steps = (r: WatchdogResult) => r.provisional + r.confirmed + r.maintenance + r.deferred;

for (const target of databaseTargets()) {
  describe(`app backend flows on ${target.name}`, function () {
    this.timeout(60_000);
    let db: Database;
    let stub: PoliceStub;
    let h: Harness;

    beforeEach(async () => {
      db = await target.open();
      stub = new PoliceStub();
      await stub.up();
      h = await startBackend(db, stub);
    });
    afterEach(async () => {
      await h.backend.close();
      await stub.down();
      await db.close();
    });

    it('register → enable → presence → silence → PROVISIONAL (police not told) → grace → NO_PRESENCE delivered once → presence → RESOLVED_BY_EVIDENCE', async () => {
      const b = new TestBeacon();
      assert.equal((await register(h, b)).status, 201);
      assert.deepEqual((await police(h, `/internal/v1/beacons/${b.beaconId}/enable`)).json(), {
        state: 'monitoring',
      });
      for (let i = 0; i < 5; i++) {
        const r = await presence(h, b.skTPast, [b.token(h.clock.ms)]);
        assert.equal(r.status, 202);
        await h.backend.flush();
        h.clock.advance(MIN);
      }
      assert.equal(steps(await h.backend.watchdog()), 0, 'present: no alert');
      h.clock.advance(2 * MIN); // 3 minutes since the last token: inside the 6-minute window
      assert.equal(steps(await h.backend.watchdog()), 0);
      h.clock.advance(4 * MIN); // 7 minutes: past it
      assert.equal((await h.backend.watchdog()).provisional, 1);
      assert.equal(await h.backend.deliver(), 0, 'provisional: the police are not told');
      h.clock.advance(8 * MIN); // 15 minutes: the 10-minute grace runs from minute 10
      await relayAlive(h, b); // the phone went with the person: its relay hears no beacon
      assert.equal(steps(await h.backend.watchdog()), 0);
      h.clock.advance(MIN);
      assert.equal((await h.backend.watchdog()).confirmed, 1);
      assert.equal(steps(await h.backend.watchdog()), 0, 'one open alert, not one per tick');
      assert.equal(await h.backend.deliver(), 1);
      const [alert] = stub.shown();
      assert.equal(alert?.kind, 'NO_PRESENCE');
      assert.equal(alert?.beaconId, b.beaconId);
      assert.equal(alert?.gapStartedAt, T0 + 4 * MIN);
      assert.deepEqual(
        [alert?.detail.provisionalAt, alert?.detail.confirmedAt, alert?.detail.graceSeconds],
        [T0 + 10 * MIN, T0 + 20 * MIN, 600],
      );
      assert.equal(await h.backend.deliver(), 0, 'delivered once');

      await presence(h, b.skTPast, [b.token(h.clock.ms)]);
      await h.backend.flush();
      await h.backend.deliver();
      const resolved = stub.shown()[1];
      assert.equal(resolved?.kind, 'RESOLVED_BY_EVIDENCE');
      assert.equal(resolved?.relatedAlertId, alert?.alertId);
      assert.equal(
        resolved?.detail.coveredByEvidence,
        false,
        'back home, not proven home all along',
      );
      assert.equal(stub.received.length, 2);
      const { rows } = await db.query<{ status: string }>(
        "SELECT status FROM alerts WHERE kind = 'NO_PRESENCE'",
      );
      assert.deepEqual(rows, [{ status: 'resolved_by_evidence' }]);
    });

    it('presence during the grace clears the gap: the police never hear of it', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      h.clock.advance(7 * MIN);
      assert.equal((await h.backend.watchdog()).provisional, 1);
      h.clock.advance(9 * MIN); // Bluetooth back on within the grace
      await presence(h, b.skTPast, [b.token(h.clock.ms)]);
      await h.backend.flush();
      h.clock.advance(2 * MIN);
      assert.equal(steps(await h.backend.watchdog()), 0);
      assert.equal(await h.backend.deliver(), 0);
      assert.equal(stub.received.length, 0);
      const { rows } = await db.query<{ status: string; closed_at: number }>(
        "SELECT status, closed_at FROM alerts WHERE kind = 'NO_PRESENCE'",
      );
      assert.deepEqual(rows, [{ status: 'cleared', closed_at: h.clock.ms - 2 * MIN }]);
      assert.equal(await metric(h, 'presence_gaps_total', 'step="cleared"'), 1);
    });

    it('answers real, dummy, unknown-key and invalid presence alike, before validating anything', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      const bad = b.token(h.clock.ms);
      bad[40] = (bad[40] as number) ^ 1;
      const dummyKey = new Uint8Array(randomBytes(32));
      const unknownKey = new Uint8Array(randomBytes(32));
      const answers = await Promise.all([
        presence(h, b.skTPast, [b.token(h.clock.ms)]),
        presence(h, dummyKey, []),
        presence(h, unknownKey, [b.token(h.clock.ms)]),
        presence(h, b.skTPast, [bad]),
      ]);
      for (const a of answers) {
        assert.equal(a.status, 202);
        assert.equal(a.body.length, PRESENCE_RESPONSE_LENGTH);
        assert.deepEqual(Object.keys(a.headers).sort(), Object.keys(answers[0]!.headers).sort());
      }
      // Only the person's relay can read its answer; the others are random bytes to everyone.
      assert.equal(openStatus(b.skTPast, answers[0]!.body)?.code, 'all_clear');
      assert.equal(openStatus(b.skTPast, answers[3]!.body)?.code, 'all_clear');
      assert.equal(openStatus(dummyKey, answers[1]!.body), null);
      assert.equal(openStatus(unknownKey, answers[2]!.body), null);
      assert.equal(openStatus(b.skTPast, answers[1]!.body), null);
      // Answered while still queued; the dummy (no tokens, no registered key) is never queued.
      assert.equal(h.backend.validator.depth, 3, 'answered while still queued');
      await h.backend.flush();
      assert.equal(h.backend.validator.depth, 0);
    });

    it('warns the person through the sealed status before and after the police are told', async () => {
      const b = new TestBeacon();
      const r = await register(h, b);
      assert.equal(r.status, 201);
      const statusNow = async () => openStatus(b.skTPast, (await presence(h, b.skTPast, [])).body);
      assert.equal((await statusNow())?.code, 'not_monitored');
      await police(h, `/internal/v1/beacons/${b.beaconId}/enable`);
      await presence(h, b.skTPast, [b.token(h.clock.ms)]);
      await h.backend.flush();
      const last = h.clock.ms;
      assert.deepEqual(await statusNow(), {
        code: 'all_clear',
        since: last,
        until: null,
        serverTime: h.clock.ms,
      });
      h.clock.advance(4 * MIN);
      assert.deepEqual(await statusNow(), {
        code: 'not_heard',
        since: last,
        until: last + 6 * MIN,
        serverTime: h.clock.ms,
      });
      h.clock.advance(3 * MIN);
      await h.backend.watchdog();
      assert.deepEqual(await statusNow(), {
        code: 'warning_grace',
        since: last,
        until: last + 16 * MIN,
        serverTime: h.clock.ms,
      });
      h.clock.advance(10 * MIN);
      await relayAlive(h, b);
      await h.backend.watchdog();
      assert.deepEqual(await statusNow(), {
        code: 'reported',
        since: last,
        until: null,
        serverTime: h.clock.ms,
      });
      await police(h, `/internal/v1/beacons/${b.beaconId}/end`);
      assert.equal(await statusNow(), null, 'ended: random bytes like anyone else');
    });

    it('counts every rejection reason and never stores a failed token', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      const now = h.clock.ms;
      const flipped = b.token(now);
      flipped[20] = (flipped[20] as number) ^ 0x80;
      const pad = new Uint8Array(16).fill(5);
      pad[15] = 4;
      const layout = new Uint8Array(16).fill(4);
      const version = new Uint8Array(16).fill(5);
      version[0] = 2;
      version[9] = 50; // battery
      version[10] = 0; // flags: a set reserved bit would be a layout error, checked first
      const replayed = b.token(now, { counter: 0 });
      await presence(h, b.skTPast, [
        flipped,
        sealBlock(b.keys, new Uint8Array(16), pad),
        sealBlock(b.keys, new Uint8Array(16), layout),
        sealBlock(b.keys, new Uint8Array(16), version),
        b.token(now - 30 * MIN),
        b.token(now + 10 * MIN),
        replayed,
      ]);
      await presence(h, new Uint8Array(randomBytes(32)), [b.token(now)]);
      await h.backend.flush();
      for (const reason of [
        'tag',
        'padding',
        'layout',
        'version',
        'stale',
        'future',
        'replay',
        'unknown_key',
      ]) {
        assert.equal(await metric(h, 'presence_tokens_total', `result="${reason}"`), 1, reason);
      }
      const { rows } = await db.query<{ last_counter: number }>(
        'SELECT last_counter FROM quarantines WHERE beacon_id = $1',
        [b.beaconId],
      );
      assert.equal(rows[0]?.last_counter, 0, 'only the first, valid token moved the state');
    });

    it('a relay offline for an hour is waited for; its buffered tokens clear the gap and the police never hear of it', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      const start = h.clock.ms;
      const buffered: Uint8Array[] = [];
      for (let i = 1; i <= 60; i++) buffered.push(b.token(start + i * MIN)); // no network, still hearing the beacon
      for (let minute = 1; minute <= 60; minute++) {
        h.clock.advance(MIN);
        await h.backend.watchdog();
      }
      await h.backend.deliver();
      assert.equal(stub.received.length, 0, 'a silent relay proves nothing: held, not told');
      const { rows: held } = await db.query<{ status: string; held: boolean }>(
        "SELECT status, held_at IS NOT NULL AS held FROM alerts WHERE kind = 'NO_PRESENCE'",
      );
      assert.deepEqual(held, [{ status: 'provisional', held: true }]);
      // Back online: the oldest first, as the relay sends them.
      await presence(h, b.skTPast, buffered);
      await h.backend.flush();
      await h.backend.deliver();
      assert.equal(stub.received.length, 0);
      const { rows } = await db.query<{ status: string; evidence_until: number }>(
        "SELECT status, evidence_until FROM alerts WHERE kind = 'NO_PRESENCE'",
      );
      // Tokens older than the 7-minute max age prove the past and newer ones are live presence:
      // together, no window-long hole from the gap's start on.
      assert.deepEqual(rows, [{ status: 'cleared', evidence_until: start + 60 * MIN }]);
      assert.equal(await metric(h, 'presence_tokens_total', 'result="late_evidence"'), 52);
      assert.equal(await metric(h, 'presence_tokens_total', 'result="accepted"'), 1 + 8);
    });

    it('a silence past its grace goes to maintenance as RELAY_SILENT; late evidence then shows presence all along', async () => {
      await h.backend.close();
      h = await startBackend(db, stub, { rules: { silentGraceSeconds: 600 } });
      const b = new TestBeacon();
      await monitored(h, b);
      const start = h.clock.ms;
      const buffered: Uint8Array[] = [];
      for (let i = 1; i <= 40; i++) buffered.push(b.token(start + i * MIN)); // no network, still hearing
      for (let minute = 1; minute <= 40; minute++) {
        h.clock.advance(MIN);
        await h.backend.watchdog();
      }
      await h.backend.deliver();
      assert.deepEqual(
        stub.shown().map((a) => [a.kind, a.detail.silentFrom, a.detail.silentUntil]),
        [['RELAY_SILENT', start, null]],
        'silence is no evidence of absence: maintenance, not a violation',
      );
      await presence(h, b.skTPast, buffered);
      await h.backend.flush();
      await h.backend.deliver();
      const resolved = stub.shown()[1];
      assert.equal(resolved?.kind, 'RESOLVED_BY_EVIDENCE');
      assert.equal(resolved?.relatedAlertId, stub.shown()[0]?.alertId);
      assert.deepEqual(resolved?.detail, {
        lastPresenceAt: start + 40 * MIN,
        coveredByEvidence: true,
      });
    });

    it('learns a drifting beacon clock within the slew bound and raises BEACON_FAULT (clock_drift) past the threshold', async () => {
      await h.backend.close();
      h = await startBackend(db, stub, { rules: { slewPpm: 50_000, driftAlertSeconds: 120 } });
      const b = new TestBeacon();
      await monitored(h, b);
      for (let i = 0; i < 60; i++) {
        h.clock.advance(5 * MIN);
        b.offsetSeconds += 4; // the beacon gains 4 s every 5 minutes: far faster than a real RC oscillator
        const r = await presence(h, b.skTPast, [b.token(h.clock.ms - MIN), b.token(h.clock.ms)]);
        assert.equal(r.status, 202);
        await h.backend.flush();
      }
      await h.backend.deliver();
      const drift = stub.shown().find((a) => a.kind === 'BEACON_FAULT');
      assert.equal(drift?.detail.reasons, 'clock_drift');
      assert.ok(Number(drift?.detail.offsetSeconds) > 120);
      assert.equal(
        stub.shown().filter((a) => a.kind === 'NO_PRESENCE').length,
        0,
        'the learned offset kept its tokens fresh',
      );
    });

    it('keeps one BEACON_FAULT for restarts and low battery: repeats update it, a new battery clears it', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      const send = async (opts: { rebooted?: boolean; battery?: number }) => {
        await presence(h, b.skTPast, [b.token(h.clock.ms, opts)]);
        await h.backend.flush();
        await h.backend.deliver();
        h.clock.advance(MIN);
      };
      await send({ rebooted: true, battery: 12 });
      await send({ battery: 11 });
      await send({ battery: 10 });
      assert.deepEqual(
        stub.shown().map((a) => [a.kind, a.detail.reasons]),
        [['BEACON_FAULT', 'low_battery,rebooted']],
        'one alert; a reading that stays low is no repeat',
      );
      await send({ rebooted: true, battery: 10 });
      const fault = stub.shown()[0];
      assert.deepEqual(
        stub
          .shown()
          .slice(1)
          .map((a) => [a.kind, a.relatedAlertId]),
        [['ALERT_UPDATED', fault?.alertId]],
      );
      await send({ rebooted: true, battery: 100 }); // battery replaced: the beacon restarts
      await send({ battery: 100 });
      assert.deepEqual(
        stub
          .shown()
          .slice(2)
          .map((a) => [a.kind, a.relatedAlertId]),
        [
          ['ALERT_UPDATED', fault?.alertId],
          ['FAULT_CLEARED', fault?.alertId],
        ],
      );
      const { rows } = await db.query<{ occurrences: number; closed: boolean }>(
        "SELECT occurrences, closed_at IS NOT NULL AS closed FROM alerts WHERE kind = 'BEACON_FAULT'",
      );
      assert.deepEqual(rows, [{ occurrences: 3, closed: true }]);
      assert.equal(stub.shown().filter((a) => a.kind === 'NO_PRESENCE').length, 0);
    });

    it('keeps alerts while the police backend is down for hours, then delivers each once', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      await stub.down();
      h.clock.advance(20 * MIN);
      await relayAlive(h, b);
      await h.backend.watchdog();
      await h.backend.watchdog();
      for (let hour = 0; hour < 3 * 60; hour += 5) {
        assert.equal(await h.backend.deliver(), 0);
        h.clock.advance(5 * MIN);
      }
      const { rows } = await db.query<{ attempts: number }>('SELECT attempts FROM outbox');
      assert.ok((rows[0]?.attempts ?? 0) >= 5, 'retried with backoff');
      await stub.up();
      h.clock.advance(6 * MIN); // past the longest backoff
      assert.equal(await h.backend.deliver(), 1);
      assert.equal(stub.shown().length, 1);
    });

    it('redelivers an alert whose answer was lost mid-delivery; the police side shows it once', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      h.clock.advance(20 * MIN);
      await relayAlive(h, b);
      await h.backend.watchdog();
      await h.backend.watchdog();
      stub.dropBeforeAnswer = true;
      assert.equal(await h.backend.deliver(), 0);
      stub.dropBeforeAnswer = false;
      h.clock.advance(6 * MIN);
      assert.equal(await h.backend.deliver(), 1);
      assert.equal(stub.received.length, 2, 'sent twice');
      assert.equal(stub.shown().length, 1, 'shown once (same idempotency key)');
    });

    it('ending a quarantine deletes its keys at once and stops monitoring', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      assert.equal((await police(h, `/internal/v1/beacons/${b.beaconId}/end`)).status, 200);
      const { rows } = await db.query<Record<string, unknown>>(
        'SELECT sk_t_past_hash, sk_beacon_sealed, keys_sealed, state, deadline FROM quarantines',
      );
      assert.deepEqual(rows, [
        {
          sk_t_past_hash: null,
          sk_beacon_sealed: null,
          keys_sealed: null,
          state: 'ended',
          deadline: null,
        },
      ]);
      h.clock.advance(30 * MIN);
      assert.equal(steps(await h.backend.watchdog()), 0);
      await presence(h, b.skTPast, [b.token(h.clock.ms)]);
      await h.backend.flush();
      assert.equal(await metric(h, 'presence_tokens_total', 'result="unknown_key"'), 1);
      assert.equal((await police(h, `/internal/v1/beacons/${b.beaconId}/end`)).status, 404);
    });

    it('starts monitoring only when both registration and enable exist, in either order', async () => {
      const b = new TestBeacon();
      assert.deepEqual((await police(h, `/internal/v1/beacons/${b.beaconId}/enable`)).json(), {
        state: 'pending',
      });
      h.clock.advance(30 * MIN);
      assert.equal(steps(await h.backend.watchdog()), 0);
      assert.equal((await register(h, b)).status, 201);
      h.clock.advance(7 * MIN);
      assert.equal(
        (await h.backend.watchdog()).provisional,
        1,
        'the earlier enable took effect at registration',
      );
      const other = new TestBeacon();
      assert.equal((await register(h, other)).status, 201);
      h.clock.advance(60 * MIN);
      await relayAlive(h, b);
      const later = await h.backend.watchdog();
      assert.deepEqual([later.provisional, later.confirmed], [0, 1], 'the unenabled one: nothing');
    });

    it('stores no key in the clear: a dump of every table holds neither SK_BEACON, K_enc, K_mac nor SK_T_PAST', async () => {
      const b = new TestBeacon();
      await monitored(h, b);
      const dump = JSON.stringify(
        await Promise.all(
          ['quarantines', 'alerts', 'outbox', 'pending_enables', 'used_jtis', 'absences'].map((t) =>
            db.query(`SELECT * FROM ${t}`).then((r) => r.rows),
          ),
        ),
        (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v),
      );
      assert.ok(!dump.includes(Buffer.from(b.skBeacon).toString('hex')));
      assert.ok(!dump.includes(Buffer.from(b.skTPast).toString('hex')));
      const { kEnc, kMac } = deriveKeyMaterial(b.skBeacon);
      assert.ok(!dump.includes(Buffer.from(kEnc).toString('hex')));
      assert.ok(!dump.includes(Buffer.from(kMac).toString('hex')));
    });
  });
}
