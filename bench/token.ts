/**
 * `npm run bench:token`: token verification on one core, @noble against node:crypto, each next to
 * the raw primitives of the same library measured in the same run; then the app backend's real
 * path per presence request — the key lookup (key-cache.ts: on a miss, open K_enc ‖ K_mac sealed
 * under the KEK; for a row from before migration 004, unseal SK_BEACON and run the HKDF) and
 * 5 × authenticateToken — warm (key cached) and cold (a miss, as at 1M quarantines uploading every
 * 5 minutes through a 10,000-key cache), against 5 × the raw primitive. Last, what a cold miss
 * would cost with the derived keys kept differently. Rounds
 * alternate between cases so machine noise hits them alike; medians of CPU time are reported.
 */
import { cbc } from '@noble/ciphers/aes.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { nodeSuite } from '../protocol/token/keys-node.js';
import {
  type BeaconKeys,
  type TokenCryptoSuite,
  deriveKeyMaterial,
  nobleSuite,
} from '../protocol/token/keys.js';
import { HKDF_INFO_ENC, HKDF_INFO_MAC } from '../protocol/token/constants.js';
import { makeToken } from '../protocol/token/make.js';
import { authenticateToken } from '../protocol/token/open.js';
import { openBeaconKey, sealBeaconKey, sealDerivedKeys } from '../app-backend/src/kek.js';
import { KeyCache } from '../app-backend/src/key-cache.js';
import { machine, median, opsPerCpuSecond } from './measure.js';
import { type Figure, atLeast, writeReport } from './report.js';

/** report.ts's helpers type their result as optional; here they always give one. */
type Target = NonNullable<Figure['target']>;

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 1000);
const BEACONS = 1000;
const TOKENS_PER_REQUEST = 5;
const TARGET = 0.8;

const kek = randomBytes(32);
const ZERO_SALT = Buffer.alloc(32);

interface Beacon {
  id: string;
  beaconId: string;
  sk: Uint8Array;
  sealed: Uint8Array;
  /** K_enc ‖ K_mac sealed under the KEK, as registration stores them since migration 004. */
  sealedDerived: Uint8Array;
  kEnc: Uint8Array;
  kMac: Uint8Array;
  tokens: Uint8Array[];
  keys: Record<'noble' | 'node', BeaconKeys>;
}

const beacons: Beacon[] = Array.from({ length: BEACONS }, (_, i) => {
  const sk = new Uint8Array(randomBytes(32));
  const { kEnc, kMac } = deriveKeyMaterial(sk);
  const noble = nobleSuite.importKeys(sk);
  const beaconId = `SB-${i}`;
  return {
    id: `q-${i}`,
    beaconId,
    sk,
    sealed: sealBeaconKey(kek, beaconId, sk),
    sealedDerived: sealDerivedKeys(kek, beaconId, kEnc, kMac),
    kEnc,
    kMac,
    tokens: Array.from({ length: TOKENS_PER_REQUEST }, (_, k) =>
      makeToken(noble, {
        unixSeconds: 1_800_000_000 + i * 60 + k,
        counter: i * 10 + k,
        batteryPercent: 80,
        clockNotSet: false,
        rebooted: false,
      }),
    ),
    keys: { noble, node: nodeSuite.importKeys(sk) },
  };
});
const at = (i: number) => beacons[i % BEACONS] as Beacon;

function verifyAll(b: Beacon, keys: BeaconKeys): void {
  for (const token of b.tokens) if (!authenticateToken(token, keys).ok) throw new Error('rejected');
}

/** Raw derived keys, no KeyObject: what a resident slab of K_enc ‖ K_mac per quarantine would hold. */
class RawNodeKeys implements BeaconKeys {
  readonly suite = 'node-raw';
  constructor(
    private readonly kEnc: Uint8Array,
    private readonly kMac: Uint8Array,
  ) {}
  mac(data: Uint8Array): Uint8Array {
    return createHmac('sha256', this.kMac).update(data).digest();
  }
  verifyMac(data: Uint8Array, tag: Uint8Array): boolean {
    return tag.length === 32 && timingSafeEqual(this.mac(data), tag);
  }
  encryptBlock(iv: Uint8Array, block: Uint8Array): Uint8Array {
    const c = createCipheriv('aes-128-cbc', this.kEnc, iv).setAutoPadding(false);
    return Buffer.concat([c.update(block), c.final()]);
  }
  decryptBlock(iv: Uint8Array, block: Uint8Array): Uint8Array {
    const d = createDecipheriv('aes-128-cbc', this.kEnc, iv).setAutoPadding(false);
    return Buffer.concat([d.update(block), d.final()]);
  }
}

const INFO_ENC_1 = Buffer.from(`${HKDF_INFO_ENC}\x01`);
const INFO_MAC_1 = Buffer.from(`${HKDF_INFO_MAC}\x01`);
/** The same K_enc and K_mac from one HKDF extract and two one-block expands, as HMACs. */
function deriveByHmac(sk: Uint8Array): { kEnc: Buffer; kMac: Buffer } {
  const prk = createHmac('sha256', ZERO_SALT).update(sk).digest();
  const kEnc = createHmac('sha256', prk).update(INFO_ENC_1).digest().subarray(0, 16);
  const kMac = createHmac('sha256', prk).update(INFO_MAC_1).digest();
  prk.fill(0);
  return { kEnc, kMac };
}
{
  const b = at(0);
  const d = deriveByHmac(b.sk);
  if (!d.kEnc.equals(b.kEnc) || !d.kMac.equals(b.kMac)) throw new Error('HMAC HKDF differs');
}

// A slab of raw derived keys, 48 bytes a quarantine (1M: 48 MB), indexed by position.
const slab = Buffer.concat(beacons.map((b) => Buffer.concat([b.kEnc, b.kMac])));
const warmCache = new KeyCache(kek, BEACONS);
// Half the beacons fit: cycling through all of them misses every time, as 1M keys cycling
// through a 100,000-key cache do.
const coldCache = new KeyCache(kek, BEACONS / 2);
const coldCacheSk = new KeyCache(kek, BEACONS / 2);
const nobleWarm = new Map(beacons.map((b) => [b.id, b.keys.noble]));

// Each case is one presence request: the same beacon's 5 tokens. "raw" is the library's primitive
// with the keys already derived, in its fastest form (node: KeyObject or raw bytes; noble: the
// HMAC key state prepared once or per call) — the bound a service path is measured against.
const nodeKeyObjects = beacons.map((b) => ({
  kEnc: createSecretKey(b.kEnc),
  kMac: createSecretKey(b.kMac),
}));
const noblePrepared = beacons.map((b) => hmac.create(sha256, b.kMac));
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- noble types HMAC over any hash
let nobleScratch: any;
type KeyLike = Uint8Array | ReturnType<typeof createSecretKey>;
function nodeRaw(kEnc: KeyLike, kMac: KeyLike, t: Uint8Array): void {
  const tag = createHmac('sha256', kMac).update(t.subarray(0, 32)).digest();
  if (!timingSafeEqual(tag, t.subarray(32))) throw new Error('bad tag');
  const d = createDecipheriv('aes-128-cbc', kEnc, t.subarray(0, 16)).setAutoPadding(false);
  d.update(t.subarray(16, 32));
  d.final();
}
function nobleRaw(b: Beacon, t: Uint8Array, prepared?: ReturnType<typeof hmac.create>): void {
  // Prepared: cloned into one scratch state, as keys.ts does; otherwise keyed on every call.
  const tag = prepared
    ? (nobleScratch = prepared._cloneInto(nobleScratch)).update(t.subarray(0, 32)).digest()
    : hmac(sha256, b.kMac, t.subarray(0, 32));
  if (tag[0] !== t[32]) throw new Error('bad tag');
  cbc(b.kEnc, t.subarray(0, 16), { disablePadding: true }).decrypt(t.subarray(16, 32));
}

const cases: Record<string, (i: number) => void> = {
  'node:crypto raw, KeyObject keys': (i) => {
    const k = nodeKeyObjects[i % BEACONS] as (typeof nodeKeyObjects)[number];
    for (const t of at(i).tokens) nodeRaw(k.kEnc, k.kMac, t);
  },
  'node:crypto raw, key bytes': (i) => {
    const b = at(i);
    for (const t of b.tokens) nodeRaw(b.kEnc, b.kMac, t);
  },
  'noble raw, HMAC key state prepared once': (i) => {
    const b = at(i);
    for (const t of b.tokens) nobleRaw(b, t, noblePrepared[i % BEACONS]);
  },
  'noble raw, HMAC keyed per call': (i) => {
    const b = at(i);
    for (const t of b.tokens) nobleRaw(b, t);
  },
  // The service's path: key-cache.ts's lookup, then the validator's loop of authenticateToken.
  'service, node:crypto, warm (key cached)': (i) => {
    const b = at(i);
    verifyAll(b, warmCache.keysFor(b.id, b.beaconId, b.sealed));
  },
  'service, node:crypto, cold (open sealed K_enc ‖ K_mac)': (i) => {
    const b = at(i);
    verifyAll(b, coldCache.keysFor(b.id, b.beaconId, b.sealed, b.sealedDerived));
  },
  'service, node:crypto, cold, row before migration 004 (unseal SK + HKDF)': (i) => {
    const b = at(i);
    verifyAll(b, coldCacheSk.keysFor(b.id, b.beaconId, b.sealed, null));
  },
  'service path on noble, warm': (i) => {
    const b = at(i);
    verifyAll(b, nobleWarm.get(b.id) as BeaconKeys);
  },
  'service path on noble, cold (unseal + import)': (i) => {
    const b = at(i);
    const sk = openBeaconKey(kek, b.beaconId, b.sealed);
    verifyAll(b, nobleSuite.importKeys(sk));
    sk.fill(0);
  },
  // What a miss could cost instead (node:crypto), each a change to key-cache.ts / keys-node.ts:
  'fix: cold, HKDF as 3 HMACs (one extract), key bytes': (i) => {
    const b = at(i);
    const sk = openBeaconKey(kek, b.beaconId, b.sealed);
    const d = deriveByHmac(sk);
    sk.fill(0);
    verifyAll(b, new RawNodeKeys(d.kEnc, d.kMac));
  },
  'fix: resident slab of raw derived keys (48 B each)': (i) => {
    const b = at(i);
    const o = (i % BEACONS) * 48;
    verifyAll(b, new RawNodeKeys(slab.subarray(o, o + 16), slab.subarray(o + 16, o + 48)));
  },
  // Parts of a miss, per beacon.
  'part: KEK unseal of SK_BEACON (AES-256-GCM)': (i) =>
    void openBeaconKey(kek, at(i).beaconId, at(i).sealed),
  'part: node:crypto key import (hkdfSync ×2 + 2 KeyObjects)': (i) =>
    void (nodeSuite as TokenCryptoSuite).importKeys(at(i).sk),
  'part: noble key import (HKDF ×2)': (i) => void nobleSuite.importKeys(at(i).sk),
};

// Every case once over every beacon: each throws if a token it should accept is refused.
for (const fn of Object.values(cases)) for (let i = 0; i < BEACONS; i++) fn(i);

const samples: Record<string, number[]> = Object.fromEntries(
  Object.keys(cases).map((k) => [k, []]),
);
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of Object.entries(cases))
    samples[name]?.push(opsPerCpuSecond(fn, ROUND_MS));
}

const results = Object.entries(samples).map(([name, s]) => ({
  name,
  opsPerSecond: Math.round(median(s)),
  samples: s.map(Math.round),
}));
const get = (prefix: string) => results.find((r) => r.name.startsWith(prefix))?.opsPerSecond ?? NaN;
const rawNode = Math.max(get('node:crypto raw, KeyObject'), get('node:crypto raw, key bytes'));
const rawNoble = Math.max(get('noble raw, HMAC key state prepared'), get('noble raw, HMAC keyed'));
const ratios = {
  nodeWarm: get('service, node:crypto, warm') / rawNode,
  nodeCold: get('service, node:crypto, cold (open') / rawNode,
  nodeColdSk: get('service, node:crypto, cold, row before') / rawNode,
  nobleWarm: get('service path on noble, warm') / rawNoble,
  nobleCold: get('service path on noble, cold') / rawNoble,
  fixHmacHkdf: get('fix: cold, HKDF as 3 HMACs') / rawNode,
  fixSlab: get('fix: resident slab') / rawNode,
  nodeOverNoble: get('service, node:crypto, warm') / get('service path on noble, warm'),
};

// What holding every quarantine's imported keys would cost (key-cache.ts with its limit raised):
// the process's growth per cached key, after a full GC when --expose-gc allows one.
const MEMORY_SAMPLE = 50_000;
const gc = (globalThis as { gc?: () => void }).gc;
const memoryPerKey = (() => {
  gc?.();
  const before = process.memoryUsage();
  const held = new KeyCache(kek, MEMORY_SAMPLE);
  for (let i = 0; i < MEMORY_SAMPLE; i++) {
    const b = at(i);
    held.keysFor(`m-${i}`, b.beaconId, b.sealed, b.sealedDerived);
  }
  gc?.();
  const after = process.memoryUsage();
  return {
    rssBytes: Math.round((after.rss - before.rss) / held.size),
    heapBytes: Math.round((after.heapUsed - before.heapUsed) / held.size),
    afterGc: gc !== undefined,
  };
})();

console.log(`token verification, one core — ${machine()} — ${new Date().toISOString()}`);
console.log(
  `${ROUNDS} rounds × ${ROUND_MS} ms, median per CPU-second; ${BEACONS} beacons; one request = ${TOKENS_PER_REQUEST} tokens of one beacon\n`,
);
const width = Math.max(...results.map((r) => r.name.length));
for (const r of results)
  console.log(
    `${r.name.padEnd(width)}  ${r.opsPerSecond.toLocaleString('en-US').padStart(10)} /s${r.name.startsWith('part:') ? '' : ` (${(r.opsPerSecond * TOKENS_PER_REQUEST).toLocaleString('en-US')} tokens/s)`}`,
  );
const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
console.log(`\nshare of the same library's raw primitive (target ≥ ${pct(TARGET)}):`);
for (const [k, v] of Object.entries(ratios))
  if (k !== 'nodeOverNoble') console.log(`  ${k.padEnd(18)} ${pct(v).padStart(6)}`);
console.log(`node:crypto / noble, service path warm: ${ratios.nodeOverNoble.toFixed(2)} ×`);
console.log(
  `memory per cached key (KeyCache, node:crypto): ${memoryPerKey.rssBytes} B RSS, ${memoryPerKey.heapBytes} B heap${memoryPerKey.afterGc ? '' : ' (no --expose-gc: rough)'}; at 1M quarantines ≈ ${memoryPerKey.rssBytes.toLocaleString('en-US')} MB; a slab of raw K_enc ‖ K_mac: 48 MB`,
);

const requests = (x: number) => Math.round(x);
const share = (measure: string, ratio: number, raw: number, label: string): Figure => ({
  measure,
  value: Math.round(ratio * 1000) / 10,
  unit: '% of raw',
  baseline: { label, value: requests(raw), unit: 'requests (5 tokens)/CPU-s' },
  target: atLeast(Math.round(ratio * 1000) / 10, TARGET * 100, '%') as Target,
});
const nodeLabel = 'node:crypto raw primitive, keys derived, same run';
const nobleLabel = '@noble raw primitive, keys derived, same run';
writeReport(
  'token',
  [
    share(
      'service verification, node:crypto, key cached (warm)',
      ratios.nodeWarm,
      rawNode,
      nodeLabel,
    ),
    share(
      'service verification, node:crypto, key-cache miss (cold: open sealed K_enc ‖ K_mac)',
      ratios.nodeCold,
      rawNode,
      nodeLabel,
    ),
    share('service path on @noble, warm', ratios.nobleWarm, rawNoble, nobleLabel),
    share('service path on @noble, cold', ratios.nobleCold, rawNoble, nobleLabel),
    share(
      'cold, a row from before migration 004 (unseal SK_BEACON + HKDF)',
      ratios.nodeColdSk,
      rawNode,
      nodeLabel,
    ),
    share('cold, if the HKDF were 3 HMACs (no KeyObject)', ratios.fixHmacHkdf, rawNode, nodeLabel),
    share('resident slab of raw derived keys (48 MB at 1M)', ratios.fixSlab, rawNode, nodeLabel),
    {
      measure: 'service path warm, node:crypto',
      value: get('service, node:crypto, warm'),
      unit: 'requests/CPU-s',
      baseline: {
        label: 'service path warm on @noble, same run',
        value: get('service path on noble, warm'),
        unit: 'requests/CPU-s',
      },
    },
    {
      measure: 'memory per cached imported key (KeyCache)',
      value: memoryPerKey.rssBytes,
      unit: 'B RSS',
      baseline: { label: 'raw K_enc ‖ K_mac in a slab', value: 48, unit: 'B' },
    },
  ],
  {
    rounds: ROUNDS,
    roundMs: ROUND_MS,
    beacons: BEACONS,
    tokensPerRequest: TOKENS_PER_REQUEST,
    results,
    ratios,
    memoryPerKey,
  },
);
