/** Shared parts of the relay tests: a world of emulated beacons on one clock, servers, statistics. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { type Server, createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, type Socket, createServer as createTcpServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Database, openDatabase } from '../../backend-kit/db.js';
import {
  type Harness,
  PoliceStub,
  TestBeacon,
  police,
  register,
  startBackend,
} from '../../app-backend/test/harness.js';
import type { VirtualClock } from '../../firmware/emulator/index.js';
import { type Beacon, newBeacon, provision } from '../../firmware/test/beacon-harness.js';
import { bytesToHex } from '../../protocol/bytes.js';
import { bundlePath } from '../../firmware/scripts/boards.js';
import { buildBoard } from '../../firmware/scripts/build.js';
import { PRESENCE_RESPONSE } from '../../protocol/presence.js';
import { ManualClock } from '../../test/support/clock.js';
import { testPki } from '../../test/support/pki.js';
import type { PhoneRelay } from '../src/relay.js';
import { SimulatedBleSource } from '../src/sources/simulated.js';
import type { AdvertisementHandler, BeaconSource } from '../src/sources/source.js';

export const MIN = 60_000;

let built: Promise<unknown> | undefined;
/** The compiled Puck.js bundle the emulated beacons run: built once per test process. */
export function ensureFirmware(): Promise<unknown> {
  built ??= buildBoard('PUCKJS').catch((err: unknown) => {
    // Another suite may be writing the same file; an existing bundle is as good.
    if (existsSync(bundlePath('PUCKJS'))) return undefined;
    throw err;
  });
  return built;
}

/** Deterministic uniform [0, 1) (mulberry32): runs are repeatable. */
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

/** Returns `first` values in order, then a seeded sequence. */
export function scriptedRandom(first: number[], seed = 1): () => number {
  const rest = seededRandom(seed);
  const queue = [...first];
  return () => (queue.length ? (queue.shift() as number) : rest());
}

/** The backend's clock, reading the world's VirtualClock: one time for beacons, relay and server. */
export function linkedClock(world: VirtualClock): ManualClock {
  const clock = new ManualClock(world.now());
  Object.defineProperty(clock, 'ms', { get: () => world.now(), set: () => undefined });
  return clock;
}

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `relay-${label}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Move the world on in steps; after each, let any upload the relay started finish (real HTTPS
 * on loopback) and let the app backend validate what it queued.
 */
export async function runFor(
  world: VirtualClock,
  ms: number,
  relays: readonly PhoneRelay[],
  h?: Harness,
  stepMs = 5_000,
): Promise<void> {
  const end = world.now() + ms;
  while (world.now() < end) {
    world.advance(Math.min(stepMs, end - world.now()));
    for (const r of relays) await r.idle();
    if (h) await h.backend.flush();
  }
}

/** A TCP forwarder in front of a server, so a test can take "the network" down and up again. */
export class Forwarder {
  port = 0;
  #server: ReturnType<typeof createTcpServer> | undefined;
  readonly #sockets = new Set<Socket>();

  constructor(private readonly targetPort: number) {}

  async up(): Promise<void> {
    const server = createTcpServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      this.#sockets.add(client).add(upstream);
      const drop = () => (client.destroy(), upstream.destroy());
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', () => resolve()));
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  async down(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

export interface CapturedRequest {
  /** The test's clock when the request arrived. */
  readonly at: number;
  readonly method: string;
  readonly path: string;
  /** Header names and values as sent, lower-cased names, sorted. */
  readonly headers: string;
  readonly bodyLength: number;
  readonly body: Buffer;
}

/**
 * An HTTPS server with the app backend's certificate that records every request and answers as
 * the app backend does (202, 64 bytes): what a network observer would see, without the backend.
 */
export class CaptureServer {
  readonly requests: CapturedRequest[] = [];
  port = 0;
  #server: Server | undefined;

  constructor(private readonly now: () => number) {}

  async up(): Promise<void> {
    const pki = await testPki();
    const server = createHttpsServer(
      { cert: pki.appBackend.cert, key: pki.appBackend.key },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          const headers: string[] = [];
          for (let i = 0; i < req.rawHeaders.length; i += 2)
            headers.push(`${req.rawHeaders[i]?.toLowerCase()}: ${req.rawHeaders[i + 1]}`);
          this.requests.push({
            at: this.now(),
            method: req.method ?? '',
            path: req.url ?? '',
            headers: headers.sort().join('\n'),
            bodyLength: body.length,
            body,
          });
          res.writeHead(202, {
            'content-type': 'application/octet-stream',
            'content-length': PRESENCE_RESPONSE.length,
          });
          res.end(PRESENCE_RESPONSE);
        });
      },
    );
    // Back on the same port after down(): clients keep their configured URL.
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', () => resolve()));
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  async down(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s)
      await new Promise<void>((resolve) => (s.close(() => resolve()), s.closeAllConnections()));
  }
}

/** A neighbour's device flooding the relay, on the world's clock. */
export interface FloodOptions {
  readonly clock: VirtualClock;
  /** Packets of the real beacon on the air now (for replays and mutations). */
  readonly onAir: () => readonly Uint8Array[];
  readonly random: () => number;
  /** One burst every tickMs. */
  readonly tickMs: number;
  /** Frames per burst from the neighbour's own address. */
  readonly own: number;
  /** Frames per burst, each from a fresh random address. */
  readonly fresh: number;
  /** Frames per burst from a pool of addresses that repeat. */
  readonly pooled: number;
  readonly poolSize: number;
  /** Shares of replayed, mutated, forged and garbage frames (default a quarter each). */
  readonly mix?: { replayed: number; mutated: number; forged: number; garbage: number };
}

export class FloodSource implements BeaconSource {
  static readonly OWN = 'de:ad:be:ef:00:01';
  readonly counts = { frames: 0, replayed: 0, mutated: 0, forged: 0, garbage: 0 };
  #timer: number | undefined;
  readonly #pool: string[];

  constructor(private readonly o: FloodOptions) {
    this.#pool = Array.from(
      { length: o.poolSize },
      (_, i) =>
        `c0:ff:ee:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
    );
  }

  start(on: AdvertisementHandler): void {
    const tick = () => {
      const now = this.o.clock.now();
      const senders: (() => string)[] = [];
      for (let i = 0; i < this.o.own; i++) senders.push(() => FloodSource.OWN);
      for (let i = 0; i < this.o.fresh; i++) senders.push(() => this.#randomAddress());
      for (let i = 0; i < this.o.pooled; i++)
        senders.push(() => this.#pool[Math.floor(this.o.random() * this.#pool.length)] as string);
      // In random order, as radio frames arrive: no kind of sender always comes first.
      for (let i = senders.length - 1; i > 0; i--) {
        const j = Math.floor(this.o.random() * (i + 1));
        [senders[i], senders[j]] = [senders[j] as () => string, senders[i] as () => string];
      }
      for (const sender of senders) on(sender(), this.#frame(), now);
      this.#timer = this.o.clock.schedule(this.o.tickMs, tick);
    };
    this.#timer = this.o.clock.schedule(this.o.tickMs, tick);
  }

  stop(): void {
    if (this.#timer !== undefined) this.o.clock.cancel(this.#timer);
    this.#timer = undefined;
  }

  #frame(): Uint8Array {
    this.counts.frames++;
    const mix = this.o.mix ?? { replayed: 1, mutated: 1, forged: 1, garbage: 1 };
    const total = mix.replayed + mix.mutated + mix.forged + mix.garbage;
    const r = this.o.random() * total;
    const onAir = this.o.onAir();
    const real = onAir[Math.floor(this.o.random() * onAir.length)];
    if (r < mix.replayed && real) {
      this.counts.replayed++;
      return Uint8Array.from(real);
    }
    if (r < mix.replayed + mix.mutated && real) {
      // One byte of the chunk changed: header intact, so it gets as far as the reassembler.
      this.counts.mutated++;
      const m = Uint8Array.from(real);
      const at = 11 + Math.floor(this.o.random() * 17);
      m[at] = ((m[at] as number) ^ (1 + Math.floor(this.o.random() * 255))) & 0xff;
      return m;
    }
    if (r < mix.replayed + mix.mutated + mix.forged && real) {
      // A well-formed frame of a token that does not exist: random token ID and chunk.
      this.counts.forged++;
      const f = Uint8Array.from(real);
      const index = Math.floor(this.o.random() * 4);
      f[8] = 0x10 | index;
      for (let i = 9; i < f.length; i++) f[i] = Math.floor(this.o.random() * 256);
      if (index === 0) {
        // Frame 0 starts with the IV, whose first two bytes are the token ID.
        f[11] = f[9] as number;
        f[12] = f[10] as number;
      }
      return f;
    }
    this.counts.garbage++;
    const g = new Uint8Array(1 + Math.floor(this.o.random() * 31));
    for (let i = 0; i < g.length; i++) g[i] = Math.floor(this.o.random() * 256);
    return g;
  }

  #randomAddress(): string {
    const parts: string[] = [];
    for (let i = 0; i < 6; i++)
      parts.push(
        Math.floor(this.o.random() * 256)
          .toString(16)
          .padStart(2, '0'),
      );
    return parts.join(':');
  }
}

/** An emulated beacon running the compiled bundle, registered and enabled at a real app backend on the same clock. */
export async function monitoredBeacon(
  db: Database,
  stub: PoliceStub,
  provisioning: Record<string, unknown> = {},
): Promise<{ beacon: Beacon; world: VirtualClock; person: TestBeacon; h: Harness }> {
  const beacon = newBeacon();
  const person = new TestBeacon();
  const h = await startBackend(db, stub, { clock: linkedClock(beacon.clock) });
  const answer = provision(beacon, {
    id: person.beaconId,
    key: bytesToHex(person.skBeacon),
    ...provisioning,
  });
  if (answer?.ok !== true) throw new Error(`provisioning failed: ${JSON.stringify(answer)}`);
  const r = await register(h, person);
  if (r.status !== 201) throw new Error(`register failed: ${r.status}`);
  const e = await police(h, `/internal/v1/beacons/${person.beaconId}/enable`);
  if (e.status !== 200) throw new Error(`enable failed: ${e.status}`);
  return { beacon, world: beacon.clock, person, h };
}

export const BEACON_ADDRESS = 'c8:4b:1a:00:00:01';

/** The scanner over one emulated beacon, as a phone next to it hears it. */
export function hearing(beacon: Beacon, random: () => number, loss = 0.3): SimulatedBleSource {
  return new SimulatedBleSource({
    clock: beacon.clock,
    beacons: [{ device: beacon.device, address: BEACON_ADDRESS }],
    loss,
    random,
  });
}

/** What every relay test against a real app backend needs, fresh for each test. */
export interface RelayWorld {
  db: Database;
  stub: PoliceStub;
  dir: string;
  /** The app backend, once a test has started one; closed after the test. */
  h: Harness | undefined;
}

/**
 * Install the hooks that build the compiled firmware once, then give each test an in-memory
 * database, a police stand-in and a state folder, and tear them down (after `cleanup`) when it ends.
 */
export function useRelayWorld(
  label: string,
  cleanup: () => Promise<void> = async () => undefined,
): RelayWorld {
  const world = { h: undefined } as RelayWorld;
  before(ensureFirmware);
  beforeEach(async () => {
    world.db = await openDatabase({ dataDir: 'memory://' });
    world.stub = new PoliceStub();
    await world.stub.up();
    world.dir = tempDir(label);
  });
  afterEach(async () => {
    await cleanup();
    await world.h?.backend.close();
    world.h = undefined;
    await world.stub.down();
    await world.db.close();
    removeDir(world.dir);
  });
  return world;
}
