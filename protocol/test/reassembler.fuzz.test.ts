import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { bytesToHex } from '../bytes.js';
import { tokenAdvertisements } from '../frames/check.js';
import { TokenReassembler } from '../frames/reassembler.js';

const MAX_PENDING = 12;

/** One thing a scanner may hear: a real frame, or garbage derived from one. */
type Heard = { source: number; packet: Uint8Array };

const tokenArb = fc.uint8Array({ minLength: 64, maxLength: 64 });

const scenarioArb = fc
  .record({
    beacons: fc.array(fc.array(tokenArb, { minLength: 1, maxLength: 3 }), {
      minLength: 1,
      maxLength: 5,
    }),
    garbage: fc.array(
      fc.oneof(
        fc.record({
          kind: fc.constant('random' as const),
          source: fc.nat(7),
          bytes: fc.uint8Array({ maxLength: 40 }),
        }),
        fc.record({
          kind: fc.constant('truncate' as const),
          source: fc.nat(7),
          cut: fc.nat(30),
          pick: fc.nat(),
        }),
        fc.record({
          kind: fc.constant('flip' as const),
          source: fc.nat(7),
          at: fc.nat(27),
          bit: fc.nat(7),
          pick: fc.nat(),
        }),
        fc.record({ kind: fc.constant('foreign' as const), source: fc.nat(7), pick: fc.nat() }),
      ),
      { maxLength: 12 },
    ),
    seed: fc.nat(),
  })
  .map(({ beacons, garbage, seed }) => {
    const sent = new Set<string>();
    const heard: Heard[] = [];
    const real: Heard[] = [];
    beacons.forEach((tokens, source) =>
      tokens.forEach((t) => {
        sent.add(bytesToHex(t));
        for (const packet of tokenAdvertisements(t)) real.push({ source, packet });
      }),
    );
    heard.push(...real);
    for (const g of garbage) {
      const from = real[('pick' in g ? g.pick : 0) % real.length]!;
      if (g.kind === 'random') heard.push({ source: g.source, packet: g.bytes });
      if (g.kind === 'truncate')
        heard.push({ source: g.source, packet: from.packet.subarray(0, g.cut) });
      if (g.kind === 'foreign') heard.push({ source: g.source, packet: from.packet });
      if (g.kind === 'flip') {
        const p = from.packet.slice();
        p[g.at] = p[g.at]! ^ (1 << g.bit);
        heard.push({ source: from.source, packet: p });
      }
    }
    // Deterministic shuffle from the seed: interleaved, out of order, duplicated sources.
    let s = seed || 1;
    for (let i = heard.length - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      const j = s % (i + 1);
      [heard[i], heard[j]] = [heard[j]!, heard[i]!];
    }
    return { sent, heard };
  });

describe('TokenReassembler fuzzing', () => {
  it('never throws, never emits a token that was not sent, stays bounded (10,000 cases)', () => {
    fc.assert(
      fc.property(scenarioArb, ({ sent, heard }) => {
        const r = new TokenReassembler({ maxPending: MAX_PENDING, maxPendingPerSource: 2 });
        heard.forEach(({ source, packet }, i) => {
          const token = r.push(`src-${source}`, packet, i * 10);
          if (token) assert.ok(sent.has(bytesToHex(token)), 'emitted a token nobody sent');
          const sizes = r.sizes();
          assert.ok(sizes.pending <= MAX_PENDING && sizes.sources <= MAX_PENDING);
        });
        assert.equal(r.stats.frames, heard.length);
      }),
      { numRuns: 10_000 },
    );
  });

  it('emits every token exactly once when its frames arrive, whatever the interleaving', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(tokenArb, { minLength: 1, maxLength: 4 }), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
        (seeds, choices) => {
          // Real tokens look random (random IV, ciphertext, tag): expand each seed to 64 random-looking bytes.
          const beacons = seeds.map((tokens, b) =>
            tokens.map(
              (t, k) => new Uint8Array(createHash('sha512').update(t).update(`${b}/${k}`).digest()),
            ),
          );
          // Each beacon sends its tokens one after another, each token's frames twice in random order;
          // beacons interleave freely.
          const queues = beacons.map((tokens) =>
            tokens.flatMap((t, k) => {
              const f = tokenAdvertisements(t);
              const order = [...f, ...f].sort(
                (a, b) => ((a[8]! + choices[k % 64]!) % 7) - ((b[8]! + choices[(k + 1) % 64]!) % 7),
              );
              return order;
            }),
          );
          const r = new TokenReassembler();
          const out: string[] = [];
          let c = 0;
          while (queues.some((q) => q.length > 0)) {
            const live = queues.map((q, i) => (q.length ? i : -1)).filter((i) => i >= 0);
            const b = live[choices[c++ % 64]! % live.length]!;
            const token = r.push(`b${b}`, queues[b]!.shift()!, c);
            if (token) out.push(bytesToHex(token));
          }
          const expected = beacons.flat().map(bytesToHex);
          assert.deepEqual([...out].sort(), [...expected].sort());
        },
      ),
      { numRuns: 1000 },
    );
  });
});
