import {
  type KeyObject,
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
} from 'node:crypto';

// How SK_BEACON travels from the officer's provisioning tool to the health authority: sealed to
// the authority's ES256 (P-256) public key, so neither the officer's disk nor the police backend
// ever holds it in the clear. ECIES: ephemeral ECDH P-256 → HKDF-SHA256 → AES-256-GCM.

export const SEALED_KEY_FORMAT = 'smartbeacon-sealed-key/v1';
const INFO = 'smartbeacon/v1/sealed-beacon-key';

export interface SealedBeaconKey {
  readonly format: typeof SEALED_KEY_FORMAT;
  readonly beaconId: string;
  /** The sender's one-time public key, SPKI DER, base64 (also the HKDF salt). */
  readonly ephemeralPublicKey: string;
  readonly nonce: string;
  /** AES-256-GCM of SK_BEACON (beacon ID as associated data) followed by the 16-byte tag, base64. */
  readonly ciphertext: string;
  readonly createdAt: string;
}

export class SealedKeyError extends Error {
  readonly code = 'SEALED_KEY_INVALID';
}

function wrappingKey(
  privateKey: KeyObject,
  publicKey: KeyObject,
  ephemeralDer: Buffer,
  beaconId: string,
): Buffer {
  return Buffer.from(
    hkdfSync(
      'sha256',
      diffieHellman({ privateKey, publicKey }),
      ephemeralDer,
      `${INFO}/${beaconId}`,
      32,
    ),
  );
}

/** Seal SK_BEACON for the holder of `recipientPublicKeyPem` (the health authority's key). */
export function sealBeaconKey(
  recipientPublicKeyPem: string,
  beaconId: string,
  skBeacon: Uint8Array,
  now = new Date(),
): SealedBeaconKey {
  if (skBeacon.length !== 32) throw new RangeError('SK_BEACON must be 32 bytes');
  const recipient = createPublicKey(recipientPublicKeyPem);
  if (
    recipient.asymmetricKeyType !== 'ec' ||
    recipient.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
  ) {
    throw new TypeError('the recipient key must be a P-256 public key');
  }
  const ephemeral = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ephemeralDer = ephemeral.publicKey.export({ type: 'spki', format: 'der' });
  const key = wrappingKey(ephemeral.privateKey, recipient, ephemeralDer, beaconId);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce).setAAD(Buffer.from(beaconId, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(skBeacon), cipher.final(), cipher.getAuthTag()]);
  key.fill(0);
  return {
    format: SEALED_KEY_FORMAT,
    beaconId,
    ephemeralPublicKey: ephemeralDer.toString('base64'),
    nonce: nonce.toString('base64'),
    ciphertext: ciphertext.toString('base64'),
    createdAt: now.toISOString(),
  };
}

/** Open a sealed key with the health authority's private key (PEM); a wrong key or any tampering throws. */
export function openSealedBeaconKey(
  privateKeyPem: string,
  sealed: unknown,
): { beaconId: string; skBeacon: Uint8Array } {
  const s = sealed as Partial<SealedBeaconKey> | null;
  if (
    !s ||
    s.format !== SEALED_KEY_FORMAT ||
    typeof s.beaconId !== 'string' ||
    typeof s.ephemeralPublicKey !== 'string' ||
    typeof s.nonce !== 'string' ||
    typeof s.ciphertext !== 'string'
  ) {
    throw new SealedKeyError('not a SmartBeacon sealed key file');
  }
  try {
    const ephemeralDer = Buffer.from(s.ephemeralPublicKey, 'base64');
    const key = wrappingKey(
      createPrivateKey(privateKeyPem),
      createPublicKey({ key: ephemeralDer, format: 'der', type: 'spki' }),
      ephemeralDer,
      s.beaconId,
    );
    const data = Buffer.from(s.ciphertext, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(s.nonce, 'base64')).setAAD(
      Buffer.from(s.beaconId, 'utf8'),
    );
    decipher.setAuthTag(data.subarray(data.length - 16));
    const skBeacon = new Uint8Array(
      Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]),
    );
    key.fill(0);
    if (skBeacon.length !== 32) throw new Error('length');
    return { beaconId: s.beaconId, skBeacon };
  } catch {
    throw new SealedKeyError(
      'the sealed key does not open with this key (wrong key or tampered file)',
    );
  }
}
