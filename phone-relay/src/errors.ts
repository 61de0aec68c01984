/**
 * Failures the relay reports, each with a stable code. Messages are written for the person
 * running the relay and never carry a token, a key or key material: only names of files,
 * options, hosts and what to do.
 */
export type RelayErrorCode =
  /** The Bluetooth stack could not be used (see BleUnavailableReason). */
  | 'BLE_UNAVAILABLE'
  /** The key file is missing, unreadable or not 32 bytes. */
  | 'BAD_KEY_FILE'
  /** The state directory cannot be created or written. */
  | 'STATE_DIR'
  /** The server certificate chained to the CA but matched none of the pins. */
  | 'TLS_PIN_MISMATCH'
  /** The server certificate did not chain to the configured CA, or names another host. */
  | 'TLS_UNTRUSTED'
  /** Connection refused, reset, DNS failure: the server was not reached. */
  | 'NETWORK'
  /** No answer within the request timeout. */
  | 'TIMEOUT'
  /** The server answered, but not 202. */
  | 'HTTP_STATUS';

export class RelayError extends Error {
  constructor(
    readonly code: RelayErrorCode,
    message: string,
    /** The HTTP status, for HTTP_STATUS. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RelayError';
  }
}

export type BleUnavailableReason =
  'NOT_INSTALLED' | 'NO_ADAPTER' | 'NO_PERMISSION' | 'POWERED_OFF' | 'UNSUPPORTED_PLATFORM';

export const SETCAP_HINT = 'sudo setcap cap_net_raw+eip $(eval readlink -f $(which node))';

export class BleUnavailableError extends RelayError {
  constructor(
    readonly reason: BleUnavailableReason,
    message: string,
  ) {
    super('BLE_UNAVAILABLE', message);
    this.name = 'BleUnavailableError';
  }
}
