import type { Database } from '../../backend-kit/db.js';

/** Each table of the current schema: its row count and a hash over all of its rows. */
export type TableSums = ReadonlyMap<string, string>;

/** Every base table of the schema the database works in, by name. */
export async function tableNames(db: Database): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

/**
 * One query over every table: row count and an order-independent hash of the rows' text, so any
 * insert, update or delete shows up.
 */
export async function tableSums(db: Database, tables: readonly string[]): Promise<TableSums> {
  const sql = tables
    .map(
      (t) =>
        `SELECT '${t}' AS t, count(*)::text || ':' || coalesce(md5(string_agg(md5(x::text), ',' ORDER BY md5(x::text))), '') AS s FROM "${t}" x`,
    )
    .join(' UNION ALL ');
  const { rows } = await db.query<{ t: string; s: string }>(sql);
  return new Map(rows.map((r) => [r.t, r.s]));
}

/** The tables whose rows differ between two snapshots. */
export function changedTables(before: TableSums, after: TableSums): string[] {
  return [...after.keys()].filter((t) => before.get(t) !== after.get(t));
}
