/**
 * `npm run bench:write-layouts`: where the two values every presence update moves — when the
 * quarantine falls due (the watchdog's index) and which transaction last changed its relay status
 * (the status cache's index) — should live, measured in SQL alone. BENCH_QUARANTINES rows
 * (default 1,000,000 on PostgreSQL, 100,000 on PGlite) in three layouts, transactions of 2,000
 * random rows, layouts alternating, medians:
 *
 * - wide: one row per quarantine with both values and five indexes (the schema before app
 *   migration 006);
 * - side row: the wide row without them (its update can stay on its page, HOT), plus a narrow row
 *   per quarantine `(quarantine_id, deadline, status_xid)` updated beside it;
 * - mark log: the same HOT wide row, plus an append-only mark `(deadline, quarantine_id,
 *   status_xid)` per change, both indexes growing at their right edge;
 * - marks by trigger: the HOT wide row keeps `deadline` (unindexed), and a statement-level trigger
 *   writes the marks from the statement's new rows (the schema from app migration 006).
 */
import type { Database } from '../backend-kit/db.js';
import { machine, median } from './measure.js';
import { type Figure, writeReport } from './report.js';
import { benchDatabase } from './seed.js';

const N = Number(process.env.BENCH_QUARANTINES ?? (process.env.DATABASE_URL ? 1_000_000 : 100_000));
const BATCH = 2000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const WARM_UP = 4;
/** Columns a presence update also writes (counter, offset, battery…), as bigints. */
const OTHER = Array.from({ length: 18 }, (_, i) => `c${i}`);
const XID = 'pg_current_xact_id()::text::bigint';

type Layout = 'wide' | 'side' | 'log' | 'trigger' | 'returning';
const LAYOUTS: readonly Layout[] = ['wide', 'side', 'log', 'trigger', 'returning'];

async function setUp(db: Database): Promise<string[]> {
  const cols = OTHER.map((c) => `${c} bigint`).join(', ');
  await db.query(
    `CREATE TABLE wide (id uuid PRIMARY KEY, beacon_id text, h text, state text, ${cols},
                        last_presence_at bigint, deadline bigint, status_xid bigint)`,
  );
  // Room on each page, so an update that moves no indexed column can stay there (HOT).
  await db.query(
    `CREATE TABLE hot (id uuid PRIMARY KEY, beacon_id text, h text, state text, ${cols},
                       last_presence_at bigint) WITH (fillfactor = 70)`,
  );
  await db.query(
    'CREATE TABLE side (quarantine_id uuid PRIMARY KEY, deadline bigint, status_xid bigint)',
  );
  await db.query('CREATE TABLE marks (deadline bigint, quarantine_id uuid, status_xid bigint)');
  await db.query(
    `INSERT INTO wide SELECT md5('q' || i)::uuid, 'SB-' || i, md5('k' || i) || md5('h' || i), 'monitoring',
            ${OTHER.map(() => 'i').join(', ')}, i, i + 360000, 1
       FROM generate_series(1, $1::int) AS i`,
    [N],
  );
  await db.query(
    `INSERT INTO hot SELECT id, beacon_id, h, state, ${OTHER.join(', ')}, last_presence_at FROM wide`,
  );
  await db.query('INSERT INTO side SELECT id, deadline, status_xid FROM wide');
  // The schema of app migration 006 twice: marks written by a trigger, or by the statement itself.
  for (const table of ['trig', 'ret']) {
    await db.query(
      `CREATE TABLE ${table} (id uuid PRIMARY KEY, beacon_id text, h text, state text, ${cols},
                              last_presence_at bigint, deadline bigint) WITH (fillfactor = 70)`,
    );
    await db.query(
      `CREATE TABLE ${table}_marks (due bigint NOT NULL, quarantine_id uuid NOT NULL,
                                    xid bigint NOT NULL DEFAULT ${XID})`,
    );
    await db.query(
      `INSERT INTO ${table} SELECT id, beacon_id, h, state, ${OTHER.join(', ')}, last_presence_at, deadline FROM wide`,
    );
  }
  for (const sql of [
    'CREATE UNIQUE INDEX wide_h ON wide (h)',
    "CREATE UNIQUE INDEX wide_beacon ON wide (beacon_id) WHERE state <> 'ended'",
    "CREATE INDEX wide_due ON wide (deadline) WHERE state = 'monitoring' AND deadline IS NOT NULL",
    'CREATE INDEX wide_xid ON wide (status_xid)',
    'CREATE UNIQUE INDEX hot_h ON hot (h)',
    "CREATE UNIQUE INDEX hot_beacon ON hot (beacon_id) WHERE state <> 'ended'",
    'CREATE INDEX side_due ON side (deadline) WHERE deadline IS NOT NULL',
    'CREATE INDEX side_xid ON side (status_xid)',
    'CREATE INDEX marks_due ON marks (deadline)',
    'CREATE INDEX marks_xid ON marks (status_xid)',
    ...['trig', 'ret'].flatMap((t) => [
      `CREATE UNIQUE INDEX ${t}_h ON ${t} (h)`,
      `CREATE UNIQUE INDEX ${t}_beacon ON ${t} (beacon_id) WHERE state <> 'ended'`,
      `CREATE INDEX ${t}_marks_due ON ${t}_marks (due)`,
      `CREATE INDEX ${t}_marks_xid ON ${t}_marks (xid)`,
    ]),
    `CREATE FUNCTION trig_mark() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       INSERT INTO trig_marks (due, quarantine_id) SELECT n.deadline, n.id FROM changed n;
       RETURN NULL;
     END $$`,
    `CREATE TRIGGER trig_marked AFTER UPDATE ON trig REFERENCING NEW TABLE AS changed
       FOR EACH STATEMENT EXECUTE FUNCTION trig_mark()`,
  ])
    await db.query(sql);
  for (const table of ['wide', 'hot', 'side', 'marks', 'trig', 'trig_marks', 'ret', 'ret_marks'])
    await db.query(`VACUUM (ANALYZE) ${table}`);
  const { rows } = await db.query<{ id: string }>('SELECT id FROM wide');
  return rows.map((r) => r.id);
}

/** One presence batch in `layout`: the same rows and values, each in its own transaction. */
async function write(db: Database, layout: Layout, ids: string[], at: number): Promise<number> {
  const values = ids.map((_, i) => at + i);
  const u = 'unnest($1::uuid[], $2::bigint[]) AS u(id, v)';
  const presence = 'last_presence_at = u.v, c1 = u.v, c2 = u.v';
  const started = process.hrtime.bigint();
  await db.transaction(async (tx) => {
    if (layout === 'wide') {
      await tx.query(
        `UPDATE wide q SET ${presence}, deadline = u.v + 360000, status_xid = ${XID} FROM ${u} WHERE q.id = u.id`,
        [ids, values],
      );
      return;
    }
    if (layout === 'trigger') {
      await tx.query(
        `UPDATE trig q SET ${presence}, deadline = u.v + 360000 FROM ${u} WHERE q.id = u.id`,
        [ids, values],
      );
      return;
    }
    if (layout === 'returning') {
      await tx.query(
        `WITH changed AS (UPDATE ret q SET ${presence}, deadline = u.v + 360000 FROM ${u} WHERE q.id = u.id
                          RETURNING q.id, q.deadline)
         INSERT INTO ret_marks (due, quarantine_id) SELECT deadline, id FROM changed`,
        [ids, values],
      );
      return;
    }
    await tx.query(`UPDATE hot q SET ${presence} FROM ${u} WHERE q.id = u.id`, [ids, values]);
    if (layout === 'side')
      await tx.query(
        `UPDATE side s SET deadline = u.v + 360000, status_xid = ${XID} FROM ${u} WHERE s.quarantine_id = u.id`,
        [ids, values],
      );
    else
      await tx.query(`INSERT INTO marks SELECT u.v + 360000, u.id, ${XID} FROM ${u}`, [
        ids,
        values,
      ]);
  });
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const { db, drop } = await benchDatabase();
console.log(`setting up ${N.toLocaleString('en-GB')} rows in each layout on ${db.kind}…`);
const ids = await setUp(db);
/** 2,000 distinct rows at random, in id order (as the validator writes them). */
const pick = (): string[] => {
  const out = new Set<string>();
  while (out.size < BATCH) out.add(ids[Math.floor(Math.random() * ids.length)] as string);
  return [...out].sort();
};
const ms: Record<Layout, number[]> = { wide: [], side: [], log: [], trigger: [], returning: [] };
for (let r = 0; r < WARM_UP + ROUNDS; r++) {
  // Alternating order, so the machine's drift hits the layouts alike.
  const order = r % 2 ? LAYOUTS : [...LAYOUTS].reverse();
  for (const layout of order) {
    const t = await write(db, layout, pick(), Date.now());
    if (r >= WARM_UP) ms[layout].push(t);
  }
}
const { rows: stats } = await db.query<{ relname: string; upd: number; hot: number }>(
  `SELECT relname, n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot FROM pg_stat_user_tables
    WHERE schemaname = current_schema() AND relname IN ('wide', 'hot', 'side', 'trig', 'ret')`,
);
await drop();

const perSecond = (layout: Layout) => (BATCH * 1000) / median(ms[layout]);
const labels: Record<Layout, string> = {
  wide: 'one wide row, five indexes (before app migration 006)',
  side: 'wide row (HOT) + a narrow side row updated beside it',
  log: 'wide row (HOT) + an append-only mark',
  trigger: 'wide row (HOT) + marks written by a statement trigger (app migration 006)',
  returning: 'wide row (HOT) + marks from its RETURNING, one statement',
};
console.log(
  `\n${machine()}; ${db.kind}; ${N.toLocaleString('en-GB')} rows; ${BATCH} random rows a transaction, ${ROUNDS} rounds, median:\n`,
);
console.log('| layout | ms per transaction | rows/s |\n|---|---|---|');
for (const layout of LAYOUTS)
  console.log(
    `| ${labels[layout]} | ${median(ms[layout]).toFixed(1)} | ${Math.round(perSecond(layout)).toLocaleString('en-GB')} |`,
  );
console.log(
  `HOT updates: ${stats.map((s) => `${s.relname} ${s.upd ? Math.round((100 * s.hot) / s.upd) : 0} %`).join(', ')}`,
);

const baseline = { label: labels.wide, value: Math.round(perSecond('wide')), unit: 'rows/s' };
const figures: Figure[] = (['side', 'log', 'trigger', 'returning'] as const).map((layout) => ({
  measure: `presence write layout: ${labels[layout]}, ${N.toLocaleString('en-GB')} rows (${db.kind})`,
  value: Math.round(perSecond(layout)),
  unit: 'rows/s',
  baseline,
}));
writeReport('write-layouts', figures, { database: db.kind, rows: N, batch: BATCH, ms, stats });
