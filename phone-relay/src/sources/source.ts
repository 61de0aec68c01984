/** Where advertisements come from: a real Bluetooth scanner, or emulated beacons in a simulation. */

/** One advertisement heard: the advertiser's BLE address, its raw AD structures, and when. */
export type AdvertisementHandler = (address: string, data: Uint8Array, nowMs: number) => void;

export interface BeaconSource {
  /** Start delivering advertisements; resolves once scanning runs (rejects when it cannot). */
  start(onAdvertisement: AdvertisementHandler): void | Promise<void>;
  stop(): void;
}

/** Several sources as one (e.g. the beacon and a neighbour flooding frames, in tests). */
export function combineSources(...sources: BeaconSource[]): BeaconSource {
  return {
    async start(on) {
      for (const s of sources) await s.start(on);
    },
    stop() {
      for (const s of sources) s.stop();
    },
  };
}
