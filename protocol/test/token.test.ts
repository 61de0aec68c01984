import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bytesToHex, hexToBytes } from '../bytes.js';
import { nodeSuite } from '../token/keys-node.js';
import { deriveKeyMaterial, nobleSuite } from '../token/keys.js';
import { makeToken } from '../token/make.js';
import { authenticateToken, openToken } from '../token/open.js';
import { loadTokenVectors } from '../vectors/load.js';
import { describeTokenSuite } from './token-suite.js';

describeTokenSuite(nobleSuite);
describeTokenSuite(nodeSuite);

describe('token implementations agree', () => {
  it('derive the K_enc and K_mac of the vectors (noble HKDF against OpenSSL’s)', () => {
    for (const v of loadTokenVectors().valid) {
      const { kEnc, kMac } = deriveKeyMaterial(hexToBytes(v.skBeacon));
      assert.equal(bytesToHex(kEnc), v.kEnc);
      assert.equal(bytesToHex(kMac), v.kMac);
    }
  });

  it('open each other’s tokens', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        (sk, counter) => {
          const fields = {
            unixSeconds: 1_800_000_000,
            counter,
            batteryPercent: 50,
            clockNotSet: false,
            rebooted: true,
          };
          const byNoble = makeToken(nobleSuite.importKeys(sk), fields);
          const byNode = makeToken(nodeSuite.importKeys(sk), fields);
          assert.equal(authenticateToken(byNoble, nodeSuite.importKeys(sk)).ok, true);
          assert.equal(authenticateToken(byNode, nobleSuite.importKeys(sk)).ok, true);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('makeToken input checks', () => {
  const keys = nobleSuite.importKeys(new Uint8Array(32));
  const good = {
    unixSeconds: 1,
    counter: 1,
    batteryPercent: 1,
    clockNotSet: false,
    rebooted: false,
  };

  it('names the field that is out of range', () => {
    assert.throws(() => makeToken(keys, { ...good, counter: 2 ** 32 }), {
      name: 'RangeError',
      message: /counter/,
    });
    assert.throws(() => makeToken(keys, { ...good, unixSeconds: -1 }), {
      name: 'RangeError',
      message: /unixSeconds/,
    });
    assert.throws(() => makeToken(keys, { ...good, batteryPercent: 101 }), {
      name: 'RangeError',
      message: /batteryPercent/,
    });
    assert.throws(() => makeToken(keys, { ...good, counter: 1.5 }), {
      name: 'TypeError',
      message: /counter/,
    });
    assert.throws(() => makeToken(keys, good, new Uint8Array(15)), {
      name: 'RangeError',
      message: /iv/,
    });
  });

  it('refuses a beacon key that is not 32 bytes', () => {
    assert.throws(() => nobleSuite.importKeys(new Uint8Array(16)), {
      name: 'RangeError',
      message: /skBeacon/,
    });
    assert.throws(() => nodeSuite.importKeys(new Uint8Array(33)), {
      name: 'RangeError',
      message: /skBeacon/,
    });
  });

  it('draws a fresh IV for every token by default', () => {
    const a = makeToken(keys, good);
    const b = makeToken(keys, good);
    assert.notDeepEqual(a.subarray(0, 16), b.subarray(0, 16));
  });
});

describe('openToken verification order', () => {
  const keys = nobleSuite.importKeys(new Uint8Array(32).fill(1));
  const now = 1_800_000_000;
  const check = { receivedAt: now, maxAgeSeconds: 420, maxSkewSeconds: 60 };
  const make = (unixSeconds: number, counter: number) =>
    makeToken(keys, {
      unixSeconds,
      counter,
      batteryPercent: 10,
      clockNotSet: false,
      rebooted: false,
    });

  it('reports stale before replay when both apply', () => {
    assert.deepEqual(openToken(make(now - 1000, 1), keys, { ...check, lastCounter: 5 }), {
      ok: false,
      reason: 'stale',
    });
  });

  it('uses the caller’s replay predicate when given', () => {
    const seen = new Set([7]);
    const isReplay = (f: { counter: number }) => seen.has(f.counter);
    assert.deepEqual(openToken(make(now, 7), keys, { ...check, isReplay }), {
      ok: false,
      reason: 'replay',
    });
    assert.equal(openToken(make(now, 6), keys, { ...check, isReplay, lastCounter: 100 }).ok, true);
  });
});
