import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  aes128EncryptBlock,
  aes128EncryptBlockExpanded,
  aes128ExpandKey,
} from '../src/crypto/aes128.js';
import { sha256 } from '../src/crypto/sha256.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const ascii = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'));

function nodeAes128(key: Uint8Array, block: Uint8Array): string {
  const cipher = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false);
  return Buffer.concat([cipher.update(block), cipher.final()]).toString('hex');
}

const nodeSha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

describe('AES-128 fallback', () => {
  it('matches FIPS-197 Appendix C.1', () => {
    const key = fromHex('000102030405060708090a0b0c0d0e0f');
    const block = fromHex('00112233445566778899aabbccddeeff');
    assert.equal(hex(aes128EncryptBlock(key, block)), '69c4e0d86a7b0430d8cdb78070b4c55a');
  });

  it('matches FIPS-197 Appendix B, including its expanded key', () => {
    const key = fromHex('2b7e151628aed2a6abf7158809cf4f3c');
    const block = fromHex('3243f6a8885a308d313198a2e0370734');
    assert.equal(hex(aes128EncryptBlock(key, block)), '3925841d02dc09fbdc118597196a0b32');
    const roundKeys = aes128ExpandKey(key);
    assert.equal(roundKeys.length, 176);
    assert.equal(hex(roundKeys.subarray(160)), 'd014f9a8c9ee2589e13f0cc8b6630ca6');
  });

  it('leaves its inputs untouched and returns a new block', () => {
    const key = fromHex('2b7e151628aed2a6abf7158809cf4f3c');
    const block = fromHex('3243f6a8885a308d313198a2e0370734');
    const out = aes128EncryptBlock(key, block);
    assert.notEqual(out, block);
    assert.equal(hex(key), '2b7e151628aed2a6abf7158809cf4f3c');
    assert.equal(hex(block), '3243f6a8885a308d313198a2e0370734');
  });

  it('rejects keys, round keys and blocks of the wrong length', () => {
    assert.throws(() => aes128EncryptBlock(new Uint8Array(15), new Uint8Array(16)));
    assert.throws(() => aes128EncryptBlock(new Uint8Array(16), new Uint8Array(17)));
    assert.throws(() => aes128EncryptBlockExpanded(new Uint8Array(16), new Uint8Array(16)));
  });

  it('agrees with node:crypto on random keys and blocks', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        (key, block) => hex(aes128EncryptBlock(key, block)) === nodeAes128(key, block),
      ),
      { numRuns: 500 },
    );
  });

  it('encrypts many blocks with one expanded key as node:crypto does', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.array(fc.uint8Array({ minLength: 16, maxLength: 16 }), { minLength: 1, maxLength: 4 }),
        (key, blocks) => {
          const roundKeys = aes128ExpandKey(key);
          return blocks.every(
            (block) => hex(aes128EncryptBlockExpanded(roundKeys, block)) === nodeAes128(key, block),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('SHA-256 fallback', () => {
  it('matches the NIST known answers', () => {
    assert.equal(
      hex(sha256(ascii('abc'))),
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    assert.equal(
      hex(sha256(new Uint8Array(0))),
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    assert.equal(
      hex(sha256(ascii('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))),
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('agrees with node:crypto at every padding boundary', () => {
    for (const length of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129]) {
      const data = new Uint8Array(length);
      for (let i = 0; i < length; i++) data[i] = (i * 37 + length) & 0xff;
      assert.equal(hex(sha256(data)), nodeSha256(data), `length ${length}`);
    }
  });

  it('agrees with node:crypto on random data of 0 to 300 bytes', () => {
    const length = fc.oneof(fc.constantFrom(55, 56, 63, 64, 65), fc.integer({ min: 0, max: 300 }));
    fc.assert(
      fc.property(
        length.chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
        (data) => hex(sha256(data)) === nodeSha256(data),
      ),
      { numRuns: 500 },
    );
  });

  it('leaves its input untouched and returns a new 32-byte digest', () => {
    const data = ascii('abc');
    const digest = sha256(data);
    assert.equal(digest.length, 32);
    assert.equal(hex(data), '616263');
  });
});
