/**
 * The soak campaign: `node dist/test/soak/run.js [--quarantines N] [--rounds N] …` (or the SOAK_*
 * variables; `--help`). Runs the four fault scenarios against both backends as real processes,
 * prints the counts per scenario and writes them to bench-results/soak.json. Exits 1 if any alert
 * was lost, duplicated or false, or any accepted presence was lost.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Scenarios, type ScenarioResult } from './scenarios.js';
import { SoakSystem } from './system.js';

interface Settings {
  quarantines: number;
  rounds: number;
  leavers: number;
  windowSeconds: number;
  graceSeconds: number;
  uploadSeconds: number;
  policeDownSeconds: number;
  databaseDownSeconds: number;
  seed: number;
  out: string;
  only: string;
  cluster: number;
}

const SETTINGS: {
  [K in keyof Settings]: [flag: string, env: string, fallback: Settings[K], help: string];
} = {
  quarantines: ['--quarantines', 'SOAK_QUARANTINES', 1000, 'simulated quarantines'],
  rounds: ['--rounds', 'SOAK_ROUNDS', 5, 'crash rounds in scenario 1 (one aimed SIGKILL each)'],
  leavers: ['--leavers', 'SOAK_LEAVERS', 5, 'people leaving home per round'],
  windowSeconds: [
    '--window',
    'SOAK_WINDOW_SECONDS',
    20,
    'the presence window (APP_WINDOW_SECONDS)',
  ],
  graceSeconds: ['--grace', 'SOAK_GRACE_SECONDS', 5, 'the grace before police are told'],
  uploadSeconds: ['--upload', 'SOAK_UPLOAD_SECONDS', 5, 'each relay uploads this often'],
  policeDownSeconds: ['--police-down', 'SOAK_POLICE_DOWN_SECONDS', 90, 'police backend outage'],
  databaseDownSeconds: ['--db-down', 'SOAK_DB_DOWN_SECONDS', 8, 'database refusing connections'],
  seed: ['--seed', 'SOAK_SEED', 1, 'seed for who leaves and when crashes land'],
  out: ['--out', 'SOAK_OUT', 'bench-results/soak.json', 'where the JSON goes'],
  only: ['--only', 'SOAK_ONLY', 'crashes,police,database,instances', 'scenarios to run'],
  cluster: ['--cluster', 'SOAK_CLUSTER', 0, '1: app database on a private cluster, restarted too'],
};

function settings(argv: string[], env: NodeJS.ProcessEnv): Settings {
  if (argv.includes('--help')) {
    console.log('npm run soak -- [options]   (PostgreSQL when DATABASE_URL is set, else PGlite)');
    for (const [flag, name, fallback, help] of Object.values(SETTINGS))
      console.log(`  ${flag.padEnd(15)} ${name.padEnd(26)} ${help} (${fallback})`);
    process.exit(0);
  }
  const out: Record<string, number | string> = {};
  for (const [key, [flag, name, fallback]] of Object.entries(SETTINGS)) {
    const i = argv.indexOf(flag);
    const raw = i >= 0 ? argv[i + 1] : env[name];
    if (raw === undefined || raw === '') out[key] = fallback;
    else if (typeof fallback === 'string') out[key] = raw;
    else {
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0)
        throw new Error(`${flag} / ${name} must be a whole number`);
      out[key] = n;
    }
  }
  return out as unknown as Settings;
}

/** A small seeded generator (mulberry32): the same seed draws the same leavers and crash times. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const s = settings(process.argv.slice(2), process.env);
const say = (line: string) => console.log(line);
const started = new Date();
const system = await SoakSystem.start({
  quarantines: s.quarantines,
  databaseUrl: process.env.DATABASE_URL || undefined,
  windowSeconds: s.windowSeconds,
  graceSeconds: s.graceSeconds,
  uploadSeconds: s.uploadSeconds,
  keepDir: process.env.SOAK_KEEP === '1',
  privateCluster: s.cluster === 1,
  say,
});
let failed: boolean;
try {
  const scenarios = new Scenarios(system, {
    leavers: s.leavers,
    rounds: s.rounds,
    policeDownSeconds: s.policeDownSeconds,
    databaseDownSeconds: s.databaseDownSeconds,
    random: seeded(s.seed),
    say,
  });
  const only = new Set(s.only.split(','));
  if (only.has('crashes')) await scenarios.crashes();
  if (only.has('police')) await scenarios.policeDown();
  if (only.has('database')) await scenarios.databaseRestart();
  if (only.has('instances')) await scenarios.twoInstances();
  const final = await scenarios.final();
  const bad = (r: ScenarioResult) =>
    !r.skipped && (r.missing || r.duplicates || r.falseAlerts || r.presenceLost);
  failed = scenarios.results.some(bad) || final.missing + final.duplicates + final.falseAlerts > 0;
  say(
    `whole run: ${final.expected} departures, ${final.delivered} shown, ${final.duplicates} duplicates, ` +
      `${final.falseAlerts} false, ${final.missing} missing; outbox left undelivered: ${final.outboxLeft}`,
  );
  mkdirSync(dirname(s.out), { recursive: true });
  writeFileSync(
    s.out,
    `${JSON.stringify(
      {
        date: started.toISOString(),
        command: `node dist/test/soak/run.js ${process.argv.slice(2).join(' ')}`.trim(),
        database: system.database,
        settings: s,
        scenarios: scenarios.results,
        whole: final,
        presence: system.relays.counts,
        appStarts: system.app.starts,
        appKills: system.app.kills,
        policeStarts: system.police.starts,
      },
      null,
      2,
    )}\n`,
  );
  say(`written to ${s.out}`);
} finally {
  await system.close();
}
process.exit(failed ? 1 : 0);
