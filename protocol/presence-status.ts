import { gcm } from '@noble/ciphers/aes.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { readUint32BE, writeUint32BE } from './bytes.js';

// The status a relay finds in the 64-byte presence answer (docs/alerts.md): sealed under a key
// only the person's relay and the app backend can derive from SK_T_PAST, so every answer on the
// wire — real, dummy, unknown — is 64 bytes that look random.
//   answer = nonce (12) ‖ AES-256-GCM(key, nonce, plaintext 36, aad) ‖ tag (16)
//   plaintext = version ‖ code ‖ since (ms, 8) ‖ until (ms, 8) ‖ serverTime (ms, 8) ‖ zeros (10)

export const STATUS_LENGTH = 64;
const PLAINTEXT_LENGTH = 36;
const VERSION = 1;
const INFO = new TextEncoder().encode('smartbeacon/v1/presence-status');
/** The HKDF info doubles as the AEAD's associated data. */
export const STATUS_AAD = INFO;

export const STATUS_CODES = [
  'all_clear',
  'not_heard',
  'warning_grace',
  'reported',
  'absence',
  'not_monitored',
] as const;
export type StatusCode = (typeof STATUS_CODES)[number];

export interface PresenceStatus {
  readonly code: StatusCode;
  /** all_clear / not_heard: last proof of presence; warning_grace / reported: when the gap began. */
  readonly since: number | null;
  /** warning_grace: when the police will be told; absence: when it ends. */
  readonly until: number | null;
  readonly serverTime: number;
}

/** The status key, derived once per request from the SK_T_PAST the relay sent. */
export function statusKey(skTPast: Uint8Array): Uint8Array {
  return hkdf(sha256, skTPast, undefined, INFO, 32);
}

const NONE = 0xffff_ffff;

/** Milliseconds as 8 bytes big-endian; null as all ones (no time we write comes near it). */
function writeTime(b: Uint8Array, at: number, ms: number | null): void {
  writeUint32BE(b, at, ms === null ? NONE : Math.floor(ms / 2 ** 32));
  writeUint32BE(b, at + 4, ms === null ? NONE : ms % 2 ** 32);
}

function readTime(b: Uint8Array, at: number): number | null {
  const hi = readUint32BE(b, at);
  const lo = readUint32BE(b, at + 4);
  return hi === NONE && lo === NONE ? null : hi * 2 ** 32 + lo;
}

/** The 36-byte plaintext of a status (shared by the pure-JS and node:crypto sealers). */
export function encodeStatusPlaintext(status: PresenceStatus): Uint8Array {
  const p = new Uint8Array(PLAINTEXT_LENGTH);
  p[0] = VERSION;
  p[1] = STATUS_CODES.indexOf(status.code);
  writeTime(p, 2, status.since);
  writeTime(p, 10, status.until);
  writeTime(p, 18, status.serverTime);
  return p;
}

/** Seal with @noble (pure JS: relays and any JavaScript runtime). Servers use presence-status-node.ts. */
export function sealStatus(
  skTPast: Uint8Array,
  status: PresenceStatus,
  nonce: Uint8Array = randomBytes(12),
): Uint8Array {
  const out = new Uint8Array(STATUS_LENGTH);
  out.set(nonce, 0);
  out.set(gcm(statusKey(skTPast), nonce, STATUS_AAD).encrypt(encodeStatusPlaintext(status)), 12);
  return out;
}

/** What dummy and unknown requests get: the same number of bytes, random. */
export function randomStatus(): Uint8Array {
  return randomBytes(STATUS_LENGTH);
}

/** The relay's side: the status, or null for random bytes, another key or any change. */
export function openStatus(skTPast: Uint8Array, answer: Uint8Array): PresenceStatus | null {
  if (!(answer instanceof Uint8Array) || answer.length !== STATUS_LENGTH) return null;
  let p: Uint8Array;
  try {
    p = gcm(statusKey(skTPast), answer.subarray(0, 12), STATUS_AAD).decrypt(answer.subarray(12));
  } catch {
    return null;
  }
  const code = STATUS_CODES[p[1] as number];
  if (p[0] !== VERSION || !code) return null;
  return { code, since: readTime(p, 2), until: readTime(p, 10), serverTime: readTime(p, 18) ?? 0 };
}
