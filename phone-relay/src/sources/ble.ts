/**
 * Real Bluetooth scanning through noble (`@abandonware/noble`), loaded only when asked for, so
 * the relay library and its tests need no Bluetooth stack. Every way it can fail to start is
 * turned into a BleUnavailableError that says what to do.
 */
import { AD_TYPE_MANUFACTURER } from '../../../protocol/frames/layout.js';
import { BleUnavailableError, SETCAP_HINT } from '../errors.js';
import type { AdvertisementHandler, BeaconSource } from './source.js';

/** The part of noble the relay uses. */
export interface NobleLike {
  on(event: 'stateChange', listener: (state: string) => void): unknown;
  on(event: 'discover', listener: (peripheral: NoblePeripheral) => void): unknown;
  removeListener(event: string, listener: (...args: never[]) => void): unknown;
  startScanningAsync(serviceUuids?: string[], allowDuplicates?: boolean): Promise<void>;
  stopScanningAsync?(): Promise<void>;
  stopScanning?(): void;
  readonly state?: string;
  readonly _state?: string;
}

export interface NoblePeripheral {
  readonly id?: string;
  readonly address?: string;
  readonly advertisement?: { readonly manufacturerData?: Uint8Array | null };
}

export interface BleSourceOptions {
  /** How to load noble; tests pass fakes. Default: dynamic import of @abandonware/noble. */
  readonly load?: () => Promise<unknown>;
  /** How long to wait for the adapter to report poweredOn. */
  readonly readyTimeoutMs?: number;
  readonly now?: () => number;
}

const NOBLE_MODULE = '@abandonware/noble';

/** Map a load or start failure to what the person at the machine should do. */
export function bleFailure(err: unknown): BleUnavailableError {
  if (err instanceof BleUnavailableError) return err;
  const code = (err as NodeJS.ErrnoException)?.code ?? '';
  const message = (err as Error)?.message ?? String(err);
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND')
    return new BleUnavailableError(
      'NOT_INSTALLED',
      `Bluetooth scanning needs ${NOBLE_MODULE}, which is not installed (npm install ${NOBLE_MODULE}; it builds a native module)`,
    );
  if (code === 'EPERM' || code === 'EACCES' || /EPERM|EACCES|Operation not permitted/.test(message))
    return new BleUnavailableError('NO_PERMISSION', permissionMessage());
  if (
    ['EAFNOSUPPORT', 'ENODEV', 'ENXIO', 'ENOENT'].includes(code) ||
    /EAFNOSUPPORT|ENODEV|No such device|No compatible USB Bluetooth/.test(message)
  )
    return new BleUnavailableError(
      'NO_ADAPTER',
      `no Bluetooth adapter found (${code || message}); plug one in or enable it (hciconfig, bluetoothctl)`,
    );
  if (/Unsupported platform/.test(message))
    return new BleUnavailableError('UNSUPPORTED_PLATFORM', `noble does not run here: ${message}`);
  return new BleUnavailableError('NO_ADAPTER', `Bluetooth scanning could not start: ${message}`);
}

function permissionMessage(): string {
  return `no permission to use the Bluetooth adapter: run as root, or let node open raw HCI sockets with\n  ${SETCAP_HINT}`;
}

function stateFailure(state: string): BleUnavailableError | undefined {
  switch (state) {
    case 'poweredOn':
      return undefined;
    case 'unauthorized':
      return new BleUnavailableError('NO_PERMISSION', permissionMessage());
    case 'poweredOff':
      return new BleUnavailableError(
        'POWERED_OFF',
        'the Bluetooth adapter is powered off (bluetoothctl power on; rfkill unblock bluetooth)',
      );
    case 'unsupported':
      return new BleUnavailableError(
        'NO_ADAPTER',
        'the Bluetooth adapter does not support Bluetooth Low Energy, or none was found',
      );
    default:
      return new BleUnavailableError(
        'NO_ADAPTER',
        `the Bluetooth adapter is not ready (state ${state})`,
      );
  }
}

/** Raw AD bytes for the manufacturer data noble splits out (company ID first, as on the air). */
export function manufacturerAd(manufacturerData: Uint8Array): Uint8Array | null {
  if (manufacturerData.length < 2 || manufacturerData.length > 253) return null;
  const ad = new Uint8Array(manufacturerData.length + 2);
  ad[0] = manufacturerData.length + 1;
  ad[1] = AD_TYPE_MANUFACTURER;
  ad.set(manufacturerData, 2);
  return ad;
}

/**
 * Load noble and wait for the adapter. Rejects with BleUnavailableError (not installed, no
 * adapter, no permission, powered off) before any scanning starts.
 */
export async function openBleSource(options: BleSourceOptions = {}): Promise<BeaconSource> {
  let noble: NobleLike;
  try {
    const mod = (await (options.load ?? (() => import(NOBLE_MODULE)))()) as {
      default?: NobleLike;
    } & NobleLike;
    noble = mod.default ?? mod;
  } catch (err) {
    throw bleFailure(err);
  }
  const now = options.now ?? Date.now;
  await new Promise<void>((resolve, reject) => {
    const current = noble.state ?? noble._state;
    if (current === 'poweredOn') return resolve();
    const timer = setTimeout(() => {
      noble.removeListener('stateChange', onState);
      reject(
        new BleUnavailableError(
          'NO_ADAPTER',
          `no Bluetooth adapter answered within ${Math.round((options.readyTimeoutMs ?? 10_000) / 1000)} s`,
        ),
      );
    }, options.readyTimeoutMs ?? 10_000);
    const onState = (state: string) => {
      if (state === 'unknown' || state === 'resetting') return;
      clearTimeout(timer);
      noble.removeListener('stateChange', onState);
      const failure = stateFailure(state);
      if (failure) reject(failure);
      else resolve();
    };
    try {
      noble.on('stateChange', onState);
    } catch (err) {
      clearTimeout(timer);
      reject(bleFailure(err));
    }
  });

  let onDiscover: ((p: NoblePeripheral) => void) | undefined;
  return {
    async start(on: AdvertisementHandler) {
      onDiscover = (p) => {
        const data = p.advertisement?.manufacturerData;
        if (!data) return;
        const ad = manufacturerAd(data);
        if (ad) on(p.address || p.id || 'unknown', ad, now());
      };
      noble.on('discover', onDiscover);
      try {
        // Duplicates on: the beacon rotates four frames from one address, and each one matters.
        await noble.startScanningAsync([], true);
      } catch (err) {
        throw bleFailure(err);
      }
    },
    stop() {
      if (onDiscover) noble.removeListener('discover', onDiscover as (...a: never[]) => void);
      onDiscover = undefined;
      if (noble.stopScanningAsync) noble.stopScanningAsync().catch(() => undefined);
      else noble.stopScanning?.();
    },
  };
}
