import { randomBytes } from 'node:crypto';
import { type Database, openDatabase } from '../../backend-kit/db.js';

/** A database the tests can run against; each open() is an isolated, empty schema. */
export interface DatabaseTarget {
  readonly name: string;
  open(): Promise<Database>;
}

/**
 * Embedded PGlite always; a PostgreSQL server too when DATABASE_URL is set (CI sets it when one
 * answers on 127.0.0.1:5432). Database suites loop over these targets.
 */
export function databaseTargets(): DatabaseTarget[] {
  const targets: DatabaseTarget[] = [
    { name: 'PGlite', open: () => openDatabase({ dataDir: 'memory://' }) },
  ];
  const url = process.env.DATABASE_URL;
  if (url) {
    targets.push({
      name: 'PostgreSQL',
      async open() {
        const schema = `test_${randomBytes(6).toString('hex')}`;
        const db = await openDatabase({ url, schema, poolSize: 4 });
        const close = db.close.bind(db);
        // Drop the schema with the pool so repeated runs leave nothing behind.
        return {
          ...db,
          close: async () => (await db.query(`DROP SCHEMA ${schema} CASCADE`), close()),
        };
      },
    });
  }
  return targets;
}
