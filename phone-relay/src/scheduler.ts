/**
 * Time for the relay: where "now" comes from and how a callback is run later. Injected, so tests
 * and the simulator move time by hand (a ManualClock or the emulator's VirtualClock) and never
 * sleep; the CLI uses the system clock.
 */
export interface Scheduler {
  now(): number;
  setTimer(run: () => void, delayMs: number): unknown;
  clearTimer(handle: unknown): void;
}

/** Wall clock and Node timers. */
export const systemScheduler: Scheduler = {
  now: () => Date.now(),
  setTimer: (run, delayMs) => setTimeout(run, Math.max(0, delayMs)),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** What the firmware emulator's VirtualClock offers (structural: no import of the emulator). */
export interface VirtualTime {
  now(): number;
  schedule(delayMs: number, run: () => void): number;
  cancel(id: number): void;
}

/** Timers on a VirtualClock: they fire while the test or simulator advances it. */
export function virtualScheduler(clock: VirtualTime): Scheduler {
  return {
    now: () => clock.now(),
    setTimer: (run, delayMs) => clock.schedule(delayMs, run),
    clearTimer: (handle) => clock.cancel(handle as number),
  };
}

interface ManualTimer {
  readonly id: number;
  readonly due: number;
  readonly run: () => void;
}

/**
 * Timers over any clock that a test moves by hand (e.g. test/support's ManualClock): nothing
 * fires until `runDue()` is called; `nextDue()` says when the next one wants to run.
 */
export class ManualScheduler implements Scheduler {
  #seq = 0;
  #timers: ManualTimer[] = [];

  constructor(private readonly clock: { now(): number }) {}

  now(): number {
    return this.clock.now();
  }

  setTimer(run: () => void, delayMs: number): unknown {
    const id = ++this.#seq;
    this.#timers.push({ id, due: this.clock.now() + Math.max(0, delayMs), run });
    return id;
  }

  clearTimer(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** The earliest due time of a pending timer, or undefined. */
  nextDue(): number | undefined {
    let due: number | undefined;
    for (const t of this.#timers) if (due === undefined || t.due < due) due = t.due;
    return due;
  }

  /** Run every timer due by now, earliest first; returns how many ran. */
  runDue(): number {
    let ran = 0;
    for (;;) {
      const now = this.clock.now();
      let next: ManualTimer | undefined;
      for (const t of this.#timers)
        if (t.due <= now && (!next || t.due < next.due || (t.due === next.due && t.id < next.id)))
          next = t;
      if (!next) return ran;
      this.#timers = this.#timers.filter((t) => t !== next);
      next.run();
      ran++;
    }
  }

  get pending(): number {
    return this.#timers.length;
  }
}

/**
 * A scheduler whose timers all vanish at once on `kill()`, as a process's do when it dies: tests
 * use it to crash a relay without a clean stop.
 */
export function killableScheduler(inner: Scheduler): Scheduler & { kill(): void } {
  const live = new Set<unknown>();
  let dead = false;
  return {
    now: () => inner.now(),
    setTimer(run, delayMs) {
      if (dead) return undefined;
      const handle: unknown = inner.setTimer(() => {
        live.delete(handle);
        if (!dead) run();
      }, delayMs);
      live.add(handle);
      return handle;
    },
    clearTimer(handle) {
      live.delete(handle);
      inner.clearTimer(handle);
    },
    kill() {
      dead = true;
      for (const h of live) inner.clearTimer(h);
      live.clear();
    },
  };
}
