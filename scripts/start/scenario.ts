import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { bytesToHex } from '../../protocol/bytes.js';
import type { EspruinoDevice } from '../../firmware/emulator/index.js';
import { EmulatedConsole } from '../../firmware/provisioning/connection.js';
import type { PoliceClient } from '../../firmware/provisioning/police-client.js';
import { provisionBeacon } from '../../firmware/provisioning/provision.js';
import { main as haCli } from '../../health-authority-cli/src/cli.js';
import { PhoneRelay } from '../../phone-relay/src/relay.js';
import { virtualScheduler } from '../../phone-relay/src/scheduler.js';
import { SimulatedBleSource } from '../../phone-relay/src/sources/simulated.js';
import { httpsTransport } from '../../phone-relay/src/transport.js';
import type { LocalSecrets } from './local-secrets.js';
import type { StartOptions } from './options.js';
import type { RealTimeWorld } from './world.js';

const STREETS = [
  'Juniper Close',
  'Harbour Road',
  'Mill Lane',
  'Elm Row',
  'Quarry Hill',
  'Canal Walk',
];

/** One home: its beacon, the person's phone relay, and what has happened there. */
export interface Home {
  readonly index: number;
  readonly address: string;
  readonly caseRef: string;
  readonly device: EspruinoDevice;
  readonly source: SimulatedBleSource;
  beaconId: string | null;
  relay: PhoneRelay | null;
  /** When the person left home (their phone with them), or null. */
  leftAt: number | null;
  /** The first violation alert the police backend showed for this home. */
  alert: { kind: string; state: string; receivedAt: number } | null;
  step: string;
}

export interface Scene {
  readonly homes: Home[];
  readonly appUrl: string;
  readonly policeUrl: string;
}

/** Install a beacon at the door with the officer's real provisioning flow (emulated console). */
export async function installBeacon(
  home: Home,
  world: RealTimeWorld,
  officer: PoliceClient,
  secrets: LocalSecrets,
  o: StartOptions,
  sealedDir: string,
): Promise<string> {
  mkdirSync(sealedDir, { recursive: true, mode: 0o700 });
  const result = await provisionBeacon({
    console: new EmulatedConsole(home.device, (ms) => world.clock.advance(ms)),
    police: officer,
    authorityPublicKey: readFileSync(secrets.authorityPub, 'utf8'),
    address: home.address,
    caseRef: home.caseRef,
    outDir: sealedDir,
    cadenceSeconds: o.cadence,
    enable: true,
    manualChecksConfirmed: true,
    now: () => world.clock.now(),
    progress: (step, state) => {
      if (state === 'start') home.step = step;
    },
  });
  home.beaconId = result.beaconId;
  return result.sealedKeyFile;
}

/** The health authority registers the quarantine with its own CLI, from the sealed key file. */
export async function registerQuarantine(
  sealedKeyFile: string,
  skTPast: Uint8Array,
  secrets: LocalSecrets,
  appUrl: string,
): Promise<void> {
  const out: string[] = [];
  const code = await haCli(
    [
      'register',
      '--server',
      appUrl,
      '--ca',
      secrets.ca,
      '--key',
      secrets.authorityKey,
      '--sealed-key',
      sealedKeyFile,
      '--sk-t-past',
      '-',
      '--t-past',
      String(Math.floor(Date.now() / 86_400_000)),
      '--delete-sealed-key',
      '--json',
    ],
    {
      stdout: (t) => out.push(t),
      stderr: (t) => out.push(t),
      readStdin: async () => bytesToHex(skTPast),
      now: () => Date.now(),
    },
  );
  if (code !== 0) throw new Error(`registration failed (exit ${code}): ${out.join(' ')}`);
}

/** The person's phone: the real relay, hearing its home's beacon through the emulated radio. */
export async function startRelay(
  home: Home,
  world: RealTimeWorld,
  skTPast: Uint8Array,
  secrets: LocalSecrets,
  appUrl: string,
  o: StartOptions,
  stateDir: string,
  log: (line: string) => void,
): Promise<PhoneRelay> {
  rmSync(stateDir, { recursive: true, force: true });
  const relay = new PhoneRelay({
    stateDir,
    mode: { kind: 'quarantined', skTPast },
    transport: httpsTransport({ server: appUrl, ca: readFileSync(secrets.ca, 'utf8') }),
    source: home.source,
    scheduler: virtualScheduler(world.clock),
    intervalMs: o.upload * 1000,
    beaconCadenceMs: o.cadence * 1000,
    log: (line) => log(`home ${home.index + 1}: ${line}`),
  });
  await relay.start();
  home.relay = relay;
  return relay;
}

export function newHome(index: number, world: RealTimeWorld): Home {
  const device = world.newPuck(80 + ((index * 7) % 20));
  const address = `${3 + index * 4} ${STREETS[index % STREETS.length] ?? 'Main Street'}`;
  return {
    index,
    address,
    caseRef: `C-DEMO-${String(index + 1).padStart(3, '0')}`,
    device,
    // Some adverts are lost, as in a real home (walls, the phone in a pocket).
    source: new SimulatedBleSource({
      clock: world.clock,
      beacons: [{ device, address: `c8:4b:1a:00:00:${(index + 1).toString(16).padStart(2, '0')}` }],
      loss: 0.2,
    }),
    beaconId: null,
    relay: null,
    leftAt: null,
    alert: null,
    step: 'waiting',
  };
}

export const newPersonKey = (): Uint8Array => new Uint8Array(randomBytes(32));

export const demoDir = (dataDir: string): string => join(dataDir, 'demo');
