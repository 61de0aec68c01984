import type { Database } from '../../backend-kit/db.js';
import { unavailable } from '../../backend-kit/errors.js';
import type { Logger } from '../../backend-kit/logger.js';
import { type Alert, type AlertMessage, receiveAlerts } from './alerts.js';

/** Enough to amortise a transaction; small enough that one batch stays a short transaction. */
const MAX_BATCH = 256;

/**
 * Alerts waiting to be stored (besides the ≤ 256 of the transaction running), at most: four
 * times what one app backend replica can have in flight (32 posts of 64, app-backend/src/delivery.ts),
 * a few MB of parsed alerts. Beyond it a flood is refused (503 OVERLOADED) instead of growing
 * memory; the app backend retries later.
 */
export const INTAKE_MAX_PENDING = 8_192;

/** Seconds a refused sender is asked to wait: a full queue drains in well under that. */
export const OVERLOADED_RETRY_AFTER_SECONDS = 2;

/** The intake is full: nothing of the request was stored, send it again later. */
export const overloaded = () => unavailable('OVERLOADED', OVERLOADED_RETRY_AFTER_SECONDS);

interface Pending {
  readonly message: AlertMessage;
  readonly resolve: (changed: Alert[]) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Alert intake with group commit: alerts that arrive in the same turn of the event loop, or while
 * a transaction runs, are stored together in one transaction, so a burst costs a few statements per
 * batch instead of five per alert. Each request is answered after its batch has committed.
 */
export class AlertIntake {
  #queue: Pending[] = [];
  #running = false;

  constructor(
    private readonly db: Database,
    private readonly clock: () => number,
    private readonly log: Logger,
    /** Changed alerts, once each per batch, after the commit (live updates). */
    private readonly onAlerts: (alerts: Alert[]) => void,
    private readonly maxPending: number = INTAKE_MAX_PENDING,
  ) {}

  /** Alerts waiting to be stored. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Whether `count` more alerts fit now (a batch is admitted whole or not at all). */
  hasRoom(count: number): boolean {
    return this.#queue.length + count <= this.maxPending;
  }

  /**
   * Store one alert; resolves with the alerts whose view changed (empty for a redelivery).
   * Rejects with OVERLOADED (503), storing nothing, while `maxPending` alerts wait.
   */
  receive(message: AlertMessage): Promise<Alert[]> {
    if (!this.hasRoom(1)) return Promise.reject(overloaded());
    return new Promise((resolve, reject) => {
      this.#queue.push({ message, resolve, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length) {
        // Requests waiting to be read join this batch (a PGlite transaction blocks the event loop).
        await new Promise((resolve) => setImmediate(resolve));
        await this.#store(this.#queue.splice(0, MAX_BATCH));
      }
    } finally {
      this.#running = false;
    }
  }

  async #store(batch: Pending[]): Promise<void> {
    let results: Alert[][];
    try {
      results = await this.db.transaction((tx) =>
        receiveAlerts(
          tx,
          batch.map((p) => p.message),
          this.clock(),
        ),
      );
    } catch (err) {
      if (batch.length === 1) return batch[0]?.reject(err);
      // One alert that cannot be stored must not fail the others: each again on its own.
      this.log.warn({ size: batch.length }, 'alert batch failed; storing one by one');
      for (const p of batch) await this.#store([p]);
      return;
    }
    const changed = new Map<string, Alert>();
    for (const list of results) for (const a of list) changed.set(a.id, a);
    if (changed.size) {
      try {
        this.onAlerts([...changed.values()]);
      } catch (err) {
        this.log.error({ errorName: (err as Error)?.name }, 'live update failed');
      }
    }
    batch.forEach((p, i) => p.resolve(results[i] ?? []));
  }
}
