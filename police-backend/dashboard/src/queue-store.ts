/**
 * The open-alert queue, kept current from live `alert` messages so the queue page and the nav
 * badge agree. Only reviewable, unresolved alerts belong here; `info` updates never do.
 */
import type { Alert } from './types.js';
import { isReviewable } from './types.js';

export type QueueChange =
  | { readonly type: 'reset' }
  | { readonly type: 'added'; readonly alert: Alert; readonly index: number }
  | { readonly type: 'updated'; readonly alert: Alert }
  | { readonly type: 'removed'; readonly alert: Alert };

/** The server's order: higher urgency first, then the oldest. */
export function queueOrder(a: Alert, b: Alert): number {
  return (
    b.urgency - a.urgency ||
    a.occurredAt - b.occurredAt ||
    a.receivedAt - b.receivedAt ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

export const belongsInQueue = (a: Alert): boolean =>
  isReviewable(a.kind) && a.state !== 'info' && a.state !== 'resolved';

export class QueueStore {
  private alerts: Alert[] = [];
  private listeners = new Set<(change: QueueChange) => void>();
  /** While a fetch is under way, live messages wait here and are applied after it. */
  private pending: Alert[] | null = null;
  private generation = 0;
  loaded = false;

  list(): readonly Alert[] {
    return this.alerts;
  }

  subscribe(listener: (change: QueueChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private inflight: Promise<void> | null = null;

  /** Loaded already, being loaded, or load now. */
  ensure(fetch: () => Promise<Alert[]>): Promise<void> {
    if (this.loaded) return Promise.resolve();
    return this.inflight ?? this.load(fetch);
  }

  /** Replace the queue with `fetch()`'s answer (the server's order), then replay what arrived meanwhile. */
  load(fetch: () => Promise<Alert[]>): Promise<void> {
    const run = this.fetchAndReplay(fetch);
    const tracked = run.finally(() => {
      if (this.inflight === tracked) this.inflight = null;
    });
    this.inflight = tracked;
    return tracked;
  }

  private async fetchAndReplay(fetch: () => Promise<Alert[]>): Promise<void> {
    const generation = ++this.generation;
    this.pending = [];
    try {
      const alerts = await fetch();
      if (generation !== this.generation) return;
      const waiting = this.pending;
      this.pending = null;
      this.alerts = alerts.filter(belongsInQueue);
      this.loaded = true;
      this.emit({ type: 'reset' });
      for (const alert of waiting) this.apply(alert, true);
    } catch (e) {
      if (generation === this.generation) this.pending = null;
      throw e;
    }
  }

  clear(): void {
    this.generation++;
    this.inflight = null;
    this.alerts = [];
    this.pending = null;
    this.loaded = false;
    this.emit({ type: 'reset' });
  }

  /** A live `alert` message. `replay` marks messages that waited for a fetch. */
  apply(alert: Alert, replay = false): void {
    if (this.pending && !replay) {
      this.pending.push(alert);
      return;
    }
    const index = this.alerts.findIndex((a) => a.id === alert.id);
    const current = index >= 0 ? this.alerts[index] : undefined;
    if (current && alert.updatedAt < current.updatedAt) return; // out of order
    if (!belongsInQueue(alert)) {
      if (current) {
        this.alerts.splice(index, 1);
        this.emit({ type: 'removed', alert });
      }
      return;
    }
    if (current) {
      this.alerts[index] = alert;
      this.emit({ type: 'updated', alert });
      return;
    }
    let at = this.alerts.findIndex((a) => queueOrder(alert, a) < 0);
    if (at < 0) at = this.alerts.length;
    this.alerts.splice(at, 0, alert);
    this.emit({ type: 'added', alert, index: at });
  }

  private emit(change: QueueChange): void {
    for (const listener of this.listeners) listener(change);
  }
}
