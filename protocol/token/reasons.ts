/** Stable rejection codes, in the order the checks run (ARCHITECTURE.md §4). */
export const TOKEN_REJECT_REASONS = [
  'length',
  'tag',
  'padding',
  'layout',
  'version',
  'stale',
  'future',
  'replay',
] as const;

export type TokenRejectReason = (typeof TOKEN_REJECT_REASONS)[number];

/** Reasons decided by the key alone, before any clock or counter is consulted. */
export type CryptoRejectReason = Extract<
  TokenRejectReason,
  'length' | 'tag' | 'padding' | 'layout' | 'version'
>;

export function isTokenRejectReason(value: unknown): value is TokenRejectReason {
  return typeof value === 'string' && (TOKEN_REJECT_REASONS as readonly string[]).includes(value);
}
