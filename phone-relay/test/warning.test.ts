import assert from 'node:assert/strict';
import { testPki } from '../../test/support/pki.js';
import { PhoneRelay } from '../src/relay.js';
import { virtualScheduler } from '../src/scheduler.js';
import { formatStatus } from '../src/status.js';
import { httpsTransport } from '../src/transport.js';
import { MIN, hearing, monitoredBeacon, runFor, scriptedRandom, useRelayWorld } from './support.js';

describe('relay: the person is warned through the sealed answer', function () {
  this.timeout(60_000);
  const env = useRelayWorld('warning');

  it('shows all clear at home, then the warning once the beacon has not been heard for a while', async () => {
    const w = await monitoredBeacon(env.db, env.stub);
    env.h = w.h;
    const pki = await testPki();
    const ears = hearing(w.beacon, scriptedRandom([], 31), 0);
    const relay = new PhoneRelay({
      stateDir: env.dir,
      mode: { kind: 'quarantined', skTPast: w.person.skTPast },
      transport: httpsTransport({
        server: `https://127.0.0.1:${env.h.backend.publicPort}`,
        ca: pki.ca.cert,
      }),
      source: ears,
      scheduler: virtualScheduler(w.world),
      random: scriptedRandom([0.5], 32),
    });
    await relay.start();
    await runFor(w.world, 6 * MIN, [relay], env.h);
    assert.equal(relay.status().serverStatus?.code, 'all_clear');

    // The person leaves: the phone goes with them and no longer hears the beacon.
    ears.stop();
    await runFor(w.world, 5 * MIN, [relay], env.h);
    const status = relay.status();
    relay.stop();
    assert.equal(status.serverStatus?.code, 'not_heard');
    assert.match(
      formatStatus(status),
      /server says\s+your beacon has not been heard since \d\d:\d\d UTC — go home or check Bluetooth/,
    );
  });
});
