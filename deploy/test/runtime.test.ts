/**
 * The deployment's moving parts against real services on loopback: the entrypoint that turns
 * secret files into variables, the containers' health check, and (where HAProxy is installed)
 * the proxy configuration itself in front of two app-backend replicas.
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { request } from 'node:https';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { openDatabase, type Database } from '../../backend-kit/db.js';
import { loopbackConfig } from '../../app-backend/src/config.js';
import { type AppBackend, startAppBackend } from '../../app-backend/src/service.js';
import { newSessionKeys } from '../../police-backend/src/config.js';
import {
  DASHBOARD_DIR,
  type PoliceBackend,
  startPoliceBackend,
} from '../../police-backend/src/service.js';
import { capturedLogger } from '../../test/support/log-capture.js';
import { main as check } from '../docker/healthcheck.js';
import { type DeploymentPki, createDeploymentPki } from '../pki/pki.js';
import { readRepo, repoPath } from './deploy-files.js';

const SCRIPT = repoPath('deploy/bin/secret-env.sh');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(file: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const printEnv = [process.execPath, '-e', 'process.stdout.write(JSON.stringify(process.env))'];

describe("secret-env.sh (the images' entrypoint)", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secret-env-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads NAME_FILE into NAME, without the trailing newline, and drops NAME_FILE', async () => {
    const kek = randomBytes(32).toString('base64');
    writeFileSync(join(dir, 'kek'), `${kek}\n`);
    writeFileSync(join(dir, 'pw'), 'p4ss word\n\n');
    const result = await run('sh', [SCRIPT, ...printEnv], {
      APP_KEK_FILE: join(dir, 'kek'),
      PGPASSWORD_FILE: join(dir, 'pw'),
      APP_HOST: '0.0.0.0',
    });
    assert.equal(result.code, 0, result.stderr);
    const env = JSON.parse(result.stdout) as Record<string, string>;
    assert.equal(env.APP_KEK, kek);
    assert.equal(env.PGPASSWORD, 'p4ss word');
    assert.equal(env.APP_HOST, '0.0.0.0');
    assert.equal(env.APP_KEK_FILE, undefined);
    assert.equal(env.PGPASSWORD_FILE, undefined);
  });

  it('refuses (78) an unreadable file or a secret given both ways, and never echoes it', async () => {
    const both = await run('sh', [SCRIPT, ...printEnv], {
      APP_KEK: 'inline-secret-value',
      APP_KEK_FILE: join(dir, 'kek'),
    });
    assert.equal(both.code, 78);
    assert.match(both.stderr, /both APP_KEK and APP_KEK_FILE/);
    assert.doesNotMatch(both.stderr + both.stdout, /inline-secret-value/);
    const missing = await run('sh', [SCRIPT, ...printEnv], { PGPASSWORD_FILE: join(dir, 'none') });
    assert.equal(missing.code, 78);
    assert.match(missing.stderr, /PGPASSWORD_FILE: cannot read/);
    const bare = await run('sh', [SCRIPT], {});
    assert.equal(bare.code, 64);
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Answer {
  readonly status: number;
  readonly peerCn: string | undefined;
}

function get(
  port: number,
  path: string,
  tls: { ca: string; cert?: string; key?: string; servername?: string },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'GET',
        agent: false,
        timeout: 3000,
        ca: tls.ca,
        ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
        ...(tls.servername ? { servername: tls.servername } : {}),
      },
      (res) => {
        const cn = (res.socket as TLSSocket).getPeerCertificate().subject?.CN;
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, peerCn: Array.isArray(cn) ? cn[0] : cn }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function eventually(what: string, ok: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('health check and proxy against running backends', function () {
  this.timeout(60_000);
  let dir: string;
  let pki: DeploymentPki;
  let caPath: string;
  let db: Database;
  let replicas: AppBackend[];
  let police: PoliceBackend;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deploy-runtime-'));
    pki = await createDeploymentPki({ environment: 'test' });
    caPath = join(dir, 'ca.crt');
    writeFileSync(caPath, pki.ca.cert);
    db = await openDatabase({ dataDir: 'memory://' });
    const tls = { cert: pki.appBackend.cert, key: pki.appBackend.key, ca: pki.ca.cert };
    // Two replicas on one database, as in compose.yaml.
    replicas = [];
    for (let i = 0; i < 2; i++) {
      replicas.push(
        await startAppBackend(
          loopbackConfig({
            tls,
            kek: randomBytes(32),
            healthAuthority: {
              publicKey: pki.ca.cert,
              issuer: 'health-authority',
              audience: 'smartbeacon-app-backend',
            },
            police: { url: 'https://127.0.0.1:9', identity: 'police-backend' },
          }),
          { db, timers: false, log: capturedLogger(`app-backend-${i}`).log },
        ),
      );
    }
    police = await startPoliceBackend(
      {
        host: '127.0.0.1',
        officerPort: 0,
        internalPort: 0,
        databaseUrl: undefined,
        dataDir: 'memory://',
        tls: { cert: pki.policeBackend.cert, key: pki.policeBackend.key, ca: pki.ca.cert },
        app: { url: 'https://127.0.0.1:9', identity: 'app-backend' },
        sessionKeys: newSessionKeys(),
        commandIntervalMs: 60_000,
        logLevel: 'info',
      },
      { timers: false, log: capturedLogger('police-backend').log },
    );
  });

  after(async () => {
    await police?.close();
    // A replica the proxy test stopped closes again harmlessly.
    for (const replica of replicas ?? []) await replica.close();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports the app backend healthy over TLS that chains to the deployment CA', async () => {
    const reasons: string[] = [];
    const healthcheck = (argv: string[], env: Record<string, string | undefined>) =>
      check(argv, env, (line) => reasons.push(line));
    const replica = replicas[0] as AppBackend;
    const env = { APP_PUBLIC_PORT: String(replica.publicPort), APP_TLS_CA: caPath };
    assert.equal(await healthcheck(['app-backend'], env), 0);
    // As Docker runs it: the compiled script, its own process.
    const cli = await run(
      process.execPath,
      [repoPath('dist/deploy/docker/healthcheck.js'), 'app-backend'],
      env,
    );
    assert.equal(cli.code, 0, cli.stderr);

    // Another environment's CA is not trusted: the check fails rather than skipping verification.
    const other = await createDeploymentPki({ environment: 'other' });
    const otherCa = join(dir, 'other-ca.crt');
    writeFileSync(otherCa, other.ca.cert);
    assert.equal(await healthcheck(['app-backend'], { ...env, APP_TLS_CA: otherCa }), 1);
    assert.equal(await healthcheck(['app-backend'], { ...env, APP_TLS_CA: undefined as never }), 1);
    assert.equal(
      await healthcheck(['app-backend'], { ...env, APP_PUBLIC_PORT: String(await freePort()) }),
      1,
    );
    assert.equal(await healthcheck(['nothing'], env), 2);
    assert.match(
      reasons.join('\n'),
      /UNABLE_TO_VERIFY_LEAF_SIGNATURE[\s\S]*no CA[\s\S]*ECONNREFUSED/,
    );
  });

  it("reports the police backend healthy on the officers' listener", async function () {
    if (!existsSync(join(DASHBOARD_DIR, 'index.html'))) {
      // Reason: the dashboard is built by `npm run build` (npm test always builds it first);
      // without it the page (and the check) is 404.
      console.log(`      (skipped: ${DASHBOARD_DIR} is not built; run npm run build)`);
      this.skip();
    }
    const env = { POLICE_OFFICER_PORT: String(police.officerPort), POLICE_TLS_CA: caPath };
    assert.equal(await check(['police-backend'], env), 0);
  });

  it('deploy/haproxy/haproxy.cfg balances, checks and passes TLS through to the replicas', async function () {
    const haproxy = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy', '/usr/bin/haproxy'].find(
      existsSync,
    );
    if (!haproxy) {
      // Reason: HAProxy is a Debian package; `.ci/run` installs it, so CI always runs this.
      console.log('      (skipped: HAProxy is not installed; apt-get install haproxy runs it)');
      this.skip();
    }
    const [a, b] = replicas as [AppBackend, AppBackend];
    const ports = {
      public: await freePort(),
      internal: await freePort(),
      monitor: await freePort(),
    };
    // The production file, with only addresses changed: loopback ports instead of Docker names.
    let config = readRepo('deploy/haproxy/haproxy.cfg')
      .replaceAll('/run/secrets/ca.crt', caPath)
      .replace('bind :8443', `bind 127.0.0.1:${ports.public}`)
      .replace('bind :8444', `bind 127.0.0.1:${ports.internal}`)
      .replace('bind 127.0.0.1:8405', `bind 127.0.0.1:${ports.monitor}`)
      .replaceAll('inter 5s', 'inter 200ms')
      .replaceAll(' resolvers docker init-addr last,libc,none', '')
      .replace('check port 8443', 'check')
      // This machine's file limit may be lower than a container's; the limit is not under test.
      .replace('maxconn 20000', 'maxconn 1000');
    for (const [name, replica] of [
      ['app-backend-1', a],
      ['app-backend-2', b],
    ] as const) {
      config = config
        .replace(`${name}:8443`, `127.0.0.1:${replica.publicPort}`)
        .replace(`${name}:8444`, `127.0.0.1:${replica.internalPort} port ${replica.publicPort}`);
    }
    assert.doesNotMatch(config, /app-backend-\d:\d/, 'every server was rewritten');
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(cfg, config);
    const check = await run(haproxy as string, ['-c', '-f', cfg], {});
    assert.equal(check.code, 0, check.stdout + check.stderr);

    const output: string[] = [];
    const child: ChildProcess = spawn(haproxy as string, ['-db', '-f', cfg], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
    child.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
    child.once('exit', (code) => output.push(`haproxy exited (${code})`));
    try {
      const monitor = () =>
        new Promise<number>((resolve, reject) => {
          httpGet({ host: '127.0.0.1', port: ports.monitor, path: '/healthz' }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          }).on('error', reject);
        });
      await eventually('the proxy to see a healthy replica', async () => (await monitor()) === 200);
      const ca = pki.ca.cert;
      // TLS ends in the replica: the certificate the client sees is the replica's own.
      await eventually('both replicas up', async () => {
        const answer = await get(ports.public, '/readyz', { ca, servername: 'app-backend' });
        return answer.status === 200 && answer.peerCn === 'app-backend';
      });
      // The internal frontend: mutual TLS end to end, the police backend's certificate accepted...
      const internal = await get(ports.internal, '/healthz', {
        ca,
        cert: pki.policeBackend.cert,
        key: pki.policeBackend.key,
        servername: 'app-backend',
      });
      assert.equal(internal.status, 200);
      // ...and a client without one refused by the replica, since the proxy cannot terminate TLS.
      await assert.rejects(get(ports.internal, '/healthz', { ca, servername: 'app-backend' }));
      // The other backend's identity passes TLS but not the route: only police-backend may call.
      const wrong = await get(ports.internal, '/healthz', {
        ca,
        cert: pki.appBackend.cert,
        key: pki.appBackend.key,
        servername: 'app-backend',
      });
      assert.equal(wrong.status, 403);

      // One replica stops: the proxy's checks take it out and every request still succeeds.
      await a.close();
      await eventually('the stopped replica to be taken out', async () => {
        for (let i = 0; i < 4; i++) {
          const answer = await get(ports.public, '/healthz', { ca, servername: 'app-backend' });
          if (answer.status !== 200) return false;
        }
        return true;
      });
      for (let i = 0; i < 10; i++) {
        const answer = await get(ports.public, '/healthz', { ca, servername: 'app-backend' });
        assert.equal(answer.status, 200);
      }
      assert.equal(await monitor(), 200, 'still healthy with one replica');
      // The proxy logged the connections, without any client address.
      const logged = output
        .join('')
        .split('\n')
        .filter((l) => l.startsWith('public '));
      assert.ok(logged.length > 0, 'connections are logged');
      for (const line of logged) assert.doesNotMatch(line, /\d+\.\d+\.\d+\.\d+|::1/);
    } catch (error) {
      throw new Error(`${(error as Error).message}\nHAProxy said:\n${output.join('')}`, {
        cause: error,
      });
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
});
