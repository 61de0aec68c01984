import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** SK_BEACON (32 bytes). */
const VERSION_SK = 1;
/** K_enc ‖ K_mac (16 + 32 bytes), derived once at registration so a key-cache miss skips the HKDF. */
const VERSION_DERIVED = 2;
const NONCE = 12;
const TAG = 16;

/**
 * A secret at rest: version ‖ 12-byte nonce ‖ AES-256-GCM ciphertext ‖ 16-byte tag, with the
 * version and beacon ID as associated data, so a sealed key moves neither to another beacon's row
 * nor from one kind of key to the other.
 */
function seal(kek: Buffer, version: number, beaconId: string, secret: Uint8Array): Buffer {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce).setAAD(aad(version, beaconId));
  const sealed = Buffer.concat([cipher.update(secret), cipher.final()]);
  return Buffer.concat([Buffer.from([version]), nonce, sealed, cipher.getAuthTag()]);
}

function open(
  kek: Buffer,
  version: number,
  length: number,
  beaconId: string,
  sealed: Uint8Array,
): Buffer {
  const b = Buffer.isBuffer(sealed) ? sealed : Buffer.from(sealed);
  if (b.length !== 1 + NONCE + length + TAG || b[0] !== version)
    throw new Error('sealed key has the wrong format');
  const decipher = createDecipheriv('aes-256-gcm', kek, b.subarray(1, 1 + NONCE)).setAAD(
    aad(version, beaconId),
  );
  decipher.setAuthTag(b.subarray(1 + NONCE + length));
  // A memory of its own: Buffer.concat would hand out a slice of the shared 8 KB pool, and a
  // cached key would keep the whole slab alive.
  const plain = decipher.update(b.subarray(1 + NONCE, 1 + NONCE + length));
  decipher.final();
  return plain;
}

// Version 1 was sealed with the bare beacon ID as associated data; kept so its rows still open.
const aad = (version: number, beaconId: string): Buffer =>
  version === VERSION_SK
    ? Buffer.from(beaconId, 'utf8')
    : Buffer.concat([Buffer.from([version]), Buffer.from(beaconId, 'utf8')]);

export function sealBeaconKey(kek: Buffer, beaconId: string, skBeacon: Uint8Array): Buffer {
  return seal(kek, VERSION_SK, beaconId, skBeacon);
}

export function openBeaconKey(kek: Buffer, beaconId: string, sealed: Uint8Array): Uint8Array {
  return new Uint8Array(open(kek, VERSION_SK, 32, beaconId, sealed));
}

/** K_enc ‖ K_mac, as the validator needs them. */
export function sealDerivedKeys(
  kek: Buffer,
  beaconId: string,
  kEnc: Uint8Array,
  kMac: Uint8Array,
): Buffer {
  if (kEnc.length !== 16 || kMac.length !== 32) throw new RangeError('K_enc is 16 bytes, K_mac 32');
  return seal(kek, VERSION_DERIVED, beaconId, Buffer.concat([kEnc, kMac]));
}

/** K_enc and K_mac as two views of one fresh 48-byte buffer. */
export function openDerivedKeys(
  kek: Buffer,
  beaconId: string,
  sealed: Uint8Array,
): { kEnc: Buffer; kMac: Buffer } {
  const k = open(kek, VERSION_DERIVED, 48, beaconId, sealed);
  return { kEnc: k.subarray(0, 16), kMac: k.subarray(16) };
}
