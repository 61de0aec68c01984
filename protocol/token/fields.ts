import { assertInteger, readUint32BE, writeUint32BE } from '../bytes.js';
import {
  BATTERY_UNKNOWN,
  BLOCK_LENGTH,
  FLAG_CLOCK_NOT_SET,
  FLAG_REBOOTED,
  FLAGS_KNOWN,
  PLAINTEXT_LENGTH,
  TOKEN_VERSION,
  UINT32_MAX,
} from './constants.js';

/** The plaintext P of a v1 token, as the beacon signed it. */
export interface TokenFields {
  readonly version: number;
  /** Beacon clock, Unix seconds. */
  readonly unixSeconds: number;
  /** Strictly increasing over the beacon's life. */
  readonly counter: number;
  /** 0–100, or null when the beacon does not know. */
  readonly batteryPercent: number | null;
  readonly clockNotSet: boolean;
  readonly rebooted: boolean;
}

export type TokenFieldsInput = Omit<TokenFields, 'version'> & { readonly version?: number };

/** P = version ‖ unix_seconds ‖ counter ‖ battery ‖ flags, then PKCS#7 to one block. */
export function encodePlaintextBlock(fields: TokenFieldsInput): Uint8Array {
  const version = fields.version ?? TOKEN_VERSION;
  assertInteger(version, 'version', 0, 0xff);
  assertInteger(fields.unixSeconds, 'unixSeconds', 0, UINT32_MAX);
  assertInteger(fields.counter, 'counter', 0, UINT32_MAX);
  if (fields.batteryPercent !== null)
    assertInteger(fields.batteryPercent, 'batteryPercent', 0, 100);
  if (typeof fields.clockNotSet !== 'boolean') throw new TypeError('clockNotSet must be a boolean');
  if (typeof fields.rebooted !== 'boolean') throw new TypeError('rebooted must be a boolean');

  const block = new Uint8Array(BLOCK_LENGTH);
  block[0] = version;
  writeUint32BE(block, 1, fields.unixSeconds);
  writeUint32BE(block, 5, fields.counter);
  block[9] = fields.batteryPercent ?? BATTERY_UNKNOWN;
  block[10] = (fields.clockNotSet ? FLAG_CLOCK_NOT_SET : 0) | (fields.rebooted ? FLAG_REBOOTED : 0);
  const pad = BLOCK_LENGTH - PLAINTEXT_LENGTH;
  block.fill(pad, PLAINTEXT_LENGTH);
  return block;
}

export type BlockDecodeResult =
  | { readonly ok: true; readonly fields: TokenFields }
  | { readonly ok: false; readonly reason: 'padding' | 'layout' | 'version' };

/**
 * Spec order after decryption: PKCS#7 padding, then the exact plaintext layout, then the version.
 * A block with valid padding but a plaintext of another length is a layout error, not a padding one.
 */
export function decodePlaintextBlock(block: Uint8Array): BlockDecodeResult {
  const pad = block[BLOCK_LENGTH - 1] as number;
  if (pad < 1 || pad > BLOCK_LENGTH) return { ok: false, reason: 'padding' };
  for (let i = BLOCK_LENGTH - pad; i < BLOCK_LENGTH; i++) {
    if (block[i] !== pad) return { ok: false, reason: 'padding' };
  }
  if (BLOCK_LENGTH - pad !== PLAINTEXT_LENGTH) return { ok: false, reason: 'layout' };
  const battery = block[9] as number;
  const flags = block[10] as number;
  if (battery > 100 && battery !== BATTERY_UNKNOWN) return { ok: false, reason: 'layout' };
  if ((flags & ~FLAGS_KNOWN) !== 0) return { ok: false, reason: 'layout' };
  const version = block[0] as number;
  if (version !== TOKEN_VERSION) return { ok: false, reason: 'version' };
  return {
    ok: true,
    fields: {
      version,
      unixSeconds: readUint32BE(block, 1),
      counter: readUint32BE(block, 5),
      batteryPercent: battery === BATTERY_UNKNOWN ? null : battery,
      clockNotSet: (flags & FLAG_CLOCK_NOT_SET) !== 0,
      rebooted: (flags & FLAG_REBOOTED) !== 0,
    },
  };
}
