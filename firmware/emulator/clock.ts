interface Timer {
  readonly id: number;
  readonly due: number;
  readonly run: () => void;
}

/** World time for emulated devices: timers fire only when a test or simulator advances it. */
export class VirtualClock {
  #now: number;
  #seq = 0;
  #timers: Timer[] = [];

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  /** Run `run` at now + delayMs; returns an id for cancel(). */
  schedule(delayMs: number, run: () => void): number {
    const id = ++this.#seq;
    this.#timers.push({ id, due: this.#now + Math.max(0, delayMs), run });
    return id;
  }

  cancel(id: number): void {
    this.#timers = this.#timers.filter((t) => t.id !== id);
  }

  /** Move time forward, firing every timer that falls due, in order, at its own time. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      // Earliest due first; ids break ties in the order timers were set.
      let next: Timer | undefined;
      for (const t of this.#timers)
        if (
          t.due <= target &&
          (!next || t.due < next.due || (t.due === next.due && t.id < next.id))
        )
          next = t;
      if (!next) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      this.#now = next.due;
      next.run();
    }
    this.#now = target;
  }
}
