/**
 * `npm run bench`: every benchmark in turn, each in its own process (so one's memory and CPU never
 * colour the next), then one table of their headline figures beside their same-run baselines,
 * written to `bench-results/summary.json` and `summary.md`.
 *
 *   npm run bench                       all of them at national scale (about an hour here)
 *   npm run bench -- --quick            smaller populations and shorter rounds (minutes)
 *   npm run bench -- --only token,police-intake
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machine } from './measure.js';
import { type Figure, RESULTS_DIR, type Report } from './report.js';

interface Bench {
  name: string;
  script: string;
  nodeArgs?: string[];
  /** Settings of its own (over the run's environment). */
  env?: Record<string, string>;
  /** What it needs to mean anything, printed when it is skipped. */
  needsPostgres?: boolean;
}

/** In the order a reader meets them in docs/BENCHMARKS.md. */
const BENCHES: Bench[] = [
  { name: 'token', script: 'token.js', nodeArgs: ['--expose-gc'] },
  { name: 'presence-answer', script: 'presence-answer.js' },
  { name: 'ingest', script: 'ingest.js' },
  { name: 'scale-out', script: 'scale-out.js', needsPostgres: true },
  { name: 'db-writes', script: 'db-writes.js' },
  { name: 'write-layouts', script: 'write-layouts.js' },
  { name: 'watchdog', script: 'watchdog.js', nodeArgs: ['--expose-gc'] },
  { name: 'memory', script: 'memory.js', nodeArgs: ['--expose-gc'] },
  { name: 'alert-latency', script: 'alert-latency.js' },
  // Gaps opened a grace before, as in production: only the confirmations fall due at once.
  { name: 'alert-latency-grace', script: 'alert-latency.js', env: { BENCH_GRACE_SECONDS: '5' } },
  { name: 'police-intake', script: 'police-intake.js' },
  { name: 'dashboard-render', script: 'dashboard-render.js' },
  { name: 'firmware', script: 'firmware.js' },
];

/** `--quick`: the same code paths at a scale that runs in minutes; never for recorded figures. */
const QUICK_ENV: Record<string, string> = {
  BENCH_QUARANTINES: '100000',
  BENCH_MINUTES: '1',
  BENCH_SECONDS: '4',
  BENCH_ROUNDS: '1',
};

interface Outcome {
  name: string;
  status: 'ok' | 'failed' | 'missing' | 'skipped' | 'no report';
  seconds: number;
  report?: Report | undefined;
}

const fmt = (n: number): string =>
  Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : Number(n.toPrecision(3)).toString();

function run(bench: Bench, env: NodeJS.ProcessEnv): Promise<number> {
  const script = fileURLToPath(new URL(`./${bench.script}`, import.meta.url));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...(bench.nodeArgs ?? []), script], {
      env: { ...env, ...bench.env },
      stdio: 'inherit',
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

function readReport(name: string, since: number): Report | undefined {
  const file = join(RESULTS_DIR, `${name}.json`);
  if (!existsSync(file)) return undefined;
  const report = JSON.parse(readFileSync(file, 'utf8')) as Partial<Report>;
  // Only a report written by this run counts; an old one would pass off stale figures.
  if (!report.date || Date.parse(report.date) < since || !Array.isArray(report.figures))
    return undefined;
  return report as Report;
}

function table(outcomes: Outcome[]): string {
  const rows: string[][] = [['bench', 'measure', 'value', 'baseline (same run)', 'target', '']];
  for (const o of outcomes) {
    if (!o.report) {
      rows.push([o.name, `(${o.status})`, '', '', '', '']);
      continue;
    }
    for (const f of o.report.figures) rows.push(figureRow(o.name, f));
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  '))
    .join('\n')
    .trimEnd();
}

function figureRow(bench: string, f: Figure): string[] {
  const base = f.baseline
    ? `${f.baseline.label}: ${fmt(f.baseline.value)} ${f.baseline.unit}` +
      (f.baseline.unit === f.unit && f.baseline.value
        ? ` (${Math.round((f.value / f.baseline.value) * 100)} %)`
        : '')
    : '';
  return [
    bench,
    f.measure,
    `${fmt(f.value)} ${f.unit}`,
    base,
    f.target?.text ?? '',
    f.target ? (f.target.met ? 'met' : 'MISSED') : '',
  ];
}

function markdown(outcomes: Outcome[], started: string): string {
  const lines = [
    `# Benchmarks — ${started}`,
    '',
    `${machine()}; database: ${process.env.DATABASE_URL ? 'PostgreSQL (DATABASE_URL)' : 'PGlite'}`,
    '',
    '| bench | measure | value | baseline (same run) | target | |',
    '|---|---|---|---|---|---|',
  ];
  for (const o of outcomes) {
    if (!o.report) lines.push(`| ${o.name} | (${o.status}) | | | | |`);
    else for (const f of o.report.figures) lines.push(`| ${figureRow(o.name, f).join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

async function main(): Promise<number> {
  let values: { quick: boolean; only?: string };
  try {
    ({ values } = parseArgs({
      options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\nusage: npm run bench -- [--quick] [--only a,b]`);
    return 2;
  }
  const only = values.only?.split(',').map((s) => s.trim());
  const unknown = only?.filter((n) => !BENCHES.some((b) => b.name === n)) ?? [];
  if (unknown.length) {
    console.error(`unknown bench: ${unknown.join(', ')} (known: ${BENCHES.map((b) => b.name)})`);
    return 2;
  }
  const env = { ...process.env, ...(values.quick ? QUICK_ENV : {}) };
  // Explicit settings win over --quick's.
  for (const k of Object.keys(QUICK_ENV)) if (process.env[k]) env[k] = process.env[k];
  const started = new Date().toISOString();
  const since = Date.now() - 1000;
  const outcomes: Outcome[] = [];
  for (const bench of BENCHES.filter((b) => !only || only.includes(b.name))) {
    const t0 = Date.now();
    let status: Outcome['status'];
    if (!existsSync(fileURLToPath(new URL(`./${bench.script}`, import.meta.url))))
      status = 'missing';
    else if (bench.needsPostgres && !process.env.DATABASE_URL) status = 'skipped';
    else {
      console.log(`\n━━ ${bench.name} ━━`);
      status = (await run(bench, env)) === 0 ? 'ok' : 'failed';
    }
    const report = status === 'ok' ? readReport(bench.name, since) : undefined;
    if (status === 'ok' && !report) status = 'no report';
    outcomes.push({ name: bench.name, status, seconds: (Date.now() - t0) / 1000, report });
  }
  console.log(`\n${machine()}${values.quick ? ' — QUICK (not for the record)' : ''}\n`);
  console.log(table(outcomes));
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(
    join(RESULTS_DIR, 'summary.json'),
    JSON.stringify({ started, machine: machine(), quick: values.quick, outcomes }, null, 2) + '\n',
  );
  writeFileSync(join(RESULTS_DIR, 'summary.md'), markdown(outcomes, started));
  const failed = outcomes.filter((o) => o.status === 'failed' || o.status === 'no report');
  if (failed.length) console.error(`\nfailed: ${failed.map((o) => o.name).join(', ')}`);
  return failed.length ? 1 : 0;
}

process.exitCode = await main();
