import { readFileSync } from 'node:fs';
import { EspruinoDevice, VirtualClock } from '../../firmware/emulator/index.js';
import { bundlePath, readBoard } from '../../firmware/scripts/boards.js';

/**
 * The emulated beacons' world, kept at wall-clock time: the emulator's clock is advanced to
 * Date.now() twenty times a second, so firmware timers and relays run at their real pace.
 */
export class RealTimeWorld {
  readonly clock = new VirtualClock(Date.now());
  #timer: NodeJS.Timeout | undefined;

  start(): void {
    this.#timer ??= setInterval(() => this.catchUp(), 50);
  }

  /** Bring the world to now (it may be a little ahead after a provisioning step settled it). */
  catchUp(): void {
    const behind = Date.now() - this.clock.now();
    if (behind > 0) this.clock.advance(behind);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** A Puck.js with the built bundle installed, as `firmware:flash` leaves it. */
  newPuck(battery: number): EspruinoDevice {
    const { smartbeacon } = readBoard('PUCKJS');
    const device = new EspruinoDevice({
      clock: this.clock,
      crypto: { aes: smartbeacon.aes, sha256: smartbeacon.sha256 },
      battery,
    });
    device.install(readFileSync(bundlePath('PUCKJS'), 'utf8'));
    return device;
  }
}
