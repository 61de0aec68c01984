import { ascii, concat } from './bytes.js';
import { sha256 } from './crypto/sha256.js';

function builtinSha256(data: Uint8Array): Uint8Array {
  return new Uint8Array((require('crypto').SHA256 as (m: Uint8Array) => ArrayBuffer)(data));
}

/** SHA-256 from the board's crypto library where it has one, else the pure-JS fallback (dropped by the bundler). */
export function hash(data: Uint8Array): Uint8Array {
  return BOARD_HAS_SHA256 ? builtinSha256(data) : sha256(data);
}

/** HMAC-SHA256 key state: the key zero-padded to 64 bytes and xored with ipad/opad, made once. */
export interface HmacKey {
  readonly inner: Uint8Array;
  readonly outer: Uint8Array;
}

// Explicit 64-byte pad: Espruino's typed-array constructor does not bounds-check (facts §2).
export function hmacKey(key: Uint8Array): HmacKey {
  const inner = new Uint8Array(64);
  const outer = new Uint8Array(64);
  for (let i = 0; i < 64; i++) {
    const k = i < key.length ? (key[i] as number) : 0;
    inner[i] = k ^ 0x36;
    outer[i] = k ^ 0x5c;
  }
  return { inner: inner, outer: outer };
}

export function hmac(key: HmacKey, message: Uint8Array): Uint8Array {
  return hash(concat(key.outer, hash(concat(key.inner, message))));
}

/** HKDF-SHA256 (RFC 5869) with an empty salt, for outputs of at most 32 bytes. */
export function hkdf(ikm: Uint8Array, info: string, length: number): Uint8Array {
  const prk = hmac(hmacKey(new Uint8Array(32)), ikm);
  const t1 = hmac(hmacKey(prk), concat(ascii(info), new Uint8Array([1])));
  return t1.subarray(0, length);
}
