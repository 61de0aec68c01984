import assert from 'node:assert/strict';
import { KeyRateLimiter } from '../src/rate-limit.js';

const T0 = 1_795_400_000_000;

describe('presence rate limit per key', () => {
  it('allows the capacity at once, then one request per refill interval', () => {
    // 2 requests, refilled at 2 per 10 minutes: one every 300 s.
    const limiter = new KeyRateLimiter(2, 2 / 600, 100);
    assert.equal(limiter.take('a', T0), true);
    assert.equal(limiter.take('a', T0), true);
    assert.equal(limiter.take('a', T0), false);
    assert.equal(limiter.take('a', T0 + 299_000), false);
    assert.equal(limiter.take('a', T0 + 301_000), true);
    assert.equal(limiter.take('a', T0 + 302_000), false);
    // Other keys are not touched by one key's flood.
    assert.equal(limiter.take('b', T0 + 302_000), true);
  });

  it('never refills beyond the capacity, however long a key was quiet', () => {
    const limiter = new KeyRateLimiter(3, 1, 100);
    for (let i = 0; i < 3; i++) assert.equal(limiter.take('a', T0), true);
    const later = T0 + 86_400_000;
    for (let i = 0; i < 3; i++) assert.equal(limiter.take('a', later), true);
    assert.equal(limiter.take('a', later), false);
  });

  it('holds at most maxKeys, keeps a recently used key, and forgets an idle one, which starts again full', () => {
    // maxKeys 4: two generations of 2 keys.
    const limiter = new KeyRateLimiter(1, 1 / 600, 4);
    assert.equal(limiter.take('a', T0), true);
    assert.equal(limiter.take('b', T0), true);
    assert.equal(limiter.take('a', T0), false);
    assert.equal(limiter.take('c', T0), true); // a and b become the older generation
    assert.equal(limiter.take('a', T0), false, 'a, used again, moves to the newer generation');
    assert.equal(limiter.take('d', T0), true); // b, untouched for a generation, is dropped
    assert.equal(limiter.take('a', T0), false, 'a was kept');
    assert.equal(limiter.take('b', T0), true, 'b was forgotten: best effort by design');
    assert.ok(limiter.size <= 4);
    for (let i = 0; i < 1000; i++) {
      limiter.take(`k${i}`, T0);
      assert.ok(limiter.size <= 4);
    }
  });
});
