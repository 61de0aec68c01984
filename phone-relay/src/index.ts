/** The phone relay library: what the mobile apps mirror and the CLI runs. */
export { PhoneRelay, type RelayMode, type RelayOptions } from './relay.js';
export { DEFAULT_INTERVAL_MS, DEFAULT_JITTER, DEFAULT_MAX_REQUESTS_PER_CYCLE } from './relay.js';
export { type RelayStatus, type UploadRecord, formatStatus } from './status.js';
export {
  type HttpsTransportOptions,
  type PresenceAnswer,
  type PresenceTransport,
  certificatePins,
  httpsTransport,
  parsePin,
} from './transport.js';
export {
  type BufferedToken,
  DEFAULT_BUFFER_LIMIT,
  DEFAULT_BUFFER_MAX_AGE_MS,
  TokenBuffer,
} from './buffer.js';
export { DEFAULT_RATE_LIMITS, FrameGate, type RateLimits, TokenBucket } from './rate-limit.js';
export {
  ManualScheduler,
  type Scheduler,
  killableScheduler,
  systemScheduler,
  virtualScheduler,
} from './scheduler.js';
export { readKeyFile } from './keys.js';
export { type AdvertisementHandler, type BeaconSource, combineSources } from './sources/source.js';
export { SimulatedBleSource, type SimulatedSourceOptions } from './sources/simulated.js';
export { openBleSource } from './sources/ble.js';
export { BleUnavailableError, RelayError, type RelayErrorCode } from './errors.js';
