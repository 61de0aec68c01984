// `node dist/police-backend/src/add-officer.js <username> <officer|supervisor>`; the password comes from
// POLICE_NEW_PASSWORD or standard input, never from the command line (it would sit in shell history).
import { openDatabase } from '../../backend-kit/db.js';
import { migrate, readMigrations } from '../../backend-kit/migrations.js';
import { createOfficer } from './officers.js';
import { MIGRATIONS_DIR } from './service.js';

const [username, role] = process.argv.slice(2);
if (!username || (role !== 'officer' && role !== 'supervisor')) {
  console.error(
    'usage: add-officer <username> <officer|supervisor>  (password on stdin or in POLICE_NEW_PASSWORD)',
  );
  process.exit(2);
}
let password = process.env.POLICE_NEW_PASSWORD ?? '';
if (!password) for await (const chunk of process.stdin) password += String(chunk);
const db = await openDatabase({
  url: process.env.DATABASE_URL,
  dataDir: process.env.POLICE_DATA_DIR ?? '.data/police-backend',
});
try {
  await migrate(db, readMigrations(MIGRATIONS_DIR), 815_010);
  await createOfficer(db, username, password.trim(), role, Date.now());
  console.log(`officer ${username} (${role}) created`);
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
} finally {
  await db.close();
}
