import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { splitStatements } from '../migrations.js';

describe('migration statements', () => {
  it('end with a semicolon at the end of a line; comments go', () => {
    assert.deepEqual(
      splitStatements('-- why\nCREATE TABLE a (x int); -- trailing\nCREATE INDEX i\n  ON a (x);\n'),
      ['CREATE TABLE a (x int)', 'CREATE INDEX i\n  ON a (x)'],
    );
  });

  it("keep a dollar-quoted body whole, semicolons and '--' inside it included", () => {
    const body = '$$\nBEGIN\n  INSERT INTO b SELECT 1; -- kept\n  RETURN NULL;\nEND\n$$';
    assert.deepEqual(
      splitStatements(
        `CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS ${body};\nDROP TABLE c;`,
      ),
      [`CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS ${body}`, 'DROP TABLE c'],
    );
  });

  it('split the app migration with a trigger function into its statements', () => {
    const sql = readFileSync(
      new URL('../../../app-backend/migrations/006_quarantine_marks.sql', import.meta.url),
      'utf8',
    );
    const statements = splitStatements(sql);
    assert.equal(statements.filter((s) => s.startsWith('CREATE FUNCTION')).length, 1);
    assert.ok(statements.every((s) => !s.endsWith(';')));
    assert.equal(statements.length, 11);
  });
});
