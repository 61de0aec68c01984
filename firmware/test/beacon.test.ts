import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { bytesToHex, hexToBytes } from '../../protocol/bytes.js';
import { GATT_SERVICE_UUID, GATT_TOKEN_CHAR_UUID } from '../../protocol/frames/layout.js';
import { nodeSuite } from '../../protocol/token/keys-node.js';
import { authenticateToken } from '../../protocol/token/open.js';
import { loadTokenVectors } from '../../protocol/vectors/load.js';
import { BOARDS, bundlePath } from '../scripts/boards.js';
import { buildBoard } from '../scripts/build.js';
import { espruinoSyntaxProblems } from '../scripts/espruino-syntax.js';
import {
  type Beacon,
  KEY,
  answers,
  ivWords,
  newBeacon,
  provision,
  tokenOnAir,
  verify,
} from './beacon-harness.js';

const MINUTE = 60_000;

/** Counter and flags of the token on the air, after checking it verifies. */
function onAir(b: Beacon, lastCounter?: number) {
  const token = tokenOnAir(b);
  assert.ok(token, 'no complete token on the air');
  const opened = verify(b, token, lastCounter);
  assert.ok(opened.ok, `token rejected: ${opened.ok ? '' : opened.reason}`);
  return { token, ...opened.fields };
}

describe('beacon firmware (compiled bundle in the Espruino emulation)', function () {
  this.timeout(120_000);

  before(async () => {
    for (const board of BOARDS) await buildBoard(board);
  });

  describe('bundle', () => {
    for (const board of BOARDS) {
      it(`${board}: uses nothing Espruino lacks`, () => {
        assert.deepEqual(espruinoSyntaxProblems(readFileSync(bundlePath(board), 'utf8')), []);
      });
    }

    it('keeps the AES fallback out of the Puck.js bundle and in the others', () => {
      const has = (board: (typeof BOARDS)[number]) =>
        readFileSync(bundlePath(board), 'utf8').includes('AES-128 key must be 16 bytes');
      assert.equal(has('PUCKJS'), false);
      assert.equal(has('MDBT42Q'), true);
    });
  });

  describe('before provisioning', () => {
    it('broadcasts no token and reports itself unprovisioned', () => {
      const b = newBeacon();
      assert.deepEqual(b.device.radio.advertisements, []);
      const [status] = answers(b.device.console('SB.status()'));
      assert.equal(status?.provisioned, false);
      assert.equal(status?.locked, false);
    });

    it('refuses bad provisioning requests with a stable code and stores nothing', () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ id: 'bad id!' }, 'BAD_ID'],
        [{ key: 'abcd' }, 'BAD_KEY'],
        [{ key: 'zz'.repeat(32) }, 'BAD_KEY'],
        [{ time: 1000 }, 'BAD_TIME'],
        [{ tx: 3 }, 'BAD_TX_POWER'],
        [{ cadence: 1 }, 'BAD_CADENCE'],
        [{ interval: 5 }, 'BAD_INTERVAL'],
      ];
      for (const [request, error] of cases) {
        const b = newBeacon();
        assert.deepEqual(provision(b, request), { ok: false, error });
        assert.equal(b.device.flash.files.has('sb.cfg'), false);
      }
    });

    it('never provisions from random input and never throws out of the console', () => {
      const b = newBeacon();
      fc.assert(
        fc.property(fc.anything(), (input) => {
          const text = JSON.stringify(input) ?? 'undefined';
          const lines = b.device.console(`SB.provision(${text})`);
          const answer = answers(lines)[0];
          assert.equal(answer?.ok, false);
          assert.equal(b.device.errors.length, 0);
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('provisioning', () => {
    it('stores ID and key, sets the clock and answers with a self-test token that verifies', () => {
      const b = newBeacon();
      b.clock.advance(5_000);
      const answer = provision(b);
      assert.equal(answer?.ok, true);
      assert.equal(answer?.id, 'SB-0001');
      const token = hexToBytes(answer?.token as string);
      const opened = verify(b, token);
      assert.ok(opened.ok);
      assert.equal(opened.fields.unixSeconds, Math.floor(b.clock.now() / 1000));
      assert.equal(opened.fields.batteryPercent, 87);
      assert.equal(opened.fields.clockNotSet, false);
      assert.equal(opened.fields.rebooted, true, 'first token since boot');
      assert.equal(b.device.radio.txPower, -4);
      assert.deepEqual(tokenOnAir(b), token);
    });

    it('accepts exactly one provisioning call', () => {
      const b = newBeacon();
      assert.equal(provision(b)?.ok, true);
      assert.deepEqual(provision(b, { id: 'SB-0002', key: '11'.repeat(32) }), {
        ok: false,
        error: 'ALREADY_PROVISIONED',
      });
      b.device.reset('test');
      assert.deepEqual(provision(b, { id: 'SB-0002' }), {
        ok: false,
        error: 'ALREADY_PROVISIONED',
      });
    });
  });

  describe('broadcasting', () => {
    it('makes a fresh token every cadence, on rotated advertisements and GATT, with a rising counter', () => {
      const b = newBeacon();
      provision(b, { cadence: 60 });
      const first = onAir(b);
      assert.equal(b.device.radio.advertisements.length, 4);
      assert.ok(b.device.radio.advertisements.every((p) => p.length <= 31));
      assert.equal(b.device.radio.intervalMs, 375);
      let last = first.counter;
      for (let minute = 1; minute <= 5; minute++) {
        b.clock.advance(MINUTE);
        const t = onAir(b, last);
        assert.equal(t.counter, last + 1);
        assert.equal(t.rebooted, false);
        assert.equal(t.unixSeconds, Math.floor(b.clock.now() / 1000));
        assert.deepEqual(b.device.gattRead(GATT_SERVICE_UUID, GATT_TOKEN_CHAR_UUID), t.token);
        assert.notDeepEqual(t.token.subarray(0, 16), first.token.subarray(0, 16), 'fresh IV');
        last = t.counter;
      }
    });

    it('honours a configured cadence', () => {
      const b = newBeacon();
      provision(b, { cadence: 20 });
      const a = onAir(b);
      b.clock.advance(19_999);
      assert.equal(onAir(b).counter, a.counter);
      b.clock.advance(1);
      assert.equal(onAir(b).counter, a.counter + 1);
    });

    for (const board of ['MDBT42Q', 'NRF52840DK'] as const) {
      it(`${board}: the pure-JS fallback makes tokens the protocol module verifies`, () => {
        const b = newBeacon(board);
        assert.equal(provision(b)?.ok, true);
        b.clock.advance(MINUTE);
        const t = onAir(b);
        assert.equal(t.batteryPercent, null, 'no E.getBattery on this board');
      });
    }
  });

  describe('shared test vectors', () => {
    // The beacon derives the flags itself: clock-not-set from its clock, rebooted for the first token
    // after a boot. Vectors whose flags a running beacon cannot produce together with their other
    // fields are the protocol tests' business, not the firmware's.
    const vectors = loadTokenVectors().valid.filter(
      (v) =>
        v.fields.clockNotSet === v.fields.unixSeconds < 1_600_000_000 &&
        v.fields.counter > 0 &&
        v.fields.unixSeconds >= 1_600_000_000,
    );

    it('covers most of the valid vectors', () => {
      assert.ok(vectors.length >= 10, `only ${vectors.length}`);
    });

    for (const v of vectors) {
      it(`reproduces "${v.name}" when E.hwRand() yields its IV`, () => {
        const b = newBeacon('PUCKJS', { battery: v.fields.batteryPercent });
        // Provisioned with the vector's key, and a counter file whose next block starts where needed.
        const secondToken = !v.fields.rebooted;
        const start = v.fields.counter - (secondToken ? 1 : 0);
        const header = new Uint8Array(4 + 64).fill(0xff);
        new DataView(header.buffer).setUint32(0, start);
        b.device.flash.files.set('sb.ctr', header);
        b.device.flash.files.set(
          'sb.cfg',
          Buffer.from(
            JSON.stringify({ id: 'V', key: v.skBeacon, tx: 0, cadence: 60, interval: 500 }),
          ),
        );
        const tokenTime = v.fields.unixSeconds;
        if (secondToken) {
          // Booted a minute before the token's time; the first token after boot carries "rebooted".
          b.device.setClock(tokenTime - 60);
          b.device.boot();
          b.rand.push(...ivWords(v.iv));
          b.clock.advance(MINUTE);
        } else {
          b.device.setClock(tokenTime);
          b.rand.push(...ivWords(v.iv));
          b.device.boot();
        }
        assert.equal(bytesToHex(tokenOnAir(b) ?? new Uint8Array()), v.token);
      });
    }
  });

  describe('counter and flags across reboots and power loss', () => {
    it('keeps rising across soft resets and power cycles, and flags what happened', () => {
      const b = newBeacon();
      provision(b);
      let last = onAir(b).counter;
      for (let i = 0; i < 5; i++) {
        b.clock.advance(MINUTE);
        last = onAir(b, last).counter;
      }
      b.device.reset('test');
      const afterReset = onAir(b, last);
      assert.ok(afterReset.counter > last);
      assert.equal(afterReset.rebooted, true);
      assert.equal(afterReset.clockNotSet, false, 'the clock survives a soft reset');

      b.clock.advance(MINUTE);
      b.device.powerCycle();
      const token = tokenOnAir(b);
      assert.ok(token);
      // The clock restarted at zero: the backend rejects the time, but the flag and counter are signed.
      const opened = verify(b, token);
      assert.deepEqual(opened, { ok: false, reason: 'stale' });
      const fields = signedFields(token);
      assert.equal(fields.clockNotSet, true);
      assert.equal(fields.rebooted, true);
      assert.ok(fields.counter > afterReset.counter);
      b.clock.advance(MINUTE);
      const next = signedFields(tokenOnAir(b));
      assert.equal(next.rebooted, false);
      assert.equal(next.counter, fields.counter + 1);
    });

    it('writes flash about once per 1,024 tokens, not once per token', () => {
      const b = newBeacon();
      provision(b, { cadence: 5 });
      const writesAfterProvisioning = b.device.flash.writes;
      const last = onAir(b).counter;
      for (let i = 0; i < 3000; i++) b.clock.advance(5_000);
      const t = onAir(b, last);
      assert.ok(t.counter >= last + 3000);
      assert.ok(
        b.device.flash.writes - writesAfterProvisioning <= 3,
        `${b.device.flash.writes - writesAfterProvisioning} writes`,
      );
    });

    it('restarts a stalled main loop through the watchdog', () => {
      const b = newBeacon();
      provision(b, { cadence: 60 });
      const before = onAir(b).counter;
      b.device.hang();
      b.clock.advance(3 * MINUTE);
      assert.deepEqual(b.device.resets, ['watchdog']);
      const after = onAir(b, before);
      assert.equal(after.rebooted, true);
    });
  });

  describe('lock-down', () => {
    it('after lock no console input runs on any interface, also after reboots with BTN1 held', () => {
      const b = newBeacon();
      provision(b);
      assert.deepEqual(answers(b.device.console('SB.lock()')), [{ ok: true, locked: true }]);
      b.clock.advance(1000);
      assert.equal(b.device.radio.uart, false, 'BLE UART service removed');
      assert.equal(b.device.console('SB.wipe()', 'serial'), null);
      assert.equal(b.device.console('SB.provision({})', 'ble'), null);
      for (const btn1Held of [false, true]) {
        b.device.boot({ btn1Held });
        assert.equal(b.device.console('print("hello")', 'serial'), null);
        assert.equal(b.device.radio.uart, false);
        assert.ok(tokenOnAir(b), 'still broadcasting');
      }
      assert.equal(b.device.flash.files.has('sb.cfg'), true, 'key and ID kept');
    });

    it('refuses to lock a beacon that was never provisioned', () => {
      const b = newBeacon();
      assert.deepEqual(answers(b.device.console('SB.lock()')), [
        { ok: false, error: 'NOT_PROVISIONED' },
      ]);
    });
  });

  describe('wipe', () => {
    it('erases key and ID before lock, stops broadcasting after the restart, and keeps the counter rising', () => {
      const b = newBeacon();
      provision(b);
      const before = onAir(b).counter;
      assert.deepEqual(answers(b.device.console('SB.wipe()')), [{ ok: true, wiped: true }]);
      b.clock.advance(1000);
      assert.equal(b.device.flash.files.has('sb.cfg'), false);
      assert.deepEqual(b.device.radio.advertisements, []);
      assert.equal(provision(b, { key: '77'.repeat(32) })?.ok, true);
      const t = signedFields(tokenOnAir(b), '77'.repeat(32));
      assert.ok(t.counter > before);
    });
  });
});

/** The signed fields of a token, whatever its time: the key-only verification steps. */
function signedFields(token: Uint8Array | null, keyHex = KEY) {
  assert.ok(token, 'no complete token on the air');
  const opened = authenticateToken(token, nodeSuite.importKeys(hexToBytes(keyHex)));
  assert.ok(opened.ok, `token rejected: ${opened.ok ? '' : opened.reason}`);
  return opened.fields;
}
