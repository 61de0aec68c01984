import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { deriveKeyMaterial, nobleSuite } from '../../protocol/token/keys.js';
import { makeToken } from '../../protocol/token/make.js';
import { authenticateToken } from '../../protocol/token/open.js';
import { openBeaconKey, openDerivedKeys, sealBeaconKey, sealDerivedKeys } from '../src/kek.js';
import { KeyCache } from '../src/key-cache.js';

const fields = (counter: number) => ({
  unixSeconds: 1_800_000_000 + counter * 60,
  counter,
  batteryPercent: 80,
  clockNotSet: false,
  rebooted: false,
});

function beacon(beaconId: string, kek: Buffer) {
  const sk = new Uint8Array(randomBytes(32));
  const { kEnc, kMac } = deriveKeyMaterial(sk);
  return {
    beaconId,
    sk,
    sealed: sealBeaconKey(kek, beaconId, sk),
    sealedDerived: sealDerivedKeys(kek, beaconId, kEnc, kMac),
    token: makeToken(nobleSuite.importKeys(sk), fields(7)),
  };
}

describe('sealed derived keys (migration 004)', () => {
  const kek = randomBytes(32);

  it('open to the HKDF of SK_BEACON, only with the same KEK and beacon ID', () => {
    const b = beacon('SB-1', kek);
    const { kEnc, kMac } = deriveKeyMaterial(b.sk);
    const opened = openDerivedKeys(kek, 'SB-1', b.sealedDerived);
    assert.deepEqual(new Uint8Array(opened.kEnc), kEnc);
    assert.deepEqual(new Uint8Array(opened.kMac), kMac);
    assert.ok(!b.sealedDerived.toString('hex').includes(Buffer.from(kMac).toString('hex')));
    assert.throws(() => openDerivedKeys(kek, 'SB-2', b.sealedDerived), /unable to authenticate/i);
    assert.throws(() => openDerivedKeys(randomBytes(32), 'SB-1', b.sealedDerived));
  });

  it('never open as the other kind of key, nor after any byte is changed', () => {
    const b = beacon('SB-1', kek);
    assert.throws(() => openBeaconKey(kek, 'SB-1', b.sealedDerived), /wrong format/);
    assert.throws(() => openDerivedKeys(kek, 'SB-1', b.sealed), /wrong format/);
    for (let i = 0; i < b.sealedDerived.length; i++) {
      const bad = Buffer.from(b.sealedDerived);
      bad[i] = (bad[i] as number) ^ 0x01;
      assert.throws(() => openDerivedKeys(kek, 'SB-1', bad), `byte ${i} flipped`);
    }
    assert.throws(() => sealDerivedKeys(kek, 'SB-1', new Uint8Array(32), new Uint8Array(32)));
  });
});

describe('key cache', () => {
  const kek = randomBytes(32);

  it('verifies the same tokens from the sealed derived keys as from SK_BEACON, and refuses a neighbour', () => {
    const a = beacon('SB-A', kek);
    const b = beacon('SB-B', kek);
    const fromDerived = new KeyCache(kek).keysFor('qa', a.beaconId, a.sealed, a.sealedDerived);
    const fromSk = new KeyCache(kek).keysFor('qa', a.beaconId, a.sealed, null);
    for (const keys of [fromDerived, fromSk]) {
      const ok = authenticateToken(a.token, keys);
      assert.ok(ok.ok);
      assert.equal(ok.fields.counter, 7);
      assert.deepEqual(authenticateToken(b.token, keys), { ok: false, reason: 'tag' });
    }
  });

  it('holds at most its limit, oldest out first, and forgets an ended quarantine', () => {
    const cache = new KeyCache(kek, 2);
    const bs = ['SB-1', 'SB-2', 'SB-3'].map((id) => beacon(id, kek));
    const first = cache.keysFor('q1', 'SB-1', bs[0]!.sealed, bs[0]!.sealedDerived);
    assert.equal(cache.keysFor('q1', 'SB-1', bs[0]!.sealed, bs[0]!.sealedDerived), first);
    cache.keysFor('q2', 'SB-2', bs[1]!.sealed, bs[1]!.sealedDerived);
    cache.keysFor('q3', 'SB-3', bs[2]!.sealed, bs[2]!.sealedDerived);
    assert.equal(cache.size, 2);
    assert.notEqual(cache.keysFor('q1', 'SB-1', bs[0]!.sealed, bs[0]!.sealedDerived), first);
    cache.forget('q1');
    assert.equal(cache.size, 1);
  });

  it('throws rather than guess when a row holds a key sealed for another beacon', () => {
    const a = beacon('SB-A', kek);
    assert.throws(() => new KeyCache(kek).keysFor('q', 'SB-B', a.sealed, a.sealedDerived));
    assert.throws(() => new KeyCache(kek).keysFor('q', 'SB-B', a.sealed, null));
  });
});
