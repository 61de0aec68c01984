/**
 * `npm run bench:token`: tokens verified per second on one core, @noble against node:crypto,
 * each next to the raw primitives of the same library measured in the same run. Rounds
 * alternate between implementations so machine noise hits them alike; medians are reported.
 */
import { cbc } from '@noble/ciphers/aes.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { nodeSuite } from '../protocol/token/keys-node.js';
import {
  type BeaconKeys,
  type TokenCryptoSuite,
  deriveKeyMaterial,
  nobleSuite,
} from '../protocol/token/keys.js';
import { makeToken } from '../protocol/token/make.js';
import { authenticateToken } from '../protocol/token/open.js';
import { machine, median, opsPerSecond } from './measure.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 1000);
const BEACONS = 1000;

interface Beacon {
  sk: Uint8Array;
  kEnc: Uint8Array;
  kMac: Uint8Array;
  token: Uint8Array;
  keys: Record<string, BeaconKeys>;
}

const beacons: Beacon[] = Array.from({ length: BEACONS }, (_, i) => {
  const sk = new Uint8Array(randomBytes(32));
  const { kEnc, kMac } = deriveKeyMaterial(sk);
  const noble = nobleSuite.importKeys(sk);
  const token = makeToken(noble, {
    unixSeconds: 1_800_000_000 + i,
    counter: i,
    batteryPercent: 80,
    clockNotSet: false,
    rebooted: false,
  });
  return { sk, kEnc, kMac, token, keys: { noble, node: nodeSuite.importKeys(sk) } };
});
const at = (i: number) => beacons[i % BEACONS] as Beacon;

const cases: Record<string, (i: number) => void> = {
  'noble raw (HMAC + compare + AES-CBC block)': (i) => {
    const b = at(i);
    const tag = hmac(sha256, b.kMac, b.token.subarray(0, 32));
    if (tag[0] !== b.token[32]) throw new Error('bad tag');
    cbc(b.kEnc, b.token.subarray(0, 16), { disablePadding: true }).decrypt(
      b.token.subarray(16, 32),
    );
  },
  'noble authenticateToken': (i) => {
    const b = at(i);
    if (!authenticateToken(b.token, b.keys.noble as BeaconKeys).ok) throw new Error('rejected');
  },
  'node:crypto raw (HMAC + timingSafeEqual + AES-CBC block)': (i) => {
    const b = at(i);
    const tag = createHmac('sha256', b.kMac).update(b.token.subarray(0, 32)).digest();
    if (!timingSafeEqual(tag, b.token.subarray(32))) throw new Error('bad tag');
    const d = createDecipheriv('aes-128-cbc', b.kEnc, b.token.subarray(0, 16)).setAutoPadding(
      false,
    );
    d.update(b.token.subarray(16, 32));
    d.final();
  },
  'node:crypto authenticateToken': (i) => {
    const b = at(i);
    if (!authenticateToken(b.token, b.keys.node as BeaconKeys).ok) throw new Error('rejected');
  },
  'noble key import (HKDF ×2, per beacon)': (i) => void nobleSuite.importKeys(at(i).sk),
  'node:crypto key import (HKDF ×2, per beacon)': (i) =>
    void (nodeSuite as TokenCryptoSuite).importKeys(at(i).sk),
};

const samples: Record<string, number[]> = Object.fromEntries(
  Object.keys(cases).map((k) => [k, []]),
);
for (const fn of Object.values(cases)) opsPerSecond(fn, 200); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of Object.entries(cases)) samples[name]?.push(opsPerSecond(fn, ROUND_MS));
}

const results = Object.entries(samples).map(([name, s]) => ({
  name,
  opsPerSecond: Math.round(median(s)),
  samples: s.map(Math.round),
}));
const get = (name: string) => results.find((r) => r.name === name)?.opsPerSecond ?? NaN;
const ratios = {
  nobleVsRaw: get('noble authenticateToken') / get('noble raw (HMAC + compare + AES-CBC block)'),
  nodeVsRaw:
    get('node:crypto authenticateToken') /
    get('node:crypto raw (HMAC + timingSafeEqual + AES-CBC block)'),
  nodeVsNoble: get('node:crypto authenticateToken') / get('noble authenticateToken'),
};

const date = new Date().toISOString();
console.log(`token verification, one core — ${machine()} — ${date}`);
console.log(`${ROUNDS} rounds × ${ROUND_MS} ms, median; ${BEACONS} beacons, keys imported once\n`);
const width = Math.max(...results.map((r) => r.name.length));
for (const r of results)
  console.log(`${r.name.padEnd(width)}  ${r.opsPerSecond.toLocaleString('en-US').padStart(10)} /s`);
console.log(
  `\nnoble authenticateToken / noble raw:          ${(ratios.nobleVsRaw * 100).toFixed(0)} %`,
);
console.log(
  `node:crypto authenticateToken / node raw:     ${(ratios.nodeVsRaw * 100).toFixed(0)} %`,
);
console.log(`node:crypto / noble (authenticateToken):      ${ratios.nodeVsNoble.toFixed(2)} ×`);

mkdirSync('bench-results', { recursive: true });
writeFileSync(
  'bench-results/token.json',
  JSON.stringify(
    { date, machine: machine(), rounds: ROUNDS, roundMs: ROUND_MS, results, ratios },
    null,
    2,
  ) + '\n',
);
