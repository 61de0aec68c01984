// Narrow declarations for the Espruino APIs the firmware uses (espruino-facts.md), instead of stale typings.

interface EspruinoCrypto {
  /** Absent on boards built without AES (espruino-facts.md §1). */
  readonly AES?: {
    encrypt(
      msg: Uint8Array,
      key: Uint8Array,
      options: { iv: Uint8Array; mode: 'CBC' },
    ): ArrayBuffer;
  };
  /** Absent on boards without SHA256 (nRF52 DKs). */
  readonly SHA256?: (message: Uint8Array) => ArrayBuffer;
}

interface EspruinoStorage {
  write(
    name: string,
    data: string | Uint8Array | number[],
    offset?: number,
    size?: number,
  ): boolean;
  read(name: string, offset?: number, length?: number): string | undefined;
  readArrayBuffer(name: string): ArrayBuffer | undefined;
  readJSON(name: string, noExceptions: boolean): unknown;
  writeJSON(name: string, data: unknown): boolean;
  erase(name: string): void;
}

interface EspruinoE {
  hwRand(): number;
  enableWatchdog(timeoutSeconds: number, isAuto: boolean): void;
  kickWatchdog(): void;
  setConsole(device: null, options: { force: boolean }): void;
  getBattery?: () => number;
  reboot(): void;
}

interface GattCharacteristic {
  value?: Uint8Array | number[];
  maxLen?: number;
  readable?: boolean;
  description?: string;
}

interface EspruinoNRF {
  setAdvertising(
    data: Uint8Array[],
    options: { interval: number; connectable: boolean; scannable: boolean; whenConnected: boolean },
  ): void;
  setServices(
    services: Record<string, Record<string, GattCharacteristic>>,
    options: { uart: boolean },
  ): void;
  updateServices(services: Record<string, Record<string, { value: Uint8Array }>>): void;
  setTxPower(dBm: number): void;
}

declare const E: EspruinoE;
declare const NRF: EspruinoNRF;
declare const global: Record<string, unknown>;
declare function getTime(): number;
declare function setTime(seconds: number): void;
declare function print(...args: unknown[]): void;
declare function setInterval(fn: () => void, ms: number): number;
declare function clearInterval(id: number): void;
declare function setTimeout(fn: () => void, ms: number): number;
declare function clearTimeout(id: number): void;
/** A pin, such as BTN (the Puck.js button). */
interface EspruinoPin {
  readonly __pin: never;
}
declare const BTN: EspruinoPin;
declare function setWatch(
  fn: () => void,
  pin: EspruinoPin,
  options: { repeat: boolean; edge: 'rising' | 'falling' | 'both'; debounce: number },
): number;
declare function require(name: 'crypto'): EspruinoCrypto;
declare function require(name: 'Storage'): EspruinoStorage;
/** Replaced at build time per board: true where require("crypto").AES exists. */
declare const BOARD_HAS_AES: boolean;
/** Replaced at build time per board: true where require("crypto").SHA256 exists. */
declare const BOARD_HAS_SHA256: boolean;
