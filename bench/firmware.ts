/**
 * `npm run bench:firmware`: the beacon's bundle sizes, and the battery life of advertising
 * schedules on a CR2032 next to the reception each gets from Android phones. Sizes are measured
 * here; the energy model takes the Puck.js figures of the facts file, work per token counted in
 * the emulation, and named assumptions (bench/firmware/energy.ts); reception is the relay's own
 * simulation of the compiled firmware, provisioned and locked as each schedule needs
 * (bench/firmware/reception.ts). Emulator timing is not device timing: nothing here is a current
 * measured on a beacon.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { EspruinoDevice, VirtualClock } from '../firmware/emulator/index.js';
import { BOARDS, bundlePath } from '../firmware/scripts/boards.js';
import { buildBoard, bundleFor } from '../firmware/scripts/build.js';
import { validateProvision } from '../firmware/src/config.js';
import { COUNTER_BLOCK, COUNTER_MARKS } from '../firmware/src/counter.js';
import { BURST_INTERVAL, REST_INTERVAL } from '../firmware/src/intervals.js';
import {
  ASSUMED,
  type EnergyBreakdown,
  FACTS,
  type Figure as ModelFigure,
  HOURS_PER_MONTH,
  RX_WINDOW,
  type Schedule,
  TX_CURRENT_MA,
  checkAgainstFacts,
  connectableCharge,
  continuous,
  energy,
  eventCharge,
  eventsPerToken,
} from './firmware/energy.js';
import {
  ANDROID_SCAN_MODES,
  type AirModel,
  type AirSettings,
  type HourOfReception,
  type ScanMode,
  hourOfReception,
  seededRandom,
} from './firmware/reception.js';
import { type TokenWork, measureTokenWork } from './firmware/work.js';
import { machine } from './measure.js';
import { type Figure, writeReport } from './report.js';

const SEEDS = Number(process.env.BENCH_SEEDS ?? 5);
/** Phone scan timing explored up to this share off nominal, both ways (aliasing dips are narrow). */
const BAND = Number(process.env.BENCH_TIMING_BAND ?? 0.05);
const BAND_STEP = Number(process.env.BENCH_TIMING_STEP ?? 0.005);
/** A reliable schedule keeps passing with the phone's scan timing this far off nominal. */
const REQUIRED_BAND = 0.03;
/** Further runs per duty-cycled required mode at random timing within ±REQUIRED_BAND: luck is not reliability. */
const RANDOM_RUNS = Number(process.env.BENCH_RANDOM_RUNS ?? 10);
const AIM_MONTHS = 12;
const AIM_BYTES = 8192;
/** Reliable: at least this share of the hour's tokens heard in every run, and no false warning. */
const MIN_SHARE = 0.95;
const INTERVALS = [400, 450, 500, 550, 600, 750, 1000];
const BURSTS = [10, 12, 13, 14, 16];
const TX_POWERS = Object.keys(TX_CURRENT_MA)
  .map(Number)
  .sort((a, b) => b - a);

/**
 * Android's current scan parameters (AOSP ScanManager), which differ from the relay model's. The
 * screen-off low-power scan (5 % duty) misses tokens at every interval: shown, not required.
 */
const AOSP_SCAN_MODES: readonly (ScanMode & { readonly required: boolean })[] = [
  {
    name: 'AOSP low power (140 of 1,400 ms)',
    scan: { windowMs: 140, intervalMs: 1400 },
    required: true,
  },
  {
    name: 'AOSP balanced (183 of 730 ms)',
    scan: { windowMs: 183, intervalMs: 730 },
    required: true,
  },
  {
    name: 'AOSP screen off (512 of 10,240 ms)',
    scan: { windowMs: 512, intervalMs: 10240 },
    required: false,
  },
];
const MODES = [
  ...ANDROID_SCAN_MODES.map((m) => ({ ...m, model: 'relay' as const, required: true })),
  ...AOSP_SCAN_MODES.map((m) => ({ ...m, model: 'aosp' as const })),
];

const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;
const n = (v: number) => v.toLocaleString('en-US');

function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [
    line(headers),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...cells.slice(1).map(line),
  ].join('\n');
}

const ok = (lines: string[] | null) => (lines ?? []).some((l) => l.startsWith('SB:{"ok":true'));

/**
 * The firmware's own defaults: provisioning fields left out, then what the emulated radio does
 * before lock (the officer's session) and after it (the months on a door).
 */
function firmwareDefaults() {
  const checked = validateProvision({
    id: 'SB-DEFAULTS',
    key: '00'.repeat(32),
    time: 1_800_000_000,
  });
  if ('error' in checked) throw new Error(`defaults rejected: ${checked.error}`);
  const { config } = checked;
  const clock = new VirtualClock(1_795_392_000_000);
  const device = new EspruinoDevice({ clock, crypto: { aes: true, sha256: true }, battery: 87 });
  device.install(readFileSync(bundlePath('PUCKJS'), 'utf8'));
  const request = { id: 'SB-DEFAULTS', key: '00'.repeat(32), time: 1_800_000_000 };
  if (!ok(device.console(`SB.provision(${JSON.stringify(request)})`, 'serial')))
    throw new Error('provisioning with defaults failed');
  const { radio } = device;
  const before = { intervalMs: radio.intervalMs, connectable: radio.connectable };
  if (!ok(device.console('SB.lock()', 'serial'))) throw new Error('lock failed');
  clock.advance(1000);
  const burst = { intervalMs: radio.intervalMs, connectable: radio.connectable };
  clock.advance(config.burst * 1000);
  const rest = { intervalMs: radio.intervalMs, connectable: radio.connectable };
  const expected =
    before.intervalMs === config.interval &&
    before.connectable &&
    radio.txPower === config.tx &&
    !burst.connectable &&
    !rest.connectable &&
    (config.burst === 0
      ? burst.intervalMs === config.interval && rest.intervalMs === config.interval
      : burst.intervalMs === BURST_INTERVAL && rest.intervalMs === REST_INTERVAL);
  if (!expected)
    throw new Error(
      `the emulated radio disagrees with the defaults: ${JSON.stringify({ config, before, burst, rest })}`,
    );
  return { config, before, burst, rest };
}

interface ModeSummary {
  readonly mode: string;
  readonly required: boolean;
  readonly runs: number;
  readonly meanHeard: number;
  readonly minHeard: number;
  readonly emitted: number;
  readonly longestSilenceS: number;
  readonly falseWarnings: number;
}

interface ReceptionSummary {
  readonly settings: AirSettings;
  readonly model: AirModel;
  readonly relayCadenceS: number;
  readonly modes: ModeSummary[];
  /** The required duty-cycled modes with the phone's scan timing off by up to ±BAND. */
  readonly band: {
    readonly runs: number;
    /** Every run with the timing off by at most this share passed (nominal included). */
    readonly holdsWithin: number | null;
    readonly failing: { mode: string; scale: number; heard: number; falseWarnings: number }[];
  };
  /** Runs at random timing within ±REQUIRED_BAND, and how many failed. */
  readonly random: { readonly runs: number; readonly failed: number };
  readonly reliable: boolean;
}

const passes = (r: HourOfReception) => r.heard >= MIN_SHARE * r.emitted && r.falseWarnings === 0;
const scaled = (scan: { windowMs: number; intervalMs: number }, k: number) => ({
  windowMs: scan.windowMs * k,
  intervalMs: scan.intervalMs * k,
});

const receptionCache = new Map<string, ReceptionSummary>();

async function receptionFor(
  settings: AirSettings,
  model: AirModel = 'espruino',
  relayCadenceS = settings.cadence,
): Promise<ReceptionSummary> {
  const key = JSON.stringify([settings, model, relayCadenceS]);
  const cached = receptionCache.get(key);
  if (cached) return cached;
  const hour = (mode: ScanMode, seed: number) =>
    hourOfReception(settings, mode, seed, model, relayCadenceS);
  const modes: ModeSummary[] = [];
  let nominalOk = true;
  for (const mode of MODES) {
    const runs: HourOfReception[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) runs.push(await hour(mode, seed));
    if (mode.required && !runs.every(passes)) nominalOk = false;
    modes.push({
      mode: mode.name,
      required: mode.required,
      runs: runs.length,
      meanHeard: round(runs.reduce((a, r) => a + r.heard, 0) / runs.length),
      minHeard: Math.min(...runs.map((r) => r.heard)),
      emitted: runs[0]?.emitted ?? 0,
      longestSilenceS: Math.round(Math.max(...runs.map((r) => r.longestSilenceMs)) / 1000),
      falseWarnings: runs.reduce((a, r) => a + r.falseWarnings, 0),
    });
  }
  const dutyCycled = MODES.filter((m) => m.required && m.scan);
  // A schedule that fails at nominal timing is not explored further: it is not reliable.
  const failing: ReceptionSummary['band']['failing'] = [];
  let bandRuns = 0;
  if (nominalOk) {
    const steps = Math.round(BAND / BAND_STEP);
    for (const mode of dutyCycled)
      for (let k = -steps; k <= steps; k++) {
        if (k === 0) continue;
        const scale = 1 + k * BAND_STEP;
        const scan = scaled(mode.scan as NonNullable<ScanMode['scan']>, scale);
        const r = await hour({ name: mode.name, scan }, 100 + k);
        bandRuns++;
        if (!passes(r))
          failing.push({ mode: mode.name, scale, heard: r.heard, falseWarnings: r.falseWarnings });
      }
  }
  failing.sort((a, b) => Math.abs(a.scale - 1) - Math.abs(b.scale - 1));
  const nearest = failing[0];
  const holdsWithin = !nominalOk
    ? null
    : nearest
      ? Math.round((Math.abs(nearest.scale - 1) - BAND_STEP) * 1e4) / 1e4
      : BAND;
  const random = { runs: 0, failed: 0 };
  if (holdsWithin !== null && holdsWithin >= REQUIRED_BAND) {
    const draw = seededRandom(7001);
    for (const mode of dutyCycled)
      for (let i = 0; i < RANDOM_RUNS; i++) {
        const scale = 1 + (2 * draw() - 1) * REQUIRED_BAND;
        const scan = scaled(mode.scan as NonNullable<ScanMode['scan']>, scale);
        const r = await hour({ name: mode.name, scan }, 300 + i);
        random.runs++;
        if (!passes(r)) random.failed++;
      }
  }
  const summary: ReceptionSummary = {
    settings,
    model,
    relayCadenceS,
    modes,
    band: { runs: bandRuns, holdsWithin, failing },
    random,
    reliable: holdsWithin !== null && holdsWithin >= REQUIRED_BAND && random.failed === 0,
  };
  receptionCache.set(key, summary);
  return summary;
}

const date = new Date().toISOString();
const started = Date.now();
console.log(`firmware: bundle size and battery life — ${machine()} — ${date}\n`);

// 1. Bundle sizes, as firmware:build makes them.
const sizes: { board: string; file: string; es5Bytes: number; flashedBytes: number }[] = [];
for (const board of BOARDS) {
  const es5Bytes = Buffer.byteLength(await bundleFor(board));
  const { bytes } = await buildBoard(board);
  sizes.push({ board, file: basename(bundlePath(board)), es5Bytes, flashedBytes: bytes });
}
console.log('## Bundle size (measured here)\n');
console.log(
  table(
    ['board', 'bundle', 'ES5 bytes (before the Espruino minifier)', 'bytes flashed (after it)'],
    sizes.map((s) => [s.board, s.file, n(s.es5Bytes), n(s.flashedBytes)]),
  ),
);
const puckBytes = sizes.find((s) => s.board === 'PUCKJS')?.flashedBytes ?? NaN;

// 2. What the firmware does with the settings left out.
const defaults = firmwareDefaults();
const cfg = defaults.config;
console.log(
  `\nFirmware defaults (read back from the emulated radio): token every ${cfg.cadence} s, ${cfg.tx} dBm; before lock connectable at ${defaults.before.intervalMs} ms; after lock non-connectable, ${cfg.burst ? `${defaults.burst.intervalMs} ms for the first ${cfg.burst} s of each token, then ${defaults.rest.intervalMs} ms` : `${defaults.rest.intervalMs} ms`}.`,
);

// 3. Work per token, counted in the emulation (a counter-block reservation included).
const work: Record<string, TokenWork> = {};
for (const board of BOARDS)
  work[board] = await measureTokenWork(
    board,
    board === 'PUCKJS' ? COUNTER_BLOCK + 50 : 30,
    COUNTER_BLOCK,
  );
const puck = work.PUCKJS as TokenWork;
// Locked, the burst schedule adds its own timer (the switch to the rest interval) to every token.
const puckBurst = await measureTokenWork('PUCKJS', 60, COUNTER_BLOCK, {
  lock: true,
  burst: cfg.burst || BURSTS[0] || 10,
});
const steps = (w: TokenWork) =>
  w.perToken.statements + w.perToken.iterations + w.perToken.functions;
const cpuMs = (w: TokenWork) =>
  (steps(w) * ASSUMED.statementTime.value + w.perToken.builtins * ASSUMED.builtinTime.value) / 1000;
console.log('\n## JavaScript per token (counts measured here in the emulation; time assumed)\n');
console.log(
  table(
    [
      'board',
      'statements',
      'loop steps',
      'calls',
      'built-in calls',
      `est. CPU ms on device (${ASSUMED.statementTime.value} µs/step, ${ASSUMED.builtinTime.value} µs/built-in)`,
      'emulator ms (Node, not device time)',
    ],
    [
      ...BOARDS.map((b) => [b, work[b] as TokenWork] as const),
      ['PUCKJS, locked, bursts', puckBurst] as const,
    ].map(([b, w]) => [
      b,
      n(w.perToken.statements),
      n(w.perToken.iterations),
      n(w.perToken.functions),
      w.perToken.builtins,
      round(cpuMs(w)),
      round(w.emulatorMsPerToken, 3),
    ]),
  ),
);
console.log(
  `\nPuck.js built-ins per token, locked: ${Object.entries(puckBurst.builtinsPerToken)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}.`,
);
console.log(
  `Counter: one block reservation per ${n(COUNTER_BLOCK)} tokens adds ${puck.blockReservation.statements} statements, ${puck.blockReservation.iterations} loop steps (up to ${COUNTER_MARKS} as a file fills) and ${puck.blockReservation.builtins} Storage calls with one 1-byte flash write; provisioning, once: ${n(puck.provision.statements)} statements.`,
);

// 4. The model's inputs.
const check = checkAgainstFacts();
const modelFigures: [string, ModelFigure][] = [
  ...Object.entries(FACTS),
  ...Object.entries(ASSUMED),
  ['rxWindow', RX_WINDOW],
  [
    'eventCharge',
    {
      value: round(eventCharge(0), 2),
      unit: 'µC per event',
      source: 'derived',
      note: "our frame at 0 dBm: facts' default event + longer frame + TX power",
    },
  ],
  [
    'connectableCharge',
    {
      value: round(connectableCharge(), 2),
      unit: 'µC per event',
      source: 'derived',
      note: "facts' connectable − non-connectable at 375 ms",
    },
  ],
  [
    'perToken',
    {
      value: steps(puckBurst),
      unit: 'steps per token',
      source: 'measured',
      note: 'statements + loop steps + calls in the emulation, locked with bursts (bench/firmware/work.ts)',
    },
  ],
];
console.log('\n## Figures the model uses\n');
console.log(
  table(
    ['figure', 'value', 'unit', 'source', 'note'],
    modelFigures.map(([k, f]) => [k, f.value, f.unit, f.source, f.note]),
  ),
);
console.log(
  `\nCheck against the facts figure not used for fitting: the default packet at 2,000 ms → ${round(check.at2000)} µA (facts: under ${check.limit} µA) — ${check.ok ? 'consistent' : 'INCONSISTENT'}.`,
);

// 5. The schedules: each as the firmware is provisioned for it, its current, and its reception.
type Idea = 'today' | '(a)' | '(b)' | '(c)' | "(b')";
interface Candidate {
  readonly idea: Idea;
  readonly label: string;
  readonly settings: AirSettings;
  readonly schedule: Schedule;
  readonly work: TokenWork;
  /** The relay's expected token period, when it differs from today's (a change outside firmware). */
  readonly relayCadenceS?: number;
  /** What must change outside the firmware for this schedule, if anything. */
  readonly needs?: string;
}
const base = { txPowerDbm: 0, cadenceS: 60 };
const burstSchedule = (burst: number, cadenceS: number, txPowerDbm = 0): Schedule => ({
  txPowerDbm,
  cadenceS,
  connectable: false,
  phases: [
    { seconds: burst, intervalMs: BURST_INTERVAL },
    { seconds: cadenceS - burst, intervalMs: REST_INTERVAL },
  ],
});
const candidates: Candidate[] = [
  {
    idea: 'today',
    label: "375 ms continuous, connectable (today's firmware)",
    settings: { interval: 375, burst: 0, cadence: 60, lock: false },
    schedule: continuous(375, { ...base, connectable: true }),
    work: puck,
  },
  {
    idea: '(a)',
    label: '375 ms continuous, non-connectable after lock',
    settings: { interval: 375, burst: 0, cadence: 60, lock: true },
    schedule: continuous(375, { ...base, connectable: false }),
    work: puck,
  },
  ...INTERVALS.map((i): Candidate => ({
    idea: '(c)',
    label: `${i} ms continuous, non-connectable`,
    settings: { interval: i, burst: 0, cadence: 60, lock: true },
    schedule: continuous(i, { ...base, connectable: false }),
    work: puck,
  })),
  ...BURSTS.map((b): Candidate => ({
    idea: '(b)',
    label: `${BURST_INTERVAL} ms for ${b} s of each minute, then ${REST_INTERVAL} ms`,
    settings: { interval: 375, burst: b, cadence: 60, lock: true },
    schedule: burstSchedule(b, 60),
    work: puckBurst,
  })),
  {
    idea: "(b')",
    label: `a token every 2 min: ${BURST_INTERVAL} ms for 14 s, then ${REST_INTERVAL} ms`,
    settings: { interval: 375, burst: 14, cadence: 120, lock: true },
    schedule: burstSchedule(14, 120),
    work: puckBurst,
    relayCadenceS: 120,
    needs:
      'relay beaconCadenceMs 120 s; app backend windowSeconds and maxAgeSeconds ≥ ~480 s (a token up to 134 s old at a 330-s upload)',
  },
  {
    idea: "(b')",
    label: 'a token every 2 min: 750 ms continuous',
    settings: { interval: 750, burst: 0, cadence: 120, lock: true },
    schedule: continuous(750, { txPowerDbm: 0, cadenceS: 120, connectable: false }),
    work: puck,
    relayCadenceS: 120,
    needs:
      'relay beaconCadenceMs 120 s; app backend windowSeconds and maxAgeSeconds ≥ ~510 s (a token up to 120 s old at a 330-s upload)',
  },
];

console.log(
  `\n## Reception (measured here: the relay's simulation of the compiled firmware, ${SEEDS} seeds × 1 h per mode; 10 % loss; advertising restarts at every NRF.setAdvertising, as on Espruino)\n`,
);
const todayRelayModel = await receptionFor(candidates[0]?.settings as AirSettings, 'relay');
const rows: { c: Candidate; rx: ReceptionSummary; e: EnergyBreakdown }[] = [];
for (const c of candidates) {
  const rx = await receptionFor(c.settings, 'espruino', c.relayCadenceS ?? c.settings.cadence);
  rows.push({ c, rx, e: energy(c.schedule, c.work) });
}
const modeNames = MODES.map((m) => (m.required ? m.name : `${m.name} (not required)`));
const holdsText = (r: ReceptionSummary) =>
  r.band.holdsWithin === null
    ? 'fails at nominal'
    : r.band.holdsWithin === 0
      ? 'nominal only'
      : `±${round(r.band.holdsWithin * 100)} %${r.band.holdsWithin >= BAND ? ' (all explored)' : ''}`;
const rxRows = [
  { label: "375 ms continuous (today), phone-relay's SimulatedBleSource", rx: todayRelayModel },
  ...rows.map((r) => ({ label: r.c.label, rx: r.rx })),
].filter((r, i, all) => all.findIndex((o) => o.rx === r.rx) === i);
console.log(
  table(
    ['schedule', ...modeNames, 'holds with scan timing off by', 'random timing ±3 %', 'reliable'],
    rxRows.map(({ label, rx }) => [
      label,
      ...rx.modes.map(
        (m) =>
          `${m.meanHeard}/${m.emitted} (min ${m.minHeard}, gap ${m.longestSilenceS} s${m.falseWarnings ? `, ${m.falseWarnings} false warnings` : ''})`,
      ),
      holdsText(rx),
      rx.random.runs ? `${rx.random.failed} of ${rx.random.runs} runs fail` : '—',
      rx.reliable ? 'yes' : 'no',
    ]),
  ),
);
console.log(
  `\nEach cell: tokens heard per hour (mean over seeds), the fewest in one run, the longest time without a new token, and silences past the relay's local warning (2.5 token periods, a false "not heard" shown to the person). Reliable: in every required mode — the relay model's three Android modes (those of the relay test) and Android's current low-power and balanced parameters (AOSP ScanManager) — every run hears ≥ ${MIN_SHARE * 100} % of the hour's tokens with no false warning, at nominal timing, with the phone's scan period and window off by up to ±${REQUIRED_BAND * 100} % (explored to ±${BAND * 100} % in steps of ${BAND_STEP * 100} %), and in ${RANDOM_RUNS} more runs per duty-cycled mode at random timing within ±${REQUIRED_BAND * 100} %. The schedule "(a)" is today's on the air: connectability does not change what a scanner hears. The relay's own SimulatedBleSource carries the rotation and timing on across NRF.setAdvertising, so it starts each burst up to one rest interval late: it is shown for today's schedule only.`,
);
for (const { label, rx } of rxRows)
  if (rx.band.failing.length)
    console.log(
      `  ${label}, nearest failures: ${rx.band.failing
        .slice(0, 3)
        .map(
          (f) =>
            `${f.mode} ×${f.scale.toFixed(3)}: ${f.heard}/${rx.modes[0]?.emitted ?? '?'}, ${f.falseWarnings} false warnings`,
        )
        .join('; ')}${rx.band.failing.length > 3 ? `; ${rx.band.failing.length - 3} more` : ''}`,
    );

// 6. Current and life of each schedule.
const perMinute = (s: Schedule) => (eventsPerToken(s) * 60) / s.cadenceS;
console.log(
  '\n## Schedules: current (model) and reception (simulated), 0 dBm, CR2032 (220 mAh × 0.85)\n',
);
console.log(
  table(
    [
      'idea',
      'schedule',
      'events/min',
      'advertising µA',
      'connectable µA',
      'JS µA',
      'total µA',
      'months',
      'reliable',
      'needs outside the firmware',
    ],
    rows.map(({ c, rx, e }) => [
      c.idea,
      c.label,
      round(perMinute(c.schedule)),
      round(e.advertising + e.rotation, 2),
      round(e.connectable, 2),
      round(e.tokenWork, 2),
      round(e.total, 1),
      round(e.months, 1),
      rx.reliable ? 'yes' : 'no',
      c.needs ?? '—',
    ]),
  ),
);

// 7. The choice: the longest-lasting reliable schedule the firmware runs on its own, at 0 dBm.
const today = rows[0] as (typeof rows)[number];
const eligible = rows.filter((r) => r.rx.reliable && !r.c.needs);
const chosen = [...eligible].sort((a, b) => b.e.months - a.e.months)[0] ?? today;
const defaultsMatch =
  chosen.c.settings.burst === cfg.burst &&
  (cfg.burst > 0 || chosen.c.settings.interval === cfg.interval);
console.log(
  `\n## Choice\n\n**${chosen.c.label}**: ${round(chosen.e.total, 1)} µA, **${round(chosen.e.months, 1)} months** (today's schedule in this run: ${round(today.e.total, 1)} µA, ${round(today.e.months, 1)} months). ${defaultsMatch ? 'It is the firmware default.' : `WARNING: the firmware default (burst ${cfg.burst} s, interval ${cfg.interval} ms) is not this schedule.`}`,
);

const tx = TX_POWERS.map((p) => {
  const s = { ...chosen.c.schedule, txPowerDbm: p };
  const e = energy(s, chosen.c.work);
  return {
    dBm: p,
    totalUa: e.total,
    months: e.months,
    // Range against 0 dBm: free space (path-loss exponent 2) and indoors through walls (~3), assumed.
    rangeFreeSpace: 10 ** (p / 20),
    rangeIndoor: 10 ** (p / 30),
  };
});
console.log(`\n### (d) The chosen schedule by TX power (model; range falls with power)\n`);
console.log(
  table(
    [
      'TX power',
      'radio TX mA (assumed)',
      'total µA',
      'months',
      'range vs 0 dBm, free space',
      'range vs 0 dBm, indoors (exponent 3, assumed)',
    ],
    tx.map((t) => [
      `${t.dBm} dBm`,
      TX_CURRENT_MA[t.dBm] as number,
      round(t.totalUa, 1),
      round(t.months, 1),
      `${round(t.rangeFreeSpace * 100, 0)} %`,
      `${round(t.rangeIndoor * 100, 0)} %`,
    ]),
  ),
);

// 8. Why 12 months is or is not reached: the budget against what reception needs.
const usableUaMonths = (FACTS.cr2032.value * ASSUMED.usableFraction.value * 1000) / HOURS_PER_MONTH;
const budgetUa = usableUaMonths / AIM_MONTHS;
const perEvent = chosen.e.eventCharge + (ASSUMED.rotationIrq.value * FACTS.javascript.value) / 1000;
const fixedUa = chosen.e.sleep + chosen.e.selfDischarge + chosen.e.counterFlash;
const eventsAllowed = ((budgetUa - fixedUa - chosen.e.tokenWork) / perEvent) * 60;
const eventsAllowedNoJs = ((budgetUa - fixedUa) / perEvent) * 60;
const fewestReliable = Math.min(...eligible.map((r) => perMinute(r.c.schedule)));
const txFor12 = tx.filter((t) => t.months >= AIM_MONTHS)[0];
console.log(`\n## ≥ ${AIM_MONTHS} months?\n`);
console.log(
  `Budget: ${round(budgetUa, 2)} µA on average for ${AIM_MONTHS} months. Fixed: sleep ${FACTS.sleep.value} µA (facts) + self-discharge ${round(chosen.e.selfDischarge, 2)} µA; JavaScript ${round(chosen.e.tokenWork, 2)} µA. Each advertising event at 0 dBm costs ${round(perEvent, 2)} µC, so the budget allows ${round(eventsAllowed)} events a minute (${round(eventsAllowedNoJs)} if the JavaScript cost nothing). The fewest events a minute of any reliable schedule here: ${round(fewestReliable)} (${chosen.c.label}); advertising is ${round(((chosen.e.advertising + chosen.e.rotation) / chosen.e.total) * 100, 0)} % of its current.`,
);
console.log(
  `Why not fewer: a 10 %-duty scan (512 of 5,120 ms, 140 of 1,400 ms) with 10 % loss hears ~9 % of the events, and a token needs all four fragments: about three heard copies of each (a fragment then goes missing ~0.1 % of the time) take 4 × 3 / 0.09 ≈ 133 events per token. The burst at ${BURST_INTERVAL} ms (the SoftDevice's fastest non-connectable interval) comes closest: every 512-ms window holds ~5 consecutive frames, and 1,400 / 105 ms advances the rotation by 1.33 frames per AOSP low-power window.`,
);
console.log(
  txFor12
    ? `At ${txFor12.dBm} dBm (provisioning --tx ${txFor12.dBm}) the chosen schedule lasts ${round(txFor12.months, 1)} months, with ${round(txFor12.rangeIndoor * 100, 0)} % of the indoor range (assumed path-loss exponent 3; ${round(txFor12.rangeFreeSpace * 100, 0)} % in free space).`
    : `No TX power brings the chosen schedule to ${AIM_MONTHS} months.`,
);
console.log(
  "\nNot modelled: distance and walls (TX power sets range, which the officer checks room by room), iOS scanning, phones whose scans pause for longer than the model's periodic windows (a burst schedule leaves each token on the air at 100 ms for only part of its minute); device currents are the facts file's Puck.js figures, not measured here.",
);
console.log(`\n(${Math.round((Date.now() - started) / 1000)} s)`);

const figures: Figure[] = [
  {
    measure: 'Puck.js bundle, bytes flashed',
    value: puckBytes,
    unit: 'bytes',
    baseline: { label: '8 KB aim', value: AIM_BYTES, unit: 'bytes' },
    target: { text: `≤ ${n(AIM_BYTES)} bytes (8 KB)`, met: puckBytes <= AIM_BYTES },
  },
  {
    measure: `battery life on a CR2032, chosen schedule (${chosen.c.label}, 0 dBm; model)`,
    value: round(chosen.e.months, 1),
    unit: 'months',
    baseline: {
      label:
        "today's advertising schedule (375 ms continuous, connectable, 0 dBm) with this token code, same run",
      value: round(today.e.months, 1),
      unit: 'months',
    },
    target: { text: `≥ ${AIM_MONTHS} months`, met: chosen.e.months >= AIM_MONTHS },
  },
];
writeReport('firmware', figures, {
  note: 'sizes and work counts measured here; currents from the facts file or assumed (see modelFigures); reception simulated here; emulator timing is not device timing',
  sizes,
  defaults,
  work: { ...work, PUCKJS_locked_bursts: puckBurst },
  modelFigures: Object.fromEntries(modelFigures),
  modelCheck: check,
  reception: {
    seeds: SEEDS,
    loss: 0.1,
    timingBand: BAND,
    timingStep: BAND_STEP,
    requiredBand: REQUIRED_BAND,
    randomRuns: RANDOM_RUNS,
    minShare: MIN_SHARE,
    todayWithRelaySource: todayRelayModel,
  },
  schedules: rows.map(({ c, rx, e }) => ({
    idea: c.idea,
    label: c.label,
    settings: c.settings,
    schedule: c.schedule,
    eventsPerMinute: perMinute(c.schedule),
    energy: e,
    reception: rx,
    needs: c.needs ?? null,
  })),
  chosen: { label: chosen.c.label, settings: chosen.c.settings, months: chosen.e.months },
  txPower: tx,
  aim: {
    months: AIM_MONTHS,
    budgetUa,
    eventsPerMinuteAllowed: eventsAllowed,
    eventsPerMinuteAllowedWithoutJs: eventsAllowedNoJs,
    fewestReliableEventsPerMinute: fewestReliable,
  },
});
