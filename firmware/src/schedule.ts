// How the current token goes on the air (docs/protocol.md §4.5). While an officer may connect —
// before lock, and for a while after a button press — connectable and continuous at the configured
// interval. After lock, non-connectable: a burst at the fastest interval the SoftDevice allows at
// the start of each token period, then the slowest interval until the next token.

import { BURST_INTERVAL, REST_INTERVAL } from './intervals.js';

/** s a button press keeps a locked beacon connectable (a GATT read, docs/protocol.md §4.3). */
export const OPEN_SECONDS = 120;

export interface Air {
  /** The current token's four advertisements. */
  packets: Uint8Array[];
  /** Connectable: before lock, or in a maintenance window. */
  open: boolean;
  /** Continuous interval while connectable, and after lock when burst is 0, ms. */
  readonly interval: number;
  /** s at BURST_INTERVAL at the start of each token period after lock; 0: continuous at interval. */
  readonly burst: number;
  timer: number | undefined;
}

function advertise(air: Air, interval: number): void {
  // Espruino restarts advertising on every call, at the first packet (facts §4).
  NRF.setAdvertising(air.packets, {
    interval: interval,
    connectable: air.open,
    scannable: false,
    whenConnected: true,
  });
}

/** Put the packets on the air as the schedule says: `fresh` for a new token, else a change of mode. */
export function onAir(air: Air, fresh: boolean): void {
  if (air.timer !== undefined) clearTimeout(air.timer);
  air.timer = undefined;
  if (air.open || air.burst === 0) return advertise(air, air.interval);
  if (!fresh) return advertise(air, REST_INTERVAL);
  advertise(air, BURST_INTERVAL);
  air.timer = setTimeout(function () {
    air.timer = undefined;
    advertise(air, REST_INTERVAL);
  }, air.burst * 1000);
}

/** After lock: a press of BTN makes the beacon connectable for OPEN_SECONDS, then the schedule resumes. */
export function watchButton(air: Air): void {
  // The emulation has no pins: without a button there is no maintenance window, nothing else changes.
  if (typeof setWatch === 'undefined' || typeof BTN === 'undefined') return;
  let closing: number | undefined;
  setWatch(
    function () {
      if (closing !== undefined) clearTimeout(closing);
      air.open = true;
      onAir(air, false);
      closing = setTimeout(function () {
        closing = undefined;
        air.open = false;
        onAir(air, false);
      }, OPEN_SECONDS * 1000);
    },
    BTN,
    { repeat: true, edge: 'rising', debounce: 50 },
  );
}
