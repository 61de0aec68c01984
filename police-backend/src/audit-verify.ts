// `node dist/police-backend/src/audit-verify.js`: walk the audit chain, report the first broken link (exit 1).
import { openDatabase } from '../../backend-kit/db.js';
import { verifyAudit } from './audit.js';

const db = await openDatabase({
  url: process.env.DATABASE_URL,
  dataDir: process.env.POLICE_DATA_DIR ?? '.data/police-backend',
});
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
