// `node dist/police-backend/src/audit-verify.js`: walk the audit chain, report the first broken link (exit 1).
import { existsSync } from 'node:fs';
import { openDatabase } from '../../backend-kit/db.js';
import { verifyAudit } from './audit.js';

const dataDir = process.env.POLICE_DATA_DIR ?? '.data/police-backend';
// Opening a missing embedded database would create an empty one and call its chain intact.
if (!process.env.DATABASE_URL && !existsSync(dataDir)) {
  console.error(`no police database at ${dataDir}: set DATABASE_URL or POLICE_DATA_DIR`);
  process.exit(2);
}
const db = await openDatabase({ url: process.env.DATABASE_URL, dataDir });
try {
  const r = await verifyAudit(db);
  console.log(
    r.ok
      ? `audit log intact: ${r.checked} entries checked`
      : `audit log BROKEN at entry ${r.firstBroken} (of ${r.checked})`,
  );
  process.exitCode = r.ok ? 0 : 1;
} finally {
  await db.close();
}
