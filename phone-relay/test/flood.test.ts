import assert from 'node:assert/strict';
import {
  TestBeacon,
  metric,
  police,
  register,
  startBackend,
} from '../../app-backend/test/harness.js';
import { newBeacon, provision } from '../../firmware/test/beacon-harness.js';
import { bytesToHex } from '../../protocol/bytes.js';
import { testPki } from '../../test/support/pki.js';
import { PhoneRelay } from '../src/relay.js';
import { virtualScheduler } from '../src/scheduler.js';
import { SimulatedBleSource } from '../src/sources/simulated.js';
import { combineSources } from '../src/sources/source.js';
import { httpsTransport } from '../src/transport.js';
import {
  FloodSource,
  MIN,
  hearing,
  linkedClock,
  monitoredBeacon,
  runFor,
  seededRandom,
  useRelayWorld,
} from './support.js';

describe('relay: a real beacon stream under a Bluetooth flood (compiled firmware, real app backend)', function () {
  this.timeout(60_000);
  const env = useRelayWorld('flood');

  it('gets the real tokens through to the app backend, forges nothing, and stays within its memory bounds', async () => {
    const beacon = newBeacon();
    const world = beacon.clock;
    const person = new TestBeacon();
    env.h = await startBackend(env.db, env.stub, { clock: linkedClock(world) });
    assert.equal(
      provision(beacon, { id: person.beaconId, key: bytesToHex(person.skBeacon) })?.ok,
      true,
    );
    assert.equal((await register(env.h, person)).status, 201);
    assert.equal(
      (await police(env.h, `/internal/v1/beacons/${person.beaconId}/enable`)).status,
      200,
    );

    const random = seededRandom(7);
    const flood = new FloodSource({
      clock: world,
      onAir: () => beacon.device.radio.advertisements,
      random,
      tickMs: 10,
      own: 3, // 300 frames/s from the neighbour's own address
      fresh: 3, // 300 frames/s, each from a new random address
      pooled: 3, // 300 frames/s from 64 addresses that repeat: more than the global bucket takes
      poolSize: 64,
    });
    const pki = await testPki();
    const relay = new PhoneRelay({
      stateDir: env.dir,
      mode: { kind: 'quarantined', skTPast: person.skTPast },
      transport: httpsTransport({
        server: `https://127.0.0.1:${env.h.backend.publicPort}`,
        ca: pki.ca.cert,
      }),
      source: combineSources(
        new SimulatedBleSource({
          clock: world,
          beacons: [{ device: beacon.device, address: 'c8:4b:1a:00:00:01' }],
          loss: 0.3,
          random,
        }),
        flood,
      ),
      scheduler: virtualScheduler(world),
      random,
    });
    await relay.start();
    await runFor(world, 16 * MIN, [relay], env.h);
    relay.stop();

    const s = relay.status();
    const accepted = await metric(env.h, 'presence_tokens_total', 'result="accepted"');
    console.log(
      `      flood: ${flood.counts.frames.toLocaleString('en-US')} frames from the neighbour, ` +
        `${s.frames.fed.toLocaleString('en-US')} reached reassembly; ${s.tokens.new} tokens buffered, ` +
        `${s.uploads.tokensDelivered} delivered, ${accepted} accepted by the app backend`,
    );
    assert.ok(s.uploads.ok >= 2, 'uploads ran');
    assert.ok(accepted >= 10, `at least 10 of the ~16 minutes' tokens accepted, got ${accepted}`);
    // Nothing the neighbour made up was ever emitted: the 4-byte check refuses mixed fragments.
    assert.equal(await metric(env.h, 'presence_tokens_total', 'result="tag"'), 0);
    assert.equal(s.uploads.tokensDelivered, accepted, 'every delivered token was a real one');
    assert.ok(s.frames.newcomerLimited > 100_000, 'the fresh-address flood stopped at the gate');
    assert.ok(s.frames.addressLimited > 100_000, "the neighbour's own address was rate-limited");
    assert.ok(s.frames.globalLimited > 0, 'the pool was held to the global rate');
    assert.ok(s.tokens.duplicate > 0, 'replayed tokens were dropped by hash');
    const m = relay.memory();
    assert.ok(m.addresses <= 1024, `address table bounded: ${m.addresses}`);
    assert.ok(m.pendingHalfTokens <= 16 * 64, `half tokens bounded: ${m.pendingHalfTokens}`);
    assert.ok(m.seenTokenHashes <= 2 * 1440);
    assert.equal(m.buffered, s.buffer.tokens);
  });

  it('gets tokens through a flood of well-formed forged frames from 64 repeating addresses, from power-on', async () => {
    const w = await monitoredBeacon(env.db, env.stub);
    env.h = w.h;
    const pki = await testPki();
    // Forged frames only: no address but the beacon's ever completes a token, so none is trusted early.
    const flood = new FloodSource({
      clock: w.world,
      onAir: () => w.beacon.device.radio.advertisements,
      random: seededRandom(17),
      tickMs: 10,
      own: 3,
      fresh: 3,
      pooled: 3,
      poolSize: 64,
      mix: { replayed: 0, mutated: 0, forged: 1, garbage: 0 },
    });
    const relay = new PhoneRelay({
      stateDir: env.dir,
      mode: { kind: 'quarantined', skTPast: w.person.skTPast },
      transport: httpsTransport({
        server: `https://127.0.0.1:${env.h.backend.publicPort}`,
        ca: pki.ca.cert,
      }),
      source: combineSources(hearing(w.beacon, seededRandom(16)), flood),
      scheduler: virtualScheduler(w.world),
      random: seededRandom(18),
    });
    await relay.start();
    await runFor(w.world, 11 * MIN, [relay], env.h);
    relay.stop();
    const accepted = await metric(env.h, 'presence_tokens_total', 'result="accepted"');
    const s = relay.status();
    console.log(
      `      forged flood from power-on: ${s.frames.globalLimited.toLocaleString('en-US')} frames over the global rate, ` +
        `${(s.reassembler.dropped + s.reassembler.evicted).toLocaleString('en-US')} forged half tokens given up; ` +
        `${s.tokens.new} of the beacon's 12 tokens assembled, ${s.uploads.tokensDelivered} delivered, ${accepted} accepted`,
    );
    assert.ok(s.tokens.new >= 10, `assembled ${s.tokens.new} of 12`);
    assert.ok(accepted >= 5);
    assert.equal(
      accepted,
      s.uploads.tokensDelivered,
      "every token delivered was the real beacon's",
    );
    assert.ok(s.frames.globalLimited > 10_000, 'the pool hit the global bucket');
    assert.ok(relay.memory().pendingHalfTokens <= 16 * 64);
  });
});
