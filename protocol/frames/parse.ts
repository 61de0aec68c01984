import {
  AD_TYPE_MANUFACTURER,
  FRAME_CHUNK_LENGTH,
  FRAME_COUNT,
  FRAME_HEADER_LENGTH,
  FRAME_MAGIC,
  FRAME_PAYLOAD_LENGTH,
  FRAME_VERSION,
} from './layout.js';

export interface TokenFrame {
  readonly index: number;
  /** IV[0..2) of the token this fragment belongs to, as a 16-bit number. */
  readonly tokenId: number;
  readonly chunk: Uint8Array;
}

/**
 * The payload after the company ID of the first manufacturer-specific AD structure with that
 * company ID, or null. Walks length-type-value structures without ever reading past the end.
 */
export function findManufacturerPayload(adv: Uint8Array, companyId: number): Uint8Array | null {
  let at = 0;
  while (at < adv.length) {
    const length = adv[at] as number;
    if (length === 0) return null; // zero length: the rest is padding
    const end = at + 1 + length;
    if (end > adv.length) return null; // truncated structure
    if (adv[at + 1] === AD_TYPE_MANUFACTURER && length >= 3) {
      const id = (adv[at + 2] as number) | ((adv[at + 3] as number) << 8);
      if (id === companyId) return adv.subarray(at + 4, end);
    }
    at = end;
  }
  return null;
}

/** Decode one manufacturer payload as a SmartBeacon frame; null for anything else. */
export function parseFramePayload(payload: Uint8Array): TokenFrame | null {
  if (payload.length !== FRAME_PAYLOAD_LENGTH || payload[0] !== FRAME_MAGIC) return null;
  const header = payload[1] as number;
  const index = header & 0x0f;
  if (header >> 4 !== FRAME_VERSION || index >= FRAME_COUNT) return null;
  const tokenId = ((payload[2] as number) << 8) | (payload[3] as number);
  const chunk = payload.subarray(FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + FRAME_CHUNK_LENGTH);
  // In frame 0 the chunk starts with the IV, so its first two bytes must be the token ID.
  if (index === 0 && (((chunk[0] as number) << 8) | (chunk[1] as number)) !== tokenId) return null;
  return { index, tokenId, chunk };
}
