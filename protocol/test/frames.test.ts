import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bytesToHex, hexToBytes } from '../bytes.js';
import { tokenAdvertisements } from '../frames/check.js';
import { advertisingPacket, encodeFramePayloads } from '../frames/encode.js';
import { FRAME_ADV_LENGTH, LEGACY_ADV_MAX } from '../frames/layout.js';
import { findManufacturerPayload, parseFramePayload } from '../frames/parse.js';
import { loadTokenVectors } from '../vectors/load.js';

describe('BLE frames', () => {
  it('fit a legacy advertisement with flags', () => {
    assert.ok(FRAME_ADV_LENGTH <= LEGACY_ADV_MAX);
  });

  it('encode every vector token to the vector advertisements', () => {
    for (const v of loadTokenVectors().valid) {
      assert.deepEqual(tokenAdvertisements(hexToBytes(v.token)).map(bytesToHex), v.advertisements);
    }
  });

  it('refuse a token or check of the wrong length', () => {
    assert.throws(() => encodeFramePayloads(new Uint8Array(63), new Uint8Array(4)), /64 bytes/);
    assert.throws(() => encodeFramePayloads(new Uint8Array(64), new Uint8Array(3)), /4 bytes/);
  });

  describe('findManufacturerPayload', () => {
    const payload = Uint8Array.from([1, 2, 3]);
    const ours = advertisingPacket(payload, 0x1234).subarray(3); // without the flags

    it('finds our structure after others and ignores other company IDs', () => {
      const name = Uint8Array.from([4, 0x09, 0x41, 0x42, 0x43]);
      const other = Uint8Array.from([5, 0xff, 0x4c, 0x00, 9, 9]);
      const adv = Uint8Array.from([...name, ...other, ...ours]);
      assert.deepEqual(findManufacturerPayload(adv, 0x1234), payload);
      assert.equal(findManufacturerPayload(adv, 0x004d), null);
    });

    it('stops at zero-length padding and at a truncated structure', () => {
      assert.equal(findManufacturerPayload(Uint8Array.from([0, ...ours]), 0x1234), null);
      assert.equal(findManufacturerPayload(ours.subarray(0, ours.length - 1), 0x1234), null);
      assert.equal(findManufacturerPayload(new Uint8Array(0), 0x1234), null);
    });

    it('never reads out of bounds on random bytes', () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 62 }),
          fc.integer({ min: 0, max: 0xffff }),
          (adv, id) => {
            const found = findManufacturerPayload(adv, id);
            if (found) assert.ok(found.byteOffset + found.length <= adv.byteOffset + adv.length);
          },
        ),
        { numRuns: 2000 },
      );
    });
  });

  describe('parseFramePayload', () => {
    const token = hexToBytes(loadTokenVectors().valid[0]!.token);
    const frames = encodeFramePayloads(token, new Uint8Array(4));

    it('reads index and token ID', () => {
      frames.forEach((f, i) => {
        const parsed = parseFramePayload(f);
        assert.equal(parsed?.index, i);
        assert.equal(parsed?.tokenId, (token[0]! << 8) | token[1]!);
      });
    });

    it('rejects wrong magic, version, index, length and a frame 0 whose ID is not its IV', () => {
      const mutate = (i: number, at: number, value: number) => {
        const f = frames[i]!.slice();
        f[at] = value;
        return f;
      };
      assert.equal(parseFramePayload(mutate(1, 0, 0x5c)), null);
      assert.equal(parseFramePayload(mutate(1, 1, 0x21)), null);
      assert.equal(parseFramePayload(mutate(1, 1, 0x14)), null);
      assert.equal(parseFramePayload(frames[1]!.subarray(0, 20)), null);
      assert.equal(parseFramePayload(mutate(0, 2, token[0]! ^ 1)), null);
      assert.notEqual(parseFramePayload(mutate(1, 2, token[0]! ^ 1)), null);
    });
  });
});
