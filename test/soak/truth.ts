/**
 * The checks against the harness's own ground truth: alerts as officers see them against who
 * really left, and accepted presence against what the app backend's proof of presence shows.
 *
 * "Accepted" presence is a request carrying tokens that the app backend answered 202: from then
 * on the relay forgets those tokens. It is "lost" when, once the app backend has settled, its
 * proof of presence for that person (the sealed status the relay itself reads) is still older
 * than the newest token of that request.
 */
import type { ShownAlert } from './officer.js';
import type { Person } from './people.js';
import type { SoakSystem } from './system.js';

export interface AlertCounts {
  /** People who left: one violation alert each is expected. */
  expected: number;
  /** Of them, how many officers see at least one alert for. */
  delivered: number;
  /** Alerts beyond the first for one departure. */
  duplicates: number;
  /** Violation alerts for people who never left. */
  falseAlerts: number;
  missing: number;
}

/** Alerts officers see from `from` on, against the people who left (`leavers`). */
export async function countAlerts(
  system: SoakSystem,
  from: number,
  leavers: readonly Person[],
): Promise<AlertCounts> {
  const shown = await system.officer.violations(from, Date.now() + 60_000);
  return tally(shown, leavers, system.people);
}

export function tally(
  shown: readonly ShownAlert[],
  leavers: readonly Person[],
  everyone: readonly Person[],
): AlertCounts {
  const perBeacon = new Map<string, number>();
  for (const a of shown) perBeacon.set(a.beaconId, (perBeacon.get(a.beaconId) ?? 0) + 1);
  const left = new Set(leavers.map((p) => p.beacon.beaconId));
  let delivered = 0;
  let duplicates = 0;
  for (const id of left) {
    const n = perBeacon.get(id) ?? 0;
    if (n > 0) delivered++;
    duplicates += Math.max(0, n - 1);
  }
  const home = new Set(everyone.filter((p) => p.leftAt === null).map((p) => p.beacon.beaconId));
  let falseAlerts = 0;
  for (const [id, n] of perBeacon) if (home.has(id)) falseAlerts += n;
  return {
    expected: left.size,
    delivered,
    duplicates,
    falseAlerts,
    missing: left.size - delivered,
  };
}

/** Poll until every leaver's alert is shown (or the deadline); returns when the last one appeared. */
export async function waitForAlerts(
  system: SoakSystem,
  from: number,
  leavers: readonly Person[],
  deadline: number,
): Promise<number | null> {
  const want = new Set(leavers.map((p) => p.beacon.beaconId));
  while (Date.now() < deadline) {
    const shown = await system.officer.violations(from, Date.now() + 60_000).catch(() => null);
    if (shown) {
      const got = new Set(shown.map((a) => a.beaconId).filter((id) => want.has(id)));
      if (got.size === want.size)
        return Math.max(0, ...shown.filter((a) => want.has(a.beaconId)).map((a) => a.receivedAt));
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return null;
}

export interface PresenceCheck {
  /** Accepted requests checked. */
  checked: number;
  lost: number;
}

/**
 * With the relays' own schedule paused, the app backend's proof of presence of each person at
 * home whose accepted presence is unchecked is read: on PostgreSQL straight from the database; on
 * PGlite (inside the app process) by the person uploading again (a fresh token, as their relay
 * would), whose 202 carries the sealed status: the proof as it stood before this upload. Repeated until the proof covers the
 * newest token accepted before, or `settleMs` passes; the person keeps proving presence meanwhile,
 * so the check itself opens no gap. The proof is the beacon's corrected time, which may differ
 * from the token's (kept to the whole second) by the learned offset, under a second here.
 * The status cache may lag by a refresh (1 s), and after a crash the presence the dead process
 * had accepted waits in the journal until a process takes it over.
 */
export async function checkPresence(system: SoakSystem, settleMs = 8_000): Promise<PresenceCheck> {
  const TOLERANCE_MS = 1_000;
  const targets = new Map<Person, number[]>();
  for (const p of system.people)
    if (p.leftAt === null && p.unchecked.length) {
      targets.set(p, p.unchecked);
      p.unchecked = [];
    }
  const checked = [...targets.values()].reduce((n, list) => n + list.length, 0);
  const proofOf = new Map<Person, number | null>();
  const read = system.appDatabase();
  await read?.connect();
  try {
    let pending = [...targets.keys()];
    const deadline = Date.now() + settleMs;
    for (;;) {
      const still: Person[] = [];
      if (read) {
        // PostgreSQL: the harness reads the proof of presence itself (exact, whichever instance wrote it).
        const { rows } = await read.query<{ beacon_id: string; last_presence_at: string | null }>(
          'SELECT beacon_id, last_presence_at FROM quarantines WHERE beacon_id = ANY($1::text[])',
          [pending.map((p) => p.beacon.beaconId)],
        );
        const at = new Map(rows.map((r) => [r.beacon_id, r.last_presence_at]));
        for (const p of pending) {
          const v = at.get(p.beacon.beaconId);
          proofOf.set(p, v === null || v === undefined ? null : Number(v));
        }
      } else {
        await eachOf(
          pending,
          16,
          async (p) => void proofOf.set(p, (await system.relays.uploadNow(p))?.since ?? null),
        );
      }
      for (const p of pending) {
        const s = proofOf.get(p) ?? null;
        if (s === null || s < Math.max(...(targets.get(p) ?? [])) - TOLERANCE_MS) still.push(p);
      }
      pending = still;
      if (!pending.length || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    let lost = 0;
    for (const p of pending) {
      const s = proofOf.get(p) ?? null;
      lost += (targets.get(p) ?? []).filter((at) => s === null || s < at - TOLERANCE_MS).length;
    }
    return { checked, lost };
  } finally {
    await read?.end();
  }
}

async function eachOf<T>(items: T[], n: number, fn: (t: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) await fn(items[i] as T);
    }),
  );
}
