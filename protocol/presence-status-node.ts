import { createCipheriv, createHmac, randomFillSync } from 'node:crypto';
import {
  type PresenceStatus,
  STATUS_AAD,
  STATUS_LENGTH,
  encodeStatusPlaintext,
} from './presence-status.js';

// The server's side of presence-status.ts on OpenSSL: one answer per presence request, so every
// microsecond here is paid ~30,000 times a second at national scale (docs/BENCHMARKS.md).

const NONCE_LENGTH = 12;
/** HKDF's empty salt is HashLen zero bytes (RFC 5869 §2.2). */
const ZERO_SALT = Buffer.alloc(32);
/** The one expand block: T(1) = HMAC(PRK, info ‖ 0x01); L = 32 needs no second. */
const INFO_BLOCK_1 = Buffer.concat([STATUS_AAD, Buffer.from([1])]);

/**
 * HKDF-SHA256(SK_T_PAST, salt empty, info STATUS_AAD, L 32) as its two HMACs: the same key as
 * `statusKey`, at less than half the cost of `hkdfSync`, which builds an OpenSSL KDF context per call.
 */
export function statusKeyNode(skTPast: Uint8Array): Buffer {
  const prk = createHmac('sha256', ZERO_SALT).update(skTPast).digest();
  const key = createHmac('sha256', prk).update(INFO_BLOCK_1).digest();
  prk.fill(0);
  return key;
}

const SLAB = 16 * 1024;
let slab = Buffer.alloc(0);
let used = 0;

/**
 * `n` fresh random bytes from a slab filled by one `randomFillSync` per 16 KiB: a call per answer
 * costs more than the rest of a dummy's answer. Every byte is handed out once; a used-up slab is
 * replaced, never refilled, so a response still being written keeps its bytes.
 */
export function pooledRandom(n: number): Buffer {
  if (used + n > slab.length) {
    slab = randomFillSync(Buffer.allocUnsafeSlow(Math.max(SLAB, n)));
    used = 0;
  }
  const out = slab.subarray(used, used + n);
  used += n;
  return out;
}

/** What dummy and unknown keys get: the answer's 64 bytes, random. */
export function randomStatusNode(): Buffer {
  return pooledRandom(STATUS_LENGTH);
}

/**
 * The same seal as `sealStatus` (byte for byte: protocol/test/presence-status.test.ts), for the
 * app backend: answer = nonce (12) ‖ AES-256-GCM(statusKey, nonce, plaintext 36, aad) ‖ tag (16).
 */
export function sealStatusNode(
  skTPast: Uint8Array,
  status: PresenceStatus,
  nonce: Uint8Array = pooledRandom(NONCE_LENGTH),
): Buffer {
  const key = statusKeyNode(skTPast);
  const cipher = createCipheriv('aes-256-gcm', key, nonce).setAAD(STATUS_AAD);
  const out = Buffer.allocUnsafe(STATUS_LENGTH);
  out.set(nonce, 0);
  const sealed = cipher.update(encodeStatusPlaintext(status));
  cipher.final();
  sealed.copy(out, NONCE_LENGTH);
  cipher.getAuthTag().copy(out, NONCE_LENGTH + sealed.length);
  key.fill(0);
  return out;
}
