import type { Database } from '../../backend-kit/db.js';
import type { PresenceStatus } from '../../protocol/presence-status.js';

interface Entry {
  readonly id: string;
  readonly state: 'registered' | 'monitoring';
  readonly windowSeconds: number;
  readonly lastPresenceAt: number | null;
  readonly gapStartedAt: number | null;
}

/** Rows are stamped with the writer's clock; look back this far so a late commit is not missed. */
const OVERLAP_MS = 10_000;

/**
 * What each registered person's relay should be told, in memory, so the presence answer never
 * waits on the database. Filled at start, then refreshed with the rows whose status changed —
 * by any replica — since the last look.
 */
export class StatusCache {
  readonly #byHash = new Map<string, Entry>();
  readonly #hashOfId = new Map<string, string>();
  #seen = 0;

  constructor(private readonly db: Database) {}

  async refresh(): Promise<void> {
    const { rows } = await this.db.query<{
      id: string;
      sk_t_past_hash: string | null;
      state: string;
      window_seconds: number;
      last_presence_at: number | null;
      gap_started_at: number | null;
      status_changed_at: number;
    }>(
      `SELECT q.id, q.sk_t_past_hash, q.state, q.window_seconds, q.last_presence_at, a.gap_started_at, q.status_changed_at
         FROM quarantines q LEFT JOIN alerts a ON a.id = q.open_alert_id
        WHERE q.status_changed_at > $1 ORDER BY q.status_changed_at LIMIT 100000`,
      [this.#seen - OVERLAP_MS],
    );
    for (const r of rows) {
      const old = this.#hashOfId.get(r.id);
      if (old !== undefined) this.#byHash.delete(old);
      this.#hashOfId.delete(r.id);
      if (r.state === 'ended' || r.sk_t_past_hash === null) continue;
      this.#byHash.set(r.sk_t_past_hash, {
        id: r.id,
        state: r.state as Entry['state'],
        windowSeconds: r.window_seconds,
        lastPresenceAt: r.last_presence_at,
        gapStartedAt: r.gap_started_at,
      });
      this.#hashOfId.set(r.id, r.sk_t_past_hash);
      this.#seen = Math.max(this.#seen, r.status_changed_at);
    }
  }

  get size(): number {
    return this.#byHash.size;
  }

  /** The status for this key at `now`, or undefined when the key is no registered quarantine. */
  statusFor(keyHash: string, now: number): PresenceStatus | undefined {
    const e = this.#byHash.get(keyHash);
    if (!e) return undefined;
    if (e.state === 'registered')
      return { code: 'not_monitored', since: null, until: null, serverTime: now };
    if (e.gapStartedAt !== null)
      return { code: 'reported', since: e.gapStartedAt, until: null, serverTime: now };
    const window = e.windowSeconds * 1000;
    // Past half the window, warn the person while there is still time to get home.
    if (e.lastPresenceAt !== null && now - e.lastPresenceAt > window / 2) {
      return {
        code: 'not_heard',
        since: e.lastPresenceAt,
        until: e.lastPresenceAt + window,
        serverTime: now,
      };
    }
    return { code: 'all_clear', since: e.lastPresenceAt, until: null, serverTime: now };
  }
}
