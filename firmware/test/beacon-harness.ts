import { readFileSync } from 'node:fs';
import { hexToBytes } from '../../protocol/bytes.js';
import { TokenReassembler } from '../../protocol/frames/reassembler.js';
import { nodeSuite } from '../../protocol/token/keys-node.js';
import { type TokenResult, openToken } from '../../protocol/token/open.js';
import { EspruinoDevice, VirtualClock } from '../emulator/index.js';
import { type BoardId, bundlePath, readBoard } from '../scripts/boards.js';

/** 2026-11-23T00:00:00Z, in ms: world time for the tests. */
export const WORLD_START_MS = 1_795_392_000_000;

export interface Beacon {
  clock: VirtualClock;
  device: EspruinoDevice;
  /** Words E.hwRand() returns before falling back to random ones. */
  rand: number[];
}

/** A board with the built bundle installed, as `firmware:flash` leaves it (code in .bootrst). */
export function newBeacon(
  board: BoardId = 'PUCKJS',
  options: { battery?: number | null } = {},
): Beacon {
  const { smartbeacon } = readBoard(board);
  const clock = new VirtualClock(WORLD_START_MS);
  const rand: number[] = [];
  const device = new EspruinoDevice({
    clock,
    crypto: { aes: smartbeacon.aes, sha256: smartbeacon.sha256 },
    battery: options.battery === undefined ? (board === 'PUCKJS' ? 87 : null) : options.battery,
    hwRand: () => (rand.length ? (rand.shift() as number) : (Math.random() * 2 ** 32) | 0),
  });
  device.install(readFileSync(bundlePath(board), 'utf8'));
  return { clock, device, rand };
}

/** The "SB:" answers a console line printed. */
export function answers(lines: string[] | null): Record<string, unknown>[] {
  return (lines ?? [])
    .filter((l) => l.startsWith('SB:'))
    .map((l) => JSON.parse(l.slice(3)) as Record<string, unknown>);
}

export const KEY = '4a'.repeat(32);

export function provision(
  b: Beacon,
  request: Record<string, unknown> = {},
  via: 'serial' | 'ble' = 'ble',
) {
  const body = {
    id: 'SB-0001',
    key: KEY,
    time: Math.floor(b.clock.now() / 1000),
    tx: -4,
    cadence: 60,
    ...request,
  };
  return answers(b.device.console(`SB.provision(${JSON.stringify(body)})`, via))[0];
}

/** Reassemble the token currently on the air from the advertisements a scanner would hear. */
export function tokenOnAir(b: Beacon): Uint8Array | null {
  const r = new TokenReassembler();
  let token: Uint8Array | null = null;
  for (const packet of b.device.radio.advertisements)
    token = r.push('beacon', packet, b.clock.now()) ?? token;
  return token;
}

/** Open a token as the app backend would, judged at the world time of `b`. */
export function verify(
  b: Beacon,
  token: Uint8Array,
  lastCounter?: number,
  keyHex = KEY,
): TokenResult {
  return openToken(token, nodeSuite.importKeys(hexToBytes(keyHex)), {
    receivedAt: Math.floor(b.clock.now() / 1000),
    maxAgeSeconds: 420,
    maxSkewSeconds: 60,
    lastCounter,
  });
}

/** Split a 16-byte IV into the four words E.hwRand() would have returned. */
export function ivWords(ivHex: string): number[] {
  const iv = hexToBytes(ivHex);
  return [0, 4, 8, 12].map((i) => new DataView(iv.buffer, iv.byteOffset + i, 4).getInt32(0));
}
