import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Database } from '../../backend-kit/db.js';
import { openDatabase } from '../../backend-kit/db.js';
import { PRESENCE_RESPONSE_LENGTH } from '../../protocol/presence.js';
import { openStatus } from '../../protocol/presence-status.js';
import {
  type Harness,
  PoliceStub,
  TestBeacon,
  metric,
  monitored,
  presence,
  startBackend,
} from './harness.js';

describe('presence answers on the lean path', function () {
  this.timeout(60_000);
  let db: Database;
  let stub: PoliceStub;
  let h: Harness;

  before(async () => {
    db = await openDatabase({ dataDir: 'memory://' });
    stub = new PoliceStub();
    await stub.up();
    h = await startBackend(db, stub);
  });
  after(async () => {
    await h.backend.close();
    await stub.down();
    await db.close();
  });

  it('sends a registered and a dummy key the same status line and header values, 64 bytes each', async () => {
    const b = new TestBeacon();
    await monitored(h, b);
    const real = await presence(h, b.skTPast, [b.token(h.clock.ms)]);
    const dummy = await presence(h, new Uint8Array(randomBytes(32)), []);
    for (const a of [real, dummy]) {
      assert.equal(a.status, 202);
      assert.equal(a.body.length, PRESENCE_RESPONSE_LENGTH);
    }
    // Everything but the clock's date header.
    const comparable = (headers: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(headers).filter(([name]) => name !== 'date'));
    assert.deepEqual(comparable(real.headers), comparable(dummy.headers));
    assert.equal(real.headers['content-length'], String(PRESENCE_RESPONSE_LENGTH));
    assert.equal(openStatus(b.skTPast, real.body)?.code, 'all_clear');
    await h.backend.flush();
  });

  it('counts every accepted request once, under one label', async () => {
    const before = await metric(h, 'presence_requests_total', 'outcome="accepted"');
    for (let i = 0; i < 5; i++) await presence(h, new Uint8Array(randomBytes(32)), []);
    assert.equal(await metric(h, 'presence_requests_total', 'outcome="accepted"'), before + 5);
    await h.backend.flush();
  });

  it('never repeats an answer: random bytes for dummies, a fresh nonce for each sealed status', async () => {
    const b = new TestBeacon();
    await monitored(h, b);
    const bodies = new Set<string>();
    for (let i = 0; i < 10; i++) {
      bodies.add((await presence(h, new Uint8Array(randomBytes(32)), [])).body.toString('hex'));
      const sealed = (await presence(h, b.skTPast, [])).body;
      assert.equal(openStatus(b.skTPast, sealed)?.code, 'all_clear');
      bodies.add(sealed.toString('hex'));
    }
    assert.equal(bodies.size, 20);
    await h.backend.flush();
  });
});
