import assert from 'node:assert/strict';
import { metric } from '../../app-backend/test/harness.js';
import { MAX_TOKENS_PER_REQUEST } from '../../protocol/presence.js';
import { testPki } from '../../test/support/pki.js';
import { PhoneRelay } from '../src/relay.js';
import { virtualScheduler } from '../src/scheduler.js';
import { httpsTransport } from '../src/transport.js';
import {
  Forwarder,
  MIN,
  hearing,
  monitoredBeacon,
  runFor,
  seededRandom,
  useRelayWorld,
} from './support.js';

describe('relay: an hour offline, then late upload', function () {
  this.timeout(60_000);
  let net: Forwarder | undefined;
  const env = useRelayWorld('offline', async () => {
    await net?.down();
  });

  it('keeps every token while the backend is unreachable and sends them oldest first in requests of at most 64', async () => {
    // A token every 30 s, so an hour offline buffers ~120: more than one request holds.
    const w = await monitoredBeacon(env.db, env.stub, { cadence: 30 });
    env.h = w.h;
    net = new Forwarder(env.h.backend.publicPort);
    await net.up();
    const pki = await testPki();
    const random = seededRandom(3);
    const relay = new PhoneRelay({
      stateDir: env.dir,
      mode: { kind: 'quarantined', skTPast: w.person.skTPast },
      transport: httpsTransport({ server: `https://127.0.0.1:${net.port}`, ca: pki.ca.cert }),
      source: hearing(w.beacon, random),
      scheduler: virtualScheduler(w.world),
      random,
      beaconCadenceMs: 30_000,
    });
    await relay.start();
    await runFor(w.world, 12 * MIN, [relay], env.h);
    assert.ok(relay.status().uploads.ok >= 2, 'online: uploads go through');
    const acceptedOnline = await metric(env.h, 'presence_tokens_total', 'result="accepted"');
    assert.ok(acceptedOnline > 0);

    // The network goes away for an hour; the beacon keeps broadcasting and the relay keeps hearing it.
    await net.down();
    await runFor(w.world, 60 * MIN, [relay], env.h);
    const offline = relay.status();
    assert.ok(offline.uploads.failed >= 10, `failed cycles: ${offline.uploads.failed}`);
    assert.equal(offline.lastUpload?.error?.code, 'NETWORK');
    const waiting = offline.buffer.tokens;
    assert.ok(waiting > MAX_TOKENS_PER_REQUEST, `tokens kept: ${waiting}`);
    // One tick: the gap opens and, its grace over, is held because the relay itself is silent.
    const tick = await env.h.backend.watchdog();
    assert.equal(tick.provisional, 1, 'the app backend saw the silence');
    assert.equal(tick.held, 1, 'a silent relay is waited for');
    await env.h.backend.deliver();
    // (The first token after provisioning carries the rebooted flag: an expected boot, no fault.)
    assert.deepEqual(env.stub.shown(), [], 'the police are not told');

    // Back online: the next cycle sends everything, oldest first, 64 at most per request.
    await net.up();
    const failedBefore = offline.uploads.failed;
    const cyclesBefore = offline.uploads.cycles;
    while (relay.status().uploads.cycles === cyclesBefore)
      await runFor(w.world, 10_000, [relay], env.h);
    relay.stop();
    const back = relay.status();
    assert.equal(back.uploads.failed, failedBefore);
    const upload = back.lastUpload;
    assert.ok(upload?.ok);
    assert.ok(upload.requests >= 2, `requests in the catch-up cycle: ${upload.requests}`);
    assert.ok(upload.tokens >= waiting);
    for (const b of upload.batches) assert.ok(b.tokens <= MAX_TOKENS_PER_REQUEST);
    assert.equal(upload.batches[0]?.tokens, MAX_TOKENS_PER_REQUEST);
    for (let i = 1; i < upload.batches.length; i++)
      assert.ok(
        (upload.batches[i - 1]?.newestHeardAt as number) <=
          (upload.batches[i]?.oldestHeardAt as number),
        'oldest first',
      );
    assert.equal(back.buffer.tokens, 0);

    // The app backend: the hour's tokens are late evidence for the gap, the newest are live
    // presence; together they cover it, so it clears and the police never hear of it.
    await env.h.backend.deliver();
    assert.deepEqual(env.stub.shown(), []);
    const { rows } = await env.db.query<{ status: string }>(
      "SELECT status FROM alerts WHERE kind = 'NO_PRESENCE'",
    );
    assert.deepEqual(rows, [{ status: 'cleared' }]);
    const late = await metric(env.h, 'presence_tokens_total', 'result="late_evidence"');
    const accepted = await metric(env.h, 'presence_tokens_total', 'result="accepted"');
    console.log(
      `      offline hour: ${waiting} tokens kept, sent in ${upload.requests} requests (${upload.batches.map((b) => b.tokens).join(' + ')}); ` +
        `${late} late evidence, ${accepted - acceptedOnline} live`,
    );
    assert.ok(late >= 100, `late evidence: ${late}`);
    assert.ok(accepted > acceptedOnline);
    assert.equal(await metric(env.h, 'presence_tokens_total', 'result="stale"'), 0);
    assert.equal(await metric(env.h, 'presence_tokens_total', 'result="replay"'), 0);
  });
});
