/**
 * How many cases a property runs: FUZZ_RUNS scales every property of the fuzz suites (the campaign
 * sets it in the thousands); unset, each keeps the small count that fits `npm test`.
 */
export function fuzzRuns(defaultRuns: number): number {
  const raw = process.env.FUZZ_RUNS;
  if (raw === undefined || raw === '') return defaultRuns;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`FUZZ_RUNS must be a positive integer, got "${raw}"`);
  return n;
}

/** A fixed seed when FUZZ_SEED is set (to replay a failure); fast-check picks one otherwise. */
export function fuzzSeed(): { seed?: number } {
  const raw = process.env.FUZZ_SEED;
  return raw ? { seed: Number(raw) } : {};
}
