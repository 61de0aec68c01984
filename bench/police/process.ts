/**
 * A real police backend as a process of its own (as in production, it does not share an event
 * loop with the app backend), driven over IPC by `bench/alert-latency.ts`: it registers the
 * beacons, says where its internal listener is, and reads back when alerts were stored.
 *
 * `node dist/bench/police/process.js` with an IPC channel (child_process.fork).
 */
import { type BenchPolice, startBenchPolice } from './backend.js';

export type PoliceRequest =
  | { readonly id: number; readonly type: 'start'; readonly beacons: number }
  | { readonly id: number; readonly type: 'count'; readonly beaconIds: string[] }
  | { readonly id: number; readonly type: 'stored'; readonly beaconIds: string[] }
  | { readonly id: number; readonly type: 'stop' };

export interface PoliceStarted {
  readonly port: number;
  readonly database: string;
  /** The app backend's side of the bench PKI (throw-away keys made for this run). */
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
}

/** One stored NO_PRESENCE: when the police stored it, and the times its detail carries. */
export interface StoredAlert {
  readonly receivedAt: number;
  /** When it became due to police: provisionalAt + graceSeconds (docs/alerts.md). */
  readonly dueAt: number;
  /** When the app backend's watchdog tick that confirmed it started. */
  readonly confirmedAt: number | null;
}

let police: BenchPolice | undefined;

async function handle(m: PoliceRequest): Promise<unknown> {
  switch (m.type) {
    case 'start': {
      police = await startBenchPolice();
      // Every quarantine's beacon, with an address, as the police registry holds them.
      await police.db.query(
        `INSERT INTO beacons (id, beacon_id, address, case_ref, installed_by, installed_at, status, updated_at)
         SELECT gen_random_uuid(), 'SB-' || i, i || ' Harbour Road, Northfield', 'C-' || i, $1, $2, 'monitoring', $2
           FROM generate_series(0, $3::int - 1) AS i`,
        [police.officerId, Date.now(), m.beacons],
      );
      await police.db.query('ANALYZE beacons');
      const { pki } = police;
      return {
        port: police.backend.internalPort,
        database: police.db.kind,
        tls: { ca: pki.ca.cert, cert: pki.appBackend.cert, key: pki.appBackend.key },
      } satisfies PoliceStarted;
    }
    case 'count': {
      const { rows } = await (police as BenchPolice).db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM alerts WHERE kind = 'NO_PRESENCE' AND beacon_id = ANY($1::text[])`,
        [m.beaconIds],
      );
      return rows[0]?.n ?? 0;
    }
    case 'stored': {
      const { rows } = await (police as BenchPolice).db.query<{
        received_at: number;
        due_at: number;
        confirmed_at: number | null;
      }>(
        `SELECT received_at,
                (detail::jsonb->>'provisionalAt')::bigint + 1000 * (detail::jsonb->>'graceSeconds')::bigint AS due_at,
                (detail::jsonb->>'confirmedAt')::bigint AS confirmed_at
           FROM alerts WHERE kind = 'NO_PRESENCE' AND beacon_id = ANY($1::text[])`,
        [m.beaconIds],
      );
      return rows.map((r): StoredAlert => ({
        receivedAt: Number(r.received_at),
        dueAt: Number(r.due_at),
        confirmedAt: r.confirmed_at === null ? null : Number(r.confirmed_at),
      }));
    }
    case 'stop':
      await police?.close();
      police = undefined;
      return null;
  }
}

process.on('message', (m: PoliceRequest) => {
  handle(m).then(
    (result) => process.send?.({ id: m.id, result }),
    (err: unknown) => process.send?.({ id: m.id, error: String((err as Error)?.message ?? err) }),
  );
});
