import { BLOCK_LENGTH, IV_LENGTH, TOKEN_LENGTH } from './constants.js';
import { type TokenFields, decodePlaintextBlock } from './fields.js';
import type { BeaconKeys } from './keys.js';
import type { CryptoRejectReason, TokenRejectReason } from './reasons.js';
import { rejectFuture, rejectReplay, rejectStale } from './rules.js';

export type TokenResult<R extends TokenRejectReason = TokenRejectReason> =
  { readonly ok: true; readonly fields: TokenFields } | { readonly ok: false; readonly reason: R };

/** How fresh a token must be, judged at `receivedAt` on the server clock. */
export interface FreshnessCheck {
  /** Server time the token arrived, Unix seconds. */
  readonly receivedAt: number;
  readonly maxAgeSeconds: number;
  readonly maxSkewSeconds: number;
  /** Learned beacon clock − server clock; 0 when unknown. */
  readonly clockOffsetSeconds?: number;
  /** Last counter accepted from this beacon; undefined when none yet. */
  readonly lastCounter?: number | undefined;
  /** Replaces the last-counter rule, e.g. with a set of counters seen inside the window. */
  readonly isReplay?: (fields: TokenFields) => boolean;
}

/** Recommended window: 1 min beacon cadence + 5 min relay cadence + 1 min slack (seed 002's pyramid). */
export const DEFAULT_MAX_AGE_SECONDS = 7 * 60;
/** A beacon clock may run this far ahead of the server before its tokens count as from the future. */
export const DEFAULT_MAX_SKEW_SECONDS = 60;

const MAC_INPUT_LENGTH = IV_LENGTH + BLOCK_LENGTH;

/**
 * Spec steps 1–5, which need only the key: length, tag (constant time, before any decryption),
 * decrypt, padding and layout, version. Never throws on any input.
 */
export function authenticateToken(
  token: Uint8Array,
  keys: BeaconKeys,
): TokenResult<CryptoRejectReason> {
  if (!(token instanceof Uint8Array) || token.length !== TOKEN_LENGTH)
    return { ok: false, reason: 'length' };
  // Tag before decrypt: never let an attacker probe the padding.
  if (!keys.verifyMac(token.subarray(0, MAC_INPUT_LENGTH), token.subarray(MAC_INPUT_LENGTH))) {
    return { ok: false, reason: 'tag' };
  }
  const block = keys.decryptBlock(
    token.subarray(0, IV_LENGTH),
    token.subarray(IV_LENGTH, MAC_INPUT_LENGTH),
  );
  return decodePlaintextBlock(block);
}

/** The whole verification order of ARCHITECTURE.md §4, rejecting at the first failure. */
export function openToken(token: Uint8Array, keys: BeaconKeys, check: FreshnessCheck): TokenResult {
  const opened = authenticateToken(token, keys);
  if (!opened.ok) return opened;
  const { fields } = opened;
  const offset = check.clockOffsetSeconds ?? 0;
  const reason =
    rejectStale(fields, check.receivedAt, check.maxAgeSeconds, offset) ??
    rejectFuture(fields, check.receivedAt, check.maxSkewSeconds, offset) ??
    (check.isReplay
      ? check.isReplay(fields)
        ? 'replay'
        : null
      : rejectReplay(fields, check.lastCounter));
  return reason === null ? opened : { ok: false, reason };
}
