import {
  type KeyObject,
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  hkdfSync,
  timingSafeEqual,
} from 'node:crypto';
import { assertBytes } from '../bytes.js';
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
import type { BeaconKeys, TokenCryptoSuite } from './keys.js';

function toBytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** A KeyObject, or the raw bytes: OpenSSL is as fast with either, and bytes cost far less memory. */
type NodeKey = KeyObject | Uint8Array;

class NodeBeaconKeys implements BeaconKeys {
  readonly suite = 'node';
  readonly #kEnc: NodeKey;
  readonly #kMac: NodeKey;

  constructor(kEnc: NodeKey, kMac: NodeKey) {
    this.#kEnc = kEnc;
    this.#kMac = kMac;
  }

  mac(data: Uint8Array): Uint8Array {
    return toBytes(createHmac('sha256', this.#kMac).update(data).digest());
  }

  verifyMac(data: Uint8Array, tag: Uint8Array): boolean {
    return tag.length === TAG_LENGTH && timingSafeEqual(this.mac(data), tag);
  }

  encryptBlock(iv: Uint8Array, block: Uint8Array): Uint8Array {
    assertBytes(iv, 'iv', IV_LENGTH);
    assertBytes(block, 'block', BLOCK_LENGTH);
    const c = createCipheriv('aes-128-cbc', this.#kEnc, iv).setAutoPadding(false);
    return toBytes(Buffer.concat([c.update(block), c.final()]));
  }

  decryptBlock(iv: Uint8Array, block: Uint8Array): Uint8Array {
    assertBytes(iv, 'iv', IV_LENGTH);
    assertBytes(block, 'block', BLOCK_LENGTH);
    const d = createDecipheriv('aes-128-cbc', this.#kEnc, iv).setAutoPadding(false);
    return toBytes(Buffer.concat([d.update(block), d.final()]));
  }
}

/** OpenSSL through node:crypto: uses the CPU's AES instructions; Node only. */
export const nodeSuite: TokenCryptoSuite = {
  name: 'node',
  importKeys: (skBeacon) => {
    assertBytes(skBeacon, 'skBeacon', BEACON_KEY_LENGTH);
    // Derived independently of the noble suite (OpenSSL's HKDF), so the two cross-check each other.
    const salt = new Uint8Array(0);
    return new NodeBeaconKeys(
      createSecretKey(
        new Uint8Array(hkdfSync('sha256', skBeacon, salt, HKDF_INFO_ENC, K_ENC_LENGTH)),
      ),
      createSecretKey(
        new Uint8Array(hkdfSync('sha256', skBeacon, salt, HKDF_INFO_MAC, K_MAC_LENGTH)),
      ),
    );
  },
};

/** Keys already derived (K_enc 16 bytes, K_mac 32), held as bytes: no HKDF, no KeyObject. */
export function nodeKeysFromDerived(kEnc: Uint8Array, kMac: Uint8Array): BeaconKeys {
  assertBytes(kEnc, 'kEnc', K_ENC_LENGTH);
  assertBytes(kMac, 'kMac', K_MAC_LENGTH);
  return new NodeBeaconKeys(kEnc, kMac);
}
