// Fallback for boards without built-in AES-CBC (espruino-facts.md §1): plain code that lowers to ES5.

// Built on first use so boards with built-in AES never spend RAM on it.
let sboxTable: Uint8Array | null = null;

function xtime(v: number): number {
  return ((v << 1) ^ (v & 0x80 ? 0x1b : 0)) & 0xff;
}

// Derived from the GF(2^8) definition: less code and flash than a 256-entry literal.
function sbox(): Uint8Array {
  if (sboxTable) return sboxTable;
  const s = new Uint8Array(256);
  let p = 1;
  let q = 1;
  do {
    // p steps through every non-zero element by multiplying by 3; q = p^-1 by dividing by 3.
    p ^= xtime(p);
    q ^= q << 1;
    q ^= q << 2;
    q ^= q << 4;
    q &= 0xff;
    if (q & 0x80) q ^= 0x09;
    // Affine map: q xor its rotations by 1..4 bits, folded back into one byte.
    const x = q ^ (q << 1) ^ (q << 2) ^ (q << 3) ^ (q << 4);
    s[p] = (x ^ (x >>> 8) ^ 0x63) & 0xff;
  } while (p !== 1);
  s[0] = 0x63;
  sboxTable = s;
  return s;
}

/** FIPS-197 key expansion: 11 round keys of 16 bytes, so many blocks can share one expansion. */
export function aes128ExpandKey(key: Uint8Array): Uint8Array {
  if (key.length !== 16) throw new Error('AES-128 key must be 16 bytes');
  const s = sbox();
  const w = new Uint8Array(176);
  for (let i = 0; i < 16; i++) w[i] = key[i] as number;
  let rcon = 1;
  for (let i = 16; i < 176; i++) {
    const j = i & 3;
    let t = w[i - 4] as number;
    if ((i & 15) < 4) {
      // First word of a round key: RotWord, SubWord, then Rcon on its first byte.
      t = s[w[i - 4 - j + ((j + 1) & 3)] as number] as number;
      if (j === 0) {
        t ^= rcon;
        rcon = xtime(rcon);
      }
    }
    w[i] = (w[i - 16] as number) ^ t;
  }
  return w;
}

/** Encrypts one 16-byte block with round keys from aes128ExpandKey. */
export function aes128EncryptBlockExpanded(roundKeys: Uint8Array, block: Uint8Array): Uint8Array {
  if (roundKeys.length !== 176) throw new Error('AES-128 round keys must be 176 bytes');
  if (block.length !== 16) throw new Error('AES block must be 16 bytes');
  const s = sbox();
  const st = new Uint8Array(16);
  const t = new Uint8Array(16);
  for (let i = 0; i < 16; i++) st[i] = (block[i] as number) ^ (roundKeys[i] as number);
  for (let r = 1; r <= 10; r++) {
    // SubBytes and ShiftRows in one pass: byte (row, col) comes from (row, col + row).
    for (let i = 0; i < 16; i++) t[i] = s[st[(i * 5) & 15] as number] as number;
    if (r < 10) {
      for (let c = 0; c < 16; c += 4) {
        const a0 = t[c] as number;
        const a1 = t[c + 1] as number;
        const a2 = t[c + 2] as number;
        const a3 = t[c + 3] as number;
        // MixColumns as 2a ^ 3b ^ c ^ d = a ^ (a^b^c^d) ^ xtime(a^b): no GF multiply needed.
        const x = a0 ^ a1 ^ a2 ^ a3;
        t[c] = a0 ^ x ^ xtime(a0 ^ a1);
        t[c + 1] = a1 ^ x ^ xtime(a1 ^ a2);
        t[c + 2] = a2 ^ x ^ xtime(a2 ^ a3);
        t[c + 3] = a3 ^ x ^ xtime(a3 ^ a0);
      }
    }
    for (let i = 0; i < 16; i++) st[i] = (t[i] as number) ^ (roundKeys[16 * r + i] as number);
  }
  return st;
}

/** AES-128 encryption of one 16-byte block (FIPS-197). */
export function aes128EncryptBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  return aes128EncryptBlockExpanded(aes128ExpandKey(key), block);
}
