import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openDatabase, type Database } from '../../backend-kit/db.js';
import { bytesToHex } from '../../protocol/bytes.js';
import { openSealedBeaconKey } from '../../protocol/sealed-key.js';
import { DEFAULT_RULES, loopbackConfig } from '../../app-backend/src/config.js';
import { type AppBackend, startAppBackend } from '../../app-backend/src/service.js';
import { authorityJwt, authorityKeys, metric, presence } from '../../app-backend/test/harness.js';
import { EmulatedConsole } from '../../firmware/provisioning/connection.js';
import { PoliceClient } from '../../firmware/provisioning/police-client.js';
import { provisionBeacon } from '../../firmware/provisioning/provision.js';
import { buildBoard } from '../../firmware/scripts/build.js';
import { type Beacon, answers, newBeacon, tokenOnAir } from '../../firmware/test/beacon-harness.js';
import {
  PASSWORD,
  type PoliceHarness,
  addOfficer,
  startPolice,
} from '../../police-backend/test/harness.js';
import { ManualClock } from '../support/clock.js';
import { httpsRequest } from '../support/https-client.js';
import { capturedLogger } from '../support/log-capture.js';
import { testPki } from '../support/pki.js';

describe('provisioning at the door, end to end (--simulate)', function () {
  this.timeout(120_000);
  let appDb: Database;
  let policeDb: Database;
  let app: AppBackend;
  let police: PoliceHarness;
  let beacon: Beacon;
  let clock: ManualClock;

  before(() => buildBoard('PUCKJS'));

  beforeEach(async () => {
    const pki = await testPki();
    beacon = newBeacon('PUCKJS');
    clock = new ManualClock(beacon.clock.now());
    appDb = await openDatabase({ dataDir: 'memory://' });
    policeDb = await openDatabase({ dataDir: 'memory://' });
    police = await startPolice(policeDb, { clock });
    app = await startAppBackend(
      loopbackConfig({
        tls: { cert: pki.appBackend.cert, key: pki.appBackend.key, ca: pki.ca.cert },
        kek: randomBytes(32),
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
      }),
      { clock: clock.now, log: capturedLogger('app-backend').log, db: appDb, timers: false },
    );
    await police.backend.close();
    police = await startPolice(policeDb, {
      clock,
      appUrl: `https://localhost:${app.internalPort}`,
    });
    await addOfficer(police, 'officer1');
  });
  afterEach(async () => {
    await app.close();
    await police.backend.close().catch(() => undefined);
    await appDb.close();
    await policeDb.close();
  });

  /** Both worlds move together: the beacon's emulated clock and the services' clock. */
  const advance = (ms: number) => {
    beacon.clock.advance(ms);
    clock.advance(ms);
  };

  const provision = async (outDir: string, steps: string[]) => {
    const pki = await testPki();
    return provisionBeacon({
      console: new EmulatedConsole(beacon.device, advance),
      police: await PoliceClient.signIn(
        `https://localhost:${police.backend.officerPort}`,
        pki.ca.cert,
        'officer1',
        PASSWORD,
      ),
      authorityPublicKey: authorityKeys.publicKey,
      address: '21 Juniper Close',
      caseRef: 'C-2026-314',
      outDir,
      txPower: -4,
      manualChecksConfirmed: true,
      now: clock.now,
      progress: (step, state) => state !== 'start' && steps.push(`${state}:${step}`),
    });
  };

  it('ends with a registered, enabled quarantine whose first presence is accepted', async () => {
    const out = mkdtempSync(join(tmpdir(), 'sb-provision-'));
    const steps: string[] = [];
    const result = await provision(out, steps);
    assert.equal(steps.at(-1), 'done:lock the beacon');
    assert.equal(beacon.device.console('SB.status()'), null, 'locked: the console is gone');

    // The officer's disk holds the key only sealed for the health authority.
    assert.equal(statSync(result.sealedKeyFile).mode & 0o777, 0o600);
    const opened = openSealedBeaconKey(
      authorityKeys.privateKey,
      JSON.parse(readFileSync(result.sealedKeyFile, 'utf8')),
    );
    assert.equal(opened.beaconId, result.beaconId);
    assert.ok(
      !(await policeDb.query('SELECT * FROM beacons').then((r) => JSON.stringify(r.rows))).includes(
        bytesToHex(opened.skBeacon),
      ),
    );

    // Police: registered with the address; the enable reaches the app backend over mutual TLS.
    assert.equal(await police.backend.sendCommands(), 1);
    const { rows } = await policeDb.query<{ status: string; address: string }>(
      'SELECT status, address FROM beacons',
    );
    assert.deepEqual(rows, [{ status: 'monitoring', address: '21 Juniper Close' }]);

    // Health authority: registers the quarantine with the person's SK_T_PAST and the opened key.
    const pki = await testPki();
    const skTPast = new Uint8Array(randomBytes(32));
    const body = JSON.stringify({
      skTPast: bytesToHex(skTPast),
      tPast: 20_415,
      beaconId: opened.beaconId,
      skBeacon: bytesToHex(opened.skBeacon),
    });
    const reg = await httpsRequest(
      app.publicPort,
      'POST',
      '/v1/quarantines',
      { ca: pki.ca.cert },
      body,
      { authorization: `Bearer ${authorityJwt('POST /v1/quarantines', body, clock.ms)}` },
    );
    assert.equal(reg.status, 201);
    const state = await appDb.query<{ state: string }>('SELECT state FROM quarantines');
    assert.equal(
      state.rows[0]?.state,
      'monitoring',
      'enabled by the police before registration: monitoring at once',
    );

    // The person's relay hears the beacon's next token and sends it.
    advance(60_000);
    const token = tokenOnAir(beacon);
    assert.ok(token);
    assert.equal((await presence({ backend: app, clock }, skTPast, [token])).status, 202);
    await app.flush();
    assert.equal(
      await metric({ backend: app, clock }, 'presence_tokens_total', 'result="accepted"'),
      1,
    );
  });

  it('runs as the officer runs it: the compiled CLI with --simulate, step by step, to a sealed key file', async () => {
    const pki = await testPki();
    const dir = mkdtempSync(join(tmpdir(), 'sb-cli-'));
    writeFileSync(join(dir, 'ca.crt'), pki.ca.cert);
    writeFileSync(join(dir, 'authority.pub'), authorityKeys.publicKey);
    const cli = fileURLToPath(new URL('../../firmware/provisioning/cli.js', import.meta.url));
    const args = [
      '--simulate',
      '--police',
      `https://localhost:${police.backend.officerPort}`,
      '--ca',
      join(dir, 'ca.crt'),
      '--username',
      'officer1',
      '--address',
      '4 Elm Row',
      '--case',
      'C-9',
      '--authority-key',
      join(dir, 'authority.pub'),
      '--out',
      dir,
      '--yes',
      '--json',
    ];
    const run = promisify(execFile);
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], {
      env: { ...process.env, POLICE_PASSWORD: PASSWORD },
    });
    const result = JSON.parse(stdout) as { beaconId: string; sealedKeyFile: string };
    assert.match(stderr, /✓ verify the self-test token[\s\S]*✓ lock the beacon/);
    assert.ok(
      openSealedBeaconKey(
        authorityKeys.privateKey,
        JSON.parse(readFileSync(result.sealedKeyFile, 'utf8')),
      ).skBeacon.length === 32,
    );
    const { rows } = await policeDb.query<{ beacon_id: string; status: string }>(
      'SELECT beacon_id, status FROM beacons',
    );
    assert.deepEqual(rows, [{ beacon_id: result.beaconId, status: 'enable_pending' }]);
    const usage = await run(process.execPath, [cli, '--simulate']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal((usage as { code: number }).code, 2);
  });

  it('stops before the lock when the police backend fails, leaving the beacon blank and no key file', async () => {
    const out = mkdtempSync(join(tmpdir(), 'sb-provision-'));
    const steps: string[] = [];
    const pki = await testPki();
    const client = await PoliceClient.signIn(
      `https://localhost:${police.backend.officerPort}`,
      pki.ca.cert,
      'officer1',
      PASSWORD,
    );
    await police.backend.close();
    await assert.rejects(
      provisionBeacon({
        console: new EmulatedConsole(beacon.device, advance),
        police: client,
        authorityPublicKey: authorityKeys.publicKey,
        address: '21 Juniper Close',
        caseRef: 'C-2026-314',
        outDir: out,
        manualChecksConfirmed: true,
        now: clock.now,
        progress: (step, s) => s !== 'start' && steps.push(`${s}:${step}`),
      }),
      /register the beacon with the police backend/,
    );
    assert.deepEqual(steps.slice(-2), [
      'done:seal the key for the health authority',
      'failed:register the beacon with the police backend',
    ]);
    assert.deepEqual(readdirSync(out), [], 'no sealed key left behind');
    advance(1000);
    const [status] = answers(beacon.device.console('SB.status()'));
    assert.deepEqual(
      [status?.provisioned, status?.locked],
      [false, false],
      'wiped, unlocked: ready to provision again',
    );
  });
});
