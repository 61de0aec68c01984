import { fromHex } from './bytes.js';

export const CONFIG_FILE = 'sb.cfg';
/** Runs at every boot, BTN1 held or not (facts §6), so the lock lives here. */
export const LOCK_FILE = '.boot0';
export const LOCK_CODE = 'E.setConsole(null,{force:true});NRF.setServices({},{uart:false});';

export interface BeaconConfig {
  readonly id: string;
  /** SK_BEACON, hex. */
  readonly key: string;
  /** TX power, dBm. */
  readonly tx: number;
  /** Seconds between tokens. */
  readonly cadence: number;
  /** Advertising interval while connectable (before lock, maintenance), ms. */
  readonly interval: number;
  /** After lock: s of each token period advertised in a burst (src/schedule.ts); 0 = continuously. */
  readonly burst: number;
}

export type ProvisionError =
  | 'ALREADY_PROVISIONED'
  | 'LOCKED'
  | 'NOT_PROVISIONED'
  | 'BAD_REQUEST'
  | 'BAD_ID'
  | 'BAD_KEY'
  | 'BAD_TIME'
  | 'BAD_TX_POWER'
  | 'BAD_CADENCE'
  | 'BAD_INTERVAL'
  | 'BAD_BURST';

const TX_POWERS = [-40, -20, -16, -12, -8, -4, 0, 4];
/** s: the shortest burst every required Android scan mode hears reliably (bench:firmware). */
export const DEFAULT_BURST = 14;
/** 2020-09-13: a clock below this was never set. */
export const MIN_VALID_TIME = 1600000000;

function isInteger(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && v % 1 === 0 && v >= min && v <= max;
}

/** Check a provisioning request field by field; the first bad field names the error. */
export function validateProvision(
  input: unknown,
): { config: BeaconConfig; time: number } | { error: ProvisionError } {
  if (typeof input !== 'object' || input === null) return { error: 'BAD_REQUEST' };
  const r = input as Record<string, unknown>;
  if (typeof r.id !== 'string' || !/^[A-Za-z0-9-]{1,32}$/.test(r.id)) return { error: 'BAD_ID' };
  if (!fromHex(r.key, 32)) return { error: 'BAD_KEY' };
  if (typeof r.time !== 'number' || !(r.time >= MIN_VALID_TIME && r.time < 4294967296))
    return { error: 'BAD_TIME' };
  const tx = r.tx === undefined ? 0 : r.tx;
  if (typeof tx !== 'number' || TX_POWERS.indexOf(tx) < 0) return { error: 'BAD_TX_POWER' };
  const cadence = r.cadence === undefined ? 60 : r.cadence;
  if (!isInteger(cadence, 5, 3600)) return { error: 'BAD_CADENCE' };
  // 375 ms: a 2 s rotation (500 ms) aliases with Android's 4,096 ms balanced scan period (docs/protocol.md §5).
  const interval = r.interval === undefined ? 375 : r.interval;
  if (!isInteger(interval, 20, 10240)) return { error: 'BAD_INTERVAL' };
  const burst = r.burst === undefined ? Math.min(DEFAULT_BURST, cadence) : r.burst;
  if (!isInteger(burst, 0, cadence)) return { error: 'BAD_BURST' };
  return {
    config: {
      id: r.id,
      key: (r.key as string).toLowerCase(),
      tx: tx,
      cadence: cadence,
      interval: interval,
      burst: burst,
    },
    time: r.time,
  };
}

export function loadConfig(): BeaconConfig | undefined {
  const c = require('Storage').readJSON(CONFIG_FILE, true) as BeaconConfig | undefined;
  return c && typeof c.id === 'string' && fromHex(c.key, 32) ? c : undefined;
}

export function isLocked(): boolean {
  return require('Storage').read(LOCK_FILE) !== undefined;
}
