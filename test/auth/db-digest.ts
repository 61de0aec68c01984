import type { Database } from '../../backend-kit/db.js';

const tableLists = new WeakMap<Database, Promise<string>>();

/** One query that fingerprints every table of the schema (the list is read once per database). */
function digestQuery(db: Database): Promise<string> {
  let query = tableLists.get(db);
  if (!query) {
    query = db
      .query<{ name: string }>(
        `SELECT table_name AS name FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`,
      )
      .then(({ rows }) =>
        rows
          .map(
            ({ name }) =>
              `SELECT '${name}' AS name, count(*)::int AS n, ` +
              `coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') AS d FROM "${name}" AS t`,
          )
          .join(' UNION ALL '),
      );
    tableLists.set(db, query);
  }
  return query;
}

/**
 * A fingerprint of every row of every table in the database's schema: equal before and after a
 * refused request means the request wrote nothing anywhere.
 */
export async function databaseDigest(db: Database): Promise<Record<string, string>> {
  const { rows } = await db.query<{ name: string; n: number; d: string }>(await digestQuery(db));
  return Object.fromEntries(rows.map((r) => [r.name, `${r.n}:${r.d}`]));
}
