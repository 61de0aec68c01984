/**
 * The SmartBeacon protocol: the contract between beacon, relay and app backend. Token v1
 * (MESSAGE C), the BLE frames that carry it, and the constants both sides must agree on.
 */
export * from './bytes.js';
export * from './token/constants.js';
export {
  type TokenFields,
  type TokenFieldsInput,
  encodePlaintextBlock,
  decodePlaintextBlock,
} from './token/fields.js';
export {
  type BeaconKeys,
  type TokenCryptoSuite,
  deriveKeyMaterial,
  importBeaconKeys,
  nobleSuite,
} from './token/keys.js';
export { nodeSuite } from './token/keys-node.js';
export { makeToken, sealBlock } from './token/make.js';
export {
  type FreshnessCheck,
  type TokenResult,
  DEFAULT_MAX_AGE_SECONDS,
  DEFAULT_MAX_SKEW_SECONDS,
  authenticateToken,
  openToken,
} from './token/open.js';
export { rejectFuture, rejectReplay, rejectStale } from './token/rules.js';
export {
  type CryptoRejectReason,
  type TokenRejectReason,
  TOKEN_REJECT_REASONS,
  isTokenRejectReason,
} from './token/reasons.js';
export * from './frames/layout.js';
export { advertisingPacket, encodeFramePayloads } from './frames/encode.js';
export { tokenAdvertisements, tokenCheck } from './frames/check.js';
export { type TokenFrame, findManufacturerPayload, parseFramePayload } from './frames/parse.js';
export {
  type ReassemblerOptions,
  type ReassemblerStats,
  TokenReassembler,
} from './frames/reassembler.js';
