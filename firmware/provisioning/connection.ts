import { createRequire } from 'node:module';
import type { EspruinoDevice } from '../emulator/index.js';

/** A console on a beacon: send one line, get back the "SB:" answer it printed. */
export interface BeaconConsole {
  call(expression: string): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export class BeaconUnreachable extends Error {
  readonly code = 'BEACON_UNREACHABLE';
}

function firstAnswer(lines: readonly string[], expression: string): Record<string, unknown> {
  const line = lines.find((l) => l.startsWith('SB:'));
  if (!line) throw new BeaconUnreachable(`the beacon did not answer ${expression.split('(')[0]}()`);
  return JSON.parse(line.slice(3)) as Record<string, unknown>;
}

/** The firmware emulation (--simulate): the same console calls, on an EspruinoDevice. */
export class EmulatedConsole implements BeaconConsole {
  constructor(
    private readonly device: EspruinoDevice,
    private readonly settle: (ms: number) => void,
  ) {}

  async call(expression: string): Promise<Record<string, unknown>> {
    const lines = this.device.console(expression, 'ble');
    if (lines === null) throw new BeaconUnreachable('the beacon console is locked or gone');
    const answer = firstAnswer(lines, expression);
    // Lock and wipe act 200 ms after answering, as on the device.
    this.settle(500);
    return answer;
  }

  async close(): Promise<void> {}
}

interface EspruinoSerial {
  startListening(cb: (data: ArrayBuffer | string) => void): void;
  open(port: string, onStatus: (status: unknown) => void, onDisconnect: () => void): void;
  write(data: string, showStatus: boolean, cb: () => void): void;
  close(): void;
}

/**
 * A real beacon on serial or Bluetooth through the espruino package's connection code. Each call
 * is sent with echo off (\x10) and answered by one "SB:" line.
 */
export class EspruinoConsole implements BeaconConsole {
  #buffer = '';
  #waiting: ((line: string) => void) | undefined;

  private constructor(private readonly serial: EspruinoSerial) {}

  static async open(port: string, timeoutMs = 20_000): Promise<EspruinoConsole> {
    const espruino = createRequire(import.meta.url)('espruino') as { init(cb: () => void): void };
    await new Promise<void>((resolve) => espruino.init(resolve));
    const serial = (globalThis as unknown as { Espruino: { Core: { Serial: EspruinoSerial } } })
      .Espruino.Core.Serial;
    const c = new EspruinoConsole(serial);
    serial.startListening((data) =>
      c.#receive(typeof data === 'string' ? data : Buffer.from(data).toString('latin1')),
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new BeaconUnreachable(`no connection to ${port} within ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      serial.open(
        port,
        (status) => {
          clearTimeout(timer);
          if (status === undefined) reject(new BeaconUnreachable(`unable to connect to ${port}`));
          else resolve();
        },
        () => undefined,
      );
    });
    return c;
  }

  #receive(text: string): void {
    this.#buffer += text;
    let nl: number;
    while ((nl = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, nl).replace(/\r$/, '');
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line.startsWith('SB:') && this.#waiting) this.#waiting(line);
    }
  }

  call(expression: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new BeaconUnreachable(`the beacon did not answer ${expression.split('(')[0]}()`)),
        timeoutMs,
      );
      this.#waiting = (line) => {
        clearTimeout(timer);
        this.#waiting = undefined;
        resolve(JSON.parse(line.slice(3)) as Record<string, unknown>);
      };
      this.serial.write(`\x10${expression}\n`, false, () => undefined);
    });
  }

  async close(): Promise<void> {
    this.serial.close();
  }
}
