/** Beacon IDs the police benchmarks register and the load generator refers to. */
export const beaconId = (i: number): string => `SB-${String(i).padStart(6, '0')}`;
