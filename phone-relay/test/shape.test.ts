import assert from 'node:assert/strict';
import { TestBeacon } from '../../app-backend/test/harness.js';
import { tokenAdvertisements } from '../../protocol/frames/check.js';
import { PRESENCE_BODY_LENGTH } from '../../protocol/presence.js';
import { ManualClock } from '../../test/support/clock.js';
import { ksCritical, ksPValue, ksStatistic } from '../../test/support/ks.js';
import { testPki } from '../../test/support/pki.js';
import { PhoneRelay } from '../src/relay.js';
import { ManualScheduler } from '../src/scheduler.js';
import { httpsTransport } from '../src/transport.js';
import { CaptureServer, MIN, removeDir, seededRandom, tempDir } from './support.js';

const CYCLES = 200;

describe('relay: dummy and real requests look the same on the wire (seed 000)', function () {
  this.timeout(180_000); // 400 HTTPS uploads, each its own TLS handshake: slow on a loaded machine
  let server: CaptureServer;
  const dirs: string[] = [];
  const clock = new ManualClock(1_795_392_000_000);

  beforeEach(async () => {
    server = new CaptureServer(clock.now);
    await server.up();
  });
  afterEach(async () => {
    await server.down();
    dirs.splice(0).forEach(removeDir);
  });

  it(`same size, endpoint and headers every time; interval distributions equal by a two-sample KS test (${CYCLES} cycles each)`, async () => {
    const pki = await testPki();
    const scheduler = new ManualScheduler(clock);
    const transport = httpsTransport({
      server: `https://127.0.0.1:${server.port}`,
      ca: pki.ca.cert,
    });
    const beacon = new TestBeacon();
    const relay = (mode: 'real' | 'dummy', seed: number) => {
      const dir = tempDir(mode);
      dirs.push(dir);
      return new PhoneRelay({
        stateDir: dir,
        mode:
          mode === 'real' ? { kind: 'quarantined', skTPast: beacon.skTPast } : { kind: 'dummy' },
        transport,
        scheduler,
        random: seededRandom(seed),
      });
    };
    const real = relay('real', 101);
    const dummy = relay('dummy', 202);
    await real.start();
    await dummy.start();

    // The beacon makes a token every minute and the real relay hears each frame twice.
    let nextToken = clock.ms;
    const done = () =>
      real.status().uploads.cycles >= CYCLES && dummy.status().uploads.cycles >= CYCLES;
    while (!done()) {
      const due = scheduler.nextDue() as number;
      clock.ms = Math.min(due, nextToken);
      if (clock.ms === nextToken) {
        const frames = tokenAdvertisements(beacon.token(clock.ms));
        for (const f of [...frames, ...frames]) real.hear('c8:4b:1a:00:00:01', f, clock.ms);
        nextToken += MIN;
      }
      scheduler.runDue();
      await real.idle();
      await dummy.idle();
    }
    real.stop();
    dummy.stop();

    const key = (r: { body: Buffer }) => r.body.subarray(2, 34).toString('hex');
    const realKey = Buffer.from(beacon.skTPast).toString('hex');
    const realRequests = server.requests.filter((r) => key(r) === realKey);
    const dummyRequests = server.requests.filter((r) => key(r) !== realKey);
    assert.ok(realRequests.length >= CYCLES && dummyRequests.length >= CYCLES);
    assert.equal(new Set(dummyRequests.map(key)).size, 1, 'one dummy key, kept by the install');

    // Everything an observer sees besides timing: identical for every request of both.
    const shape = (r: (typeof server.requests)[number]) =>
      `${r.method} ${r.path} ${r.bodyLength}\n${r.headers.replace(/^host: .*$/m, 'host')}`;
    const shapes = new Set(server.requests.map(shape));
    assert.equal(shapes.size, 1, [...shapes].join('\n---\n'));
    assert.equal(server.requests[0]?.bodyLength, PRESENCE_BODY_LENGTH);
    // (The first upload comes after a random part of one interval; after that, 4–6 tokens each.)
    assert.ok(
      realRequests.slice(1).every((r) => (r.body[1] as number) >= 4),
      'real requests carried tokens',
    );
    assert.ok(
      dummyRequests.every((r) => r.body[1] === 0),
      'dummy requests carried none',
    );

    // Timing: intervals between requests.
    const intervals = (rs: typeof server.requests) =>
      rs.slice(1).map((r, i) => (r.at - (rs[i] as (typeof rs)[number]).at) / 1000);
    const a = intervals(realRequests);
    const b = intervals(dummyRequests);
    const d = ksStatistic(a, b);
    const critical = ksCritical(a.length, b.length, 0.01);
    // The same statistic tells a relay without jitter apart at once (the test has power).
    const fixed = a.map(() => 300);
    const dFixed = ksStatistic(a, fixed);
    console.log(
      `      KS D = ${d.toFixed(4)} for ${a.length} real vs ${b.length} dummy intervals ` +
        `(p = ${ksPValue(d, a.length, b.length).toFixed(2)}; critical value 5 % ${ksCritical(a.length, b.length, 0.05).toFixed(4)}, ` +
        `1 % ${critical.toFixed(4)}); against a relay without jitter D = ${dFixed.toFixed(2)}`,
    );
    assert.ok(d < critical, `KS D ${d} >= ${critical}`);
    assert.ok(dFixed > critical);
    for (const x of [...a, ...b])
      assert.ok(x >= 270 && x <= 330, `interval ${x} s within 300 s ± 10 %`);
    // Requests per cycle: one each in both modes while nothing is backlogged.
    assert.equal(realRequests.length, real.status().uploads.cycles);
    assert.equal(dummyRequests.length, dummy.status().uploads.cycles);
  });

  it('after an outage a dummy install bursts like a real relay catching up', async () => {
    const pki = await testPki();
    const scheduler = new ManualScheduler(clock);
    const dir = tempDir('burst');
    dirs.push(dir);
    const dummy = new PhoneRelay({
      stateDir: dir,
      mode: { kind: 'dummy' },
      transport: httpsTransport({ server: `https://127.0.0.1:${server.port}`, ca: pki.ca.cert }),
      scheduler,
      random: seededRandom(5),
    });
    await dummy.start();
    const step = async () => {
      clock.ms = scheduler.nextDue() as number;
      scheduler.runDue();
      await dummy.idle();
    };
    await step();
    await step();
    assert.equal(dummy.status().lastUpload?.requests, 1);
    // Two hours without network: a real relay would hold ~120 tokens, two requests' worth.
    await server.down();
    for (let i = 0; i < 24; i++) await step();
    assert.equal(dummy.status().lastUpload?.ok, false);
    await server.up();
    await step();
    assert.equal(dummy.status().lastUpload?.requests, 2);
    await step();
    assert.equal(dummy.status().lastUpload?.requests, 1);
  });
});
