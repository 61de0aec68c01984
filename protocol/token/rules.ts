import type { TokenFields } from './fields.js';

// Each rule answers with its rejection code or null, and takes `now` so tests freeze the clock.
// clockOffsetSeconds is the learned (beacon clock − server clock); corrected = unixSeconds − offset.

/** Reject a token whose corrected beacon time is more than maxAge before now. */
export function rejectStale(
  fields: TokenFields,
  nowSeconds: number,
  maxAgeSeconds: number,
  clockOffsetSeconds = 0,
): 'stale' | null {
  return fields.unixSeconds - clockOffsetSeconds < nowSeconds - maxAgeSeconds ? 'stale' : null;
}

/** Reject a token whose corrected beacon time is more than maxSkew after now. */
export function rejectFuture(
  fields: TokenFields,
  nowSeconds: number,
  maxSkewSeconds: number,
  clockOffsetSeconds = 0,
): 'future' | null {
  return fields.unixSeconds - clockOffsetSeconds > nowSeconds + maxSkewSeconds ? 'future' : null;
}

/** Reject a counter not above the last one accepted from this beacon. */
export function rejectReplay(
  fields: TokenFields,
  lastCounter: number | undefined,
): 'replay' | null {
  return lastCounter !== undefined && fields.counter <= lastCounter ? 'replay' : null;
}
