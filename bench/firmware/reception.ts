/**
 * Tokens a phone assembles in an hour, by the relay's own reception model: the compiled Puck.js
 * bundle in the emulation, provisioned (and locked) as a schedule needs, periodic scan windows,
 * 0–10 ms advertising delay and 10 % loss (air.ts, or phone-relay's SimulatedBleSource) feeding
 * the real PhoneRelay — the measurement of the phone-relay test "reception over one hour", run for
 * other schedules and several seeds.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EspruinoDevice, VirtualClock } from '../../firmware/emulator/index.js';
import { bundlePath } from '../../firmware/scripts/boards.js';
import { PhoneRelay } from '../../phone-relay/src/relay.js';
import { virtualScheduler } from '../../phone-relay/src/scheduler.js';
import { SimulatedBleSource } from '../../phone-relay/src/sources/simulated.js';
import type { BeaconSource } from '../../phone-relay/src/sources/source.js';
import { EspruinoAir } from './air.js';
import { LOCAL_SILENCE_MS } from '../../phone-relay/src/status.js';

export interface ScanMode {
  readonly name: string;
  /** Undefined: scanning continuously. */
  readonly scan?: { readonly windowMs: number; readonly intervalMs: number };
}

/** Android's three scan modes (ScanSettings), as phone-relay's simulation models them. */
export const ANDROID_SCAN_MODES: readonly ScanMode[] = [
  { name: 'low latency (continuous)' },
  { name: 'balanced (1,024 of 4,096 ms)', scan: { windowMs: 1024, intervalMs: 4096 } },
  { name: 'low power (512 of 5,120 ms)', scan: { windowMs: 512, intervalMs: 5120 } },
];

/** How the beacon is provisioned for a measurement (firmware/README.md "Provisioning"). */
export interface AirSettings {
  /** Continuous advertising interval while connectable (and after lock when burst is 0), ms. */
  readonly interval: number;
  /** After lock: s of each token period in a burst at 100 ms, then 10,240 ms; 0 = continuous. */
  readonly burst: number;
  /** s between tokens. */
  readonly cadence: number;
  /** SB.lock() after provisioning: the locked schedule is what runs for months. */
  readonly lock: boolean;
}

/**
 * Whose model of the radio: "espruino" restarts advertising at every NRF.setAdvertising (air.ts),
 * "relay" is phone-relay's SimulatedBleSource, which carries the rotation and timing on.
 */
export type AirModel = 'espruino' | 'relay';

export interface HourOfReception {
  readonly settings: AirSettings;
  readonly model: AirModel;
  readonly mode: string;
  readonly seed: number;
  readonly emitted: number;
  readonly heard: number;
  /** Longest time without a new token, including from the start and up to the end (ms). */
  readonly longestSilenceMs: number;
  /** Silences past the relay's local warning (2.5 cadences): a false "not heard" shown. */
  readonly falseWarnings: number;
}

/** Deterministic uniform [0, 1) (mulberry32), as phone-relay's tests use, so runs repeat. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const HOUR_MS = 3_600_000;
/** The relay saves its buffer on every token: in memory, hundreds of simulated hours run in minutes. */
const STATE_ROOT = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const STEP_MS = 5_000;

/**
 * One hour of a beacon provisioned with `settings` heard by one phone in `mode` (plus 30 s to hear
 * the last token). The relay expects a token every `relayCadenceS` (its beaconCadenceMs).
 */
export async function hourOfReception(
  settings: AirSettings,
  mode: ScanMode,
  seed: number,
  model: AirModel = 'espruino',
  relayCadenceS = settings.cadence,
): Promise<HourOfReception> {
  const clock = new VirtualClock(1_795_392_000_000);
  const device = new EspruinoDevice({ clock, crypto: { aes: true, sha256: true }, battery: 87 });
  device.install(readFileSync(bundlePath('PUCKJS'), 'utf8'));
  const dir = mkdtempSync(join(STATE_ROOT, 'bench-rx-'));
  const random = seededRandom(seed);
  const heardAt: number[] = [];
  let counted = 0;
  const address = 'c8:4b:1a:00:00:01';
  const air: BeaconSource =
    model === 'espruino'
      ? new EspruinoAir({
          clock,
          device,
          address,
          ...(mode.scan ? { scan: mode.scan } : {}),
          loss: 0.1,
          random,
        })
      : new SimulatedBleSource({
          clock,
          beacons: [{ device, address }],
          ...(mode.scan ? { scan: mode.scan } : {}),
          loss: 0.1,
          random,
        });
  // Between the air and the relay: note the moment each advertisement completes a new token.
  const source: BeaconSource = {
    start: (on) =>
      air.start((from, data, nowMs) => {
        on(from, data, nowMs);
        const total = relay.status().tokens.new;
        for (; counted < total; counted++) heardAt.push(nowMs);
      }),
    stop: () => air.stop(),
  };
  const relay: PhoneRelay = new PhoneRelay({
    stateDir: dir,
    mode: { kind: 'quarantined', skTPast: new Uint8Array(32).fill(9) },
    transport: { send: () => Promise.reject(new Error('offline')) },
    source,
    scheduler: virtualScheduler(clock),
    random,
    intervalMs: 24 * HOUR_MS, // no uploads in this measurement
    beaconCadenceMs: relayCadenceS * 1000,
  });
  const start = clock.now();
  try {
    await relay.start();
    const request = {
      id: 'SB-RX',
      key: '4a'.repeat(32),
      time: Math.floor(clock.now() / 1000),
      tx: 0,
      cadence: settings.cadence,
      interval: settings.interval,
      burst: settings.burst,
    };
    const answer = device.console(`SB.provision(${JSON.stringify(request)})`, 'serial') ?? [];
    if (!answer.some((l) => l.startsWith('SB:{"ok":true')))
      throw new Error(`provisioning failed: ${answer.join(' ')}`);
    if (settings.lock) {
      const locked = device.console('SB.lock()', 'serial') ?? [];
      if (!locked.some((l) => l.startsWith('SB:{"ok":true')))
        throw new Error(`lock failed: ${locked.join(' ')}`);
    }
    const end = start + HOUR_MS + 30_000;
    while (clock.now() < end) {
      clock.advance(Math.min(STEP_MS, end - clock.now()));
      await relay.idle();
    }
  } finally {
    relay.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  if (device.errors.length) throw new Error(`firmware errors: ${device.errors.join('; ')}`);
  if (heardAt.length !== relay.status().tokens.new) throw new Error('token count mismatch');
  // Silences are measured against the beacon's own hour: from the first token to the last.
  const marks = [start, ...heardAt, start + HOUR_MS];
  let longest = 0;
  let falseWarnings = 0;
  const silenceLimit = (LOCAL_SILENCE_MS / 60_000) * relayCadenceS * 1000;
  for (let i = 1; i < marks.length; i++) {
    const gap = (marks[i] as number) - (marks[i - 1] as number);
    longest = Math.max(longest, gap);
    if (gap > silenceLimit) falseWarnings++;
  }
  return {
    settings,
    model,
    mode: mode.name,
    seed,
    emitted: Math.floor(HOUR_MS / (settings.cadence * 1000)) + 1,
    heard: heardAt.length,
    longestSilenceMs: longest,
    falseWarnings,
  };
}
