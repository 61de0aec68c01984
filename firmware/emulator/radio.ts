/** What the emulated NRF object has put on the air, readable by tests and the simulator. */
export interface RadioState {
  /** The raw advertisements in rotation, one per radio event (copied out of the device's realm). */
  advertisements: Uint8Array[];
  intervalMs: number;
  connectable: boolean;
  txPower: number;
  uart: boolean;
  services: Map<string, Map<string, { value: Uint8Array; maxLen: number; readable: boolean }>>;
}

const TX_POWERS = [-40, -20, -16, -12, -8, -4, 0, 4];
const LEGACY_MAX = 31;

function copyBytes(v: unknown): Uint8Array {
  if (ArrayBuffer.isView(v))
    return Uint8Array.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  if (Array.isArray(v)) return Uint8Array.from(v as number[]);
  if (typeof v === 'string') return Uint8Array.from(v, (c) => c.charCodeAt(0) & 0xff);
  throw new Error('Expecting an array of bytes');
}

export function newRadioState(): RadioState {
  return {
    advertisements: [],
    intervalMs: 375,
    connectable: true,
    txPower: 0,
    uart: true,
    services: new Map(),
  };
}

/** The NRF object on a legacy-advertising nRF52 board (espruino-facts.md §4). */
export function nrfModule(radio: RadioState) {
  return {
    setAdvertising(data: unknown, options?: { interval?: number; connectable?: boolean }): void {
      const list = Array.isArray(data) ? data : [data];
      const packets = list.map((p) => {
        // Only raw packets are modelled: that is all the firmware sends.
        const bytes = copyBytes(p);
        if (bytes.length > LEGACY_MAX) throw new Error('Too much data in advertising packet');
        return bytes;
      });
      radio.advertisements = packets;
      radio.intervalMs = Math.min(10240, Math.max(20, options?.interval ?? 375));
      radio.connectable = options?.connectable ?? true;
    },
    setServices(
      services: Record<
        string,
        Record<string, { value?: unknown; maxLen?: number; readable?: boolean }>
      >,
      options?: { uart?: boolean },
    ): void {
      radio.services = new Map();
      for (const [svc, chars] of Object.entries(services ?? {})) {
        const m = new Map<string, { value: Uint8Array; maxLen: number; readable: boolean }>();
        for (const [chr, c] of Object.entries(chars)) {
          const value = c.value === undefined ? new Uint8Array(1) : copyBytes(c.value);
          m.set(chr, {
            value,
            maxLen: c.maxLen ?? Math.max(1, value.length),
            readable: c.readable ?? false,
          });
        }
        radio.services.set(svc, m);
      }
      radio.uart = options?.uart ?? true;
    },
    updateServices(updates: Record<string, Record<string, { value: unknown }>>): void {
      for (const [svc, chars] of Object.entries(updates)) {
        for (const [chr, u] of Object.entries(chars)) {
          const c = radio.services.get(svc)?.get(chr);
          if (!c) throw new Error(`Unable to find service ${svc} characteristic ${chr}`);
          const value = copyBytes(u.value);
          if (value.length > c.maxLen) throw new Error('Value longer than maxLen');
          c.value = value;
        }
      }
    },
    setTxPower(dBm: number): void {
      if (!TX_POWERS.includes(dBm)) throw new Error('Invalid TX power');
      radio.txPower = dBm;
    },
    getBattery: () => 3.0,
  };
}
