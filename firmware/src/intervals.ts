// The advertising intervals of the locked schedule (src/schedule.ts); plain constants, so the
// benchmark reads the very values the firmware uses.

/** ms: the S132 v3 SoftDevice's minimum for non-connectable advertising (Puck.js, nRF52832). */
export const BURST_INTERVAL = 100;
/** ms: Espruino's maximum interval; between bursts the token stays on the air for ~0.6 µA. */
export const REST_INTERVAL = 10240;
