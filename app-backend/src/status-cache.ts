import type { Database } from '../../backend-kit/db.js';
import type { PresenceStatus } from '../../protocol/presence-status.js';
import type { Absence, StatusInput } from './lifecycle.js';
import { StatusTable } from './status-table.js';

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
}

const NO_ABSENCES: readonly Absence[] = [];

const toAbsences = (raw: unknown): Absence[] => {
  const list = (typeof raw === 'string' ? JSON.parse(raw) : raw) as [number, number][] | null;
  return (list ?? []).map(([startsAt, endsAt]) => ({
    startsAt: Number(startsAt),
    endsAt: Number(endsAt),
  }));
};

const COLUMNS = `q.id, q.sk_t_past_hash, q.state, q.window_seconds, q.last_presence_at, q.deadline,
       a.status AS gap_status, a.gap_started_at`;

/**
 * How long a mark outlives a change that set no deadline (app migration 006): a cache that has not
 * looked for half that reads every live row again instead of trusting the marks.
 */
const MARK_RETAINED = 60_000;
const STALE_AFTER = MARK_RETAINED / 2;

/**
 * Rows written by transactions at or after $1 (the last look's xmin), found by their marks, with
 * the absences not yet over at $2: one index probe per row.
 */
const CHANGED = `SELECT ${COLUMNS},
       (SELECT json_agg(json_build_array(b.starts_at, b.ends_at)) FROM absences b
         WHERE b.quarantine_id = q.id AND b.cancelled_at IS NULL AND b.ends_at > $2) AS absences
  FROM quarantines q LEFT JOIN alerts a ON a.id = q.open_alert_id
 WHERE q.id IN (SELECT m.quarantine_id FROM quarantine_marks m WHERE m.xid >= $1)`;

/**
 * Every live row in one sequential scan, absences (not over at $1) joined in one hash; with $2,
 * also the rows that ended since then, so a cache that fell behind drops them.
 */
const everyRow = (endedSince: boolean) => `SELECT ${COLUMNS}, b.absences
  FROM quarantines q LEFT JOIN alerts a ON a.id = q.open_alert_id
  LEFT JOIN (SELECT quarantine_id, json_agg(json_build_array(starts_at, ends_at)) AS absences
               FROM absences WHERE cancelled_at IS NULL AND ends_at > $1 GROUP BY quarantine_id) b
         ON b.quarantine_id = q.id
 WHERE q.state <> 'ended'${endedSince ? ' OR q.status_changed_at >= $2' : ''}`;
const ALL_LIVE = everyRow(false);
const LIVE_AND_ENDED_SINCE = everyRow(true);

/** For a look by marks: index look-ups only, for this transaction. */
const INDEXES_ONLY = ['seqscan', 'hashjoin', 'mergejoin']
  .map((p) => `, set_config('enable_${p}', 'off', true)`)
  .join('');

/**
 * What each registered person's relay should be told, in memory, so the presence answer never
 * waits on the database. Filled at start, then refreshed with the rows whose status changed —
 * by any replica — since the last look.
 */
export class StatusCache {
  readonly #table = new StatusTable();
  /**
   * The oldest transaction still running when the last completed look took its snapshot: every
   * change that look could not see was written by it or a later one (-1: no look yet).
   */
  #xmin = -1;
  /** When the last completed look began (before any: when the cache was made). */
  #lookedAt: number;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    private readonly clock: () => number,
    /** Rows per fetch: small pages die young, so filling a million grows the heap least. */
    private readonly pageSize = 2_000,
  ) {
    this.#lookedAt = clock();
  }

  /** One look at a time (an older page applied after a newer one would undo it); callers meanwhile share the next. */
  refresh(): Promise<void> {
    if (!this.#running) {
      this.#running = this.#look().finally(() => (this.#running = undefined));
      return this.#running;
    }
    this.#next ??= this.#running
      .catch(() => undefined)
      .then(() => {
        this.#next = undefined;
        return this.refresh();
      });
    return this.#next;
  }

  async #look(): Promise<void> {
    const now = this.clock();
    // The first look skips ended quarantines (nothing to drop yet). After a first look that failed
    // part-way, or none for longer than marks are sure to last, every live row is read again with
    // those ended since, so none lingers.
    const [sql, params] =
      this.#xmin < 0 && this.#table.size === 0
        ? [ALL_LIVE, [now]]
        : this.#xmin < 0 || now - this.#lookedAt > STALE_AFTER
          ? [LIVE_AND_ENDED_SINCE, [now, this.#lookedAt - MARK_RETAINED]]
          : [CHANGED, [this.#xmin, now]];
    // One snapshot read through a cursor, page by page: no sort, no offset, no page of a million.
    this.#xmin = await this.db.transaction(async (tx) => {
      // Taken before the cursor's snapshot, so no later than its xmin: nothing is missed. A look
      // by marks goes through the indexes whatever the statistics say: without them the planner
      // takes a third of the marks to match, and would hash-join every quarantine each second.
      const { rows } = await tx.query<{ xmin: string }>(
        `SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin${sql === CHANGED ? INDEXES_ONLY : ''}`,
      );
      await tx.query(`DECLARE status_rows NO SCROLL CURSOR FOR ${sql}`, params);
      for (;;) {
        const page = await tx.query<CacheRow>(`FETCH ${this.pageSize} FROM status_rows`);
        for (const r of page.rows) this.#take(r);
        if (page.rows.length < this.pageSize) break;
      }
      return Number(rows[0]?.xmin);
    });
    this.#lookedAt = now;
  }

  #take(r: CacheRow): void {
    if (r.state === 'ended' || r.sk_t_past_hash === null) {
      this.#table.delete(r.id);
      return;
    }
    const input: StatusInput = {
      state: r.state as StatusInput['state'],
      windowSeconds: r.window_seconds,
      lastPresenceAt: r.last_presence_at,
      deadline: r.deadline,
      gap:
        r.gap_status && r.gap_started_at !== null
          ? { status: r.gap_status, gapStartedAt: r.gap_started_at }
          : null,
      absences: r.absences === null ? NO_ABSENCES : toAbsences(r.absences),
    };
    this.#table.set(r.id, r.sk_t_past_hash, input);
  }

  get size(): number {
    return this.#table.size;
  }

  /** The status for this key at `now`, or undefined when the key is no registered quarantine. */
  statusFor(keyHash: string, now: number): PresenceStatus | undefined {
    return this.#table.status(keyHash, now);
  }
}
