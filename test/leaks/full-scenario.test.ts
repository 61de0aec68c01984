import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '../../backend-kit/db.js';
import { DEFAULT_RULES, loopbackConfig } from '../../app-backend/src/config.js';
import { type AppBackend, startAppBackend } from '../../app-backend/src/service.js';
import { authorityKeys } from '../../app-backend/test/harness.js';
import { newBeacon, provision } from '../../firmware/test/beacon-harness.js';
import { main as healthAuthority } from '../../health-authority-cli/src/cli.js';
import { PhoneRelay } from '../../phone-relay/src/relay.js';
import { virtualScheduler } from '../../phone-relay/src/scheduler.js';
import { SimulatedBleSource } from '../../phone-relay/src/sources/simulated.js';
import { httpsTransport } from '../../phone-relay/src/transport.js';
import { ensureFirmware, linkedClock } from '../../phone-relay/test/support.js';
import { type PoliceHarness, api, signIn, startPolice } from '../../police-backend/test/harness.js';
import { bytesToHex } from '../../protocol/bytes.js';
import { hashKey, parsePresenceBody } from '../../protocol/presence.js';
import { deriveKeyMaterial } from '../../protocol/token/keys.js';
import { nodeSuite } from '../../protocol/token/keys-node.js';
import { authenticateToken } from '../../protocol/token/open.js';
import { sealBeaconKey } from '../../protocol/sealed-key.js';
import { databaseTargets } from '../support/databases.js';
import { capturedLogger } from '../support/log-capture.js';
import { testPki } from '../support/pki.js';
import {
  type Secret,
  dumpTables,
  findAddresses,
  findSecrets,
  logPlaces,
  textSecret,
} from './secrets.js';

const MIN = 60_000;
const ADDRESS = '221B Leak Street, Flat 3';
const CASE_REF = 'CASE-LEAK-4711';
const OFFICER = 'leak-officer';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const fail = (found: readonly string[], rule: string) =>
  assert.deepEqual(found, [], `${rule}:\n  ${found.slice(0, 20).join('\n  ')}`);

for (const target of databaseTargets()) {
  describe(`leaks: the full scenario on ${target.name}, every log line and every table of both backends`, function () {
    this.timeout(120_000);
    before(ensureFirmware);

    let appDb: Database;
    let policeDb: Database;
    let police: PoliceHarness;
    let app: AppBackend;
    let dir: string;
    const relays: PhoneRelay[] = [];

    after(async () => {
      relays.forEach((r) => r.stop());
      await app?.close();
      await police?.backend.close();
      await appDb?.close();
      await policeDb?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('keeps IPs, SK_T_PAST, tokens, keys and the address out of the app backend; SK_T_PAST, keys and presence out of the police backend; no key left after the end', async () => {
      const pki = await testPki();
      dir = mkdtempSync(join(tmpdir(), 'leaks-'));
      const beacon = newBeacon();
      const world = beacon.clock;
      const clock = linkedClock(world);
      const beaconId = `SB-${randomBytes(4).toString('hex')}`;
      const skBeacon = new Uint8Array(randomBytes(32));
      const skTPast = new Uint8Array(randomBytes(32));
      const kek = randomBytes(32);

      // Both backends, on real mutual TLS to each other, every log line captured.
      appDb = await target.open();
      policeDb = await target.open();
      const appInternal = await freePort();
      police = await startPolice(policeDb, { clock, appUrl: `https://localhost:${appInternal}` });
      const appLogs = capturedLogger('app-backend');
      app = await startAppBackend(
        loopbackConfig({
          tls: { cert: pki.appBackend.cert, key: pki.appBackend.key, ca: pki.ca.cert },
          kek,
          healthAuthority: {
            publicKey: authorityKeys.publicKey,
            issuer: 'health-authority',
            audience: 'smartbeacon-app-backend',
          },
          police: {
            url: `https://localhost:${police.backend.internalPort}`,
            identity: 'police-backend',
          },
          rules: DEFAULT_RULES,
          internalPort: appInternal,
          logLevel: 'debug',
        }),
        { clock: clock.now, log: appLogs.log, db: appDb, timers: false },
      );
      const server = `https://localhost:${app.publicPort}`;

      // Installation: the beacon gets its key; the officer registers it with the address.
      assert.equal(provision(beacon, { id: beaconId, key: bytesToHex(skBeacon) })?.ok, true);
      // Off the whole second from here on: no event of the backends can share a token's time by chance.
      world.advance(1_234);
      const officer = await signIn(police, OFFICER);
      const registered = await api(police, officer, 'POST', '/api/beacons', {
        beaconId,
        address: ADDRESS,
        caseRef: CASE_REF,
      });
      assert.equal(registered.status, 201);

      // The health authority registers the quarantine with its own CLI, from the sealed key file.
      const files = {
        key: join(dir, 'authority.key'),
        ca: join(dir, 'ca.crt'),
        sealed: join(dir, `${beaconId}.sealed.json`),
        sk: join(dir, 'sk-t-past'),
      };
      writeFileSync(files.key, authorityKeys.privateKey, { mode: 0o600 });
      writeFileSync(files.ca, pki.ca.cert);
      writeFileSync(
        files.sealed,
        JSON.stringify(sealBeaconKey(authorityKeys.publicKey, beaconId, skBeacon)),
      );
      writeFileSync(files.sk, `${bytesToHex(skTPast)}\n`, { mode: 0o600 });
      const cliOut: string[] = [];
      const ha = (args: string[]) =>
        healthAuthority(args, {
          stdout: (t) => void cliOut.push(t),
          stderr: (t) => void cliOut.push(t),
          readStdin: () => Promise.resolve(''),
          now: clock.now,
        });
      const conn = ['--server', server, '--ca', files.ca, '--key', files.key];
      assert.equal(
        await ha([
          'register',
          ...conn,
          '--sealed-key',
          files.sealed,
          '--sk-t-past',
          `@${files.sk}`,
          '--t-past',
          '20000',
        ]),
        0,
        cliOut.join('\n'),
      );

      // The officer enables monitoring; the police backend tells the app backend over mutual TLS.
      assert.equal(
        (await api(police, officer, 'POST', `/api/beacons/${beaconId}/enable`, {})).status,
        202,
      );
      assert.equal(await police.backend.sendCommands(), 1);

      // The person's relay hears the real firmware's tokens and uploads them; every body is kept.
      const sent: Buffer[] = [];
      const https = httpsTransport({ server, ca: pki.ca.cert });
      const transport = {
        send: (body: Buffer) => (sent.push(Buffer.from(body)), https.send(body)),
      };
      const relay = (label: string, heard: boolean) => {
        const r = new PhoneRelay({
          stateDir: join(dir, label),
          mode: { kind: 'quarantined', skTPast },
          transport,
          ...(heard
            ? {
                source: new SimulatedBleSource({
                  clock: world,
                  beacons: [{ device: beacon.device, address: 'c8:4b:1a:00:00:02' }],
                }),
              }
            : {}),
          scheduler: virtualScheduler(world),
        });
        relays.push(r);
        return r;
      };
      const run = async (ms: number, r: PhoneRelay, stepMs: number) => {
        const end = world.now() + ms;
        while (world.now() < end) {
          world.advance(Math.min(stepMs, end - world.now()));
          await r.idle();
          await app.flush();
        }
      };
      const home = relay('home', true);
      await home.start();
      await run(12 * MIN, home, 15_000);
      home.stop();
      const tokenList = sent.flatMap((b) => {
        const parsed = parsePresenceBody(b, world.now());
        return typeof parsed === 'string' ? [] : parsed.tokens;
      });
      assert.ok(tokenList.length >= 5, `the relay sent real tokens (${tokenList.length})`);

      // The person leaves with their phone: the relay keeps uploading, hearing nothing.
      const away = relay('away', false);
      await away.start();
      await run(8 * MIN, away, 30_000);
      assert.equal((await app.watchdog()).provisional, 1, 'the window passed');
      await run(DEFAULT_RULES.graceSeconds * 1000 + 2 * MIN, away, 30_000);
      assert.equal((await app.watchdog()).confirmed, 1, 'the grace passed');
      assert.ok((await app.deliver()) >= 1, 'the violation reached the police');

      // The officer reviews it to the end.
      const queue = (await api(police, officer, 'GET', '/api/alerts?view=queue')).json<{
        alerts: { id: string; kind: string; address: string }[];
      }>().alerts;
      const alert = queue.find((a) => a.kind === 'NO_PRESENCE');
      assert.ok(alert, 'the alert is in the queue');
      assert.equal(alert.address, ADDRESS);
      for (const body of [
        { action: 'acknowledge' },
        { action: 'dispatch' },
        { action: 'resolve', outcome: 'violation_confirmed', note: 'not at home' },
      ])
        assert.equal(
          (await api(police, officer, 'POST', `/api/alerts/${alert.id}/actions`, body)).status,
          200,
        );

      // An authorised absence, scheduled by the officer and sent to the app backend.
      const absence = await api(police, officer, 'POST', `/api/beacons/${beaconId}/absences`, {
        startsAt: world.now() + 5 * MIN,
        endsAt: world.now() + 65 * MIN,
        reason: 'test appointment at the clinic',
      });
      assert.equal(absence.status, 201);
      assert.ok((await police.backend.sendCommands()) >= 1);

      // Everything both sides hold now, before the end.
      const { rows } = await appDb.query<{ sk_beacon_sealed: Uint8Array; keys_sealed: Uint8Array }>(
        'SELECT sk_beacon_sealed, keys_sealed FROM quarantines WHERE beacon_id = $1',
        [beaconId],
      );
      const sealed = rows[0];
      assert.ok(
        sealed?.sk_beacon_sealed && sealed.keys_sealed,
        'the app backend held the sealed keys',
      );
      const during = {
        app: await dumpTables(appDb, 'app backend'),
        police: await dumpTables(policeDb, 'police backend'),
      };

      // The quarantine ends: the officer ends it, the police backend tells the app backend.
      away.stop();
      assert.equal(
        (await api(police, officer, 'POST', `/api/beacons/${beaconId}/end`, {})).status,
        202,
      );
      assert.equal(await police.backend.sendCommands(), 1);
      await app.flush();
      const afterEnd = {
        app: await dumpTables(appDb, 'app backend'),
        police: await dumpTables(policeDb, 'police backend'),
      };

      const { kEnc, kMac } = deriveKeyMaterial(skBeacon);
      const keys: Secret[] = [
        { name: 'SK_BEACON', bytes: skBeacon },
        { name: 'K_enc', bytes: kEnc },
        { name: 'K_mac', bytes: kMac },
        { name: 'the KEK', bytes: kek },
      ];
      const skT: Secret = { name: 'SK_T_PAST', bytes: skTPast };
      const tokenSecrets: Secret[] = tokenList.map((t, i) => ({
        name: `token ${i + 1}`,
        bytes: t,
      }));
      const person: Secret[] = [
        textSecret('the address', ADDRESS),
        textSecret('the case reference', CASE_REF),
        textSecret('the officer', OFFICER),
      ];
      const jwtMarks: Secret[] = [
        textSecret('a bearer token', 'Bearer '),
        textSecret('a JWT', 'eyJhbGciOi'),
      ];
      assert.ok(
        appLogs.lines.length > 5 && police.logs.length > 5,
        `both backends did log (${appLogs.lines.length}, ${police.logs.length})`,
      );
      assert.ok(during.app.length > 10 && during.police.length > 10, 'both databases hold rows');

      // App backend: logs and every table, during and after.
      const appLog = logPlaces(appLogs.lines, 'app backend');
      fail(findAddresses(appLog), 'an IP address in the app backend log');
      fail(
        findSecrets(appLog, [skT, ...keys, ...tokenSecrets, ...person, ...jwtMarks]),
        'a secret in the app backend log',
      );
      for (const dump of [during.app, afterEnd.app]) {
        fail(findAddresses(dump), 'an IP address in the app backend database');
        fail(
          findSecrets(dump, [skT, ...keys, ...tokenSecrets, ...person]),
          'a secret in the app backend database',
        );
      }

      // Police backend: no SK_T_PAST (nor its hash, which links a phone), no beacon key, no presence history.
      const phoneLink: Secret = {
        name: 'H(SK_T_PAST)',
        bytes: new Uint8Array(Buffer.from(hashKey(skTPast), 'hex')),
      };
      for (const dump of [during.police, afterEnd.police])
        fail(
          findSecrets(dump, [skT, phoneLink, ...keys, ...tokenSecrets]),
          'a phone link, key or token in the police backend database',
        );
      fail(
        findSecrets(logPlaces(police.logs, 'police backend'), [
          skT,
          phoneLink,
          ...keys,
          ...tokenSecrets,
        ]),
        'a phone link, key or token in the police backend log',
      );

      // Presence history: of the relay's proofs (each token's time), the police backend may hold
      // at most the one an alert carries as the last presence before the gap.
      const beaconKeys = nodeSuite.importKeys(skBeacon);
      const proofTimes = new Set(
        tokenList.flatMap((t) => {
          const opened = authenticateToken(t, beaconKeys);
          return opened.ok ? [opened.fields.unixSeconds, opened.fields.unixSeconds * 1000] : [];
        }),
      );
      assert.ok(proofTimes.size >= 10, 'the tokens open under the beacon key');
      for (const dump of [during.police, afterEnd.police]) {
        const held = new Map<number, string>();
        for (const p of dump)
          for (const m of p.text.matchAll(/\d{9,13}/g))
            if (proofTimes.has(Number(m[0])))
              held.set(Math.floor(Number(m[0]) / 1000) || Number(m[0]), p.where);
        assert.ok(
          held.size <= 1,
          `the police backend holds ${held.size} proof-of-presence times: ${[...held.values()].join('; ')}`,
        );
      }

      // After the end: neither the key hash nor the sealed keys are anywhere in the app backend.
      const gone: Secret[] = [
        phoneLink,
        { name: 'the sealed SK_BEACON', bytes: sealed.sk_beacon_sealed },
        { name: 'the sealed derived keys', bytes: sealed.keys_sealed },
      ];
      assert.ok(
        findSecrets(during.app, gone).length > 0,
        'the search does find them while the quarantine runs',
      );
      fail(findSecrets(afterEnd.app, gone), 'a key left in the app backend after the end');
    });
  });
}
