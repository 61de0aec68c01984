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
