/** The deployment PKI, tested the way the backends use it: real TLS handshakes on loopback. */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import {
  type DeploymentPki,
  type IssuedCert,
  PKI_FILES,
  PkiInputError,
  createCa,
  createDeploymentPki,
  describeCertificate,
  issueCertificate,
  readPki,
  renewLeaves,
  writePki,
} from '../pki/pki.js';
import { x509 } from '../pki/x509.js';

const CLI = fileURLToPath(new URL('../pki/cli.js', import.meta.url));
const DAY_MS = 86_400_000;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

interface Outcome {
  /** The client's CN as the server saw it, when the server accepted the connection. */
  readonly serverSawCn?: string | undefined;
  /** Why the server refused the connection. */
  readonly serverError?: string | undefined;
  /** Whether the server's TLS stack trusted the client certificate, and if not why not. */
  readonly serverAuthorized?: boolean | undefined;
  readonly serverAuthorizationError?: string | undefined;
  readonly clientAuthorized: boolean;
  readonly clientSawCn?: string | undefined;
  readonly clientError?: string | undefined;
  /** What the server sent after the handshake: only an accepted client gets it. */
  readonly reply: string;
}

type ServerSide = Pick<
  Outcome,
  'serverSawCn' | 'serverError' | 'serverAuthorized' | 'serverAuthorizationError'
>;

function commonName(cert: tls.PeerCertificate): string | undefined {
  const cn: string | string[] | undefined = cert.subject?.CN;
  return Array.isArray(cn) ? cn.join(',') : cn;
}

/** One connection between a TLS server and client on loopback; both are closed before it returns. */
async function handshake(server: tls.TlsOptions, client: tls.ConnectionOptions): Promise<Outcome> {
  const listener = tls.createServer({ requestCert: true, rejectUnauthorized: true, ...server });
  const serverSide = new Promise<ServerSide>((resolve) => {
    listener.on('secureConnection', (socket) => {
      resolve({
        serverSawCn: commonName(socket.getPeerCertificate()),
        serverAuthorized: socket.authorized,
        serverAuthorizationError: socket.authorizationError?.toString(),
      });
      socket.end('hello');
    });
    // Node drops a client whose certificate fails verification without saying why: see `refused`.
    listener.on('tlsClientError', (error) => resolve({ serverError: error.message }));
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = listener.address() as AddressInfo;
    const clientSide = await new Promise<Omit<Outcome, keyof ServerSide>>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: true, ...client });
      let reply = '';
      let authorized = false;
      let cn: string | undefined;
      let error: string | undefined;
      socket.setEncoding('utf8');
      socket.on('secureConnect', () => {
        authorized = socket.authorized;
        cn = commonName(socket.getPeerCertificate());
      });
      socket.on('data', (chunk: string) => (reply += chunk));
      socket.on('error', (e) => (error = e.message));
      socket.on('close', () =>
        resolve({ clientAuthorized: authorized, clientSawCn: cn, clientError: error, reply }),
      );
    });
    // A client that gives up first still makes the server report; the timer only guards the test.
    let timer: NodeJS.Timeout | undefined;
    const serverOutcome = await Promise.race([
      serverSide,
      new Promise<ServerSide>((resolve) => {
        timer = setTimeout(() => resolve({ serverError: 'server saw nothing' }), 2000);
      }),
    ]);
    clearTimeout(timer);
    return { ...clientSide, ...serverOutcome };
  } finally {
    await new Promise<void>((resolve) => listener.close(() => resolve()));
  }
}

/** TLS options for a party holding `identity` and trusting `trust`'s CA. */
function tlsOptions(identity: IssuedCert | undefined, trust: IssuedCert) {
  return identity
    ? { cert: identity.cert, key: identity.key, ca: [trust.cert] }
    : { ca: [trust.cert] };
}

/**
 * Asserts that a server requiring client certificates refuses `client`, and, asking a server that
 * lets it through, that the TLS stack distrusts it for `reason` (not for some other fault).
 */
async function refused(
  server: tls.TlsOptions,
  client: tls.ConnectionOptions,
  reason: string,
): Promise<void> {
  const strict = await handshake(server, client);
  assert.equal(strict.serverSawCn, undefined, 'the server accepted the client');
  assert.ok(strict.serverError, 'the server reports the refused client');
  assert.equal(strict.reply, '', 'the refused client got a reply');
  const lenient = await handshake({ ...server, rejectUnauthorized: false }, client);
  assert.equal(lenient.serverAuthorized, false);
  assert.equal(lenient.serverAuthorizationError, reason);
}

function extension<T extends x509.Extension>(pem: string, type: new (raw: ArrayBuffer) => T): T {
  const found = new x509.X509Certificate(pem).getExtension(type);
  assert.ok(found, `missing ${type.name}`);
  return found;
}

describe('deployment PKI', function () {
  this.timeout(10_000);
  let pki: DeploymentPki;
  let other: DeploymentPki;

  before(async () => {
    pki = await createDeploymentPki({
      environment: 'test',
      hosts: { appBackend: ['app.example.org', '10.0.0.5'] },
    });
    other = await createDeploymentPki({ environment: 'other' });
  });

  it('issues a CA that may sign leaves only, and leaves that it signed', () => {
    const ca = new X509Certificate(pki.ca.cert);
    assert.equal(ca.ca, true);
    assert.equal(ca.subject, 'CN=SmartBeacon test CA');
    const constraints = extension(pki.ca.cert, x509.BasicConstraintsExtension);
    assert.deepEqual(
      [constraints.ca, constraints.pathLength, constraints.critical],
      [true, 0, true],
    );
    const caUsage = extension(pki.ca.cert, x509.KeyUsagesExtension);
    assert.equal(caUsage.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    assert.equal(caUsage.critical, true);
    const caKeyId = extension(pki.ca.cert, x509.SubjectKeyIdentifierExtension).keyId;

    for (const [leaf, cn] of [
      [pki.appBackend, 'app-backend'],
      [pki.policeBackend, 'police-backend'],
    ] as const) {
      const cert = new X509Certificate(leaf.cert);
      assert.equal(cert.subject, `CN=${cn}`);
      assert.equal(cert.ca, false);
      assert.ok(cert.checkIssued(ca), `${cn} issued by the CA`);
      assert.equal(cert.verify(ca.publicKey), true);
      assert.equal(cert.verify(new X509Certificate(other.ca.cert).publicKey), false);
      assert.ok(cert.checkPrivateKey(createPrivateKey(leaf.key)));
      assert.deepEqual(cert.keyUsage, [SERVER_AUTH, CLIENT_AUTH]);
      const sans = (cert.subjectAltName ?? '').split(', ');
      for (const san of [`DNS:${cn}`, 'DNS:localhost', 'IP Address:127.0.0.1']) {
        assert.ok(sans.includes(san), `${cn} has ${san}: ${cert.subjectAltName}`);
      }
      assert.ok(sans.includes('IP Address:0:0:0:0:0:0:0:1'), `${cn} has ::1`);
      assert.equal(extension(leaf.cert, x509.BasicConstraintsExtension).ca, false);
      const usage = extension(leaf.cert, x509.KeyUsagesExtension);
      assert.equal(usage.usages & x509.KeyUsageFlags.digitalSignature, 1);
      assert.equal(usage.usages & x509.KeyUsageFlags.keyCertSign, 0);
      assert.equal(extension(leaf.cert, x509.AuthorityKeyIdentifierExtension).keyId, caKeyId);
      // 16 random bytes, positive: 32 hex digits, the first below 8.
      assert.match(cert.serialNumber, /^[0-7][0-9A-F]{31}$/);
      const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / DAY_MS;
      assert.equal(days, 397);
    }
    assert.notEqual(
      new X509Certificate(pki.appBackend.cert).serialNumber,
      new X509Certificate(pki.policeBackend.cert).serialNumber,
    );
    const app = describeCertificate(pki.appBackend.cert);
    assert.ok(app.dnsNames.includes('app.example.org'));
    assert.ok(app.ipAddresses.includes('10.0.0.5'));
    assert.ok(!describeCertificate(pki.policeBackend.cert).dnsNames.includes('app.example.org'));
  });

  it('lets the backends talk over mutual TLS, each seeing the other by name', async () => {
    const outcome = await handshake(
      tlsOptions(pki.policeBackend, pki.ca),
      tlsOptions(pki.appBackend, pki.ca),
    );
    assert.equal(outcome.serverError, undefined);
    assert.equal(outcome.clientError, undefined);
    assert.equal(outcome.serverSawCn, 'app-backend');
    assert.equal(outcome.clientSawCn, 'police-backend');
    assert.equal(outcome.clientAuthorized, true);
    assert.equal(outcome.reply, 'hello');

    // The other direction: the police backend calls the app backend.
    const back = await handshake(
      tlsOptions(pki.appBackend, pki.ca),
      tlsOptions(pki.policeBackend, pki.ca),
    );
    assert.deepEqual([back.serverSawCn, back.clientSawCn], ['police-backend', 'app-backend']);
  });

  it('checks the server name against the SANs', async () => {
    const byName = await handshake(tlsOptions(pki.policeBackend, pki.ca), {
      ...tlsOptions(pki.appBackend, pki.ca),
      servername: 'police-backend',
    });
    assert.equal(byName.clientAuthorized, true);
    assert.equal(byName.reply, 'hello');

    const wrongName = await handshake(tlsOptions(pki.policeBackend, pki.ca), {
      ...tlsOptions(pki.appBackend, pki.ca),
      servername: 'app-backend',
    });
    assert.match(wrongName.clientError ?? '', /altnames/i);
    assert.equal(wrongName.reply, '');
  });

  it('refuses a client certificate from another CA', async () => {
    await refused(
      tlsOptions(pki.policeBackend, pki.ca),
      tlsOptions(other.appBackend, pki.ca),
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    );
  });

  it('refuses a client without a certificate', async () => {
    const outcome = await handshake(
      tlsOptions(pki.policeBackend, pki.ca),
      tlsOptions(undefined, pki.ca),
    );
    assert.equal(outcome.serverSawCn, undefined);
    assert.match(outcome.serverError ?? '', /did not return a certificate/);
    assert.match(outcome.clientError ?? '', /certificate required/);
    assert.equal(outcome.reply, '');
  });

  it('refuses a client certificate issued for servers only', async () => {
    const serverOnly = await issueCertificate(pki.ca, {
      commonName: 'app-backend',
      dnsNames: ['app-backend'],
      usages: ['server'],
      validDays: 1,
    });
    await refused(
      tlsOptions(pki.policeBackend, pki.ca),
      tlsOptions(serverOnly, pki.ca),
      'INVALID_PURPOSE',
    );
  });

  it('client refuses a server from another CA', async () => {
    const outcome = await handshake(
      tlsOptions(other.policeBackend, other.ca),
      tlsOptions(pki.appBackend, pki.ca),
    );
    assert.equal(outcome.clientAuthorized, false);
    assert.ok(outcome.clientError, 'the client reports the untrusted server');
    assert.equal(outcome.reply, '');
  });

  it('refuses an expired certificate on either side', async () => {
    const expired = (commonName: string) =>
      issueCertificate(pki.ca, {
        commonName,
        dnsNames: [commonName, 'localhost'],
        ipAddresses: ['127.0.0.1'],
        usages: ['server', 'client'],
        validDays: 1,
        notBefore: new Date(Date.now() - 30 * DAY_MS),
      });
    await refused(
      tlsOptions(pki.policeBackend, pki.ca),
      tlsOptions(await expired('app-backend'), pki.ca),
      'CERT_HAS_EXPIRED',
    );

    const expiredServer = await handshake(
      tlsOptions(await expired('police-backend'), pki.ca),
      tlsOptions(pki.appBackend, pki.ca),
    );
    assert.equal(expiredServer.clientAuthorized, false);
    assert.match(expiredServer.clientError ?? '', /expired/i);
    assert.equal(expiredServer.reply, '');
  });

  it('rejects bad input with messages that say what is wrong', async () => {
    const rejects = (promise: Promise<unknown>, message: RegExp) =>
      assert.rejects(promise, (error: Error) => {
        assert.match(error.message, message);
        return true;
      });
    await rejects(createDeploymentPki({ environment: 'Prod!' }), /environment name "Prod!"/);
    await rejects(createDeploymentPki({ environment: 'x'.repeat(33) }), /environment name/);
    await rejects(createDeploymentPki({ environment: 'test', validDays: 0 }), /whole number/);
    await rejects(createDeploymentPki({ environment: 'test', validDays: 1.5 }), /whole number/);
    await rejects(createCa({ commonName: '', validDays: 1 }), /common name/);
    await rejects(
      createDeploymentPki({ environment: 'test', hosts: { policeBackend: ['bad_host!'] } }),
      /DNS name "bad_host!"/,
    );
    const leaf = { commonName: 'app-backend', usages: ['server'] as const, validDays: 1 };
    await rejects(issueCertificate(pki.ca, { ...leaf, usages: [] }), /usages/);
    await rejects(issueCertificate(pki.ca, { ...leaf, ipAddresses: ['300.1.1.1'] }), /IP address/);
    await rejects(issueCertificate(pki.ca, { ...leaf, validDays: 3651 }), /after its CA/);
    await rejects(
      issueCertificate({ cert: pki.ca.cert, key: other.ca.key }, leaf),
      /does not belong to the CA certificate/,
    );
    await rejects(issueCertificate(pki.appBackend, leaf), /is not a CA/);
    await assert.rejects(
      createDeploymentPki({ environment: 'Prod' }),
      (error) => error instanceof PkiInputError,
    );
  });

  it('writes, reads back and renews a PKI directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pki-lib-'));
    try {
      const target = join(dir, 'test');
      await writePki(target, pki);
      assert.equal((await stat(target)).mode & 0o777, 0o700);
      assert.deepEqual(await readPki(target), pki);

      const renewed = await renewLeaves(target, { validDays: 30 });
      assert.equal(renewed.ca.cert, pki.ca.cert);
      assert.notEqual(renewed.appBackend.cert, pki.appBackend.cert);
      assert.notEqual(renewed.policeBackend.key, pki.policeBackend.key);
      assert.deepEqual(await readPki(target), renewed);
      const app = describeCertificate(renewed.appBackend.cert);
      // Renewal keeps the extra names the certificate had, unless told otherwise.
      assert.ok(app.dnsNames.includes('app.example.org'));
      assert.ok(app.ipAddresses.includes('10.0.0.5'));
      assert.equal((app.notAfter.getTime() - app.notBefore.getTime()) / DAY_MS, 30);

      const moved = await renewLeaves(target, { hosts: { appBackend: ['app2.example.org'] } });
      const names = describeCertificate(moved.appBackend.cert).dnsNames;
      assert.deepEqual(names, ['app-backend', 'localhost', 'app2.example.org']);

      await assert.rejects(renewLeaves(join(dir, 'empty')), /ca\.crt not found/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function runCli(args: readonly string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('pki CLI', function () {
  this.timeout(10_000);
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pki-cli-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('init, refused re-init, renew, show', async () => {
    const out = join(dir, 'staging');
    const init = await runCli([
      'init',
      '--out',
      out,
      '--env',
      'staging',
      '--app-host',
      'a.example.org',
    ]);
    assert.equal(init.code, 0, init.stderr);
    assert.equal((await stat(out)).mode & 0o777, 0o700);
    for (const files of Object.values(PKI_FILES)) {
      assert.equal((await stat(join(out, files.key))).mode & 0o777, 0o600, files.key);
      assert.ok((await stat(join(out, files.cert))).isFile(), files.cert);
    }
    const first = await readPki(out);

    const again = await runCli(['init', '--out', out, '--env', 'staging']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already has a CA.*--force/);
    assert.deepEqual(await readPki(out), first);

    const renew = await runCli(['renew', '--out', out]);
    assert.equal(renew.code, 0, renew.stderr);
    const renewed = await readPki(out);
    assert.deepEqual(renewed.ca, first.ca);
    assert.notEqual(renewed.appBackend.cert, first.appBackend.cert);
    assert.notEqual(renewed.policeBackend.cert, first.policeBackend.cert);
    assert.notEqual(renewed.appBackend.key, first.appBackend.key);
    assert.equal((await stat(join(out, 'app-backend.key'))).mode & 0o777, 0o600);
    const caCert = new X509Certificate(renewed.ca.cert);
    assert.ok(new X509Certificate(renewed.appBackend.cert).verify(caCert.publicKey));

    const show = await runCli(['show', '--out', out]);
    assert.equal(show.code, 0, show.stderr);
    for (const name of ['CN=SmartBeacon staging CA', 'CN=app-backend', 'CN=police-backend']) {
      assert.ok(show.stdout.includes(name), `show prints ${name}`);
    }
    assert.match(show.stdout, /DNS:a\.example\.org/);
    assert.doesNotMatch(show.stdout, /PRIVATE KEY/);

    const forced = await runCli(['init', '--out', out, '--env', 'staging', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(await readFile(join(out, 'ca.key'), 'utf8'), first.ca.key);
  });

  it('tells usage errors (2) from failures (1)', async () => {
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /init[\s\S]*renew[\s\S]*show/);

    const usageErrors = [
      [],
      ['launch', '--out', dir],
      ['init', '--out', dir],
      ['init', '--out', dir, '--env', 'Bad Name'],
      ['init', '--out', dir, '--env', 'x', '--days', 'soon'],
      ['show', '--out', dir, '--force'],
      ['renew'],
      ['show', '--out', dir, '--unknown'],
    ];
    // In parallel: each run is a fresh Node process, and none of them writes anything.
    const results = await Promise.all(usageErrors.map(runCli));
    results.forEach((result, i) => {
      assert.equal(result.code, 2, `${usageErrors[i]?.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /^pki: /);
    });
    const missing = await runCli(['renew', '--out', join(dir, 'nothing')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /ca\.crt not found.*init/);
  });
});
