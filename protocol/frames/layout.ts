/**
 * BLE frame layout v1 (docs/protocol.md §3). Pure constants: the firmware compiles this file too.
 *
 * Each frame is one legacy advertisement: flags AD + manufacturer-specific AD whose payload is
 *   MAGIC ‖ (FRAME_VERSION << 4 | index) ‖ tokenId (2 bytes = IV[0..2)) ‖ chunk (17 bytes)
 * and the four chunks are MESSAGE C ‖ SHA-256(MESSAGE C)[0..4).
 */

/** 0xFFFF is the Bluetooth SIG's "no company ID assigned yet" value; a deployment sets its own. */
export const DEFAULT_COMPANY_ID = 0xffff;
export const FRAME_MAGIC = 0x5b;
export const FRAME_VERSION = 1;
export const FRAME_COUNT = 4;
export const FRAME_HEADER_LENGTH = 4;
export const FRAME_CHUNK_LENGTH = 17;
export const FRAME_PAYLOAD_LENGTH = FRAME_HEADER_LENGTH + FRAME_CHUNK_LENGTH;
/** Bytes of SHA-256(MESSAGE C) appended so a mix of two tokens' fragments is never emitted. */
export const FRAME_CHECK_LENGTH = 4;

/** AD type codes (Bluetooth Assigned Numbers). */
export const AD_TYPE_FLAGS = 0x01;
export const AD_TYPE_MANUFACTURER = 0xff;
/** LE General Discoverable, BR/EDR not supported: phones list the beacon without pairing. */
export const AD_FLAGS_VALUE = 0x06;
/** Legacy advertising data limit. */
export const LEGACY_ADV_MAX = 31;
/** flags (3) + length, type, company ID (4) + payload. */
export const FRAME_ADV_LENGTH = 3 + 4 + FRAME_PAYLOAD_LENGTH;

/** GATT service for phones that connect: one readable characteristic holding the current token. */
export const GATT_SERVICE_UUID = '8f4b0001-6e1d-4c8a-9b1e-5b3e2a7c0d41';
export const GATT_TOKEN_CHAR_UUID = '8f4b0002-6e1d-4c8a-9b1e-5b3e2a7c0d41';
