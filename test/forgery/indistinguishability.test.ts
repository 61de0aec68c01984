import assert from 'node:assert/strict';
import { type Database, openDatabase } from '../../backend-kit/db.js';
import { type Harness, PoliceStub, TestBeacon } from '../../app-backend/test/harness.js';
import { PRESENCE_RESPONSE_LENGTH } from '../../protocol/presence.js';
import { openStatus } from '../../protocol/presence-status.js';
import { testPki } from '../support/pki.js';
import { startForgeryBackend } from './backend.js';
import { bodies, compare, enrol, exchanges, formatResults, interleaved } from './campaign.js';
import { PresenceClient, WireTap, headerShape } from './wire.js';

/** Per kind: enough for D to mean something, few enough for the suite's budget. */
const N = Number(process.env.FORGERY_TIMING_REQUESTS ?? 300);
const PEOPLE = 10;

describe('dummy and real presence on the wire (short campaign)', function () {
  this.timeout(60_000);
  let db: Database;
  let stub: PoliceStub;
  let h: Harness;
  let tap: WireTap;
  let client: PresenceClient;
  const people = Array.from({ length: PEOPLE }, () => new TestBeacon());

  before(async () => {
    db = await openDatabase({ dataDir: 'memory://' });
    stub = new PoliceStub();
    await stub.up();
    h = await startForgeryBackend(db, stub);
    for (const b of people) await enrol(h.backend, b, h.clock.ms);
    await h.backend.flush();
    tap = await WireTap.open(h.backend.publicPort);
    client = new PresenceClient(tap, (await testPki()).ca.cert);
  });
  after(async () => {
    client.close();
    await tap.close();
    await h.backend.close();
    await stub.down();
    await db.close();
  });

  it(`answers ${N} dummy and ${N} real requests, interleaved on one keep-alive connection, with identical bytes on the wire`, async () => {
    const make = bodies(people, h.clock.now);
    // Warm-up: the handshake and TLS 1.3 session tickets ride on the first exchanges.
    await exchanges(client, interleaved(10), make);
    const samples = await exchanges(client, interleaved(N), make);
    await h.backend.flush();
    assert.equal(tap.connections, 1, 'every exchange on the one kept-alive connection');

    const all = [...samples.dummy, ...samples.real];
    const shape = headerShape(all[0]!.headers);
    for (const e of all) {
      assert.equal(e.status, 202);
      assert.equal(e.body.length, PRESENCE_RESPONSE_LENGTH);
      assert.equal(headerShape(e.headers), shape, 'same headers and values, but for the date');
      assert.equal(e.requestBytes, all[0]!.requestBytes, 'one request size on the wire');
      assert.equal(e.answerBytes, all[0]!.answerBytes, 'one answer size on the wire');
      assert.ok(e.wireMicros > 0 && e.roundTripMicros >= e.wireMicros);
    }
    // The sealed answers are the people's own; a dummy's opens for nobody, also not for them.
    const opened = samples.real.filter((e) =>
      people.some((b) => openStatus(b.skTPast, e.body)?.code === 'all_clear'),
    );
    assert.equal(opened.length, N);
    assert.ok(
      samples.dummy.every((e) => people.every((b) => openStatus(b.skTPast, e.body) === null)),
    );

    const results = compare(samples);
    // Sizes: exactly one value each, so D is exactly 0. Timings: reported, never asserted (noise).
    for (const r of results.slice(0, 2)) assert.equal(r.d, 0, r.measure);
    for (const r of results) assert.deepEqual([r.n, r.m], [N, N]);
    console.log(`      ${formatResults(results).split('\n').join('\n      ')}`);
  });
});
