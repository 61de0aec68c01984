import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const VERSION = 1;

/**
 * SK_BEACON at rest: version ‖ 12-byte nonce ‖ AES-256-GCM ciphertext ‖ 16-byte tag, with the
 * beacon ID as associated data so a sealed key cannot be moved to another beacon's row.
 */
export function sealBeaconKey(kek: Buffer, beaconId: string, skBeacon: Uint8Array): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce).setAAD(Buffer.from(beaconId, 'utf8'));
  const sealed = Buffer.concat([cipher.update(skBeacon), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), nonce, sealed, cipher.getAuthTag()]);
}

export function openBeaconKey(kek: Buffer, beaconId: string, sealed: Uint8Array): Uint8Array {
  const b = Buffer.from(sealed);
  if (b.length !== 1 + 12 + 32 + 16 || b[0] !== VERSION)
    throw new Error('sealed beacon key has the wrong format');
  const decipher = createDecipheriv('aes-256-gcm', kek, b.subarray(1, 13)).setAAD(
    Buffer.from(beaconId, 'utf8'),
  );
  decipher.setAuthTag(b.subarray(45));
  return new Uint8Array(Buffer.concat([decipher.update(b.subarray(13, 45)), decipher.final()]));
}
