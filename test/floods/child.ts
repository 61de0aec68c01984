/**
 * One backend as a process of its own for the flood campaign, configured exactly as in
 * production, from environment variables (each service's `loadConfig`), with its loops on
 * their timers and its log to /dev/null. Its database is PGlite in memory, or a throw-away
 * schema on the PostgreSQL server named by DATABASE_URL (dropped on stop).
 *
 * `node dist/test/floods/child.js app|police` with an IPC channel (child_process.fork); it
 * sends `{ ready: ports }`, then answers `{ id, type: 'query', sql, params }` with rows and
 * `{ id, type: 'stop' }` by stopping.
 */
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { type Database, openDatabase } from '../../backend-kit/db.js';
import { createLogger } from '../../backend-kit/logger.js';
import { loadConfig as appConfig } from '../../app-backend/src/config.js';
import { startAppBackend } from '../../app-backend/src/service.js';
import { loadConfig as policeConfig } from '../../police-backend/src/config.js';
import { startPoliceBackend } from '../../police-backend/src/service.js';

export type ChildRequest =
  | {
      readonly id: number;
      readonly type: 'query';
      readonly sql: string;
      readonly params?: unknown[];
    }
  | { readonly id: number; readonly type: 'stop' };

export interface ChildReady {
  readonly ready: { readonly publicPort: number; readonly internalPort: number };
}

const kind = process.argv[2];
const log = createLogger({
  name: `${kind}-backend`,
  level: 'info',
  destination: pino.destination('/dev/null'),
});
const url = process.env.DATABASE_URL;
const schema = `flood_${randomBytes(6).toString('hex')}`;
const db: Database = await openDatabase({
  url,
  dataDir: 'memory://',
  ...(url ? { schema, poolSize: 10 } : {}),
});

const service =
  kind === 'app'
    ? await startAppBackend(appConfig(), { db, log }).then((b) => ({
        ports: { publicPort: b.publicPort, internalPort: b.internalPort },
        close: () => b.close(),
      }))
    : await startPoliceBackend(policeConfig(), { db, log }).then((b) => ({
        ports: { publicPort: b.officerPort, internalPort: b.internalPort },
        close: () => b.close(),
      }));

async function handle(m: ChildRequest): Promise<unknown> {
  if (m.type === 'query') return (await db.query(m.sql, m.params ?? [])).rows;
  await service.close();
  if (url) await db.query(`DROP SCHEMA ${schema} CASCADE`);
  await db.close();
  setImmediate(() => process.exit(0));
  return null;
}

process.on('message', (m: ChildRequest) => {
  handle(m).then(
    (result) => process.send?.({ id: m.id, result }),
    (err: unknown) => process.send?.({ id: m.id, error: String((err as Error)?.message ?? err) }),
  );
});
// A campaign that died leaves no backend behind.
process.on('disconnect', () => process.exit(0));
process.send?.({ ready: service.ports } satisfies ChildReady);
