import type { Database } from '../../backend-kit/db.js';
import type { PresenceStatus } from '../../protocol/presence-status.js';
import { type Absence, type StatusInput, relayStatus } from './lifecycle.js';

interface CacheRow {
  id: string;
  sk_t_past_hash: string | null;
  state: string;
  window_seconds: number;
  last_presence_at: number | null;
  deadline: number | null;
  gap_status: 'provisional' | 'confirmed' | null;
  gap_started_at: number | null;
  absences: unknown;
  status_changed_at: number;
}

/** Rows are stamped with the writer's clock; look back this far so a late commit is not missed. */
const OVERLAP_MS = 10_000;

const toAbsences = (raw: unknown): Absence[] => {
  const list = (typeof raw === 'string' ? JSON.parse(raw) : raw) as [number, number][] | null;
  return (list ?? []).map(([startsAt, endsAt]) => ({
    startsAt: Number(startsAt),
    endsAt: Number(endsAt),
  }));
};

/**
 * What each registered person's relay should be told, in memory, so the presence answer never
 * waits on the database. Filled at start, then refreshed with the rows whose status changed —
 * by any replica — since the last look.
 */
export class StatusCache {
  readonly #byHash = new Map<string, StatusInput>();
  readonly #hashOfId = new Map<string, string>();
  #seen = 0;

  constructor(
    private readonly db: Database,
    private readonly clock: () => number,
    /** Rows per query; a refresh pages through all that changed, however many. */
    private readonly pageSize = 50_000,
  ) {}

  async refresh(): Promise<void> {
    // From a little before the last look (late commits), then page on (changed_at, id) so rows
    // sharing a timestamp are neither skipped nor read forever.
    let after: { at: number; id: string } = { at: this.#seen - OVERLAP_MS, id: '' };
    const now = this.clock();
    for (;;) {
      const { rows } = await this.db.query<CacheRow>(
        `SELECT q.id, q.sk_t_past_hash, q.state, q.window_seconds, q.last_presence_at, q.deadline,
                a.status AS gap_status, a.gap_started_at, q.status_changed_at,
                (SELECT json_agg(json_build_array(b.starts_at, b.ends_at)) FROM absences b
                  WHERE b.quarantine_id = q.id AND b.cancelled_at IS NULL AND b.ends_at > $3) AS absences
           FROM quarantines q LEFT JOIN alerts a ON a.id = q.open_alert_id
          WHERE (q.status_changed_at, q.id::text) > ($1::bigint, $2::text)
          ORDER BY q.status_changed_at, q.id::text LIMIT $4`,
        [after.at, after.id, now, this.pageSize],
      );
      for (const r of rows) this.#take(r);
      const last = rows.at(-1);
      if (!last || rows.length < this.pageSize) return;
      after = { at: last.status_changed_at, id: last.id };
    }
  }

  #take(r: CacheRow): void {
    const old = this.#hashOfId.get(r.id);
    if (old !== undefined) this.#byHash.delete(old);
    this.#hashOfId.delete(r.id);
    this.#seen = Math.max(this.#seen, r.status_changed_at);
    if (r.state === 'ended' || r.sk_t_past_hash === null) return;
    this.#byHash.set(r.sk_t_past_hash, {
      state: r.state as StatusInput['state'],
      windowSeconds: r.window_seconds,
      lastPresenceAt: r.last_presence_at,
      deadline: r.deadline,
      gap:
        r.gap_status && r.gap_started_at !== null
          ? { status: r.gap_status, gapStartedAt: r.gap_started_at }
          : null,
      absences: toAbsences(r.absences),
    });
    this.#hashOfId.set(r.id, r.sk_t_past_hash);
  }

  get size(): number {
    return this.#byHash.size;
  }

  /** The status for this key at `now`, or undefined when the key is no registered quarantine. */
  statusFor(keyHash: string, now: number): PresenceStatus | undefined {
    const e = this.#byHash.get(keyHash);
    return e ? relayStatus(e, now) : undefined;
  }
}
