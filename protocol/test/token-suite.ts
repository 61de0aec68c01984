import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bytesToHex, hexToBytes } from '../bytes.js';
import { TOKEN_LENGTH } from '../token/constants.js';
import type { TokenCryptoSuite } from '../token/keys.js';
import { makeToken } from '../token/make.js';
import { type FreshnessCheck, authenticateToken, openToken } from '../token/open.js';
import { loadTokenVectors } from '../vectors/load.js';
import type { VectorContext } from '../vectors/schema.js';

const vectors = loadTokenVectors();

function checkFor(ctx: VectorContext): FreshnessCheck {
  return {
    receivedAt: ctx.receivedAt,
    maxAgeSeconds: vectors.check.maxAgeSeconds,
    maxSkewSeconds: vectors.check.maxSkewSeconds,
    clockOffsetSeconds: ctx.clockOffsetSeconds ?? 0,
    lastCounter: ctx.lastCounter,
  };
}

const fieldsArb = fc.record({
  unixSeconds: fc.integer({ min: 0, max: 0xffff_ffff }),
  counter: fc.integer({ min: 0, max: 0xffff_ffff }),
  batteryPercent: fc.option(fc.integer({ min: 0, max: 100 }), { nil: null }),
  clockNotSet: fc.boolean(),
  rebooted: fc.boolean(),
});
const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
const ivArb = fc.uint8Array({ minLength: 16, maxLength: 16 });

/** The token contract, written once and run against every implementation (practice 2). */
export function describeTokenSuite(suite: TokenCryptoSuite): void {
  describe(`token v1 with the ${suite.name} suite`, () => {
    describe('shared test vectors', () => {
      it('has at least 12 valid and 12 invalid vectors', () => {
        assert.ok(vectors.valid.length >= 12);
        assert.ok(vectors.invalid.length >= 12);
      });

      for (const v of vectors.valid) {
        it(`makes and opens valid vector "${v.name}"`, () => {
          const keys = suite.importKeys(hexToBytes(v.skBeacon));
          const made = makeToken(keys, v.fields, hexToBytes(v.iv));
          assert.equal(bytesToHex(made), v.token);
          const opened = openToken(hexToBytes(v.token), keys, checkFor(v));
          assert.deepEqual(opened, { ok: true, fields: v.fields });
        });
      }

      for (const v of vectors.invalid) {
        it(`rejects invalid vector "${v.name}" with "${v.reason}"`, () => {
          const keys = suite.importKeys(hexToBytes(v.skBeacon));
          assert.deepEqual(openToken(hexToBytes(v.token), keys, checkFor(v)), {
            ok: false,
            reason: v.reason,
          });
        });
      }
    });

    describe('properties', () => {
      it('round-trips random tokens', () => {
        fc.assert(
          fc.property(keyArb, ivArb, fieldsArb, (sk, iv, fields) => {
            const keys = suite.importKeys(sk);
            const token = makeToken(keys, fields, iv);
            assert.equal(token.length, TOKEN_LENGTH);
            assert.deepEqual(authenticateToken(token, keys), {
              ok: true,
              fields: { version: 1, ...fields },
            });
          }),
          { numRuns: 300 },
        );
      });

      it('rejects every random single-byte change at the tag check', () => {
        fc.assert(
          fc.property(
            keyArb,
            fieldsArb,
            fc.integer({ min: 0, max: TOKEN_LENGTH - 1 }),
            fc.integer({ min: 1, max: 255 }),
            (sk, fields, at, delta) => {
              const keys = suite.importKeys(sk);
              const token = makeToken(keys, fields);
              token[at] = (token[at] as number) ^ delta;
              assert.deepEqual(authenticateToken(token, keys), { ok: false, reason: 'tag' });
            },
          ),
          { numRuns: 500 },
        );
      });

      it('rejects every single-bit flip of every vector with a valid tag at the tag, never at padding', () => {
        // Valid vectors, and the padding/layout/version ones: a flip must never reach the padding.
        const signed = [
          ...vectors.valid,
          ...vectors.invalid.filter((v) => ['padding', 'layout', 'version'].includes(v.reason)),
        ];
        assert.ok(signed.length > vectors.valid.length);
        let flips = 0;
        for (const v of signed) {
          const keys = suite.importKeys(hexToBytes(v.skBeacon));
          const token = hexToBytes(v.token);
          for (let bit = 0; bit < TOKEN_LENGTH * 8; bit++) {
            const flipped = Uint8Array.from(token);
            flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (0x80 >> (bit & 7));
            const r = authenticateToken(flipped, keys);
            if (r.ok || r.reason !== 'tag')
              assert.fail(`${v.name}, bit ${bit}: ${JSON.stringify(r)}`);
            flips++;
          }
        }
        assert.equal(flips, signed.length * 512);
      });

      it('rejects a token under any other key', () => {
        fc.assert(
          fc.property(keyArb, keyArb, fieldsArb, (a, b, fields) => {
            fc.pre(bytesToHex(a) !== bytesToHex(b));
            const token = makeToken(suite.importKeys(a), fields);
            assert.deepEqual(authenticateToken(token, suite.importKeys(b)), {
              ok: false,
              reason: 'tag',
            });
          }),
          { numRuns: 200 },
        );
      });

      it('never throws on arbitrary input and accepts no random bytes', () => {
        const keys = suite.importKeys(new Uint8Array(32).fill(7));
        fc.assert(
          fc.property(fc.uint8Array({ minLength: 0, maxLength: 130 }), (bytes) => {
            const r = authenticateToken(bytes, keys);
            assert.equal(r.ok, false);
            if (!r.ok) assert.equal(r.reason, bytes.length === TOKEN_LENGTH ? 'tag' : 'length');
          }),
          { numRuns: 500 },
        );
      });
    });
  });
}
