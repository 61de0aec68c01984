import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { PRESENCE_RESPONSE_LENGTH } from '../presence.js';
import {
  STATUS_CODES,
  STATUS_LENGTH,
  openStatus,
  randomStatus,
  sealStatus,
  statusKey,
} from '../presence-status.js';
import {
  pooledRandom,
  randomStatusNode,
  sealStatusNode,
  statusKeyNode,
} from '../presence-status-node.js';

const key = () => new Uint8Array(randomBytes(32));
const statusArb = fc.record({
  code: fc.constantFrom(...STATUS_CODES),
  since: fc.option(fc.integer({ min: 0, max: 2 ** 50 }), { nil: null }),
  until: fc.option(fc.integer({ min: 0, max: 2 ** 50 }), { nil: null }),
  serverTime: fc.integer({ min: 0, max: 2 ** 50 }),
});

describe('sealed status in the presence answer', () => {
  it('fills exactly the fixed answer size', () => {
    assert.equal(STATUS_LENGTH, PRESENCE_RESPONSE_LENGTH);
    assert.equal(randomStatus().length, STATUS_LENGTH);
  });

  it('round-trips every status for the relay that holds SK_T_PAST', () => {
    fc.assert(
      fc.property(statusArb, (status) => {
        const k = key();
        assert.deepEqual(openStatus(k, sealStatus(k, status)), { ...status });
      }),
      { numRuns: 300 },
    );
  });

  it('opens for nobody else, and random bytes open for nobody', () => {
    const status = {
      code: 'not_heard' as const,
      since: 1_795_400_000_000,
      until: null,
      serverTime: 1_795_400_360_000,
    };
    const sealed = sealStatus(key(), status);
    assert.equal(openStatus(key(), sealed), null);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (bytes) =>
        assert.equal(openStatus(key(), bytes), null),
      ),
      { numRuns: 300 },
    );
  });

  it('refuses any single changed byte', () => {
    const k = key();
    const sealed = sealStatus(k, { code: 'all_clear', since: 1, until: null, serverTime: 2 });
    fc.assert(
      fc.property(fc.nat(63), fc.integer({ min: 1, max: 255 }), (at, delta) => {
        const changed = sealed.slice();
        changed[at] = (changed[at] as number) ^ delta;
        assert.equal(openStatus(k, changed), null);
      }),
      { numRuns: 200 },
    );
  });

  it('seals byte-for-byte the same on node:crypto (servers) as on @noble (relays)', () => {
    fc.assert(
      fc.property(statusArb, fc.uint8Array({ minLength: 12, maxLength: 12 }), (status, nonce) => {
        const k = key();
        assert.deepEqual(
          new Uint8Array(sealStatusNode(k, status, nonce)),
          sealStatus(k, status, nonce),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('never repeats itself: the same status sealed twice looks unrelated', () => {
    const k = key();
    const s = { code: 'all_clear' as const, since: 1, until: null, serverTime: 2 };
    assert.notDeepEqual(sealStatus(k, s), sealStatus(k, s));
  });

  it('derives the same status key with two HMACs (server) as with HKDF (@noble, relays)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (k) =>
        assert.deepEqual(new Uint8Array(statusKeyNode(k)), statusKey(k)),
      ),
      { numRuns: 200 },
    );
  });

  it('seals with a fresh pooled nonce that the relay opens, never the same nonce twice', () => {
    const k = key();
    const s = { code: 'warning_grace' as const, since: 10, until: 20, serverTime: 30 };
    const nonces = new Set<string>();
    for (let i = 0; i < 1500; i++) {
      const sealed = sealStatusNode(k, s);
      assert.equal(sealed.length, STATUS_LENGTH);
      nonces.add(sealed.subarray(0, 12).toString('hex'));
      if (i % 100 === 0) assert.deepEqual(openStatus(k, sealed), s);
    }
    assert.equal(nonces.size, 1500);
  });

  it('answers dummies with random bytes that are never handed out twice and never change later', () => {
    const first = randomStatusNode();
    const copy = Buffer.from(first);
    const seen = new Set<string>([copy.toString('hex')]);
    // Past several slabs: a replaced slab must leave the bytes already given out alone.
    for (let i = 0; i < 1000; i++) {
      const r = randomStatusNode();
      assert.equal(r.length, STATUS_LENGTH);
      seen.add(r.toString('hex'));
    }
    assert.equal(seen.size, 1001);
    assert.deepEqual(first, copy);
    // Requests larger than a slab still get exactly what they asked for.
    assert.equal(pooledRandom(40_000).length, 40_000);
    assert.equal(randomStatusNode().length, STATUS_LENGTH);
  });
});
