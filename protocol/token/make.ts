import { randomBytes } from '@noble/hashes/utils.js';
import { assertBytes } from '../bytes.js';
import { BLOCK_LENGTH, IV_LENGTH, TOKEN_LENGTH } from './constants.js';
import { type TokenFieldsInput, encodePlaintextBlock } from './fields.js';
import type { BeaconKeys } from './keys.js';

/** Seal an already padded 16-byte block: IV ‖ AES-CBC(K_enc, IV, block) ‖ HMAC(K_mac, IV ‖ C*). */
export function sealBlock(keys: BeaconKeys, iv: Uint8Array, block: Uint8Array): Uint8Array {
  assertBytes(iv, 'iv', IV_LENGTH);
  assertBytes(block, 'block', BLOCK_LENGTH);
  const token = new Uint8Array(TOKEN_LENGTH);
  token.set(iv, 0);
  token.set(keys.encryptBlock(iv, block), IV_LENGTH);
  token.set(keys.mac(token.subarray(0, IV_LENGTH + BLOCK_LENGTH)), IV_LENGTH + BLOCK_LENGTH);
  return token;
}

/** Make MESSAGE C v1. The IV must be fresh for every token; by default it comes from the system CSPRNG. */
export function makeToken(
  keys: BeaconKeys,
  fields: TokenFieldsInput,
  iv: Uint8Array = randomBytes(IV_LENGTH),
): Uint8Array {
  return sealBlock(keys, iv, encodePlaintextBlock(fields));
}
