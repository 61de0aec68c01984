/**
 * How Node runs the app backend wherever it is deployed (the Dockerfile, the systemd unit, the
 * benches that measure it; deploy/test holds the files to these values). Measured at 1,000,000
 * quarantines in docs/BENCHMARKS.md: V8's young generation capped at 8 MB a semi-space (the
 * default grows to 16) and two malloc arenas (glibc gives each thread its own) take ~30 MB off
 * the resident set, within the noise of the CPU per request.
 */
export const APP_RUNTIME_ENV = {
  NODE_OPTIONS: '--max-semi-space-size=8',
  MALLOC_ARENA_MAX: '2',
} as const;

/**
 * V8 flags NODE_OPTIONS refuses, so they go on the command line (the image's CMD, the unit's
 * ExecStart). Between full collections V8 lets the old generation grow to up to 4 × what
 * survived the last one when collecting is cheap; at 1,000,000 quarantines that took the first
 * minute of load past 200 MB resident. Growing by at most half keeps it near 187 MB.
 */
export const APP_NODE_FLAGS: readonly string[] = ['--heap-growing-percent=50'];
