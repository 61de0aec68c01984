/**
 * `npm run bench:db-writes`: how many quarantines per second the validator's database work
 * handles — read the states by key hash, decide, write — in batches of 2,000 random
 * quarantines, each with one fresh token, two batches at a time as the validator runs them. Next
 * to it, in alternating rounds of the same run: the raw write alone (one unnest UPSERT of the same
 * columns of the same rows, two at a time: the ceiling), and the same validator path writing one
 * UPDATE per quarantine, one batch at a time.
 */
import { DEFAULT_RULES } from '../app-backend/src/config.js';
import { type QuarantineState, type ReceivedToken, decide } from '../app-backend/src/decide.js';
import {
  STATE_COLUMNS,
  type Stored,
  loadByKeyHash,
  saveStates,
  toWrite,
} from '../app-backend/src/store.js';
import { type BatchInput, PIPELINE, applyPresence } from '../app-backend/src/validator.js';
import type { Database } from '../backend-kit/db.js';
import { machine, median } from './measure.js';
import { type Figure, writeReport } from './report.js';
import { benchDatabase, seedQuarantines } from './seed.js';

// A million on PostgreSQL, as at national scale (indexes that large no longer fit the caches);
// PGlite keeps to 100,000.
const QUARANTINES = Number(
  process.env.BENCH_QUARANTINES ?? (process.env.DATABASE_URL ? 1_000_000 : 100_000),
);
const BATCH = 2000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const BATCHES_PER_ROUND = 10;
/** One UPDATE per row is ~40× slower: fewer batches keep its rounds as long as the others. */
const PER_ROW_BATCHES = 2;
const TARGET = 30_000;

const { db, drop } = await benchDatabase();
const now = Date.now();
console.log(`seeding ${QUARANTINES.toLocaleString('en-GB')} quarantines on ${db.kind}…`);
await seedQuarantines(db, QUARANTINES, now - 60_000, now + 600_000);
const { rows } = await db.query<{ sk_t_past_hash: string }>(
  'SELECT sk_t_past_hash FROM quarantines',
);
const hashes = rows.map((r) => r.sk_t_past_hash);

/** `n` sets of 2,000 distinct quarantines at random, none in two sets. */
function pick(n: number): string[][] {
  const out = new Set<string>();
  while (out.size < BATCH * n) out.add(hashes[Math.floor(Math.random() * hashes.length)] as string);
  const all = [...out];
  return Array.from({ length: n }, (_, i) => all.slice(i * BATCH, (i + 1) * BATCH));
}

/** The beacon's next token, heard now. */
const tokenFor = (s: QuarantineState, at: number): ReceivedToken => ({
  fields: {
    version: 1,
    unixSeconds: Math.floor(at / 1000),
    counter: (s.lastCounter ?? 0) + 1,
    batteryPercent: 80,
    clockNotSet: false,
    rebooted: false,
  },
  receivedAt: at,
});

const inputFor = (stored: readonly Stored[], at: number) =>
  new Map<string, BatchInput>(
    stored.map((s) => [s.state.id, { tokens: [tokenFor(s.state, at)], seen: { requestAt: at } }]),
  );

interface Phases {
  read: number[];
  write: number[];
}
const phases: Phases = { read: [], write: [] };
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

/** The validator's database work for one batch, as PresenceValidator does it after the crypto. */
async function validatorBatch(keyHashes: string[]): Promise<void> {
  const at = Date.now();
  let t = process.hrtime.bigint();
  const stored = [...(await loadByKeyHash(db, keyHashes)).values()];
  phases.read.push(ms(t));
  t = process.hrtime.bigint();
  await applyPresence(db, stored, inputFor(stored, at), DEFAULT_RULES, at);
  phases.write.push(ms(t));
}

/** The same read and decisions, written with one UPDATE per quarantine. */
async function perRowBatch(keyHashes: string[]): Promise<void> {
  const at = Date.now();
  const stored = [...(await loadByKeyHash(db, keyHashes)).values()];
  await db.transaction(async (tx) => {
    for (const before of stored) {
      const next = decide(before.state, [tokenFor(before.state, at)], DEFAULT_RULES, at, {
        requestAt: at,
      }).next;
      await saveStates(tx, [toWrite(before, next)], at);
    }
  });
}

const NAMES = STATE_COLUMNS.map(([name]) => name);

/** The ceiling: the decided states of the same rows written by one unnest UPSERT, nothing else. */
async function upsert(database: Database, states: readonly QuarantineState[], at: number) {
  await database.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO quarantines (id, beacon_id, t_past, window_seconds, state, registered_at, ${NAMES.join(', ')}, status_changed_at)
       SELECT u.id, '', 0, 0, 'monitoring', 0, ${NAMES.map((n) => `u.${n}`).join(', ')}, $${NAMES.length + 2}
         FROM unnest($1::uuid[], ${STATE_COLUMNS.map(([, type], k) => `$${k + 2}::${type}[]`).join(', ')}) AS u(id, ${NAMES.join(', ')})
       ON CONFLICT (id) DO UPDATE SET ${NAMES.map((n) => `${n} = EXCLUDED.${n}`).join(', ')},
                                      status_changed_at = EXCLUDED.status_changed_at`,
      [states.map((s) => s.id), ...STATE_COLUMNS.map(([, , get]) => states.map(get)), at],
    );
  });
}

/**
 * Quarantines written per second over `batches` batches, `together` at a time on quarantines of
 * their own, as the validator runs them; `prepare` is off the clock, `timed` on it.
 */
async function round<T>(
  batches: number,
  together: number,
  prepare: (keyHashes: string[]) => Promise<T>,
  timed: (prepared: T) => Promise<void>,
): Promise<number> {
  let seconds = 0;
  for (let b = 0; b < batches; b += together) {
    const prepared = await Promise.all(pick(together).map(prepare));
    const started = process.hrtime.bigint();
    await Promise.all(prepared.map(timed));
    seconds += ms(started) / 1000;
  }
  return (BATCH * batches) / seconds;
}

const keysOnly = (keyHashes: string[]) => Promise.resolve(keyHashes);
const validatorRound = () => round(BATCHES_PER_ROUND, PIPELINE, keysOnly, validatorBatch);
const perRowRound = () => round(PER_ROW_BATCHES, 1, keysOnly, perRowBatch);

/** The raw UPSERT's batches: their states are read and decided off the clock. */
const upsertRound = () =>
  round(
    BATCHES_PER_ROUND,
    PIPELINE,
    async (keyHashes) => {
      const at = Date.now();
      const stored = [...(await loadByKeyHash(db, keyHashes)).values()];
      const states = stored.map(
        (s) => decide(s.state, [tokenFor(s.state, at)], DEFAULT_RULES, at, { requestAt: at }).next,
      );
      return { states, at };
    },
    ({ states, at }) => upsert(db, states, at),
  );

const results = { validator: [] as number[], upsert: [] as number[], perRow: [] as number[] };
// Warm-up: plans, caches.
await validatorRound();
await upsertRound();
phases.read.length = phases.write.length = 0;
for (let r = 0; r < ROUNDS; r++) {
  results.validator.push(await validatorRound());
  results.upsert.push(await upsertRound());
  results.perRow.push(await perRowRound());
}
const { rows: stats } = await db.query<{ n_tup_upd: number; n_tup_hot_upd: number }>(
  `SELECT n_tup_upd::int, n_tup_hot_upd::int FROM pg_stat_user_tables WHERE relid = 'quarantines'::regclass`,
);
const perSecond = {
  validator: median(results.validator),
  upsert: median(results.upsert),
  perRow: median(results.perRow),
};
const f = (n: number) => Math.round(n).toLocaleString('en-GB');
console.log(
  `\n${machine()}; ${db.kind}; ${f(QUARANTINES)} quarantines; batches of ${BATCH} distinct quarantines, ${ROUNDS} rounds, median:\n`,
);
console.log('| write | quarantines/s |\n|---|---|');
console.log(
  `| validator: read by key hash, decide, one UPDATE … FROM unnest (${PIPELINE} batches at a time) | ${f(perSecond.validator)} |`,
);
console.log(
  `| raw unnest UPSERT of the same rows, write only (ceiling; ${PIPELINE} at a time) | ${f(perSecond.upsert)} |`,
);
console.log(`| validator path, one UPDATE per quarantine | ${f(perSecond.perRow)} |`);
console.log(
  `\nper batch of ${BATCH} (median): read ${median(phases.read).toFixed(0)} ms, decide and write ${median(phases.write).toFixed(0)} ms`,
);
const upd = stats[0];
// An update that moves no indexed column and finds room on its page touches no index (HOT).
if (upd?.n_tup_upd)
  console.log(
    `HOT updates of quarantines: ${((100 * upd.n_tup_hot_upd) / upd.n_tup_upd).toFixed(0)} % of ${f(upd.n_tup_upd)}`,
  );

const ceiling = {
  label: 'raw unnest UPSERT of the same rows (write only), same run',
  value: Math.round(perSecond.upsert),
  unit: 'quarantines/s',
};
const figures: Figure[] = [
  {
    measure: `presence writes: validator read + decide + batched write, ${f(QUARANTINES)} quarantines (${db.kind})`,
    value: Math.round(perSecond.validator),
    unit: 'quarantines/s',
    baseline: ceiling,
    target: {
      text: `≥ ${TARGET.toLocaleString('en-US')} quarantines/s (PostgreSQL)`,
      met: db.kind === 'postgres' && perSecond.validator >= TARGET,
    },
  },
  {
    measure: `the same, one UPDATE per quarantine (${db.kind})`,
    value: Math.round(perSecond.perRow),
    unit: 'quarantines/s',
    baseline: ceiling,
  },
];
writeReport('db-writes', figures, {
  database: db.kind,
  quarantines: QUARANTINES,
  batch: BATCH,
  rounds: results,
  medianBatchMs: { read: median(phases.read), decideAndWrite: median(phases.write) },
  quarantineUpdates: stats[0] ?? null,
});
await drop();
