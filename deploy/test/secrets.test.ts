/** The secrets folder a deployment mounts: made once, refreshed after a renewal, never mixed. */
import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PKI_FILES,
  PkiEnvironmentError,
  createDeploymentPki,
  renewLeaves,
  writePki,
} from '../pki/pki.js';
import { main } from '../setup/cli.js';
import {
  CONTAINER_IDS,
  SECRET_FILES,
  type SecretName,
  expectedMode,
  prepareSecrets,
} from '../setup/secrets.js';

const read = (dir: string, name: SecretName) => readFileSync(join(dir, SECRET_FILES[name]), 'utf8');

describe('deployment secrets folder (deploy/setup)', function () {
  this.timeout(20_000);
  let dir: string;
  let pki: string;
  let haKey: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secrets-'));
    pki = join(dir, 'pki');
    await writePki(pki, await createDeploymentPki({ environment: 'prod' }));
    haKey = join(dir, 'authority.pub');
    const ha = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(haKey, ha.publicKey.export({ type: 'spki', format: 'pem' }));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const options = (out: string, extra: Partial<Parameters<typeof prepareSecrets>[0]> = {}) => ({
    out,
    pki,
    environment: 'prod',
    haPublicKey: haKey,
    chown: false,
    ...extra,
  });

  it('makes every file with its mode, copies the PKI without ca.key, and keeps what it made', async () => {
    const out = join(dir, 'secrets');
    const first = await prepareSecrets(options(out));
    assert.deepEqual((await readdir(out)).sort(), Object.values(SECRET_FILES).sort());
    assert.equal(statSync(out).mode & 0o777, 0o700);
    for (const name of Object.keys(SECRET_FILES) as SecretName[])
      assert.equal(statSync(join(out, SECRET_FILES[name])).mode & 0o777, expectedMode(name), name);
    assert.equal(first.appKek, 'created');
    assert.equal(Buffer.from(read(out, 'appKek').trim(), 'base64').length, 32);
    assert.match(read(out, 'appDbPassword'), /^[0-9a-f]{64}\n$/);
    assert.notEqual(read(out, 'appDbPassword'), read(out, 'policeDbPassword'));
    assert.equal(read(out, 'ca'), readFileSync(join(pki, PKI_FILES.ca.cert), 'utf8'));
    assert.equal(read(out, 'appKey'), readFileSync(join(pki, PKI_FILES.appBackend.key), 'utf8'));

    // After a renewal: the new certificates are copied; the KEK, passwords and session keys stay.
    const kek = read(out, 'appKek');
    const session = read(out, 'policeSessionKey');
    const password = read(out, 'policeDbPassword');
    const renewed = await renewLeaves(pki, { environment: 'prod' });
    const second = await prepareSecrets(options(out));
    assert.equal(second.appKek, 'kept');
    assert.equal(second.policeSessionKey, 'kept');
    assert.equal(second.appCert, 'copied');
    assert.equal(read(out, 'appKek'), kek);
    assert.equal(read(out, 'policeSessionKey'), session);
    assert.equal(read(out, 'policeDbPassword'), password);
    assert.equal(read(out, 'appCert'), renewed.appBackend.cert);
  });

  it('refuses another environment, a bad KEK, half a key pair, or a key the authority cannot use', async () => {
    const out = join(dir, 'secrets');
    await assert.rejects(
      prepareSecrets(options(out, { environment: 'staging' })),
      PkiEnvironmentError,
    );
    await prepareSecrets(options(out));
    // A staging PKI into prod's secrets folder.
    const stagingPki = join(dir, 'staging-pki');
    await writePki(stagingPki, await createDeploymentPki({ environment: 'staging' }));
    await assert.rejects(
      prepareSecrets(options(out, { pki: stagingPki, environment: 'staging' })),
      /another environment's CA \(prod\)/,
    );

    writeFileSync(join(out, SECRET_FILES.appKek), 'c2hvcnQ=\n', { mode: 0o600 });
    await assert.rejects(prepareSecrets(options(out)), /not 32 bytes/);
    await rm(join(out, SECRET_FILES.appKek));
    await rm(join(out, SECRET_FILES.policeSessionPublicKey));
    await assert.rejects(prepareSecrets(options(out)), /half of the session key pair/);

    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaKey = join(dir, 'rsa.pub');
    writeFileSync(rsaKey, rsa.publicKey.export({ type: 'spki', format: 'pem' }));
    await assert.rejects(
      prepareSecrets(options(join(dir, 'other'), { haPublicKey: rsaKey })),
      /ECDSA P-256/,
    );
  });

  it('gives each file to the container user that reads it (as root)', async function () {
    if (process.getuid?.() !== 0) {
      // Reason: chown needs root; CI runs as root, so it runs there.
      console.log('      (skipped: changing owners needs root)');
      this.skip();
    }
    const out = join(dir, 'secrets');
    await prepareSecrets(options(out, { chown: true }));
    const owner = (name: SecretName) => {
      const s = statSync(join(out, SECRET_FILES[name]));
      return [s.uid, s.gid];
    };
    assert.deepEqual(owner('appKey'), [CONTAINER_IDS.appBackend, 0]);
    assert.deepEqual(owner('appKek'), [CONTAINER_IDS.appBackend, 0]);
    assert.deepEqual(owner('policeKey'), [CONTAINER_IDS.policeBackend, 0]);
    assert.deepEqual(owner('appDbPassword'), [
      CONTAINER_IDS.appBackend,
      CONTAINER_IDS.postgresGroup,
    ]);
    assert.deepEqual(owner('policeDbPassword'), [
      CONTAINER_IDS.policeBackend,
      CONTAINER_IDS.postgresGroup,
    ]);
    assert.deepEqual(owner('ca'), [0, 0]);
  });

  it('CLI: exit 0 when done, 2 on usage errors, 1 on refusals', async () => {
    const quiet = console.log;
    const quietError = console.error;
    const said: string[] = [];
    console.log = (line: string) => void said.push(line);
    console.error = (line: string) => void said.push(line);
    try {
      const out = join(dir, 'secrets');
      const args = [
        'secrets',
        '--out',
        out,
        '--pki',
        pki,
        '--env',
        'prod',
        '--ha-public-key',
        haKey,
      ];
      assert.equal(await main([...args, '--no-chown']), 0);
      assert.match(said.join('\n'), /app-kek\s+created/);
      assert.equal(await main(['secrets', '--out', out]), 2);
      assert.equal(await main([...args.slice(0, 6), 'Bad!', '--ha-public-key', haKey]), 2);
      assert.equal(await main(['other']), 2);
      assert.equal(await main([...args.slice(0, 6), 'staging', '--ha-public-key', haKey]), 1);
    } finally {
      console.log = quiet;
      console.error = quietError;
    }
  });
});
