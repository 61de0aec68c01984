import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase } from '../../backend-kit/db.js';
import { migrate, readMigrations } from '../../backend-kit/migrations.js';
import { createOfficer } from '../../police-backend/src/officers.js';
import { MIGRATIONS_DIR } from '../../police-backend/src/service.js';

export interface DemoOfficer {
  readonly username: string;
  readonly password: string;
}

/**
 * The demo officer, made once with the police backend's own code before it starts (the embedded
 * database admits one process at a time) and kept, with its password, in the data folder.
 */
export async function ensureDemoOfficer(
  dataDir: string,
  database: { url: string | undefined; dir: string },
): Promise<DemoOfficer> {
  const file = join(dataDir, 'demo', 'officer.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as DemoOfficer;
  const officer = {
    username: `demo-${randomBytes(2).toString('hex')}`,
    password: randomBytes(12).toString('base64url'),
  };
  const db = await openDatabase({ url: database.url, dataDir: database.dir });
  try {
    await migrate(db, readMigrations(MIGRATIONS_DIR), 815_010);
    await createOfficer(db, officer.username, officer.password, 'supervisor', Date.now());
  } finally {
    await db.close();
  }
  mkdirSync(join(dataDir, 'demo'), { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(officer), { mode: 0o600 });
  return officer;
}
