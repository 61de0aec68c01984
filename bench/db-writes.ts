/**
 * `npm run bench:db-writes`: how many quarantines per second the validator's transaction
 * updates — lock in id order, decide, write — with the batched write (one UPDATE … FROM unnest
 * per batch) next to one UPDATE per quarantine, alternating rounds in the same run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { DEFAULT_RULES } from '../app-backend/src/config.js';
import { decide } from '../app-backend/src/decide.js';
import { lockStates, saveState, saveStates } from '../app-backend/src/store.js';
import { machine, median } from './measure.js';
import { benchDatabase, seedQuarantines } from './seed.js';

const QUARANTINES = Number(process.env.BENCH_QUARANTINES ?? 100_000);
const BATCH = 2000;
const ROUNDS = 5;
const BATCHES_PER_ROUND = 10;

const { db, drop } = await benchDatabase();
const now = Date.now();
console.log(`seeding ${QUARANTINES.toLocaleString('en-GB')} quarantines on ${db.kind}…`);
await seedQuarantines(db, QUARANTINES, now - 60_000, now + 600_000);
const { rows } = await db.query<{ id: string }>('SELECT id FROM quarantines');
const ids = rows.map((r) => r.id);
let counter = 2;

async function round(batched: boolean): Promise<number> {
  const started = process.hrtime.bigint();
  for (let b = 0; b < BATCHES_PER_ROUND; b++) {
    const pick = Array.from(
      { length: BATCH },
      () => ids[Math.floor(Math.random() * ids.length)] as string,
    );
    const at = Date.now();
    const c = counter++;
    await db.transaction(async (tx) => {
      const states = await lockStates(tx, pick);
      const next = [...states.values()].map(
        (s) =>
          decide(
            s,
            [
              {
                fields: {
                  version: 1,
                  unixSeconds: Math.floor(at / 1000),
                  counter: c,
                  batteryPercent: 80,
                  clockNotSet: false,
                  rebooted: false,
                },
                receivedAt: at,
              },
            ],
            DEFAULT_RULES,
            at,
            { requestAt: at },
          ).next,
      );
      if (batched) await saveStates(tx, next, at);
      else for (const s of next) await saveState(tx, s, at);
    });
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return (BATCH * BATCHES_PER_ROUND) / seconds;
}

const results = { batched: [] as number[], perRow: [] as number[] };
await round(true); // warm-up: plans, caches
for (let r = 0; r < ROUNDS; r++) {
  results.batched.push(await round(true));
  results.perRow.push(await round(false));
}
const out = {
  date: new Date().toISOString().slice(0, 10),
  machine: machine(),
  database: db.kind,
  quarantines: QUARANTINES,
  batch: BATCH,
  quarantinesPerSecond: { batched: median(results.batched), perRow: median(results.perRow) },
  rounds: results,
};
console.log(
  `\n${out.machine}; ${db.kind}; ${QUARANTINES.toLocaleString('en-GB')} quarantines; batches of ${BATCH} (lock, decide, write), ${ROUNDS} rounds, median:\n`,
);
console.log('| write | quarantines updated/s |\n|---|---|');
console.log(
  `| one UPDATE … FROM unnest per batch | ${Math.round(out.quarantinesPerSecond.batched).toLocaleString('en-GB')} |`,
);
console.log(
  `| one UPDATE per quarantine (baseline) | ${Math.round(out.quarantinesPerSecond.perRow).toLocaleString('en-GB')} |`,
);
mkdirSync('bench-results', { recursive: true });
writeFileSync(`bench-results/db-writes-${db.kind}.json`, JSON.stringify(out, null, 2));
await drop();
