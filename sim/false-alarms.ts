import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_RULES } from '../app-backend/src/config.js';
import { DEFAULT_MODEL, withOverrides } from './false-alarms/model.js';
import { formatReport } from './false-alarms/report.js';
import { simulate } from './false-alarms/run.js';

const HELP = `npm run sim:false-alarms -- [options]

Simulates quarantines minute by minute with the app backend's own rules and a fault model
(sim/false-alarms/model.ts), and reports departures caught, time to police and false alarms.

  --people <n>        quarantines (default 2000)
  --days <n>          days each (default 14)
  --seed <n>          random seed (default 1)
  --set <name=value>  change a fault-model parameter or a rule (repeatable), e.g. --set phoneFlatNightShare=0.1
  --json <file>       also write the figures as JSON
  --help`;

function main(): void {
  const { values } = parseArgs({
    options: {
      people: { type: 'string', default: '2000' },
      days: { type: 'string', default: '14' },
      seed: { type: 'string', default: '1' },
      set: { type: 'string', multiple: true, default: [] },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void console.log(HELP);
  const int = (name: string, v: string, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new RangeError(`--${name} must be an integer in [1, ${max}]`);
    return n;
  };
  const modelSets: Record<string, number> = {};
  const ruleSets: Record<string, number> = {};
  for (const s of values.set) {
    const [k, v] = s.split('=');
    if (!k || v === undefined) throw new RangeError(`--set wants name=value, got ${s}`);
    (k in DEFAULT_RULES ? ruleSets : modelSets)[k] = Number(v);
  }
  const started = Date.now();
  const result = simulate({
    people: int('people', values.people, 1_000_000),
    days: int('days', values.days, 365),
    seed: int('seed', values.seed, 2 ** 31),
    model: withOverrides(DEFAULT_MODEL, modelSets),
    rules: { ...DEFAULT_RULES, ...ruleSets },
  });
  console.log(formatReport(result));
  console.log(`\n(${((Date.now() - started) / 1000).toFixed(1)} s)`);
  if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
}

try {
  main();
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(2);
}
