import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { advertisingPacket, encodeFramePayloads } from '../../protocol/frames/encode.js';
import { TokenReassembler } from '../../protocol/frames/reassembler.js';
import { advertisingPackets } from '../src/frames.js';

describe('firmware frames (src/frames.ts)', () => {
  it("are byte for byte the protocol encoder's advertisements, for any token", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        (token, check) => {
          const expected = encodeFramePayloads(token, check).map((p) => advertisingPacket(p));
          assert.deepEqual(advertisingPackets(token, check), expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reassemble into the token they carry, and only with its check', () => {
    const token = Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff);
    const heard = (check: Uint8Array) => {
      const r = new TokenReassembler();
      let out: Uint8Array | null = null;
      for (const p of advertisingPackets(token, check)) out = r.push('beacon', p, 0) ?? out;
      return out;
    };
    const check = createHash('sha256').update(token).digest().subarray(0, 4);
    assert.ok(advertisingPackets(token, check).every((p) => p.length <= 31));
    assert.deepEqual(heard(check), token);
    assert.equal(heard(new Uint8Array([1, 2, 3, 4])), null);
  });

  it('leave their inputs untouched', () => {
    const token = new Uint8Array(64).fill(7);
    const check = new Uint8Array(4).fill(9);
    advertisingPackets(token, check);
    assert.deepEqual(token, new Uint8Array(64).fill(7));
    assert.deepEqual(check, new Uint8Array(4).fill(9));
  });
});
