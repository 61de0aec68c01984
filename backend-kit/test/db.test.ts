import assert from 'node:assert/strict';
import type { Database } from '../db.js';
import { openDatabase } from '../db.js';
import { databaseTargets } from '../../test/support/databases.js';

for (const target of databaseTargets()) {
  describe(`database adapter on ${target.name}`, () => {
    let db: Database;
    beforeEach(async () => {
      db = await target.open();
      await db.query('CREATE TABLE item (id int PRIMARY KEY, label text NOT NULL)');
    });
    afterEach(() => db.close());

    it('binds parameters and returns rows', async () => {
      const ins = await db.query('INSERT INTO item VALUES ($1, $2), ($3, $4)', [1, 'a', 2, 'b']);
      assert.equal(ins.rowCount, 2);
      const { rows } = await db.query<{ id: number; label: string }>(
        'SELECT id, label FROM item WHERE id = $1',
        [2],
      );
      assert.deepEqual(rows, [{ id: 2, label: 'b' }]);
    });

    it('commits a transaction that resolves', async () => {
      await db.transaction(async (tx) => {
        await tx.query('INSERT INTO item VALUES (1, $1)', ['kept']);
      });
      assert.equal((await db.query('SELECT * FROM item')).rows.length, 1);
    });

    it('rolls back a transaction that throws, writing nothing half-done', async () => {
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query('INSERT INTO item VALUES (1, $1)', ['lost']);
          await tx.query('INSERT INTO item VALUES (1, $1)', ['duplicate key']);
        }),
        { code: '23505' },
      );
      assert.equal((await db.query('SELECT * FROM item')).rows.length, 0);
    });
  });
}

describe('database adapter on PostgreSQL, its connection cut', () => {
  const url = process.env.DATABASE_URL;
  // Only a server connection can be cut; PGlite runs inside the process.
  if (!url) return;
  const pg = databaseTargets().find((t) => t.name === 'PostgreSQL');

  it('fails the transaction whose connection was cut, without ending the process, and goes on', async () => {
    const db = await pg!.open();
    try {
      await assert.rejects(
        db.transaction(async (tx) => {
          const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          // From another connection, as a database restart would: the server ends this session.
          await db.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);
          await tx.query('SELECT 1');
        }),
      );
      // The 'error' event arrives with the socket's end; an unhandled one would fail this run.
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(await db.transaction((tx) => tx.query<{ one: number }>('SELECT 1 AS one')), {
        rows: [{ one: 1 }],
        rowCount: 1,
      });
    } finally {
      await db.close();
    }
  });
});

describe('openDatabase', () => {
  it('refuses a schema name that is not a plain identifier', async () => {
    await assert.rejects(openDatabase({ schema: 'x; DROP TABLE y' }), RangeError);
  });

  it('reports which engine it opened', async () => {
    const db = await openDatabase();
    assert.equal(db.kind, 'pglite');
    await db.close();
  });
});
