import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import {
  type PresenceStatus,
  STATUS_AAD,
  STATUS_LENGTH,
  encodeStatusPlaintext,
} from './presence-status.js';

const EMPTY = new Uint8Array(0);

/**
 * The same seal as `sealStatus`, on OpenSSL: the app backend seals one status per presence
 * request (dummies included), so this is on the hot path. Byte-for-byte equal to the @noble one.
 */
export function sealStatusNode(
  skTPast: Uint8Array,
  status: PresenceStatus,
  nonce: Uint8Array = randomBytes(12),
): Buffer {
  const key = Buffer.from(hkdfSync('sha256', skTPast, EMPTY, STATUS_AAD, 32));
  const cipher = createCipheriv('aes-256-gcm', key, nonce).setAAD(STATUS_AAD);
  const sealed = Buffer.concat([
    nonce,
    cipher.update(encodeStatusPlaintext(status)),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  key.fill(0);
  return sealed.length === STATUS_LENGTH ? sealed : Buffer.alloc(STATUS_LENGTH);
}
