import assert from 'node:assert/strict';
import { join } from 'node:path';
import { metric } from '../../app-backend/test/harness.js';
import { testPki } from '../../test/support/pki.js';
import { TokenBuffer } from '../src/buffer.js';
import { BUFFER_FILE, PhoneRelay } from '../src/relay.js';
import { killableScheduler, virtualScheduler } from '../src/scheduler.js';
import { httpsTransport } from '../src/transport.js';
import { MIN, hearing, monitoredBeacon, runFor, scriptedRandom, useRelayWorld } from './support.js';

describe('relay: crash and restart with a non-empty buffer', function () {
  this.timeout(60_000);
  const env = useRelayWorld('restart');

  it('a new relay over the same state directory uploads what the crashed one had buffered', async () => {
    const w = await monitoredBeacon(env.db, env.stub);
    env.h = w.h;
    const pki = await testPki();
    const transport = httpsTransport({
      server: `https://127.0.0.1:${env.h.backend.publicPort}`,
      ca: pki.ca.cert,
    });
    const mode = { kind: 'quarantined', skTPast: w.person.skTPast } as const;

    // First life: the first upload would come 4.5 minutes in; the process dies at 4 minutes.
    const process1 = killableScheduler(virtualScheduler(w.world));
    const ears1 = hearing(w.beacon, scriptedRandom([], 11));
    const first = new PhoneRelay({
      stateDir: env.dir,
      mode,
      transport,
      source: ears1,
      scheduler: process1,
      random: scriptedRandom([0.9], 12),
    });
    await first.start();
    await runFor(w.world, 4 * MIN, [first], env.h);
    const crashedAt = w.world.now();
    assert.equal(first.status().uploads.cycles, 0, 'nothing sent before the crash');
    const buffered = first.status().buffer.tokens;
    assert.ok(buffered >= 3, `tokens buffered before the crash: ${buffered}`);
    // The crash: no stop(), no flush; its timers and its radio callbacks simply stop.
    process1.kill();
    ears1.stop();

    // What is on disk is everything that was buffered.
    const onDisk = TokenBuffer.open(join(env.dir, BUFFER_FILE));
    assert.equal(onDisk.size, buffered);

    const second = new PhoneRelay({
      stateDir: env.dir,
      mode,
      transport,
      source: hearing(w.beacon, scriptedRandom([], 21)),
      scheduler: virtualScheduler(w.world),
      random: scriptedRandom([0.05], 22), // first upload 15 s after the restart
    });
    assert.equal(second.status().buffer.tokens, buffered, 'the new relay starts with the buffer');
    await second.start();
    await runFor(w.world, MIN, [second], env.h);
    second.stop();

    const upload = second.status().lastUpload;
    assert.ok(upload?.ok, `upload after restart: ${JSON.stringify(upload?.error)}`);
    assert.ok(upload.tokens >= buffered);
    const oldest = upload.batches[0]?.oldestHeardAt;
    assert.ok(
      oldest !== null && oldest !== undefined && oldest < crashedAt,
      'tokens from before the crash went out',
    );
    assert.equal(second.status().buffer.tokens, 0, 'and left the buffer after the 202');
    assert.equal(
      await metric(env.h, 'presence_tokens_total', 'result="accepted"'),
      upload.tokens,
      'the app backend accepted every one',
    );
  });
});
