import { randomBytes } from 'node:crypto';
import vm from 'node:vm';
import type { VirtualClock } from './clock.js';
import { type CryptoFeatures, cryptoModule } from './crypto.js';
import { type RadioState, newRadioState, nrfModule } from './radio.js';
import { EmulatedFlash, storageModule } from './storage.js';

export interface DeviceOptions {
  readonly clock: VirtualClock;
  readonly crypto: CryptoFeatures;
  /** Flash that survives reboots; pass the same one to a new device to model a board swap. */
  readonly flash?: EmulatedFlash;
  /** Source of E.hwRand(); defaults to the system CSPRNG. */
  readonly hwRand?: () => number;
  /** Battery percent for E.getBattery(); null for boards without it. */
  readonly battery?: number | null;
  /** Clock error in parts per million (the RC oscillator is rated ±500 ppm). */
  readonly driftPpm?: number;
}

const BOOT_FILES = ['.boot0', '.boot1', '.boot2', '.boot3', '.bootrst', '.bootcde'];

/**
 * An emulated Espruino board: each boot is a fresh JavaScript context over the same flash, with
 * the globals the firmware uses, timers on a virtual clock, a console that can be locked away,
 * and a watchdog that resets a stalled device.
 */
export class EspruinoDevice {
  readonly flash: EmulatedFlash;
  readonly radio: RadioState = newRadioState();
  /** Everything printed since the last boot, one entry per print call. */
  output: string[] = [];
  /** Uncaught errors, as Espruino would report them on the console. */
  errors: string[] = [];
  boots = 0;
  resets: string[] = [];
  battery: number | null;

  #context: vm.Context | undefined;
  #clockOffsetMs: number;
  #console: 'attached' | null = 'attached';
  #watchdog: { timeoutMs: number; lastKick: number; timer: number } | undefined;
  #hung = false;

  constructor(private readonly options: DeviceOptions) {
    this.flash = options.flash ?? new EmulatedFlash();
    this.battery = options.battery === undefined ? 100 : options.battery;
    this.#clockOffsetMs = -this.#rawMs(); // powered on now: getTime() starts at 0
  }

  /** Device clock, seconds, as getTime() returns it. */
  time(): number {
    return (this.#rawMs() + this.#clockOffsetMs) / 1000;
  }

  /** Set the device clock from outside, as a connected IDE's time sync would. */
  setClock(seconds: number): void {
    this.#clockOffsetMs = seconds * 1000 - this.#rawMs();
  }

  /** Write code to a Storage file (as the CLI's SAVE_ON_SEND=2 writes .bootrst), then boot it. */
  install(code: string, file = '.bootrst'): void {
    storageModule(this.flash).write(file, code);
    this.boot();
  }

  /** A fresh interpreter over the same flash; the clock survives (soft/watchdog reset). */
  boot(options: { btn1Held?: boolean } = {}): void {
    this.#teardown();
    this.boots++;
    this.output = [];
    this.#console = 'attached';
    this.#hung = false;
    Object.assign(this.radio, newRadioState());
    const ctx = vm.createContext(this.#globals());
    this.#context = ctx;
    vm.runInContext('var global = this;', ctx);
    const storage = storageModule(this.flash);
    for (const file of BOOT_FILES) {
      // BTN1 held at boot skips .bootcde only; .boot0–3 and .bootrst still run (facts §6).
      if (file === '.bootcde' && options.btn1Held) continue;
      const code = storage.read(file);
      if (code !== undefined) this.#run(code, file);
    }
  }

  /** Soft or watchdog reset: new context, clock kept. */
  reset(reason: string): void {
    this.resets.push(reason);
    this.boot();
  }

  /** Battery out and back in: the clock is lost, flash is kept. */
  powerCycle(): void {
    this.#clockOffsetMs = -this.#rawMs();
    this.resets.push('power');
    this.boot();
  }

  /**
   * Type a line at the console over `via`. Ignored (returns null) when the console was moved off
   * every interface, or over BLE when the UART service is gone. Otherwise returns what it printed.
   */
  console(line: string, via: 'serial' | 'ble' = 'ble'): string[] | null {
    if (!this.#context || this.#console === null) return null;
    if (via === 'ble' && !this.radio.uart) return null;
    const before = this.output.length;
    this.#run(line, 'console');
    return this.output.slice(before);
  }

  /** The main loop stops (a busy loop or a crash): timers no longer fire. */
  hang(): void {
    this.#hung = true;
  }

  /** A GATT read as a connected phone makes it. */
  gattRead(service: string, characteristic: string): Uint8Array | undefined {
    const c = this.radio.services.get(service)?.get(characteristic);
    return c?.readable ? Uint8Array.from(c.value) : undefined;
  }

  #rawMs(): number {
    return this.options.clock.now() * (1 + (this.options.driftPpm ?? 0) / 1e6);
  }

  #run(code: string, filename: string): void {
    try {
      vm.runInContext(code, this.#context as vm.Context, { filename });
    } catch (err) {
      this.errors.push(`${filename}: ${(err as Error).message ?? String(err)}`);
      this.output.push(`Uncaught ${String(err)}`);
    }
  }

  #teardown(): void {
    for (const id of this.#handles.values()) this.options.clock.cancel(id);
    this.#handles.clear();
    if (this.#watchdog) this.options.clock.cancel(this.#watchdog.timer);
    this.#watchdog = undefined;
    this.#context = undefined;
  }

  /** Device timer handle → the clock timer currently pending for it (intervals re-arm). */
  #handles = new Map<number, number>();
  #handleSeq = 0;

  #timer(fn: unknown, ms: unknown, repeat: boolean): number {
    if (typeof fn !== 'function') throw new Error('Expecting a function');
    const delay = Math.max(0, Number(ms) || 0);
    const context = this.#context;
    const handle = ++this.#handleSeq;
    const arm = () => this.#handles.set(handle, this.options.clock.schedule(delay, fire));
    const fire = () => {
      this.#handles.delete(handle);
      if (this.#context !== context || this.#hung) return;
      if (repeat) arm();
      try {
        (fn as () => void)();
      } catch (err) {
        this.errors.push(`timer: ${(err as Error).message}`);
        this.output.push(`Uncaught ${String(err)}`);
      }
    };
    arm();
    return handle;
  }

  #clearTimer(handle: unknown): void {
    const id = this.#handles.get(Number(handle));
    if (id !== undefined) this.options.clock.cancel(id);
    this.#handles.delete(Number(handle));
  }

  #enableWatchdog(timeoutSeconds: number): void {
    const timeoutMs = Math.max(1, timeoutSeconds) * 1000;
    const check = () => {
      const wd = this.#watchdog;
      if (!wd) return;
      if (this.options.clock.now() - wd.lastKick >= wd.timeoutMs) {
        this.reset('watchdog');
        return;
      }
      wd.timer = this.options.clock.schedule(
        wd.lastKick + wd.timeoutMs - this.options.clock.now(),
        check,
      );
    };
    this.#watchdog = {
      timeoutMs,
      lastKick: this.options.clock.now(),
      timer: this.options.clock.schedule(timeoutMs, check),
    };
  }

  #globals(): Record<string, unknown> {
    const storage = storageModule(this.flash);
    const crypto = cryptoModule(this.options.crypto);
    const hwRand = this.options.hwRand ?? (() => randomBytes(4).readInt32LE(0));
    return {
      getTime: () => this.time(),
      setTime: (seconds: number) => {
        this.#clockOffsetMs = Number(seconds) * 1000 - this.#rawMs();
      },
      print: (...args: unknown[]) => {
        this.output.push(
          args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '),
        );
      },
      setInterval: (fn: unknown, ms: unknown) => this.#timer(fn, ms, true),
      setTimeout: (fn: unknown, ms: unknown) => this.#timer(fn, ms, false),
      clearInterval: (h: unknown) => this.#clearTimer(h),
      clearTimeout: (h: unknown) => this.#clearTimer(h),
      require(name: string): unknown {
        if (name === 'Storage') return storage;
        if (name === 'crypto') return crypto;
        throw new Error(`Module ${name} not found`);
      },
      E: {
        hwRand: () => hwRand() | 0,
        enableWatchdog: (timeout: number, isAuto: boolean) => {
          // Auto mode kicks from the idle loop, so only a hang can trip it.
          if (isAuto === false) this.#enableWatchdog(timeout);
        },
        kickWatchdog: () => {
          if (this.#watchdog) this.#watchdog.lastKick = this.options.clock.now();
        },
        setConsole: (dev: unknown, opts?: { force?: boolean }) => {
          if (dev === null && opts?.force) this.#console = null;
        },
        ...(this.battery === null ? {} : { getBattery: () => this.battery }),
        reboot: () => {
          this.options.clock.schedule(0, () => this.reset('E.reboot'));
        },
      },
      NRF: nrfModule(this.radio),
    };
  }
}
