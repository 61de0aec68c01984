/** Reusable Espruino emulation: the firmware tests and the local simulator both run beacons on it. */
export { VirtualClock } from './clock.js';
export { type CryptoFeatures, cryptoModule } from './crypto.js';
export { type DeviceOptions, EspruinoDevice } from './device.js';
export { type RadioState } from './radio.js';
export { EmulatedFlash, storageModule } from './storage.js';
