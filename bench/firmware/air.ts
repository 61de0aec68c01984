/**
 * The air between an emulated beacon and one phone, as Espruino's radio behaves: every
 * NRF.setAdvertising stops advertising and starts it again at once, at the first packet of the new
 * set (libs/bluetooth/jswrap_bluetooth.c: jsble_advertising_stop, then jsble_advertising_start), so
 * a burst begins when the firmware asks for it. Otherwise the model of phone-relay's
 * SimulatedBleSource, with the same draws from the same seeded random: the phone's scan phase, a
 * 0–10 ms advertising delay per event, and the loss inside scan windows.
 */
import type { EspruinoDevice } from '../../firmware/emulator/index.js';
import type { VirtualTime } from '../../phone-relay/src/scheduler.js';
import type { AdvertisementHandler, BeaconSource } from '../../phone-relay/src/sources/source.js';

const ADV_DELAY_MAX_MS = 10;

export interface AirOptions {
  readonly clock: VirtualTime;
  readonly device: EspruinoDevice;
  readonly address: string;
  /** The phone hears only during the first windowMs of every intervalMs; default: continuously. */
  readonly scan?: { readonly windowMs: number; readonly intervalMs: number };
  /** Share of advertisements lost inside a scan window. */
  readonly loss: number;
  readonly random: () => number;
}

export class EspruinoAir implements BeaconSource {
  /** Advertising events on the air and advertisements delivered. */
  readonly counts = { events: 0, heard: 0, starts: 0 };
  readonly #phase: number;
  #on: AdvertisementHandler | undefined;
  #pending: number | undefined;
  #index = 0;

  constructor(private readonly o: AirOptions) {
    this.#phase = o.scan ? o.random() * o.scan.intervalMs : 0;
    // The emulated NRF.setAdvertising assigns a new packet list on every call: that is the restart.
    const radio = o.device.radio;
    let packets = radio.advertisements;
    Object.defineProperty(radio, 'advertisements', {
      configurable: true,
      enumerable: true,
      get: () => packets,
      set: (value: Uint8Array[]) => {
        packets = value;
        this.#restart();
      },
    });
  }

  start(onAdvertisement: AdvertisementHandler): void {
    this.#on = onAdvertisement;
    this.#restart();
  }

  stop(): void {
    this.#on = undefined;
    this.#cancel();
  }

  #cancel(): void {
    if (this.#pending !== undefined) this.o.clock.cancel(this.#pending);
    this.#pending = undefined;
  }

  #restart(): void {
    this.#cancel();
    if (!this.#on || !this.o.device.radio.advertisements.length) return;
    this.counts.starts++;
    this.#index = 0;
    this.#arm(this.o.random() * ADV_DELAY_MAX_MS);
  }

  #arm(delayMs: number): void {
    this.#pending = this.o.clock.schedule(delayMs, () => {
      this.#pending = undefined;
      const on = this.#on;
      const { advertisements, intervalMs } = this.o.device.radio;
      if (!on || !advertisements.length) return;
      this.counts.events++;
      const packet = advertisements[this.#index++ % advertisements.length] as Uint8Array;
      if (this.#scanning() && this.o.random() >= this.o.loss) {
        this.counts.heard++;
        on(this.o.address, Uint8Array.from(packet), this.o.clock.now());
      }
      this.#arm(intervalMs + this.o.random() * ADV_DELAY_MAX_MS);
    });
  }

  #scanning(): boolean {
    const scan = this.o.scan;
    if (!scan || scan.windowMs >= scan.intervalMs) return true;
    return (this.o.clock.now() + this.#phase) % scan.intervalMs < scan.windowMs;
  }
}
