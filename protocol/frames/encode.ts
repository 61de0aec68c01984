import {
  AD_FLAGS_VALUE,
  AD_TYPE_FLAGS,
  AD_TYPE_MANUFACTURER,
  DEFAULT_COMPANY_ID,
  FRAME_CHECK_LENGTH,
  FRAME_CHUNK_LENGTH,
  FRAME_COUNT,
  FRAME_HEADER_LENGTH,
  FRAME_MAGIC,
  FRAME_PAYLOAD_LENGTH,
  FRAME_VERSION,
} from './layout.js';

// Plain loops, no library calls, plain Error (Espruino has no RangeError): the firmware compiles this file too.

/** Split a 64-byte token and its 4-byte check into the manufacturer payloads of the four frames. */
export function encodeFramePayloads(token: Uint8Array, check: Uint8Array): Uint8Array[] {
  if (token.length !== FRAME_COUNT * FRAME_CHUNK_LENGTH - FRAME_CHECK_LENGTH) {
    throw new Error('token must be 64 bytes');
  }
  if (check.length !== FRAME_CHECK_LENGTH) throw new Error('check must be 4 bytes');
  const frames: Uint8Array[] = [];
  for (let index = 0; index < FRAME_COUNT; index++) {
    const frame = new Uint8Array(FRAME_PAYLOAD_LENGTH);
    frame[0] = FRAME_MAGIC;
    frame[1] = (FRAME_VERSION << 4) | index;
    frame[2] = token[0] as number;
    frame[3] = token[1] as number;
    for (let i = 0; i < FRAME_CHUNK_LENGTH; i++) {
      const at = index * FRAME_CHUNK_LENGTH + i;
      frame[FRAME_HEADER_LENGTH + i] = (
        at < token.length ? token[at] : check[at - token.length]
      ) as number;
    }
    frames.push(frame);
  }
  return frames;
}

/** One raw legacy advertisement (flags + manufacturer data), as NRF.setAdvertising takes it. */
export function advertisingPacket(
  payload: Uint8Array,
  companyId: number = DEFAULT_COMPANY_ID,
): Uint8Array {
  const packet = new Uint8Array(7 + payload.length);
  packet[0] = 2;
  packet[1] = AD_TYPE_FLAGS;
  packet[2] = AD_FLAGS_VALUE;
  packet[3] = 3 + payload.length;
  packet[4] = AD_TYPE_MANUFACTURER;
  packet[5] = companyId & 0xff;
  packet[6] = (companyId >> 8) & 0xff;
  for (let i = 0; i < payload.length; i++) packet[7 + i] = payload[i] as number;
  return packet;
}
