/**
 * A scanner over emulated beacons (firmware/emulator's EspruinoDevice running the compiled
 * bundle on a VirtualClock). At each of a beacon's advertising events it takes the packet the
 * device has in rotation at that moment (NRF.setAdvertising([a, b, c, d]) sends one per event)
 * and delivers it if the phone was scanning then and the packet was not lost. The same relay code
 * runs on it in tests and in the local simulator.
 */
import type { VirtualTime } from '../scheduler.js';
import type { AdvertisementHandler, BeaconSource } from './source.js';

/** The part of an EspruinoDevice the scanner reads: what the radio has on the air. */
export interface EmulatedRadio {
  readonly radio: { readonly advertisements: readonly Uint8Array[]; readonly intervalMs: number };
}

export interface SimulatedBeacon {
  readonly device: EmulatedRadio;
  /** The BLE address the beacon advertises from. */
  readonly address: string;
}

export interface SimulatedSourceOptions {
  readonly clock: VirtualTime;
  readonly beacons: readonly SimulatedBeacon[];
  /**
   * The phone's scan duty cycle as periodic windows: it hears only during the first windowMs of
   * every intervalMs (Android: low power 512/5120, balanced 1024/4096, low latency continuous).
   * Default: scanning continuously.
   */
  readonly scan?: { readonly windowMs: number; readonly intervalMs: number };
  /** Share of advertisements lost even inside a scan window (interference, distance), 0–1. */
  readonly loss?: number;
  /** Uniform [0, 1): loss draws, the scan phase and the beacons' 0–10 ms advertising delay. */
  readonly random?: () => number;
}

/** BLE adds a random 0–10 ms delay to every advertising event (Core spec, advDelay). */
const ADV_DELAY_MAX_MS = 10;

export class SimulatedBleSource implements BeaconSource {
  readonly #timers = new Set<number>();
  #running = false;
  readonly #phase: number;
  /** Advertising events and deliveries, for measuring reception. */
  readonly counts = { events: 0, heard: 0 };

  constructor(private readonly options: SimulatedSourceOptions) {
    const random = options.random ?? Math.random;
    this.#phase = options.scan ? random() * options.scan.intervalMs : 0;
  }

  start(onAdvertisement: AdvertisementHandler): void {
    if (this.#running) return;
    this.#running = true;
    for (const beacon of this.options.beacons) this.#arm(beacon, 0, onAdvertisement, 0);
  }

  stop(): void {
    this.#running = false;
    for (const id of this.#timers) this.options.clock.cancel(id);
    this.#timers.clear();
  }

  #arm(beacon: SimulatedBeacon, event: number, on: AdvertisementHandler, delayMs: number): void {
    const random = this.options.random ?? Math.random;
    const id = this.options.clock.schedule(delayMs, () => {
      this.#timers.delete(id);
      if (!this.#running) return;
      const { advertisements, intervalMs } = beacon.device.radio;
      if (advertisements.length) {
        this.counts.events++;
        const packet = advertisements[event % advertisements.length] as Uint8Array;
        if (this.#scanning() && random() >= (this.options.loss ?? 0)) {
          this.counts.heard++;
          on(beacon.address, Uint8Array.from(packet), this.options.clock.now());
        }
      }
      this.#arm(beacon, event + 1, on, intervalMs + random() * ADV_DELAY_MAX_MS);
    });
    this.#timers.add(id);
  }

  #scanning(): boolean {
    const scan = this.options.scan;
    if (!scan || scan.windowMs >= scan.intervalMs) return true;
    const t = (this.options.clock.now() + this.#phase) % scan.intervalMs;
    return t < scan.windowMs;
  }
}
