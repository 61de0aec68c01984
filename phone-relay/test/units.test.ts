import assert from 'node:assert/strict';
import fc from 'fast-check';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestBeacon } from '../../app-backend/test/harness.js';
import { newBeacon, provision } from '../../firmware/test/beacon-harness.js';
import { bytesToHex } from '../../protocol/bytes.js';
import { tokenAdvertisements } from '../../protocol/frames/check.js';
import { encodePresenceBody } from '../../protocol/presence.js';
import { ManualClock } from '../../test/support/clock.js';
import { foreignClient, testPki } from '../../test/support/pki.js';
import { BleUnavailableError, RelayError } from '../src/errors.js';
import { FrameGate } from '../src/rate-limit.js';
import { PhoneRelay, STATUS_FILE } from '../src/relay.js';
import { ManualScheduler, virtualScheduler } from '../src/scheduler.js';
import { type NobleLike, type NoblePeripheral, openBleSource } from '../src/sources/ble.js';
import { SimulatedBleSource } from '../src/sources/simulated.js';
import { formatStatus } from '../src/status.js';
import { certificatePins, httpsTransport, parsePin } from '../src/transport.js';
import {
  CaptureServer,
  MIN,
  ensureFirmware,
  removeDir,
  runFor,
  seededRandom,
  tempDir,
} from './support.js';

const T = 1_795_392_000_000;

describe('relay: frame gate (rate limits)', () => {
  it('counts an address from its second frame and holds each address to its bucket', () => {
    const gate = new FrameGate();
    assert.deepEqual(gate.admit('a', T), { ok: false, reason: 'first' });
    let ok = 0;
    for (let i = 0; i < 100; i++) if (gate.admit('a', T).ok) ok++;
    assert.equal(ok, 16, 'the burst, then nothing');
    assert.equal(gate.admit('a', T + 1000).ok, true, 'refilled at 8 per second');
  });

  it('takes new addresses no faster than the newcomer rate, in a table that never grows past its bound', () => {
    const gate = new FrameGate({ maxAddresses: 100 });
    const reasons = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const r = gate.admit(`fresh-${i}`, T);
      const key = r.ok ? 'ok' : r.reason;
      reasons.set(key, (reasons.get(key) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries(reasons), { first: 20, newcomer: 80 });
    for (let t = 0; t < 100_000; t++) gate.admit(`fresh-${t}`, T + t * 10);
    assert.equal(gate.sizes().addresses, 100);
  });

  it('exempts an address that delivered a new token from the global bucket, and keeps it in the table', () => {
    const gate = new FrameGate({ global: { burst: 10, perSecond: 1 }, maxAddresses: 50 });
    gate.admit('beacon', T);
    gate.trust('beacon', T);
    // 40 addresses eat the global bucket.
    for (let i = 0; i < 40; i++) gate.admit(`n${i}`, T);
    for (let i = 0; i < 40; i++) gate.admit(`n${i}`, T);
    assert.deepEqual(gate.admit('n0', T + 1), { ok: false, reason: 'global' });
    assert.equal(gate.admit('beacon', T + 1).ok, true);
    // A flood of new addresses does not push the trusted one out of the table.
    for (let t = 0; t < 10_000; t++) gate.admit(`f${t}`, T + t * 100);
    assert.equal(gate.admit('beacon', T + 1_000_000).ok, true);
  });
});

describe('relay: hearing anything', () => {
  it('never throws, whatever is broadcast, and its tables stay in bound', () => {
    const dir = tempDir('fuzz');
    try {
      const relay = new PhoneRelay({
        stateDir: dir,
        mode: { kind: 'quarantined', skTPast: new Uint8Array(32).fill(2) },
        transport: { send: () => Promise.reject(new Error('unused')) },
        scheduler: new ManualScheduler(new ManualClock(T)),
      });
      const real = tokenAdvertisements(new TestBeacon().token(T));
      const frame = fc.oneof(
        fc.uint8Array({ maxLength: 40 }),
        fc.constantFrom(...real),
        fc
          .tuple(fc.constantFrom(...real), fc.nat(30), fc.integer({ min: 0, max: 255 }))
          .map(([f, at, v]) => {
            const m = Uint8Array.from(f);
            m[at % m.length] = v;
            return m;
          }),
      );
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.string({ maxLength: 20 }), frame, fc.integer({ min: 0, max: 1e7 }))),
          (heard) => {
            for (const [address, data, dt] of heard) relay.hear(address, data, T + dt);
            const m = relay.memory();
            assert.ok(m.addresses <= 1024 + 8 && m.pendingHalfTokens <= 16 * 64);
          },
        ),
        { numRuns: 300 },
      );
      // Not even with what a broken platform binding might hand over.
      relay.hear(undefined as unknown as string, null as unknown as Uint8Array, NaN);
      relay.hear('x', 'not bytes' as unknown as Uint8Array, T);
    } finally {
      removeDir(dir);
    }
  });
});

describe('relay: TLS trust and pins (real HTTPS)', () => {
  let server: CaptureServer;
  before(async () => {
    server = new CaptureServer(() => Date.now());
    await server.up();
  });
  after(() => server.down());

  const body = encodePresenceBody(new Uint8Array(32), []);

  it('parses pins in the usual spellings and refuses others', () => {
    const digest = Buffer.alloc(32, 0xab);
    assert.deepEqual(parsePin(`sha256/${digest.toString('base64')}`), digest);
    assert.deepEqual(parsePin(`sha256//${digest.toString('base64')}`), digest);
    assert.deepEqual(parsePin(digest.toString('hex')), digest);
    assert.throws(() => parsePin('sha1/abc'), RangeError);
    assert.throws(() => parsePin('sha256/short='), RangeError);
  });

  it('sends when the server chains to the CA, with or without a matching pin (SPKI or certificate)', async () => {
    const pki = await testPki();
    const pins = certificatePins(pki.appBackend.cert);
    for (const p of [
      [],
      [pins.spki],
      [pins.certificate],
      [`sha256/${Buffer.alloc(32).toString('base64')}`, pins.spki],
    ]) {
      const t = httpsTransport({
        server: `https://127.0.0.1:${server.port}`,
        ca: pki.ca.cert,
        pins: p.map(parsePin),
      });
      assert.equal((await t.send(body)).status, 202);
    }
  });

  it('refuses a pin mismatch before sending a byte of the body', async () => {
    const pki = await testPki();
    const before = server.requests.length;
    const t = httpsTransport({
      server: `https://127.0.0.1:${server.port}`,
      ca: pki.ca.cert,
      pins: [parsePin(`sha256/${Buffer.alloc(32, 1).toString('base64')}`)],
    });
    await assert.rejects(t.send(body), (err: RelayError) => {
      assert.equal(err.code, 'TLS_PIN_MISMATCH');
      assert.match(
        err.message,
        /matches no configured pin \(its key: sha256\/[A-Za-z0-9+/]{43}=\); refusing to send/,
      );
      return true;
    });
    assert.equal(server.requests.length, before);
  });

  it('refuses a server that does not chain to the configured CA', async () => {
    const other = await foreignClient();
    const t = httpsTransport({ server: `https://127.0.0.1:${server.port}`, ca: other.ca });
    await assert.rejects(t.send(body), (err: RelayError) => err.code === 'TLS_UNTRUSTED');
  });
});

/** A stand-in for noble with the behaviour we rely on. */
class FakeNoble implements NobleLike {
  readonly listeners = new Map<string, ((...args: never[]) => void)[]>();
  scanning: unknown[] | undefined;
  constructor(private readonly finalState: string) {}
  on(event: string, listener: (...args: never[]) => void): unknown {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    if (event === 'stateChange')
      setImmediate(() => (listener as (s: string) => void)(this.finalState));
    return this;
  }
  removeListener(event: string, listener: (...args: never[]) => void): unknown {
    this.listeners.set(
      event,
      (this.listeners.get(event) ?? []).filter((l) => l !== listener),
    );
    return this;
  }
  async startScanningAsync(...args: unknown[]): Promise<void> {
    this.scanning = args;
  }
  async stopScanningAsync(): Promise<void> {
    this.scanning = undefined;
  }
  discover(p: NoblePeripheral): void {
    for (const l of this.listeners.get('discover') ?? []) (l as (p: NoblePeripheral) => void)(p);
  }
}

describe('relay: real BLE source (noble, loaded on demand)', () => {
  const failure = async (load: () => Promise<unknown>) => {
    try {
      await openBleSource({ load, readyTimeoutMs: 1000 });
    } catch (err) {
      assert.ok(err instanceof BleUnavailableError);
      return err;
    }
    throw new Error('expected a failure');
  };

  it('says what to do when noble is missing, there is no adapter, no permission, or it is off', async () => {
    const notInstalled = await failure(() =>
      Promise.reject(
        Object.assign(new Error("Cannot find package '@abandonware/noble'"), {
          code: 'ERR_MODULE_NOT_FOUND',
        }),
      ),
    );
    assert.equal(notInstalled.reason, 'NOT_INSTALLED');
    assert.match(notInstalled.message, /npm install @abandonware\/noble/);
    const noKernel = await failure(() =>
      Promise.reject(
        Object.assign(new Error('EAFNOSUPPORT, Address family not supported by protocol'), {
          code: 'EAFNOSUPPORT',
        }),
      ),
    );
    assert.equal(noKernel.reason, 'NO_ADAPTER');
    const eperm = await failure(() =>
      Promise.reject(Object.assign(new Error('EPERM'), { code: 'EPERM' })),
    );
    assert.equal(eperm.reason, 'NO_PERMISSION');
    assert.match(
      eperm.message,
      /sudo setcap cap_net_raw\+eip \$\(eval readlink -f \$\(which node\)\)/,
    );
    const unauthorized = await failure(async () => ({ default: new FakeNoble('unauthorized') }));
    assert.equal(unauthorized.reason, 'NO_PERMISSION');
    assert.match(unauthorized.message, /setcap/);
    assert.equal(
      (await failure(async () => ({ default: new FakeNoble('poweredOff') }))).reason,
      'POWERED_OFF',
    );
    assert.equal(
      (await failure(async () => ({ default: new FakeNoble('unsupported') }))).reason,
      'NO_ADAPTER',
    );
  });

  it('scans with duplicates on and hands manufacturer data to the relay as advertising data', async () => {
    const noble = new FakeNoble('poweredOn');
    const source = await openBleSource({ load: async () => ({ default: noble }), now: () => T });
    const dir = tempDir('ble');
    try {
      const relay = new PhoneRelay({
        stateDir: dir,
        mode: { kind: 'quarantined', skTPast: new Uint8Array(32).fill(3) },
        transport: { send: () => Promise.reject(new Error('unused')) },
        source,
        scheduler: new ManualScheduler(new ManualClock(T)),
      });
      await relay.start();
      assert.deepEqual(noble.scanning, [[], true]);
      const frames = tokenAdvertisements(new TestBeacon().token(T));
      // noble gives the manufacturer data after the AD type: company ID, then our payload.
      for (const f of [...frames, ...frames])
        noble.discover({
          address: 'c8:4b:1a:00:00:01',
          advertisement: { manufacturerData: Buffer.from(f.subarray(5)) },
        });
      noble.discover({ address: 'aa:aa:aa:aa:aa:aa', advertisement: {} });
      assert.equal(relay.status().buffer.tokens, 1);
      relay.stop();
      assert.equal(noble.scanning, undefined);
    } finally {
      removeDir(dir);
    }
  });
});

describe('relay: reception from the compiled beacon at phone scan duty cycles', function () {
  this.timeout(30_000);
  before(ensureFirmware);

  // Android's scan modes, against the beacon's default 375 ms advertising interval and the 500 ms it replaced.
  const cases = [
    { name: 'low latency (continuous)', interval: 500, scan: undefined, atLeast: 61 },
    {
      name: 'low power (512 of 5,120 ms)',
      interval: 500,
      scan: { windowMs: 512, intervalMs: 5120 },
      atLeast: 50,
    },
    {
      name: 'balanced (1,024 of 4,096 ms)',
      interval: 500,
      scan: { windowMs: 1024, intervalMs: 4096 },
      atLeast: 20,
    },
    {
      name: 'balanced (1,024 of 4,096 ms)',
      interval: 375,
      scan: { windowMs: 1024, intervalMs: 4096 },
      atLeast: 58,
    },
  ];
  it('measures the tokens a phone assembles in an hour (periodic scan windows, 10 % loss, 0–10 ms advertising delay)', async () => {
    const lines: string[] = [];
    for (const c of cases) {
      const b = newBeacon();
      provision(b, { interval: c.interval });
      const dir = tempDir('rx');
      try {
        const random = seededRandom(99);
        const relay = new PhoneRelay({
          stateDir: dir,
          mode: { kind: 'quarantined', skTPast: new Uint8Array(32).fill(9) },
          transport: { send: () => Promise.reject(new Error('offline')) },
          source: new SimulatedBleSource({
            clock: b.clock,
            beacons: [{ device: b.device, address: 'c8:4b:1a:00:00:01' }],
            ...(c.scan ? { scan: c.scan } : {}),
            loss: 0.1,
            random,
          }),
          scheduler: virtualScheduler(b.clock),
          random,
          intervalMs: 24 * 60 * MIN, // no uploads in this measurement
        });
        await relay.start();
        // 61 tokens: the one made at provisioning and one a minute after it; 30 s to hear the last.
        await runFor(b.clock, 60 * MIN + 30_000, [relay], undefined, 60_000);
        relay.stop();
        const got = relay.status().tokens.new;
        lines.push(`${c.name} at ${c.interval} ms: ${got}/61`);
        assert.ok(got >= c.atLeast, `${c.name} at ${c.interval} ms: ${got}`);
      } finally {
        removeDir(dir);
      }
    }
    // Scan windows every 4,096 ms against a 4-frame rotation every 500 ms alias: each window sees
    // the same two fragments for tens of seconds, so about half the tokens are never complete.
    console.log(`      reception over one hour: ${lines.join('; ')}`);
  });
});

describe('relay: privacy of what it shows and stores', () => {
  it('status text, status file and log lines never carry SK_T_PAST or a token', async () => {
    const dir = tempDir('privacy');
    const server = new CaptureServer(() => Date.now());
    await server.up();
    try {
      const pki = await testPki();
      const clock = new ManualClock(T);
      const scheduler = new ManualScheduler(clock);
      const beacon = new TestBeacon();
      const log: string[] = [];
      const relay = new PhoneRelay({
        stateDir: dir,
        mode: { kind: 'quarantined', skTPast: beacon.skTPast },
        transport: httpsTransport({ server: `https://127.0.0.1:${server.port}`, ca: pki.ca.cert }),
        scheduler,
        log: (l) => log.push(l),
      });
      await relay.start();
      const tokens: Uint8Array[] = [];
      for (let i = 0; i < 3; i++) {
        clock.advance(MIN);
        const t = beacon.token(clock.ms);
        tokens.push(t);
        for (const f of [...tokenAdvertisements(t), ...tokenAdvertisements(t)])
          relay.hear('c8:4b:1a:00:00:01', f, clock.ms);
      }
      const text = formatStatus(relay.status());
      await relay.cycle();
      relay.stop();
      const everything = [
        text,
        formatStatus(relay.status()),
        JSON.stringify(relay.status()),
        readFileSync(join(dir, STATUS_FILE), 'utf8'),
        ...log,
      ].join('\n');
      assert.match(text, /last token heard/);
      assert.match(text, /buffered tokens\s+3 of 1,440/);
      for (const secret of [beacon.skTPast, beacon.skBeacon, ...tokens]) {
        const hex = bytesToHex(secret);
        assert.ok(!everything.includes(hex), 'no key or token in hex');
        assert.ok(!everything.includes(Buffer.from(secret).toString('base64')), 'nor in base64');
        assert.ok(!everything.includes(hex.slice(0, 16)), 'nor a piece of one');
      }
      assert.ok(!everything.includes('c8:4b:1a'), "nor the beacon's BLE address");
    } finally {
      await server.down();
      removeDir(dir);
    }
  });

  it('refuses a key of the wrong length, before touching the disk', () => {
    const dir = join(tempDir('badkey'), 'state');
    assert.throws(
      () =>
        new PhoneRelay({
          stateDir: dir,
          mode: { kind: 'quarantined', skTPast: new Uint8Array(31) },
          transport: { send: () => Promise.reject(new RelayError('NETWORK', 'unused')) },
        }),
      /SK_T_PAST must be 32 bytes/,
    );
    assert.equal(existsSync(dir), false);
    removeDir(join(dir, '..'));
  });
});
