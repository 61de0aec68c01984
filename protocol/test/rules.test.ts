import assert from 'node:assert/strict';
import type { TokenFields } from '../token/fields.js';
import { rejectFuture, rejectReplay, rejectStale } from '../token/rules.js';

const at = (unixSeconds: number, counter = 10): TokenFields => ({
  version: 1,
  unixSeconds,
  counter,
  batteryPercent: 50,
  clockNotSet: false,
  rebooted: false,
});

describe('freshness and replay rules', () => {
  const now = 1_000_000;

  it('rejectStale accepts exactly max age and rejects one second more', () => {
    assert.equal(rejectStale(at(now - 420), now, 420), null);
    assert.equal(rejectStale(at(now - 421), now, 420), 'stale');
  });

  it('rejectFuture accepts exactly max skew and rejects one second more', () => {
    assert.equal(rejectFuture(at(now + 60), now, 60), null);
    assert.equal(rejectFuture(at(now + 61), now, 60), 'future');
  });

  it('judges a drifting beacon on its corrected clock', () => {
    // Beacon clock 10 minutes fast: its "now" token is not from the future once the offset is known.
    assert.equal(rejectFuture(at(now + 600), now, 60, 600), null);
    assert.equal(rejectFuture(at(now + 600), now, 60, 0), 'future');
    // And an old token cannot be made fresh by the offset of a slow clock beyond its own size.
    assert.equal(rejectStale(at(now - 1000), now, 420, -600), null);
    assert.equal(rejectStale(at(now - 1100), now, 420, -600), 'stale');
  });

  it('rejectReplay wants a counter strictly above the last accepted', () => {
    assert.equal(rejectReplay(at(now, 11), 10), null);
    assert.equal(rejectReplay(at(now, 10), 10), 'replay');
    assert.equal(rejectReplay(at(now, 9), 10), 'replay');
    assert.equal(rejectReplay(at(now, 0), undefined), null);
  });
});
