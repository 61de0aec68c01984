import { cbc } from '@noble/ciphers/aes.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { type _HMAC, hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { assertBytes, constantTimeEqual } from '../bytes.js';
import {
  BEACON_KEY_LENGTH,
  BLOCK_LENGTH,
  HKDF_INFO_ENC,
  HKDF_INFO_MAC,
  IV_LENGTH,
  K_ENC_LENGTH,
  K_MAC_LENGTH,
  TAG_LENGTH,
} from './constants.js';

/**
 * A beacon's derived keys with the primitives the token needs. Implementations differ only in
 * which library does the work, so one test suite runs against all of them.
 */
export interface BeaconKeys {
  readonly suite: string;
  /** HMAC-SHA256(K_mac, data), 32 bytes. */
  mac(data: Uint8Array): Uint8Array;
  /** Constant-time check that `tag` is HMAC-SHA256(K_mac, data). */
  verifyMac(data: Uint8Array, tag: Uint8Array): boolean;
  /** AES-128-CBC of exactly one block, no padding. */
  encryptBlock(iv: Uint8Array, block: Uint8Array): Uint8Array;
  decryptBlock(iv: Uint8Array, block: Uint8Array): Uint8Array;
}

export interface TokenCryptoSuite {
  readonly name: string;
  /** Derive K_enc and K_mac from SK_BEACON once; reuse the result for every token of that beacon. */
  importKeys(skBeacon: Uint8Array): BeaconKeys;
}

const encoder = new TextEncoder();

/** K_enc = HKDF(SK_BEACON, info "smartbeacon/v1/enc", 16), K_mac = HKDF(…, "…/mac", 32); empty salt. */
export function deriveKeyMaterial(skBeacon: Uint8Array): { kEnc: Uint8Array; kMac: Uint8Array } {
  assertBytes(skBeacon, 'skBeacon', BEACON_KEY_LENGTH);
  return {
    kEnc: hkdf(sha256, skBeacon, undefined, encoder.encode(HKDF_INFO_ENC), K_ENC_LENGTH),
    kMac: hkdf(sha256, skBeacon, undefined, encoder.encode(HKDF_INFO_MAC), K_MAC_LENGTH),
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- noble types HMAC over any hash
type Hmac = _HMAC<any>;

class NobleBeaconKeys implements BeaconKeys {
  readonly suite = 'noble';
  readonly #kEnc: Uint8Array;
  // Keyed HMAC state computed once; each MAC clones it instead of re-hashing the padded key.
  readonly #keyed: Hmac;
  #scratch: Hmac | undefined;

  constructor(skBeacon: Uint8Array) {
    const { kEnc, kMac } = deriveKeyMaterial(skBeacon);
    this.#kEnc = kEnc;
    this.#keyed = hmac.create(sha256, kMac);
    kMac.fill(0);
  }

  mac(data: Uint8Array): Uint8Array {
    const h: Hmac = this.#keyed._cloneInto(this.#scratch);
    this.#scratch = h;
    return h.update(data).digest();
  }

  verifyMac(data: Uint8Array, tag: Uint8Array): boolean {
    return tag.length === TAG_LENGTH && constantTimeEqual(this.mac(data), tag);
  }

  encryptBlock(iv: Uint8Array, block: Uint8Array): Uint8Array {
    assertBytes(iv, 'iv', IV_LENGTH);
    assertBytes(block, 'block', BLOCK_LENGTH);
    return cbc(this.#kEnc, iv, { disablePadding: true }).encrypt(block);
  }

  decryptBlock(iv: Uint8Array, block: Uint8Array): Uint8Array {
    assertBytes(iv, 'iv', IV_LENGTH);
    assertBytes(block, 'block', BLOCK_LENGTH);
    return cbc(this.#kEnc, iv, { disablePadding: true }).decrypt(block);
  }
}

/** Pure-JS implementation (@noble): runs anywhere JavaScript runs, audited, the default. */
export const nobleSuite: TokenCryptoSuite = {
  name: 'noble',
  importKeys: (skBeacon) => new NobleBeaconKeys(skBeacon),
};

/** Derive a beacon's keys with the default suite. */
export function importBeaconKeys(skBeacon: Uint8Array): BeaconKeys {
  return nobleSuite.importKeys(skBeacon);
}
