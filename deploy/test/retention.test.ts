/**
 * deploy/sql/*-retention.sql on the backends' real schemas (their migrations, in embedded
 * PostgreSQL): what goes, what stays, and the police audit log left whole and verifiable.
 */
import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { type Database, openDatabase } from '../../backend-kit/db.js';
import { migrate, readMigrations } from '../../backend-kit/migrations.js';
import { MIGRATIONS_DIR as APP_MIGRATIONS } from '../../app-backend/src/service.js';
import { appendAudit, verifyAudit } from '../../police-backend/src/audit.js';
import { MIGRATIONS_DIR as POLICE_MIGRATIONS } from '../../police-backend/src/service.js';
import { readRepo } from './deploy-files.js';

const DAY = 86_400_000;
const ids = async (db: Database, table: string): Promise<string[]> =>
  (await db.query<{ id: string }>(`SELECT id::text FROM ${table} ORDER BY id`)).rows.map(
    (r) => r.id,
  );

describe('retention SQL (deploy/sql)', function () {
  this.timeout(60_000);
  let db: Database;

  afterEach(async () => {
    await db?.close();
  });

  it('app backend: purges ended quarantines after 30 days, never an undelivered alert', async () => {
    db = await openDatabase({ dataDir: 'memory://' });
    await migrate(db, readMigrations(APP_MIGRATIONS));
    const now = Date.now();
    const quarantine = async (state: string, endedAt: number | null) => {
      const id = randomUUID();
      await db.query(
        `INSERT INTO quarantines (id, beacon_id, t_past, window_seconds, state, registered_at, ended_at, offset_updated_at)
         VALUES ($1, $2, 0, 360, $3, $4, $5, $4)`,
        [id, `SB-${id.slice(0, 8)}`, state, now - 60 * DAY, endedAt],
      );
      return id;
    };
    const alert = async (quarantineId: string, deliveredAt: number | null) => {
      const id = randomUUID();
      await db.query(
        `INSERT INTO alerts (id, quarantine_id, beacon_id, kind, created_at, queue) VALUES ($1, $2, 'SB', 'BEACON_FAULT', $3, 'maintenance')`,
        [id, quarantineId, now - 50 * DAY],
      );
      await db.query(
        `INSERT INTO outbox (id, alert_id, payload, created_at, next_attempt_at, delivered_at) VALUES ($1, $2, '{}', $3, $3, $4)`,
        [randomUUID(), id, now - 50 * DAY, deliveredAt],
      );
      return id;
    };
    const old = await quarantine('ended', now - 40 * DAY);
    await alert(old, now - 40 * DAY);
    await db.query(
      `INSERT INTO absences (id, quarantine_id, starts_at, ends_at, created_at, created_by) VALUES ($1, $2, 1, 2, 1, 'police')`,
      [randomUUID(), old],
    );
    const recent = await quarantine('ended', now - 5 * DAY);
    await alert(recent, now - 5 * DAY);
    const stuck = await quarantine('ended', now - 40 * DAY);
    const undelivered = await alert(stuck, null);
    const running = await quarantine('monitoring', null);
    const runningAlert = await alert(running, now - 10 * DAY);
    await db.query(
      'INSERT INTO pending_enables (beacon_id, enabled_at) VALUES ($1, $2), ($3, $4)',
      ['SB-stale', now - 40 * DAY, 'SB-fresh', now - DAY],
    );
    await db.query('INSERT INTO used_jtis (jti, expires_at) VALUES ($1, $2)', ['j', now - 1000]);

    await db.query(readRepo('deploy/sql/app-retention.sql'));

    assert.deepEqual(await ids(db, 'quarantines'), [recent, stuck, running].sort());
    const alerts = await ids(db, 'alerts');
    assert.ok(alerts.includes(undelivered), 'an undelivered alert stays, with its quarantine');
    assert.ok(alerts.includes(runningAlert), "a running quarantine's alerts stay");
    const outbox = await db.query<{ alert_id: string }>('SELECT alert_id::text FROM outbox');
    // Delivered copies go after 7 days; the undelivered one and a recent one stay.
    assert.deepEqual(
      outbox.rows.map((r) => r.alert_id).sort(),
      [undelivered, ...(await recentAlerts(db, recent))].sort(),
    );
    assert.deepEqual((await db.query('SELECT * FROM absences')).rows, []);
    const pending = await db.query<{ beacon_id: string }>('SELECT beacon_id FROM pending_enables');
    assert.deepEqual(
      pending.rows.map((r) => r.beacon_id),
      ['SB-fresh'],
    );
    assert.deepEqual((await db.query('SELECT * FROM used_jtis')).rows, []);
  });

  it('police backend: purges ended cases after 90 days and leaves the audit log whole', async () => {
    db = await openDatabase({ dataDir: 'memory://' });
    await migrate(db, readMigrations(POLICE_MIGRATIONS), 815_010);
    const now = Date.now();
    const officer = randomUUID();
    await db.query(
      `INSERT INTO officers (id, username, password_hash, role, created_at) VALUES ($1, 'o', 'x', 'officer', 0)`,
      [officer],
    );
    const beacon = async (status: string, endedAt: number | null, alertState: string) => {
      const id = randomUUID();
      await db.query(
        `INSERT INTO beacons (id, beacon_id, address, case_ref, installed_by, installed_at, ended_at, status, updated_at)
         VALUES ($1, $2, '1 Example Street', 'CASE-1', $3, 0, $4, $5, 0)`,
        [id, `SB-${id.slice(0, 8)}`, officer, endedAt, status],
      );
      const alertId = randomUUID();
      await db.query(
        `INSERT INTO alerts (id, beacon_record, beacon_id, kind, state, occurred_at, received_at, detail, updated_at)
         VALUES ($1, $2, 'SB', 'NO_PRESENCE', $3, 0, 0, '{}', 0)`,
        [alertId, id, alertState],
      );
      await db.query(
        `INSERT INTO reviews (id, alert_id, officer_id, action, from_state, to_state, at) VALUES ($1, $2, $3, 'resolve', 'open', 'resolved', 0)`,
        [randomUUID(), alertId, officer],
      );
      const absence = randomUUID();
      await db.query(
        `INSERT INTO absences (id, beacon_record, beacon_id, starts_at, ends_at, created_by, created_at, updated_at)
         VALUES ($1, $2, 'SB', 1, 2, $3, 0, 0)`,
        [absence, id, officer],
      );
      await db.query(
        `INSERT INTO commands (id, beacon_record, action, created_at, next_attempt_at, done_at, absence_id)
         VALUES ($1, $2, 'absence', 0, 0, $3, $4)`,
        [randomUUID(), id, now - 100 * DAY, absence],
      );
      await db.transaction((tx) =>
        appendAudit(tx, { officer: 'o', action: 'beacon.registered', subject: `beacon:${id}` }, 0),
      );
      return id;
    };
    const old = await beacon('ended', now - 100 * DAY, 'resolved');
    const underReview = await beacon('ended', now - 100 * DAY, 'acknowledged');
    const recent = await beacon('ended', now - 10 * DAY, 'resolved');
    const active = await beacon('monitoring', null, 'open');
    await db.query(
      `INSERT INTO sessions (id, officer_id, created_at, expires_at) VALUES ('old', $1, 0, $2), ('live', $1, 0, $3)`,
      [officer, now - 2 * DAY, now + DAY],
    );
    const audit = await db.query('SELECT * FROM audit_log ORDER BY seq');

    await db.query(readRepo('deploy/sql/police-retention.sql'));

    assert.deepEqual(await ids(db, 'beacons'), [underReview, recent, active].sort());
    const left = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM alerts WHERE beacon_record = $1',
      [old],
    );
    assert.equal(left.rows[0]?.n, 0);
    assert.equal((await db.query('SELECT * FROM reviews')).rows.length, 3);
    // Finished commands older than 30 days go, whoever they belong to.
    assert.deepEqual((await db.query('SELECT * FROM commands')).rows, []);
    const sessions = await db.query<{ id: string }>('SELECT id FROM sessions');
    assert.deepEqual(
      sessions.rows.map((r) => r.id),
      ['live'],
    );
    // The audit log: not one entry touched, and its chain still verifies.
    assert.deepEqual((await db.query('SELECT * FROM audit_log ORDER BY seq')).rows, audit.rows);
    assert.deepEqual(await verifyAudit(db), { ok: true, checked: 4, firstBroken: null });
    // What the script must never try: the trigger refuses it.
    await assert.rejects(db.query('DELETE FROM audit_log'), /append-only/);
  });
});

async function recentAlerts(db: Database, quarantineId: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    'SELECT id::text FROM alerts WHERE quarantine_id = $1',
    [quarantineId],
  );
  return rows.map((r) => r.id);
}
