import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { tokenAdvertisements } from '../frames/check.js';
import { TokenReassembler } from '../frames/reassembler.js';

const newToken = () => new Uint8Array(randomBytes(64));

/** Two random tokens whose IVs start alike, so their frames carry the same token ID. */
function twoTokensSharingAnId(): [Uint8Array, Uint8Array] {
  const t1 = newToken();
  const t2 = newToken();
  t2.set(t1.subarray(0, 2));
  return [t1, t2];
}

function feed(r: TokenReassembler, source: string, packets: Uint8Array[], now = 0): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const p of packets) {
    const t = r.push(source, p, now);
    if (t) out.push(t);
  }
  return out;
}

describe('TokenReassembler', () => {
  it('assembles a token from its four frames in any order, once', () => {
    const token = newToken();
    const [a, b, c, d] = tokenAdvertisements(token) as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    const r = new TokenReassembler();
    const out = feed(r, 'aa', [c, a, a, d, b, b, c, d, a]);
    assert.equal(out.length, 1);
    assert.deepEqual(out[0], token);
    assert.equal(r.stats.completed, 1);
    assert.ok(r.stats.duplicate >= 4);
  });

  it('keeps beacons apart when their frames interleave', () => {
    const r = new TokenReassembler();
    const tokens = [newToken(), newToken(), newToken()];
    const streams = tokens.map((t) => tokenAdvertisements(t));
    const out: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) {
      streams.forEach((s, b) => {
        const t = r.push(`beacon-${b}`, s[i]!, 0);
        if (t) out.push(t);
      });
    }
    assert.deepEqual(out, tokens);
  });

  it('does not combine fragments of two tokens that share a token ID', () => {
    const [t1, t2] = twoTokensSharingAnId();
    const [a1, b1] = tokenAdvertisements(t1);
    const [, , c2, d2] = tokenAdvertisements(t2);
    const r = new TokenReassembler();
    // Same source, same ID, disjoint fragments: completes, but the check refuses the mix.
    assert.deepEqual(feed(r, 'aa', [a1!, b1!, c2!, d2!]), []);
    assert.equal(r.stats.checkFailed, 1);
  });

  it('emits a later token that reuses an emitted token’s ID (regression: fuzz counterexample)', () => {
    const [t1, t2] = twoTokensSharingAnId();
    const r = new TokenReassembler();
    const f1 = tokenAdvertisements(t1);
    assert.deepEqual(feed(r, 'aa', [...f1, ...f1, ...tokenAdvertisements(t2), ...f1], 1000), [
      t1,
      t2,
    ]);
    assert.equal(r.stats.duplicate, 8);
  });

  it('lets a newer token with a reused ID replace the older half', () => {
    const [t1, t2] = twoTokensSharingAnId();
    const r = new TokenReassembler();
    const f1 = tokenAdvertisements(t1);
    const f2 = tokenAdvertisements(t2);
    assert.deepEqual(feed(r, 'aa', [f1[0]!, f1[1]!, ...f2]), [t2]);
    assert.equal(r.stats.conflict, 1);
  });

  it('drops half tokens after the timeout, judged on the clock it is given', () => {
    const r = new TokenReassembler({ pendingTimeoutMs: 1000 });
    const f = tokenAdvertisements(newToken());
    feed(r, 'aa', f.slice(0, 3), 0);
    assert.equal(r.sizes().pending, 1);
    assert.deepEqual(feed(r, 'aa', [f[3]!], 1001), []);
    assert.equal(r.stats.expired, 1);
  });

  it('bounds memory under a flood of half tokens from many sources', () => {
    const r = new TokenReassembler({ maxPending: 32, recentCapacity: 16, provenCapacity: 8 });
    for (let i = 0; i < 20_000; i++) {
      const f = tokenAdvertisements(newToken());
      r.push(`spoof-${i}`, f[i % 4]!, i);
    }
    const sizes = r.sizes();
    assert.ok(sizes.pending <= 32 && sizes.sources <= 32, JSON.stringify(sizes));
    assert.ok(r.stats.evicted > 0);
  });

  it('caps the half tokens of one source, which displaces only itself', () => {
    const r = new TokenReassembler({ maxPendingPerSource: 2 });
    feed(r, 'victim', tokenAdvertisements(newToken()).slice(0, 2));
    for (let i = 0; i < 100; i++) feed(r, 'noisy', tokenAdvertisements(newToken()).slice(0, 1));
    assert.equal(r.sizes().pending, 3);
    assert.equal(r.sizes().sources, 2);
  });

  it('keeps a proven beacon’s half token while a flood from new addresses fills the table', () => {
    const r = new TokenReassembler({ maxPending: 8 });
    feed(r, 'beacon', tokenAdvertisements(newToken())); // proven
    const next = newToken();
    const f = tokenAdvertisements(next);
    feed(r, 'beacon', f.slice(0, 2));
    for (let i = 0; i < 1000; i++) r.push(`spoof-${i}`, tokenAdvertisements(newToken())[0]!, 0);
    assert.deepEqual(feed(r, 'beacon', f.slice(2)), [next]);
  });

  it('ignores other BLE traffic and wrong types without throwing', () => {
    const r = new TokenReassembler();
    const ibeacon = Uint8Array.from([2, 1, 6, 26, 0xff, 0x4c, 0x00, 2, 21, ...new Uint8Array(23)]);
    assert.equal(r.push('x', ibeacon, 0), null);
    assert.equal(r.push(undefined as unknown as string, ibeacon, 0), null);
    assert.equal(r.push('x', 'not bytes' as unknown as Uint8Array, 0), null);
    assert.equal(r.push('x', tokenAdvertisements(newToken())[0]!, Number.NaN), null);
    assert.equal(r.stats.notOurs, 4);
  });

  it('accepts manufacturer payloads split out by the platform', () => {
    const token = newToken();
    const r = new TokenReassembler();
    const out = tokenAdvertisements(token).map((p) =>
      r.pushManufacturerPayload('aa', p.subarray(7), 0),
    );
    assert.deepEqual(out[3], token);
  });
});
