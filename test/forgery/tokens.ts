/** Every token that differs from `token` in exactly one bit: 8 × length of them, bit 0 first. */
export function everyBitFlip(token: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let bit = 0; bit < token.length * 8; bit++) {
    const flipped = Uint8Array.from(token);
    flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (0x80 >> (bit & 7));
    out.push(flipped);
  }
  return out;
}
