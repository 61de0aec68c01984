import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  TestBeacon,
  metric,
  police as internal,
  presence,
  register,
} from '../../app-backend/test/harness.js';
import { MAX_TOKENS_PER_REQUEST } from '../../protocol/presence.js';
import type { QueueBound } from '../../app-backend/src/validator.js';
import type { FloodContext } from './services.js';

/** `n` requests from `workers` clients at once; each answer's status. */
async function pool(n: number, workers: number, send: (i: number) => Promise<number>) {
  const statuses: number[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) statuses.push(await send(i));
  };
  await Promise.all(Array.from({ length: workers }, worker));
  return statuses;
}

const count = (list: number[], status: number) => list.filter((s) => s === status).length;

/** A small validation queue, so validation held back sheds load after a few full requests. */
export const PRESENCE_QUEUE: QueueBound = { maxRequests: 10_000, maxTokens: 1_000 };

/** Flood 1: presence requests far beyond the rate limits while a real relay keeps uploading. */
export function presenceFlood(ctx: FloodContext): void {
  it('one key and many keys flood with tokens; a real relay uploading meanwhile gets 202 every time and its presence is recorded', async () => {
    const s = ctx.services();
    const h = { backend: s.app, clock: s.clock };
    const person = new TestBeacon();
    assert.equal((await register(h, person)).status, 201);
    assert.equal((await internal(h, `/internal/v1/beacons/${person.beaconId}/enable`)).status, 200);
    const flooder = new TestBeacon();
    const junk = () => new Uint8Array(randomBytes(64));
    const accepted = await metric(h, 'presence_tokens_total', 'result="accepted"');
    const unknown = await metric(h, 'presence_tokens_total', 'result="unknown_key"');
    const [oneKey, manyKeys, relay] = await Promise.all([
      // One key, 80 requests at once: four times its 20 per 10 minutes.
      pool(80, 3, () => presence(h, flooder.skTPast, [junk()]).then((r) => r.status)),
      // 100 fresh keys, each within its own limit: admitted and checked off the request path.
      pool(100, 3, () =>
        presence(h, new Uint8Array(randomBytes(32)), [junk(), junk()]).then((r) => r.status),
      ),
      // The real relay, uploading its beacon's tokens one after another.
      pool(5, 1, () =>
        presence(h, person.skTPast, [person.token(s.clock.ms)]).then((r) => r.status),
      ),
    ]);
    assert.deepEqual([count(oneKey, 202), count(oneKey, 429)], [20, 60]);
    assert.equal(count(manyKeys, 202), 100);
    assert.deepEqual(relay, [202, 202, 202, 202, 202]);

    await s.app.flush();
    assert.equal(await metric(h, 'presence_tokens_total', 'result="accepted"'), accepted + 5);
    assert.equal(
      await metric(h, 'presence_tokens_total', 'result="unknown_key"'),
      unknown + 200 + 20,
    );
    const { rows } = await ctx
      .appDb()
      .query<{ last_presence_at: number }>(
        'SELECT last_presence_at FROM quarantines WHERE beacon_id = $1',
        [person.beaconId],
      );
    assert.deepEqual(rows, [{ last_presence_at: s.clock.ms }]);
  });

  it('sheds every request alike (503 OVERLOADED) once the tokens awaiting validation reach the bound; nothing shed is recorded, and requests are taken again once drained', async () => {
    const s = ctx.services();
    const h = { backend: s.app, clock: s.clock };
    await s.app.flush();
    const person = new TestBeacon();
    assert.equal((await register(h, person)).status, 201);
    assert.equal((await internal(h, `/internal/v1/beacons/${person.beaconId}/enable`)).status, 200);
    await s.app.flush();
    const lastPresence = async () =>
      (
        await ctx
          .appDb()
          .query<{ last_presence_at: number | null }>(
            'SELECT last_presence_at FROM quarantines WHERE beacon_id = $1',
            [person.beaconId],
          )
      ).rows[0]?.last_presence_at;
    const before = await lastPresence();
    const shed = await metric(h, 'presence_requests_total', 'outcome="OVERLOADED"');
    const full = () =>
      Array.from({ length: MAX_TOKENS_PER_REQUEST }, () => new Uint8Array(randomBytes(64)));
    // No timers run here, so nothing is validated until flush(): full requests pile up.
    const admitted = Math.floor(PRESENCE_QUEUE.maxTokens / MAX_TOKENS_PER_REQUEST);
    for (let i = 0; i < admitted; i++)
      assert.equal((await presence(h, new Uint8Array(randomBytes(32)), full())).status, 202);
    assert.equal(s.app.validator.queuedTokens, admitted * MAX_TOKENS_PER_REQUEST);
    const refused = [
      await presence(h, new Uint8Array(randomBytes(32)), full()),
      await presence(h, new Uint8Array(randomBytes(32)), []), // a dummy
      await presence(h, person.skTPast, [person.token(s.clock.ms)]),
      await presence(h, person.skTPast, []),
    ];
    for (const r of refused) assert.deepEqual([r.status, r.json()], [503, { error: 'OVERLOADED' }]);
    assert.equal(await metric(h, 'presence_requests_total', 'outcome="OVERLOADED"'), shed + 4);

    await s.app.flush();
    assert.equal(s.app.validator.queuedTokens, 0);
    assert.equal(await lastPresence(), before, 'a shed token is never recorded');
    assert.equal((await presence(h, person.skTPast, [person.token(s.clock.ms)])).status, 202);
    await s.app.flush();
    assert.equal(await lastPresence(), s.clock.ms);
  });
}
