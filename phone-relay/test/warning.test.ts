import assert from 'node:assert/strict';
import { testPki } from '../../test/support/pki.js';
import { PhoneRelay } from '../src/relay.js';
import { virtualScheduler } from '../src/scheduler.js';
import type { PresenceStatus } from '../../protocol/presence-status.js';
import { formatStatus, relayWarning } from '../src/status.js';
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
    assert.match(
      String(status.warning),
      /^your beacon has not been heard for \d+ min — check Bluetooth, move closer to it, or go home; the police will be told at \d\d:\d\d UTC$/,
    );
  });
});

describe('relay: what the person is told', () => {
  const MINUTE = 60_000;
  const T = 1_795_400_000_000;
  const server = (
    code: PresenceStatus['code'],
    since: number | null,
    until: number | null = null,
  ) => ({
    code,
    since,
    until,
    serverTime: T,
  });

  it('warns from its own ears within three minutes of silence, before the server could', () => {
    assert.equal(relayWarning(server('all_clear', T - MINUTE), T - 2 * MINUTE, T), null);
    assert.match(
      String(relayWarning(server('all_clear', T - MINUTE), T - 3 * MINUTE, T)),
      /not been heard for 3 min — check Bluetooth, move closer to it, or go home$/,
    );
    assert.match(
      String(
        relayWarning(server('warning_grace', T - 9 * MINUTE, T + 7 * MINUTE), T - 9 * MINUTE, T),
      ),
      /the police will be told at \d\d:\d\d UTC$/,
    );
  });

  it('does not repeat a server warning older than tokens it has since heard and sent', () => {
    // The server answers before validating the tokens in the same request: its view lags one upload.
    assert.equal(
      relayWarning(server('not_heard', T - 5 * MINUTE, T + MINUTE), T - 30_000, T),
      null,
    );
    assert.match(
      String(relayWarning(server('not_heard', T - 2 * MINUTE, T + 4 * MINUTE), T - 90_000, T)),
      /^your beacon has not been heard since/,
    );
    assert.match(
      String(relayWarning(server('reported', T - 30 * MINUTE), T - 10_000, T)),
      /police have been told/,
    );
    assert.equal(relayWarning(server('absence', T - MINUTE, T + 60 * MINUTE), null, T), null);
  });
});
