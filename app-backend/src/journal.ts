import { randomBytes, randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../../backend-kit/db.js';
import { type PresenceRequest, TOKEN_SLOT } from '../../protocol/presence.js';

/** A request the validator will look at: registered tells a token-less one from a dummy. */
export type QueuedRequest = PresenceRequest & { readonly registered: boolean };

/** Where a queued request sits in the journal. */
export interface JournalKey {
  readonly origin: string;
  readonly seq: number;
}

export type Journaled = QueuedRequest & { readonly journal: JournalKey };

/** How often an idle process still writes (its heartbeat), and how long a silent one is trusted. */
export const BEAT_MS = 1_000;
export const GONE_AFTER_MS = 5_000;

/** Rows (origin, seq) another process took over while this one still held them in memory. */
export class Disowned extends Error {
  constructor(readonly held: ReadonlySet<string>) {
    super('journal rows taken over by another process');
  }
}

export const keyOf = (k: JournalKey): string => `${k.origin}:${k.seq}`;

/**
 * Shaped like a typical upload (a key hash and five tokens, random) so the database does the same
 * work for it; told apart by its negative seq. The next write deletes it; one left by a crash
 * is deleted by whoever takes the dead process's rows over.
 */
function spareFiller(): { request: QueuedRequest; hex: string } {
  const tokens = randomBytes(5 * TOKEN_SLOT);
  return {
    request: {
      keyHash: randomBytes(32).toString('hex'),
      tokens: [],
      registered: false,
      receivedAt: 0,
    },
    hex: tokens.toString('hex'),
  };
}

interface Waiting {
  readonly request: QueuedRequest | undefined;
  readonly prepare: (() => void) | undefined;
  readonly resolve: (entry: Journaled | undefined) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * One statement: the group's rows and the fillers it drops; with `beat`, this process's heartbeat
 * too (not in every group: two groups in flight would queue on the owner's row).
 */
const writeSql = (beat: boolean) => `WITH ${
  beat
    ? `beat AS (INSERT INTO presence_journal_owners (owner, seen_at, place) VALUES ($1, $8, $9)
  ON CONFLICT (owner) DO UPDATE SET seen_at = EXCLUDED.seen_at),`
    : ''
} filled AS (DELETE FROM presence_journal WHERE origin = $1 AND seq = ANY($7::bigint[]))
INSERT INTO presence_journal (origin, seq, holder, key_hash, registered, received_at, tokens)
SELECT $1, s, $1, k, r, t, decode(b, 'hex')
  FROM unnest($2::bigint[], $3::text[], $4::bool[], $5::bigint[], $6::text[]) AS u(s, k, r, t, b)`;
const WRITE = writeSql(false);
const WRITE_AND_BEAT = writeSql(true);

/** Group writes in flight at once: the next group forms while the last one commits. */
export const GROUPS_IN_FLIGHT = 2;

/**
 * Owners silent since $2, or that served where $1 now serves ($3), are dropped, their fillers
 * deleted and their rows held by $1, in one statement.
 */
const ADOPT = `WITH gone AS (
  DELETE FROM presence_journal_owners
   WHERE (seen_at < $2 OR place = $3) AND owner <> $1 RETURNING owner),
fillers AS (DELETE FROM presence_journal j USING gone WHERE j.holder = gone.owner AND j.seq < 0)
UPDATE presence_journal j SET holder = $1 FROM gone WHERE j.holder = gone.owner AND j.seq > 0
RETURNING j.origin, j.seq, j.key_hash, j.registered, j.received_at, encode(j.tokens, 'hex') AS tokens`;

const RELEASE = `DELETE FROM presence_journal j
 USING unnest($2::uuid[], $3::bigint[]) AS d(origin, seq)
 WHERE j.origin = d.origin AND j.seq = d.seq AND j.holder = $1
RETURNING j.origin, j.seq`;

interface Row {
  origin: string;
  seq: number;
  key_hash: string;
  registered: boolean;
  received_at: number;
  tokens: string;
}

function tokensOf(hex: string): Uint8Array[] {
  const all = Buffer.from(hex, 'hex');
  const tokens: Uint8Array[] = [];
  for (let at = 0; at + TOKEN_SLOT <= all.length; at += TOKEN_SLOT)
    tokens.push(new Uint8Array(all.subarray(at, at + TOKEN_SLOT)));
  return tokens;
}

/**
 * Accepted presence made durable before it is answered: requests arriving together are written
 * in one statement (group commit), and every caller — dummy or real — waits for the same write,
 * so the answer's timing depends on the group, not on what the request carried.
 */
export class PresenceJournal {
  /** This process's id in the journal: new at every start, so a restart takes over like any other. */
  readonly owner = randomUUID();
  #seq = 0;
  #waiting: Waiting[] = [];
  #scheduled = false;
  readonly #inFlight = new Set<Promise<void>>();
  /** When the last heartbeat was committed, and whether one is in flight. */
  #beatAt = -Infinity;
  #beating = false;
  /** Filler rows written and not yet dropped (the next group drops them). */
  #fillers: number[] = [];
  #spare = spareFiller();
  /** Where this process serves (host and port), once it listens; '' until then. */
  #place = '';

  constructor(
    private readonly db: Database,
    private readonly clock: () => number,
  ) {}

  /**
   * Resolves once the group holding this request is committed (with its journal key when there was
   * something to keep); rejects if that write failed, and then nothing of the group was kept.
   * `prepare` runs while the group's statement is with the database, so work that differs between
   * requests (sealing an answer) is done in time every request spends waiting anyway.
   */
  write(request: QueuedRequest | undefined, prepare?: () => void): Promise<Journaled | undefined> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ request, prepare, resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Where this process now serves: a process that served at the same host and port before it is
   * gone (the port is ours), so its rows are taken over at once instead of after GONE_AFTER_MS.
   */
  servesAt(place: string): void {
    this.#place = place;
  }

  /** A heartbeat when none was written for BEAT_MS: an idle process is not taken for gone. */
  async beat(): Promise<void> {
    if (this.clock() - this.#beatAt < BEAT_MS) return;
    await this.write(undefined);
  }

  /** Start a group on the next turn (the requests read in this one join it), if one may start. */
  #schedule(): void {
    if (this.#scheduled || !this.#waiting.length || this.#inFlight.size >= GROUPS_IN_FLIGHT) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (!this.#waiting.length || this.#inFlight.size >= GROUPS_IN_FLIGHT) return;
      const group = this.#waiting;
      this.#waiting = [];
      const done: Promise<void> = this.#writeGroup(group).finally(() => {
        this.#inFlight.delete(done);
        this.#schedule();
      });
      this.#inFlight.add(done);
      this.#schedule();
    });
  }

  async #writeGroup(group: Waiting[]): Promise<void> {
    const entries: Journaled[] = [];
    const seqs: number[] = [];
    const hashes: string[] = [];
    const registered: boolean[] = [];
    const times: number[] = [];
    const tokens: string[] = [];
    const now = this.clock();
    const add = (request: QueuedRequest, seq = ++this.#seq, hex?: string): Journaled => {
      const entry: Journaled = { ...request, journal: { origin: this.owner, seq } };
      entries.push(entry);
      seqs.push(entry.journal.seq);
      hashes.push(request.keyHash);
      registered.push(request.registered);
      times.push(request.receivedAt);
      tokens.push(hex ?? Buffer.concat(request.tokens).toString('hex'));
      return entry;
    };
    const results = group.map(({ request }) => (request ? add(request) : undefined));
    // A group with nothing to keep (dummies alone, or a heartbeat) writes a filler row: one dummy
    // alone then costs the database what one real request alone does.
    const spare = entries.length ? undefined : this.#spare;
    const filler = spare && add({ ...spare.request, receivedAt: now }, -++this.#seq, spare.hex);
    const drop = this.#fillers;
    this.#fillers = [];
    const beat = !this.#beating && now - this.#beatAt >= BEAT_MS / 2;
    if (beat) this.#beating = true;
    const failed = this.db
      .query(beat ? WRITE_AND_BEAT : WRITE, [
        this.owner,
        seqs,
        hashes,
        registered,
        times,
        tokens,
        drop,
        ...(beat ? [now, this.#place] : []),
      ])
      .then(
        () => undefined,
        (err: unknown) => ({ err }),
      );
    // The statement goes out on the next tick (pg's pool); the preparations run after it.
    await new Promise((done) => setImmediate(done));
    for (const w of group) {
      try {
        w.prepare?.();
      } catch {
        // Its answer is the caller's to replace; the write, and the others', go on.
      }
    }
    const failure = await failed;
    if (beat) this.#beating = false;
    if (failure) {
      this.#fillers.push(...drop);
      group.forEach((w) => w.reject(failure.err));
      return;
    }
    if (beat) this.#beatAt = now;
    if (filler) this.#fillers.push(filler.journal.seq);
    group.forEach((w, i) => w.resolve(results[i]));
    // The next filler's random bytes are drawn now, after the answers, not while a group waits.
    if (filler) this.#spare = spareFiller();
  }

  /**
   * Take over the rows of processes silent for GONE_AFTER_MS or that served where this one now
   * serves (`everyone`: of every other process, for a database only one process can open): oldest
   * first, ready to queue.
   */
  async adopt(now: number, everyone = false): Promise<Journaled[]> {
    const before = everyone ? Number.MAX_SAFE_INTEGER : now - GONE_AFTER_MS;
    const { rows } = await this.db.query<Row>(ADOPT, [this.owner, before, this.#place || null]);
    return rows
      .map((r) => ({
        keyHash: r.key_hash,
        registered: r.registered,
        receivedAt: Number(r.received_at),
        tokens: tokensOf(r.tokens),
        journal: { origin: r.origin, seq: Number(r.seq) },
      }))
      .sort((a, b) => a.receivedAt - b.receivedAt || a.journal.seq - b.journal.seq);
  }

  /**
   * Delete `keys` inside the transaction that applies them: done exactly once, even across a crash.
   * Throws Disowned (naming the rows still held) if another process took any over meanwhile.
   */
  async release(tx: Queryable, keys: readonly JournalKey[]): Promise<void> {
    if (!keys.length) return;
    const { rows } = await tx.query<{ origin: string; seq: number }>(RELEASE, [
      this.owner,
      keys.map((k) => k.origin),
      keys.map((k) => k.seq),
    ]);
    if (rows.length !== keys.length)
      throw new Disowned(new Set(rows.map((r) => keyOf({ origin: r.origin, seq: Number(r.seq) }))));
  }

  /** Every write asked for so far has committed or failed (and its callers have been told). */
  async settle(): Promise<void> {
    while (this.#inFlight.size || this.#waiting.length)
      await (this.#inFlight.size
        ? Promise.all([...this.#inFlight])
        : new Promise((done) => setImmediate(done)));
  }

  /** At a clean stop, once the queue is empty: leave no owner behind for others to wait on. */
  async leave(): Promise<void> {
    await this.settle();
    await this.db.transaction(async (tx) => {
      await tx.query(`DELETE FROM presence_journal WHERE origin = $1 AND seq = ANY($2::bigint[])`, [
        this.owner,
        this.#fillers,
      ]);
      await tx.query(
        `DELETE FROM presence_journal_owners o WHERE owner = $1
            AND NOT EXISTS (SELECT 1 FROM presence_journal j WHERE j.holder = $1)`,
        [this.owner],
      );
    });
  }
}
