import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { machine } from './measure.js';

/** The target, as text, and whether this run met it. */
export interface Target {
  text: string;
  met: boolean;
}

/** One headline figure of a benchmark, always next to the baseline measured in the same run. */
export interface Figure {
  /** What was measured, e.g. "police intake (PostgreSQL)". */
  measure: string;
  value: number;
  unit: string;
  /** The same-run reference this figure should be read against. */
  baseline?: { label: string; value: number; unit: string };
  target?: Target;
}

export interface Report {
  bench: string;
  date: string;
  machine: string;
  /** 1-minute load average at the end: other work on this shared machine skews every figure. */
  loadAverage: number;
  figures: Figure[];
  /** Everything else the bench measured, for whoever digs deeper. */
  details: unknown;
}

export const RESULTS_DIR = process.env['BENCH_RESULTS_DIR'] ?? 'bench-results';

/** Writes `bench-results/<bench>.json`; `npm run bench` reads the figures from there. */
export function writeReport(bench: string, figures: Figure[], details: unknown): Report {
  const report: Report = {
    bench,
    date: new Date().toISOString(),
    machine: machine(),
    loadAverage: Number((loadavg()[0] ?? 0).toFixed(2)),
    figures,
    details,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${bench}.json`), JSON.stringify(report, null, 2) + '\n');
  return report;
}

/** `value` against a lower bound: "≥ 1,000 alerts/s". */
export const atLeast = (value: number, bound: number, unit: string): Target => ({
  text: `≥ ${bound.toLocaleString('en-US')} ${unit}`,
  met: value >= bound,
});

/** `value` against an upper bound: "< 10 ms". */
export const below = (value: number, bound: number, unit: string): Target => ({
  text: `< ${bound.toLocaleString('en-US')} ${unit}`,
  met: value < bound,
});
