/**
 * A real app backend as a process of its own, driven over IPC by `bench/alert-latency.ts`: it
 * seeds its database with monitored quarantines, runs with its loops on their timers and, when
 * told, makes some of those quarantines fall due.
 *
 * `node dist/bench/app/process.js` with an IPC channel (child_process.fork).
 */
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { DEFAULT_RULES, loopbackConfig } from '../../app-backend/src/config.js';
import { type AppBackend, startAppBackend } from '../../app-backend/src/service.js';
import { createLogger } from '../../backend-kit/logger.js';
import { benchDatabase, seedQuarantines } from '../seed.js';

export type AppRequest =
  | {
      readonly id: number;
      readonly type: 'start';
      readonly quarantines: number;
      readonly police: {
        readonly port: number;
        readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
      };
      readonly watchdogIntervalMs: number;
      readonly deliveryIntervalMs: number;
      /** The grace after a window's end: 0 makes both steps of a gap fall in one tick. */
      readonly graceSeconds: number;
    }
  | {
      readonly id: number;
      readonly type: 'due';
      /**
       * Quarantines from..from+count-1 (seed numbering) fall due to the police from t0 on, one
       * every stepMs: their windows end a grace earlier (the gap opens then, provisional).
       */
      readonly from: number;
      readonly count: number;
      readonly t0: number;
      readonly stepMs: number;
      readonly graceMs: number;
    }
  | {
      readonly id: number;
      readonly type: 'queued';
      /** Sample how many outbox rows were written at or after `since`, until `count` or `until`. */
      readonly since: number;
      readonly count: number;
      readonly until: number;
    }
  | { readonly id: number; readonly type: 'stop' };

/** [time, outbox rows written so far] samples: when the alerts became ready to deliver. */
export type QueuedCurve = [number, number][];

const SAMPLE_MS = 200;

export interface AppStarted {
  readonly database: string;
  readonly seedSeconds: number;
}

export const WINDOW_MS = DEFAULT_RULES.windowSeconds * 1000;

let app: { backend: AppBackend; drop: () => Promise<void> } | undefined;

async function handle(m: AppRequest): Promise<unknown> {
  switch (m.type) {
    case 'start': {
      const { db, drop } = await benchDatabase();
      const t = Date.now();
      // Nothing falls due during the run unless told to.
      await seedQuarantines(db, m.quarantines, Date.now(), Date.now() + 6 * 3_600_000);
      const seedSeconds = (Date.now() - t) / 1000;
      const backend = await startAppBackend(
        loopbackConfig({
          tls: m.police.tls,
          kek: randomBytes(32),
          healthAuthority: {
            publicKey: '',
            issuer: 'health-authority',
            audience: 'smartbeacon-app-backend',
          },
          police: { url: `https://127.0.0.1:${m.police.port}`, identity: 'police-backend' },
          rules: { ...DEFAULT_RULES, graceSeconds: m.graceSeconds },
          watchdogIntervalMs: m.watchdogIntervalMs,
          deliveryIntervalMs: m.deliveryIntervalMs,
          logLevel: 'warn',
        }),
        {
          db,
          timers: true,
          log: createLogger({
            name: 'app-backend',
            level: 'warn',
            destination: pino.destination('/dev/null'),
          }),
        },
      );
      app = { backend, drop };
      return { database: db.kind, seedSeconds } satisfies AppStarted;
    }
    case 'due': {
      // Presence stopped a window before the deadline, a grace before the police are due; the
      // relay is online (the person left with the phone).
      await (app as { backend: AppBackend }).backend.db.query(
        `UPDATE quarantines q SET deadline = s.due - $6::bigint, last_presence_at = s.due - $6::bigint - $4::bigint, last_request_at = s.due
           FROM (SELECT md5('q' || i)::uuid AS id, $1::bigint + floor((i - $2::int) * $5::float8)::bigint AS due
                   FROM generate_series($2::int, $3::int) AS i) s
          WHERE q.id = s.id`,
        [m.t0, m.from, m.from + m.count - 1, WINDOW_MS, m.stepMs, m.graceMs],
      );
      return null;
    }
    case 'queued': {
      const db = (app as { backend: AppBackend }).backend.db;
      const curve: QueuedCurve = [];
      for (;;) {
        const { rows } = await db.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM outbox WHERE created_at >= $1',
          [m.since],
        );
        const n = rows[0]?.n ?? 0;
        curve.push([Date.now(), n]);
        if (n >= m.count || Date.now() > m.until) return curve;
        await new Promise((r) => setTimeout(r, SAMPLE_MS));
      }
    }
    case 'stop':
      await app?.backend.close();
      await app?.drop();
      app = undefined;
      return null;
  }
}

process.on('message', (m: AppRequest) => {
  handle(m).then(
    (result) => process.send?.({ id: m.id, result }),
    (err: unknown) => process.send?.({ id: m.id, error: String((err as Error)?.message ?? err) }),
  );
});
