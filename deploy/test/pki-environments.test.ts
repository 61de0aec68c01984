/** One CA per environment: nothing is issued into a folder that belongs to another environment. */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  PKI_FILES,
  PkiEnvironmentError,
  createDeploymentPki,
  describeCertificate,
  environmentOfCa,
  readPki,
  renewLeaves,
  writePki,
} from '../pki/pki.js';

const CLI = fileURLToPath(new URL('../pki/cli.js', import.meta.url));

function runCli(
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) => {
      resolve({
        code: error ? (typeof error.code === 'number' ? error.code : -1) : 0,
        stdout,
        stderr,
      });
    });
  });
}

describe('deployment PKI: environments', function () {
  this.timeout(20_000);
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pki-env-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives each environment its own CA, named after it', async () => {
    const prod = await createDeploymentPki({ environment: 'prod' });
    const staging = await createDeploymentPki({ environment: 'staging' });
    assert.equal(environmentOfCa(prod.ca.cert), 'prod');
    assert.equal(environmentOfCa(staging.ca.cert), 'staging');
    const prodCa = new X509Certificate(prod.ca.cert);
    const stagingCa = new X509Certificate(staging.ca.cert);
    assert.notDeepEqual(
      prodCa.publicKey.export({ format: 'der', type: 'spki' }),
      stagingCa.publicKey.export({ format: 'der', type: 'spki' }),
    );
    assert.ok(!new X509Certificate(prod.appBackend.cert).verify(stagingCa.publicKey));
  });

  it('issues each backend one certificate that is both its server and its client certificate', async () => {
    const pki = await createDeploymentPki({ environment: 'prod' });
    for (const [part, cn] of [
      ['appBackend', 'app-backend'],
      ['policeBackend', 'police-backend'],
    ] as const) {
      const summary = describeCertificate(pki[part].cert);
      assert.equal(summary.subject, `CN=${cn}`);
      // serverAuth: its HTTPS listeners; clientAuth: its calls to the other backend (mutual TLS).
      assert.deepEqual([...summary.extendedKeyUsages].sort(), ['clientAuth', 'serverAuth']);
      assert.ok(summary.dnsNames.includes(cn));
    }
  });

  it('renews without touching the CA, and refuses another environment or a mixed folder', async () => {
    const prod = join(dir, 'prod');
    const first = await createDeploymentPki({ environment: 'prod' });
    await writePki(prod, first);

    const renewed = await renewLeaves(prod, { environment: 'prod' });
    assert.equal(renewed.ca.cert, first.ca.cert);
    assert.equal(renewed.ca.key, first.ca.key);
    assert.notEqual(renewed.appBackend.cert, first.appBackend.cert);

    await assert.rejects(
      renewLeaves(prod, { environment: 'staging' }),
      (e) => e instanceof PkiEnvironmentError && /holds the prod CA, not staging's/.test(e.message),
    );
    assert.deepEqual(await readPki(prod), renewed, 'nothing was written');

    // staging's CA copied over prod's folder: the leaves there were signed by another CA.
    const staging = await createDeploymentPki({ environment: 'staging' });
    await writePki(join(dir, 'staging'), staging);
    for (const file of [PKI_FILES.ca.cert, PKI_FILES.ca.key])
      await copyFile(join(dir, 'staging', file), join(prod, file));
    const before = await readFile(join(prod, PKI_FILES.appBackend.cert), 'utf8');
    await assert.rejects(
      renewLeaves(prod),
      (e) => e instanceof PkiEnvironmentError && /not signed by this folder's CA/.test(e.message),
    );
    assert.equal(await readFile(join(prod, PKI_FILES.appBackend.cert), 'utf8'), before);
  });

  it('CLI: renew --env checks the folder, init --force never changes its environment', async () => {
    const prod = join(dir, 'prod');
    assert.equal((await runCli(['init', '--out', prod, '--env', 'prod'])).code, 0);
    const ca = await readFile(join(prod, PKI_FILES.ca.cert), 'utf8');

    const wrong = await runCli(['renew', '--out', prod, '--env', 'staging']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /holds the prod CA/);
    const right = await runCli(['renew', '--out', prod, '--env', 'prod']);
    assert.equal(right.code, 0, right.stderr);
    assert.equal(await readFile(join(prod, PKI_FILES.ca.cert), 'utf8'), ca, 'CA unchanged');

    const forced = await runCli(['init', '--out', prod, '--env', 'staging', '--force']);
    assert.equal(forced.code, 1);
    assert.match(forced.stderr, /holds the prod CA.*folder of its own/);
    assert.equal(await readFile(join(prod, PKI_FILES.ca.cert), 'utf8'), ca, 'CA unchanged');

    const show = await runCli(['show', '--out', prod]);
    assert.match(show.stdout, /^environment: prod$/m);
    assert.equal((await runCli(['renew', '--out', prod, '--env', 'Prod!'])).code, 2);
  });
});
