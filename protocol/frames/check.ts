import { sha256 } from '@noble/hashes/sha2.js';
import { FRAME_CHECK_LENGTH } from './layout.js';
import { advertisingPacket, encodeFramePayloads } from './encode.js';

/** SHA-256(MESSAGE C)[0..4): the reassembler's guard against mixing two tokens' fragments. */
export function tokenCheck(token: Uint8Array): Uint8Array {
  return sha256(token).subarray(0, FRAME_CHECK_LENGTH);
}

/** The four raw advertising packets a beacon rotates for one token. */
export function tokenAdvertisements(token: Uint8Array, companyId?: number): Uint8Array[] {
  return encodeFramePayloads(token, tokenCheck(token)).map((p) => advertisingPacket(p, companyId));
}
