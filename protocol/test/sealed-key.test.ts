import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { openSealedBeaconKey, sealBeaconKey } from '../sealed-key.js';

const pair = () =>
  generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });

describe('sealed beacon key (provisioning tool → health authority)', () => {
  const authority = pair();

  it('opens only with the authority’s private key and holds no key in the clear', () => {
    const sk = new Uint8Array(randomBytes(32));
    const sealed = sealBeaconKey(authority.publicKey, 'SB-1', sk);
    assert.ok(!JSON.stringify(sealed).includes(Buffer.from(sk).toString('hex')));
    assert.ok(!JSON.stringify(sealed).includes(Buffer.from(sk).toString('base64')));
    assert.deepEqual(openSealedBeaconKey(authority.privateKey, sealed), {
      beaconId: 'SB-1',
      skBeacon: sk,
    });
    assert.throws(() => openSealedBeaconKey(pair().privateKey, sealed), {
      code: 'SEALED_KEY_INVALID',
    });
  });

  it('refuses any change to the file, including moving it to another beacon', () => {
    const sealed = sealBeaconKey(authority.publicKey, 'SB-1', new Uint8Array(randomBytes(32)));
    fc.assert(
      fc.property(
        fc.constantFrom('beaconId', 'nonce', 'ciphertext', 'ephemeralPublicKey'),
        fc.nat(),
        (field, at) => {
          const value = String(sealed[field as keyof typeof sealed]);
          const bytes = Buffer.from(value, field === 'beaconId' ? 'utf8' : 'base64');
          bytes[at % bytes.length] = (bytes[at % bytes.length] as number) ^ 1;
          const changed = {
            ...sealed,
            [field]: bytes.toString(field === 'beaconId' ? 'utf8' : 'base64'),
          };
          assert.throws(() => openSealedBeaconKey(authority.privateKey, changed), {
            code: 'SEALED_KEY_INVALID',
          });
        },
      ),
      { numRuns: 100 },
    );
    assert.throws(
      () => openSealedBeaconKey(authority.privateKey, { format: 'other' }),
      /not a SmartBeacon sealed key/,
    );
  });

  it('refuses a recipient key that is not P-256', () => {
    const rsa = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    assert.throws(() => sealBeaconKey(rsa.publicKey, 'SB-1', new Uint8Array(32)), /P-256/);
  });
});
