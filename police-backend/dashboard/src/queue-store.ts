/**
 * The open-alert queue, kept current from live `alert` messages so the queue page and the nav
 * badge agree. Only reviewable, unresolved alerts belong here; `info` updates never do.
 *
 * At national scale a queue can hold thousands of alerts, so the store loads the first page of
 * each queue (the server's order) and more on request. A queue it holds whole stays exact from
 * live messages alone, counts included; of a longer one it holds a prefix — every alert up to
 * its last loaded one — and shows the server's count, pushed live (`counts` messages).
 */
import type { Alert, Queue, QueueCounts, QueueSnapshot } from './types.js';
import { QUEUES, isReviewable } from './types.js';

/** Alerts per queue per request: a screenful many times over, and quick to fetch and draw. */
export const QUEUE_PAGE = 100;

export type QueueChange =
  | { readonly type: 'reset' }
  | { readonly type: 'added'; readonly alert: Alert; readonly index: number }
  | { readonly type: 'updated'; readonly alert: Alert }
  | { readonly type: 'removed'; readonly alert: Alert }
  | { readonly type: 'counts' }
  | { readonly type: 'page'; readonly queue: Queue; readonly alerts: readonly Alert[] };

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
  /** Per queue: true when every open alert of it is here (then counts come from the list). */
  private whole: Record<Queue, boolean> = { violation: true, maintenance: true };
  private serverCounts: { counts: QueueCounts; at: number } | null = null;
  loaded = false;

  list(): readonly Alert[] {
    return this.alerts;
  }

  /** Open alerts in a queue: exact when the queue is held whole, else the server's latest count. */
  count(queue: Queue): number {
    const here = this.alerts.filter((a) => a.queue === queue).length;
    if (this.whole[queue]) return here;
    return Math.max(here, this.serverCounts?.counts[queue] ?? 0);
  }

  total(): number {
    return QUEUES.reduce((n, q) => n + this.count(q), 0);
  }

  /** Whether the queue has alerts beyond those loaded. */
  hasMore(queue: Queue): boolean {
    return !this.whole[queue];
  }

  subscribe(listener: (change: QueueChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private inflight: Promise<void> | null = null;
  /** How the first pages were fetched, to start again from. */
  private snapshot: (() => Promise<QueueSnapshot>) | null = null;

  /** Loaded already, being loaded, or load now. */
  ensure(fetch: () => Promise<QueueSnapshot>): Promise<void> {
    if (this.loaded) return Promise.resolve();
    return this.inflight ?? this.load(fetch);
  }

  /** Replace the queue with `fetch()`'s answer (the server's order), then replay what arrived meanwhile. */
  load(fetch: () => Promise<QueueSnapshot>): Promise<void> {
    this.snapshot = fetch;
    return this.track(
      this.fetchAndReplay(fetch, (snapshot) => {
        this.alerts = snapshot.alerts.filter(belongsInQueue).sort(queueOrder);
        for (const q of QUEUES) {
          const here = snapshot.alerts.filter((a) => a.queue === q).length;
          this.whole[q] = here >= snapshot.counts[q];
        }
        this.setCounts(snapshot.counts, snapshot.countsAt);
        this.loaded = true;
        this.emit({ type: 'reset' });
      }),
    );
  }

  /** The next page of a queue after its last loaded alert; a short page means the end. */
  loadMore(queue: Queue, fetch: (after: string) => Promise<Alert[]>): Promise<void> {
    const last = this.alerts.filter((a) => a.queue === queue).pop();
    if (!this.loaded || this.whole[queue]) return Promise.resolve();
    if (this.inflight) return this.inflight;
    // Nothing of it left here (resolved since): start the queues afresh.
    if (!last) return this.snapshot ? this.load(this.snapshot) : Promise.resolve();
    return this.track(
      this.fetchAndReplay(
        () => fetch(last.id),
        (page) => {
          const known = new Set(this.alerts.map((a) => a.id));
          const added = page.filter((a) => belongsInQueue(a) && !known.has(a.id));
          this.alerts = [...this.alerts, ...added].sort(queueOrder);
          if (page.length < QUEUE_PAGE) this.whole[queue] = true;
          this.emit({ type: 'page', queue, alerts: added });
        },
      ),
    );
  }

  private track(run: Promise<void>): Promise<void> {
    const tracked = run.finally(() => {
      if (this.inflight === tracked) this.inflight = null;
    });
    this.inflight = tracked;
    return tracked;
  }

  private async fetchAndReplay<T>(fetch: () => Promise<T>, use: (data: T) => void): Promise<void> {
    const generation = ++this.generation;
    this.pending = [];
    try {
      const data = await fetch();
      if (generation !== this.generation) return;
      const waiting = this.pending;
      this.pending = null;
      use(data);
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
    this.whole = { violation: true, maintenance: true };
    this.serverCounts = null;
    this.emit({ type: 'reset' });
  }

  /** A live `counts` message (or a fetch's counts): kept if newer than what we have. */
  setCounts(counts: QueueCounts, at: number): void {
    if (this.serverCounts && at < this.serverCounts.at) return;
    this.serverCounts = { counts, at };
    if (this.loaded) this.emit({ type: 'counts' });
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
    // Of a queue held in part, only alerts up to its last loaded one are kept (a prefix).
    const inPart = (a: Alert) => {
      if (!a.queue || this.whole[a.queue]) return true;
      const last = this.alerts.filter((x) => x.queue === a.queue && x.id !== a.id).pop();
      return last !== undefined && queueOrder(a, last) < 0;
    };
    if (!belongsInQueue(alert) || (!current && !inPart(alert))) {
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
