import { writeUint32BE } from './bytes.js';
import { type BlockCipher, makeBlockCipher } from './cipher.js';
import { type HmacKey, hkdf, hmac, hmacKey } from './hmac.js';

// Token v1 on the beacon (docs/protocol.md §1–2); the constants mirror protocol/token/constants.ts.

export interface TokenKeys {
  readonly encrypt: BlockCipher;
  readonly mac: HmacKey;
}

/** K_enc and K_mac by HKDF from SK_BEACON, once at boot or provisioning. */
export function deriveTokenKeys(skBeacon: Uint8Array): TokenKeys {
  return {
    encrypt: makeBlockCipher(hkdf(skBeacon, 'smartbeacon/v1/enc', 16)),
    mac: hmacKey(hkdf(skBeacon, 'smartbeacon/v1/mac', 32)),
  };
}

/** MESSAGE C = IV ‖ AES-128-CBC(K_enc, IV, PKCS#7(P)) ‖ HMAC-SHA256(K_mac, IV ‖ C*). */
export function makeToken(
  keys: TokenKeys,
  iv: Uint8Array,
  unixSeconds: number,
  counter: number,
  battery: number,
  flags: number,
): Uint8Array {
  const block = new Uint8Array(16);
  block[0] = 1;
  writeUint32BE(block, 1, unixSeconds);
  writeUint32BE(block, 5, counter);
  block[9] = battery;
  block[10] = flags;
  block.fill(5, 11);
  const token = new Uint8Array(64);
  token.set(iv, 0);
  token.set(keys.encrypt(iv, block), 16);
  token.set(hmac(keys.mac, token.subarray(0, 32)), 32);
  return token;
}

/** 16 bytes from the hardware RNG: four E.hwRand() words (facts §3; Math.random is not crypto-grade). */
export function hardwareIv(): Uint8Array {
  const iv = new Uint8Array(16);
  for (let i = 0; i < 4; i++) writeUint32BE(iv, 4 * i, E.hwRand() >>> 0);
  return iv;
}
