import {
  AD_FLAGS_VALUE,
  AD_TYPE_FLAGS,
  AD_TYPE_MANUFACTURER,
  DEFAULT_COMPANY_ID,
  FRAME_ADV_LENGTH,
  FRAME_CHUNK_LENGTH,
  FRAME_COUNT,
  FRAME_MAGIC,
  FRAME_PAYLOAD_LENGTH,
  FRAME_VERSION,
} from '../../protocol/frames/layout.js';

// The four advertisements of docs/protocol.md §4.1, byte for byte what protocol/frames/encode.ts
// makes, but copied with typed-array set() instead of per-byte loops: the interpreter runs a few
// dozen statements per token instead of ~500 (bench:firmware counts them).

/** Flags AD and the manufacturer AD header, the same 7 bytes in every frame. */
const HEADER = new Uint8Array([
  2,
  AD_TYPE_FLAGS,
  AD_FLAGS_VALUE,
  3 + FRAME_PAYLOAD_LENGTH,
  AD_TYPE_MANUFACTURER,
  DEFAULT_COMPANY_ID & 0xff,
  (DEFAULT_COMPANY_ID >> 8) & 0xff,
]);

/** The raw advertisements carrying a 64-byte token and its 4-byte check, fragment 0 first. */
export function advertisingPackets(token: Uint8Array, check: Uint8Array): Uint8Array[] {
  const body = new Uint8Array(FRAME_COUNT * FRAME_CHUNK_LENGTH);
  body.set(token, 0);
  body.set(check, token.length);
  const packets: Uint8Array[] = [];
  for (let index = 0; index < FRAME_COUNT; index++) {
    const packet = new Uint8Array(FRAME_ADV_LENGTH);
    packet.set(HEADER, 0);
    packet[7] = FRAME_MAGIC;
    packet[8] = (FRAME_VERSION << 4) | index;
    packet[9] = token[0] as number;
    packet[10] = token[1] as number;
    const from = index * FRAME_CHUNK_LENGTH;
    packet.set(body.subarray(from, from + FRAME_CHUNK_LENGTH), 11);
    packets.push(packet);
  }
  return packets;
}
