import { aes128EncryptBlockExpanded, aes128ExpandKey } from './crypto/aes128.js';

/** AES-128-CBC over exactly one 16-byte block; padding is the caller's (PKCS#7 done in JS). */
export type BlockCipher = (iv: Uint8Array, block: Uint8Array) => Uint8Array;

function builtinCipher(key: Uint8Array): BlockCipher {
  const aes = require('crypto').AES as NonNullable<EspruinoCrypto['AES']>;
  return function (iv, block) {
    return new Uint8Array(aes.encrypt(block, key, { iv: iv, mode: 'CBC' }));
  };
}

// Boards without built-in AES-CBC: expand the key once, then one block is IV xor P through AES.
function fallbackCipher(key: Uint8Array): BlockCipher {
  const roundKeys = aes128ExpandKey(key);
  return function (iv, block) {
    const x = new Uint8Array(16);
    for (let i = 0; i < 16; i++) x[i] = (block[i] as number) ^ (iv[i] as number);
    return aes128EncryptBlockExpanded(roundKeys, x);
  };
}

/** A ternary on the build constant, so the bundler drops the implementation a board does not use. */
export function makeBlockCipher(key: Uint8Array): BlockCipher {
  return BOARD_HAS_AES ? builtinCipher(key) : fallbackCipher(key);
}
