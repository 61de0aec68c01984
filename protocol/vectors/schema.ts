/** Shape of token-vectors.json, read by the protocol, firmware and backend tests alike. */

export interface VectorContext {
  /** Server time the token is verified at, Unix seconds. */
  readonly receivedAt: number;
  readonly clockOffsetSeconds?: number;
  readonly lastCounter?: number;
}

export interface ValidVector extends VectorContext {
  readonly name: string;
  readonly skBeacon: string;
  readonly kEnc: string;
  readonly kMac: string;
  readonly iv: string;
  /** The 16-byte padded plaintext block. */
  readonly plaintext: string;
  readonly fields: {
    readonly version: number;
    readonly unixSeconds: number;
    readonly counter: number;
    readonly batteryPercent: number | null;
    readonly clockNotSet: boolean;
    readonly rebooted: boolean;
  };
  readonly token: string;
  /** The four raw advertising packets (flags + manufacturer data, company ID 0xFFFF). */
  readonly advertisements: readonly string[];
}

export interface InvalidVector extends VectorContext {
  readonly name: string;
  readonly description: string;
  readonly skBeacon: string;
  readonly token: string;
  readonly reason: string;
}

export interface TokenVectorFile {
  readonly protocol: string;
  readonly description: string;
  readonly check: { readonly maxAgeSeconds: number; readonly maxSkewSeconds: number };
  readonly valid: readonly ValidVector[];
  readonly invalid: readonly InvalidVector[];
}
