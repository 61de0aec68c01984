/**
 * Writes token-vectors.json. An independent implementation of ARCHITECTURE.md §4 on node:crypto
 * (OpenSSL), sharing no code with protocol/token, so the vectors check that code instead of
 * echoing it. Inputs come from a fixed SHA-256 chain: running it again gives the same file.
 */
import { createCipheriv, createHash, createHmac, hkdfSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { TOKEN_VECTORS_PATH } from './load.js';
import type { InvalidVector, TokenVectorFile, ValidVector } from './schema.js';

const MAX_AGE = 420;
const MAX_SKEW = 60;
const T0 = 1_790_000_000; // 2026-09-21T13:33:20Z

const seeded = (label: string, length: number): Buffer =>
  createHash('sha256').update(`smartbeacon/v1/test-vectors/${label}`).digest().subarray(0, length);

const hkdf = (sk: Buffer, info: string, length: number): Buffer =>
  Buffer.from(hkdfSync('sha256', sk, Buffer.alloc(0), info, length));

interface Plain {
  version?: number;
  unixSeconds: number;
  counter: number;
  battery: number; // raw byte: 0–100, 0xFF unknown
  flags: number;
}

function plaintextBlock(p: Plain, padOverride?: number[]): Buffer {
  const body = Buffer.alloc(11);
  body[0] = p.version ?? 1;
  body.writeUInt32BE(p.unixSeconds, 1);
  body.writeUInt32BE(p.counter, 5);
  body[9] = p.battery;
  body[10] = p.flags;
  return Buffer.concat([body, Buffer.from(padOverride ?? [5, 5, 5, 5, 5])]);
}

function seal(sk: Buffer, iv: Buffer, block: Buffer): Buffer {
  const cipher = createCipheriv(
    'aes-128-cbc',
    hkdf(sk, 'smartbeacon/v1/enc', 16),
    iv,
  ).setAutoPadding(false);
  const c = Buffer.concat([cipher.update(block), cipher.final()]);
  const tag = createHmac('sha256', hkdf(sk, 'smartbeacon/v1/mac', 32))
    .update(Buffer.concat([iv, c]))
    .digest();
  return Buffer.concat([iv, c, tag]);
}

function advertisements(token: Buffer): string[] {
  const whole = Buffer.concat([token, createHash('sha256').update(token).digest().subarray(0, 4)]);
  return [0, 1, 2, 3].map((i) =>
    Buffer.concat([
      Buffer.from([
        0x02,
        0x01,
        0x06,
        0x18,
        0xff,
        0xff,
        0xff,
        0x5b,
        0x10 | i,
        token[0] as number,
        token[1] as number,
      ]),
      whole.subarray(17 * i, 17 * i + 17),
    ]).toString('hex'),
  );
}

const valid: ValidVector[] = [];
function addValid(
  name: string,
  p: Plain,
  ctx: { receivedAt: number; clockOffsetSeconds?: number; lastCounter?: number },
  iv?: Buffer,
): void {
  const sk = seeded(`key/${name}`, 32);
  const ivBytes = iv ?? seeded(`iv/${name}`, 16);
  const block = plaintextBlock(p);
  const token = seal(sk, ivBytes, block);
  valid.push({
    name,
    ...ctx,
    skBeacon: sk.toString('hex'),
    kEnc: hkdf(sk, 'smartbeacon/v1/enc', 16).toString('hex'),
    kMac: hkdf(sk, 'smartbeacon/v1/mac', 32).toString('hex'),
    iv: ivBytes.toString('hex'),
    plaintext: block.toString('hex'),
    fields: {
      version: p.version ?? 1,
      unixSeconds: p.unixSeconds,
      counter: p.counter,
      batteryPercent: p.battery === 0xff ? null : p.battery,
      clockNotSet: (p.flags & 1) !== 0,
      rebooted: (p.flags & 2) !== 0,
    },
    token: token.toString('hex'),
    advertisements: advertisements(token),
  });
}

const at = { receivedAt: T0 };
addValid('typical', { unixSeconds: T0 - 30, counter: 1000, battery: 87, flags: 0 }, at);
addValid(
  'zero-iv-first-counter',
  { unixSeconds: T0 - 5, counter: 0, battery: 100, flags: 0 },
  at,
  Buffer.alloc(16, 0),
);
addValid(
  'ones-iv-empty-battery',
  { unixSeconds: T0, counter: 1, battery: 0, flags: 0 },
  at,
  Buffer.alloc(16, 0xff),
);
addValid('battery-unknown', { unixSeconds: T0 - 61, counter: 77_777, battery: 0xff, flags: 0 }, at);
addValid('clock-not-set-flag', { unixSeconds: T0 - 100, counter: 5, battery: 64, flags: 1 }, at);
addValid('rebooted-flag', { unixSeconds: T0 - 200, counter: 65_536, battery: 12, flags: 2 }, at);
addValid('both-flags', { unixSeconds: T0 - 1, counter: 3, battery: 50, flags: 3 }, at);
addValid('max-counter', { unixSeconds: T0 - 10, counter: 0xffff_ffff, battery: 99, flags: 0 }, at);
addValid('oldest-accepted', { unixSeconds: T0 - MAX_AGE, counter: 42, battery: 73, flags: 0 }, at);
addValid('newest-accepted', { unixSeconds: T0 + MAX_SKEW, counter: 43, battery: 73, flags: 0 }, at);
addValid(
  'fast-clock-with-learned-offset',
  { unixSeconds: T0 + 300, counter: 9_000, battery: 40, flags: 0 },
  { receivedAt: T0, clockOffsetSeconds: 300 },
);
addValid(
  'slow-clock-with-learned-offset',
  { unixSeconds: T0 - 900, counter: 9_001, battery: 40, flags: 0 },
  { receivedAt: T0, clockOffsetSeconds: -600 },
);
addValid(
  'counter-just-above-last',
  { unixSeconds: T0 - 60, counter: 1_234_568, battery: 88, flags: 0 },
  { receivedAt: T0, lastCounter: 1_234_567 },
);
addValid(
  'max-time',
  { unixSeconds: 0xffff_ffff, counter: 10, battery: 100, flags: 0 },
  { receivedAt: 0xffff_ffff - 20 },
);
addValid(
  'time-zero-unset-clock',
  { unixSeconds: 0, counter: 11, battery: 100, flags: 1 },
  { receivedAt: 0 },
);

const invalid: InvalidVector[] = [];
const base = valid[0] as ValidVector;
const baseToken = Buffer.from(base.token, 'hex');
function addInvalid(
  name: string,
  description: string,
  reason: string,
  token: Buffer,
  ctx: { receivedAt: number; lastCounter?: number } = at,
  skBeacon = base.skBeacon,
): void {
  invalid.push({ name, description, reason, ...ctx, skBeacon, token: token.toString('hex') });
}
const flip = (buf: Buffer, byte: number, bit: number): Buffer => {
  const out = Buffer.from(buf);
  out[byte] = (out[byte] as number) ^ (1 << bit);
  return out;
};
const sk = Buffer.from(base.skBeacon, 'hex');
const sealWith = (name: string, block: Buffer): Buffer =>
  seal(sk, seeded(`iv/invalid/${name}`, 16), block);
const typical: Plain = { unixSeconds: T0 - 30, counter: 2000, battery: 87, flags: 0 };

addInvalid(
  'length-short',
  'valid token with its last byte cut off (63 bytes)',
  'length',
  baseToken.subarray(0, 63),
);
addInvalid(
  'length-long',
  'valid token with one byte appended (65 bytes)',
  'length',
  Buffer.concat([baseToken, Buffer.from([0])]),
);
addInvalid('length-empty', 'no bytes at all', 'length', Buffer.alloc(0));
addInvalid(
  'bitflip-iv',
  'bit 3 of IV byte 5 flipped: the tag no longer matches',
  'tag',
  flip(baseToken, 5, 3),
);
addInvalid(
  'bitflip-ciphertext',
  'bit 0 of C* byte 7 (token byte 23) flipped',
  'tag',
  flip(baseToken, 23, 0),
);
addInvalid('bitflip-tag', 'bit 7 of the last tag byte flipped', 'tag', flip(baseToken, 63, 7));
addInvalid(
  'wrong-key',
  "a neighbouring beacon's valid token checked under this beacon's key",
  'tag',
  Buffer.from((valid[1] as ValidVector).token, 'hex'),
);
addInvalid(
  'swapped-tag',
  "this beacon's IV ‖ C* with the tag of its other token",
  'tag',
  Buffer.concat([
    baseToken.subarray(0, 32),
    seal(sk, seeded('iv/swap', 16), plaintextBlock(typical)).subarray(32),
  ]),
);
addInvalid(
  'padding-inconsistent',
  'valid tag over a block whose padding bytes are 05 05 05 05 04',
  'padding',
  sealWith('pad1', plaintextBlock(typical, [5, 5, 5, 5, 4])),
);
addInvalid(
  'padding-zero',
  'valid tag over a block ending in 0x00',
  'padding',
  sealWith('pad2', plaintextBlock(typical, [5, 5, 5, 5, 0])),
);
addInvalid(
  'padding-too-long',
  'valid tag over a block ending in 0x11 (more than a block)',
  'padding',
  sealWith('pad3', plaintextBlock(typical, [5, 5, 5, 5, 0x11])),
);
addInvalid(
  'layout-twelve-byte-plaintext',
  'valid tag and padding, but 12 plaintext bytes (4 bytes of 0x04)',
  'layout',
  sealWith(
    'lay1',
    Buffer.concat([plaintextBlock(typical).subarray(0, 11), Buffer.from([0, 4, 4, 4, 4])]),
  ),
);
addInvalid(
  'layout-empty-plaintext',
  'valid tag, a whole block of padding (0x10 × 16)',
  'layout',
  sealWith('lay2', Buffer.alloc(16, 16)),
);
addInvalid(
  'layout-battery-101',
  'valid tag and padding, battery byte 101',
  'layout',
  sealWith('lay3', plaintextBlock({ ...typical, battery: 101 })),
);
addInvalid(
  'layout-reserved-flag',
  'valid tag and padding, reserved flag bit 2 set',
  'layout',
  sealWith('lay4', plaintextBlock({ ...typical, flags: 4 })),
);
addInvalid(
  'version-2',
  'valid tag, padding and layout, version byte 0x02',
  'version',
  sealWith('ver2', plaintextBlock({ ...typical, version: 2 })),
);
addInvalid(
  'version-0',
  'valid tag, padding and layout, version byte 0x00',
  'version',
  sealWith('ver0', plaintextBlock({ ...typical, version: 0 })),
);
addInvalid(
  'stale',
  'beacon time one second older than received_at − max_age',
  'stale',
  sealWith('stale', plaintextBlock({ ...typical, unixSeconds: T0 - MAX_AGE - 1 })),
);
addInvalid(
  'stale-replayed-day-old',
  'a genuine token replayed a day after it was made',
  'stale',
  sealWith('old', plaintextBlock({ ...typical, unixSeconds: T0 - 86_400 })),
);
addInvalid(
  'future',
  'beacon time one second past received_at + max_skew',
  'future',
  sealWith('future', plaintextBlock({ ...typical, unixSeconds: T0 + MAX_SKEW + 1 })),
);
addInvalid(
  'replay-same-counter',
  'counter equal to the last accepted one',
  'replay',
  sealWith('rep1', plaintextBlock(typical)),
  { receivedAt: T0, lastCounter: typical.counter },
);
addInvalid(
  'replay-lower-counter',
  'counter below the last accepted one',
  'replay',
  sealWith('rep2', plaintextBlock(typical)),
  { receivedAt: T0, lastCounter: typical.counter + 500 },
);

const file: TokenVectorFile = {
  protocol: 'SmartBeacon token v1 (MESSAGE C)',
  description:
    'Made by protocol/vectors/generate.ts with node:crypto, independently of protocol/token. Verify each token under ' +
    'skBeacon at receivedAt with check.maxAgeSeconds, check.maxSkewSeconds, and clockOffsetSeconds / lastCounter when given. ' +
    'Byte layouts: docs/protocol.md.',
  check: { maxAgeSeconds: MAX_AGE, maxSkewSeconds: MAX_SKEW },
  valid,
  invalid,
};
writeFileSync(TOKEN_VECTORS_PATH, JSON.stringify(file, null, 2) + '\n');
console.log(
  `wrote ${valid.length} valid and ${invalid.length} invalid vectors to ${TOKEN_VECTORS_PATH}`,
);
