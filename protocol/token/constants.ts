/** Token protocol v1 constants (ARCHITECTURE.md §4). Changing any of these is a new protocol version. */

export const TOKEN_VERSION = 0x01;
/** SK_BEACON length: 32 random bytes made at provisioning. */
export const BEACON_KEY_LENGTH = 32;
export const IV_LENGTH = 16;
export const BLOCK_LENGTH = 16;
export const TAG_LENGTH = 32;
/** MESSAGE C = IV ‖ C* ‖ tag. */
export const TOKEN_LENGTH = IV_LENGTH + BLOCK_LENGTH + TAG_LENGTH;
/** version ‖ unix_seconds ‖ counter ‖ battery ‖ flags. */
export const PLAINTEXT_LENGTH = 11;

export const K_ENC_LENGTH = 16;
export const K_MAC_LENGTH = 32;
export const HKDF_INFO_ENC = 'smartbeacon/v1/enc';
export const HKDF_INFO_MAC = 'smartbeacon/v1/mac';

/** Battery byte meaning "unknown". */
export const BATTERY_UNKNOWN = 0xff;
export const FLAG_CLOCK_NOT_SET = 0x01;
export const FLAG_REBOOTED = 0x02;
/** Every other flag bit must be zero in v1. */
export const FLAGS_KNOWN = FLAG_CLOCK_NOT_SET | FLAG_REBOOTED;

export const UINT32_MAX = 0xffffffff;
