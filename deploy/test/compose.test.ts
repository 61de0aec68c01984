/**
 * The production deployment, checked without Docker: deploy/compose.yaml, the HAProxy
 * configuration, both Dockerfiles and the systemd units are read and held against the services'
 * own code — each backend's `loadConfig` must accept the environment they give it (with the
 * secrets folder the setup tool makes), ports and names must agree across files, and every file
 * they name must exist or be made by a documented command.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { accessSync, constants, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { MIGRATIONS_DIR as APP_MIGRATIONS } from '../../app-backend/src/service.js';
import { loadConfig as loadAppConfig } from '../../app-backend/src/config.js';
import {
  DASHBOARD_DIR,
  MIGRATIONS_DIR as POLICE_MIGRATIONS,
} from '../../police-backend/src/service.js';
import { loadConfig as loadPoliceConfig } from '../../police-backend/src/config.js';
import { probeFor } from '../docker/healthcheck.js';
import { APP_NODE_FLAGS, APP_RUNTIME_ENV } from '../runtime-env.js';
import { IDENTITIES, createDeploymentPki, describeCertificate, writePki } from '../pki/pki.js';
import { CONTAINER_IDS, SECRET_FILES, prepareSecrets } from '../setup/secrets.js';
import {
  type HaproxySection,
  ROOT,
  type Stage,
  type YamlMap,
  asList,
  asMap,
  dockerIgnored,
  exists,
  globToRegExp,
  importClosure,
  interpolate,
  isMap,
  listFiles,
  parseDockerfile,
  parseEnvAssignments,
  parseHaproxy,
  parseUnit,
  parseYaml,
  readIgnoreFile,
  readRepo,
  repoPath,
  section,
  serviceEnvironment,
  serviceNetworks,
  servicePorts,
  serviceSecrets,
  unitValues,
  wordAfter,
} from './deploy-files.js';

type Env = Record<string, string | undefined>;
type Backend = 'app-backend' | 'police-backend';

const SECRET_ENV_SCRIPT = repoPath('deploy/bin/secret-env.sh');
const SECRETS_VARIABLE = 'SMARTBEACON_SECRETS';

/** Variables each backend reads that the deployment leaves at their defaults on purpose. */
const DEFAULTED: Readonly<Record<Backend, Readonly<Record<string, string>>>> = {
  'app-backend': {
    APP_DATA_DIR: 'the embedded database is unused once DATABASE_URL is set',
    APP_WINDOW_SECONDS: 'alert rule: the tested default (docs/BENCHMARKS.md)',
    APP_GRACE_SECONDS: 'alert rule: the tested default (docs/BENCHMARKS.md)',
    APP_MAX_AGE_SECONDS: 'alert rule',
    APP_MAX_SKEW_SECONDS: 'alert rule',
    APP_LATE_EVIDENCE_MAX_AGE_SECONDS: 'alert rule',
    APP_SLEW_PPM: 'alert rule',
    APP_DRIFT_ALERT_SECONDS: 'alert rule',
    APP_LOW_BATTERY_PERCENT: 'alert rule',
    APP_CRITICAL_BATTERY_PERCENT: 'alert rule',
    APP_SPOOFING_THRESHOLD: 'alert rule',
    APP_RELAY_SILENT_SECONDS: 'alert rule',
    APP_SILENT_GRACE_SECONDS: 'alert rule',
    APP_MAX_ABSENCE_SECONDS: 'alert rule',
    APP_WATCHDOG_INTERVAL_MS: 'loop period',
    APP_DELIVERY_INTERVAL_MS: 'loop period',
    APP_PRESENCE_PER_10MIN: 'rate limit',
    APP_HANDSHAKE_TIMEOUT_MS: 'server limit: backend-kit/server-limits.ts',
    APP_HEADERS_TIMEOUT_MS: 'server limit: backend-kit/server-limits.ts',
    APP_REQUEST_TIMEOUT_MS: 'server limit: backend-kit/server-limits.ts',
    APP_KEEP_ALIVE_TIMEOUT_MS: 'server limit: backend-kit/server-limits.ts',
    APP_TIMEOUT_CHECK_INTERVAL_MS: 'server limit: backend-kit/server-limits.ts',
    APP_MAX_CONNECTIONS: 'server limit: backend-kit/server-limits.ts',
    APP_MAX_INTERNAL_CONNECTIONS: 'server limit: backend-kit/server-limits.ts',
  },
  'police-backend': {
    POLICE_DATA_DIR: 'the embedded database is unused once DATABASE_URL is set',
    POLICE_COMMAND_INTERVAL_MS: 'loop period',
    POLICE_HANDSHAKE_TIMEOUT_MS: 'server limit: backend-kit/server-limits.ts',
    POLICE_HEADERS_TIMEOUT_MS: 'server limit: backend-kit/server-limits.ts',
    POLICE_REQUEST_TIMEOUT_MS: 'server limit: backend-kit/server-limits.ts',
    POLICE_KEEP_ALIVE_TIMEOUT_MS: 'server limit: backend-kit/server-limits.ts',
    POLICE_TIMEOUT_CHECK_INTERVAL_MS: 'server limit: backend-kit/server-limits.ts',
    POLICE_MAX_CONNECTIONS: 'server limit: backend-kit/server-limits.ts',
    POLICE_MAX_INTERNAL_CONNECTIONS: 'server limit: backend-kit/server-limits.ts',
    POLICE_INTAKE_MAX_PENDING: 'load shedding bound (police-backend/src/intake.ts)',
  },
};

/** Variables a deployment may set that the configuration code does not read itself. */
const NOT_CONFIG = new Set(['NODE_ENV', 'PGPASSWORD', ...Object.keys(APP_RUNTIME_ENV)]);

const LOADERS: Readonly<Record<Backend, (env: Env) => unknown>> = {
  'app-backend': loadAppConfig,
  'police-backend': loadPoliceConfig,
};

const CONFIG_SOURCES: Readonly<Record<Backend, string>> = {
  'app-backend': 'app-backend/src/config.ts',
  'police-backend': 'police-backend/src/config.ts',
};

/** Every variable `loadConfig` reads, seen through a proxy (cross-checked against its source). */
function variablesRead(backend: Backend): Set<string> {
  const seen = new Set<string>();
  const env = new Proxy({} as Env, {
    get(_target, key) {
      if (typeof key === 'string') seen.add(key);
      return undefined;
    },
  });
  assert.throws(() => LOADERS[backend](env), { code: 'CONFIG_INVALID' });
  const source = readRepo(CONFIG_SOURCES[backend]);
  // Other than its helpers' env[name], any dynamic read would hide variables from this check.
  assert.doesNotMatch(
    source,
    /env\[(?!name\])/,
    `${CONFIG_SOURCES[backend]} reads env[...] dynamically`,
  );
  for (const m of source.matchAll(/\b(?:env\.|(?:int|file|port)\(\s*')([A-Z][A-Z0-9_]+)/g)) {
    assert.ok(seen.has(m[1] as string), `${m[1]} is read only on some paths of loadConfig`);
  }
  return seen;
}

/** The NAMEs deploy/bin/secret-env.sh resolves from NAME_FILE. */
function fileVariables(): string[] {
  const m = /for name in ([A-Z_ ]+); do/.exec(readFileSync(SECRET_ENV_SCRIPT, 'utf8'));
  assert.ok(m, 'secret-env.sh lists its variables');
  return (m[1] as string).trim().split(/\s+/);
}

/** The environment after the entrypoint script: NAME_FILE read into NAME, as in the container. */
function throughSecretEnv(env: Record<string, string>): Record<string, string> {
  const out = execFileSync(
    'sh',
    [
      SECRET_ENV_SCRIPT,
      process.execPath,
      '-e',
      'process.stdout.write(JSON.stringify(process.env))',
    ],
    { env: { ...env, PATH: process.env.PATH ?? '/usr/bin:/bin' }, encoding: 'utf8' },
  );
  const all = JSON.parse(out) as Record<string, string>;
  const resolved = fileVariables().filter((name) => env[`${name}_FILE`] !== undefined);
  return Object.fromEntries(
    Object.entries(all).filter(([k]) => (k in env && !k.endsWith('_FILE')) || resolved.includes(k)),
  );
}

function urlOf(text: string | undefined, what: string): URL {
  assert.ok(text, `${what} is set`);
  return new URL(text);
}

describe('deployment: Compose, proxy, images, units', function () {
  this.timeout(60_000);

  let work: string;
  let secretsDir: string;
  let services: Record<string, YamlMap>;
  let compose: YamlMap;
  let variables: Map<string, { hasDefault: boolean }>;
  let haproxy: HaproxySection[];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'deploy-test-'));
    // The secrets folder exactly as deploy/README.md makes it: PKI first, then the setup tool.
    const pkiDir = join(work, 'pki');
    await writePki(pkiDir, await createDeploymentPki({ environment: 'test' }));
    const ha = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const haPublicKey = join(work, 'authority.pub');
    writeFileSync(haPublicKey, ha.publicKey.export({ type: 'spki', format: 'pem' }));
    secretsDir = join(work, 'secrets');
    await prepareSecrets({
      out: secretsDir,
      pki: pkiDir,
      environment: 'test',
      haPublicKey,
      chown: false,
    });

    const parsed = interpolate(parseYaml(readRepo('deploy/compose.yaml')), {
      [SECRETS_VARIABLE]: secretsDir,
    });
    compose = asMap(parsed.value, 'compose.yaml');
    variables = parsed.variables;
    services = Object.fromEntries(
      Object.entries(asMap(compose.services, 'services')).map(([k, v]) => [k, asMap(v, k)]),
    );
    haproxy = parseHaproxy(readRepo('deploy/haproxy/haproxy.cfg'));
  });

  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  const builtFrom = (dockerfile: string) =>
    Object.entries(services)
      .filter(([, s]) => isMap(s.build) && String(s.build.dockerfile).endsWith(dockerfile))
      .map(([name]) => name);
  const appReplicas = () => builtFrom('app-backend.Dockerfile');
  const policeServices = () => builtFrom('police-backend.Dockerfile');
  const backendOf = (name: string): Backend =>
    appReplicas().includes(name) ? 'app-backend' : 'police-backend';

  /** A service's environment with its secrets at their paths in the generated folder. */
  function hostEnvironment(name: string): Record<string, string> {
    const service = services[name] as YamlMap;
    const mounts = serviceSecrets(service);
    const topSecrets = asMap(compose.secrets, 'secrets');
    const env = serviceEnvironment(service);
    for (const [key, value] of Object.entries(env)) {
      const source = mounts.get(value);
      if (source === undefined) {
        assert.ok(!value.startsWith('/run/secrets/'), `${name}: ${key} names an unmounted secret`);
        continue;
      }
      env[key] = String(asMap(topSecrets[source], source).file);
    }
    return env;
  }

  it('has two app-backend replicas, one police backend and a database for each backend', () => {
    assert.ok(appReplicas().length >= 2, 'at least two app-backend replicas');
    assert.equal(policeServices().length, 1);
    for (const name of Object.keys(services)) {
      const service = services[name] as YamlMap;
      assert.ok(service.restart, `${name} has a restart policy`);
      assert.ok(isMap(service.healthcheck), `${name} has a health check`);
      assert.ok(asList(asMap(service.healthcheck, name).test).length > 1, `${name}: check command`);
      for (const [dependency, options] of Object.entries(
        isMap(service.depends_on)
          ? service.depends_on
          : Object.fromEntries(asList(service.depends_on).map((d) => [String(d), null])),
      )) {
        assert.ok(services[dependency], `${name} depends on an existing service`);
        if (isMap(options) && options.condition === 'service_healthy')
          assert.ok(isMap(services[dependency]?.healthcheck), `${dependency} can become healthy`);
      }
    }
  });

  it('gives every variable the backends read a value or a deliberate default', () => {
    for (const name of [...appReplicas(), ...policeServices()]) {
      const backend = backendOf(name);
      const read = variablesRead(backend);
      const declared = serviceEnvironment(services[name] as YamlMap);
      const env = throughSecretEnv(hostEnvironment(name));
      for (const variable of read) {
        if (variable in env) continue;
        assert.ok(
          variable in DEFAULTED[backend],
          `${name}: ${variable} is read by loadConfig but neither set nor deliberately defaulted`,
        );
      }
      for (const variable of Object.keys(DEFAULTED[backend])) {
        assert.ok(read.has(variable), `${variable} is no longer read: drop it from DEFAULTED`);
        assert.ok(!(variable in env), `${name} sets ${variable}: drop it from DEFAULTED`);
      }
      // A typo in a variable name would otherwise be silently ignored by the service.
      for (const variable of Object.keys(declared)) {
        const viaFile =
          variable.endsWith('_FILE') && fileVariables().includes(variable.slice(0, -5));
        assert.ok(
          read.has(variable) || NOT_CONFIG.has(variable) || viaFile,
          `${name} sets ${variable}, which nothing reads`,
        );
      }
      // Secrets never appear as values: only as files.
      for (const secret of ['APP_KEK', 'PGPASSWORD', 'DATABASE_URL']) {
        if (declared[secret] !== undefined)
          assert.doesNotMatch(declared[secret], /:[^/@]+@/, `${name}: no password in ${secret}`);
      }
      assert.equal(declared.APP_KEK, undefined, `${name}: APP_KEK only through APP_KEK_FILE`);
      assert.equal(declared.PGPASSWORD, undefined, `${name}: PGPASSWORD only from a file`);
    }
  });

  it('starts each backend with a valid configuration (loadConfig accepts the environment)', () => {
    for (const name of appReplicas()) {
      const config = loadAppConfig(throughSecretEnv(hostEnvironment(name)));
      assert.equal(config.host, '0.0.0.0', `${name} listens beyond the container's loopback`);
      assert.equal(config.kek.length, 32);
      assert.equal(config.police.identity, IDENTITIES.policeBackend);
      assert.match(describeCertificate(config.tls.cert).subject, /CN=app-backend/);
      assert.ok(config.databaseUrl, `${name} uses PostgreSQL`);
    }
    for (const name of policeServices()) {
      const env = throughSecretEnv(hostEnvironment(name));
      const config = loadPoliceConfig(env);
      assert.equal(config.host, '0.0.0.0');
      assert.equal(config.app.identity, IDENTITIES.appBackend);
      assert.match(describeCertificate(config.tls.cert).subject, /CN=police-backend/);
      // A fixed session key pair, read from the secrets folder rather than made at each start.
      assert.equal(
        config.sessionKeys.publicKey,
        readFileSync(join(secretsDir, SECRET_FILES.policeSessionPublicKey), 'utf8'),
      );
      assert.ok(config.databaseUrl);
    }
  });

  it('keeps each database to its own backend (the privacy split)', () => {
    const dbPasswords = new Set<string>();
    for (const names of [appReplicas(), policeServices()]) {
      for (const name of names) {
        const env = serviceEnvironment(services[name] as YamlMap);
        const url = urlOf(env.DATABASE_URL, `${name} DATABASE_URL`);
        const dbName = url.hostname;
        const db = services[dbName];
        assert.ok(db, `${name}'s database ${dbName} is a service`);
        const dbEnv = serviceEnvironment(db);
        assert.equal(decodeURIComponent(url.username), dbEnv.POSTGRES_USER, `${name}: user`);
        assert.equal(url.pathname.slice(1), dbEnv.POSTGRES_DB, `${name}: database`);
        // The backend and its database read the same password file.
        const backendSecret = serviceSecrets(services[name] as YamlMap).get(
          env.PGPASSWORD_FILE ?? '',
        );
        const dbSecret = serviceSecrets(db).get(dbEnv.POSTGRES_PASSWORD_FILE ?? '');
        assert.ok(backendSecret && backendSecret === dbSecret, `${name}: one password secret`);
        dbPasswords.add(backendSecret);
        // Only this backend's services share a network with its database.
        const dbNetworks = [...serviceNetworks(db).keys()];
        for (const [other, service] of Object.entries(services)) {
          if (other === dbName) continue;
          const shared = dbNetworks.some((n) => serviceNetworks(service).has(n));
          const sameSide = names.includes(other);
          assert.equal(
            shared,
            sameSide,
            `${other} ${shared ? 'reaches' : 'cannot reach'} ${dbName}`,
          );
        }
        const networks = asMap(compose.networks, 'networks');
        for (const net of dbNetworks)
          assert.equal(asMap(networks[net], net).internal, true, `${net} is internal`);
      }
    }
    assert.equal(dbPasswords.size, 2, 'each database has its own password');
  });

  it('connects the backends to each other by the names and ports they listen on', () => {
    const police = policeServices()[0] as string;
    const policeEnv = serviceEnvironment(services[police] as YamlMap);
    for (const name of appReplicas()) {
      const env = serviceEnvironment(services[name] as YamlMap);
      const url = urlOf(env.POLICE_BACKEND_URL, 'POLICE_BACKEND_URL');
      assert.equal(url.hostname, police);
      assert.equal(url.port, policeEnv.POLICE_INTERNAL_PORT);
      assert.ok(
        [...serviceNetworks(services[name] as YamlMap).keys()].some((n) =>
          serviceNetworks(services[police] as YamlMap).has(n),
        ),
        `${name} shares a network with ${police}`,
      );
    }
    // The police backend reaches the replicas' internal listener through the proxy.
    const appUrl = urlOf(policeEnv.APP_BACKEND_INTERNAL_URL, 'APP_BACKEND_INTERNAL_URL');
    const proxy = Object.entries(services).find(([, s]) =>
      [...serviceNetworks(s).values()].some((aliases) => aliases.includes(appUrl.hostname)),
    );
    assert.ok(proxy, `a service answers to ${appUrl.hostname}`);
    const [proxyName, proxyService] = proxy;
    const internal = section(haproxy, 'frontend', 'internal');
    assert.equal(bindPort(internal), Number(appUrl.port), 'the proxy listens where police calls');
    assert.ok(
      [...serviceNetworks(proxyService).keys()].some((n) =>
        serviceNetworks(services[police] as YamlMap).has(n),
      ),
      `${police} shares a network with ${proxyName}`,
    );
  });

  it('publishes only the proxy and the dashboard, on the ports they listen on', () => {
    const published = Object.entries(services).filter(([, s]) => servicePorts(s).length > 0);
    const proxyName = proxyService();
    assert.deepEqual(
      published.map(([n]) => n).sort(),
      [proxyName, ...policeServices()].sort(),
      'no other service has a host port',
    );
    const proxyPorts = servicePorts(services[proxyName] as YamlMap);
    assert.deepEqual(
      proxyPorts.map((p) => p.containerPort),
      [bindPort(section(haproxy, 'frontend', 'public'))],
    );
    for (const name of policeServices()) {
      const env = serviceEnvironment(services[name] as YamlMap);
      const ports = servicePorts(services[name] as YamlMap);
      assert.deepEqual(
        ports.map((p) => p.containerPort),
        [Number(env.POLICE_OFFICER_PORT)],
        'the officers dashboard only, never the internal listener',
      );
      // Bound to loopback unless the operator names the officers' network.
      assert.equal(ports[0]?.hostIp, '127.0.0.1');
    }
    for (const [name, service] of published) {
      assert.ok(
        [...serviceNetworks(service).keys()].some(
          (n) => asMap(asMap(compose.networks, 'networks')[n] ?? {}, n).internal !== true,
        ),
        `${name} is on a network that can publish`,
      );
    }
  });

  it('health-checks each backend on the port and path it serves', () => {
    for (const name of [...appReplicas(), ...policeServices()]) {
      const backend = backendOf(name);
      const env = serviceEnvironment(services[name] as YamlMap);
      const test = asList(asMap(services[name]?.healthcheck, name).test).map(String);
      assert.equal(test[0], 'CMD');
      assert.deepEqual(test.slice(1, 4), ['node', 'dist/deploy/docker/healthcheck.js', backend]);
      // The explicit URL is the one the check would derive from the service's own variables.
      assert.equal(test[4], probeFor(backend, env).url, `${name}: health check URL`);
      const port = Number(new URL(test[4] as string).port);
      assert.equal(
        port,
        Number(backend === 'app-backend' ? env.APP_PUBLIC_PORT : env.POLICE_OFFICER_PORT),
      );
    }
    // Without the variables, the check uses the same defaults as the configuration code.
    const appEnv = throughSecretEnv(hostEnvironment(appReplicas()[0] as string));
    delete appEnv.APP_PUBLIC_PORT;
    assert.equal(
      Number(new URL(probeFor('app-backend', {}).url).port),
      loadAppConfig(appEnv).publicPort,
    );
    const policeEnv = throughSecretEnv(hostEnvironment(policeServices()[0] as string));
    delete policeEnv.POLICE_OFFICER_PORT;
    assert.equal(
      Number(new URL(probeFor('police-backend', {}).url).port),
      loadPoliceConfig(policeEnv).officerPort,
    );
    // The proxy's own check asks its loopback monitor.
    const proxy = asList(asMap(services[proxyService()]?.healthcheck, 'proxy').test).join(' ');
    const monitor = section(haproxy, 'frontend', 'health');
    assert.ok(proxy.includes(`/dev/tcp/127.0.0.1/${bindPort(monitor)}`));
    const uri = monitor.lines.find((l) => l[0] === 'monitor-uri')?.[1];
    assert.ok(uri && proxy.includes(`GET ${uri} `));
  });

  it('points the proxy at every replica, by name and configured port, with TLS checks', () => {
    const defaults = section(haproxy, 'defaults');
    assert.ok(
      defaults.lines.some((l) => l.join(' ') === 'mode tcp'),
      'TCP mode: TLS passthrough',
    );
    const text = readRepo('deploy/haproxy/haproxy.cfg');
    // The replicas must never learn client addresses; the proxy does not log them either.
    for (const forbidden of [/send-proxy/, /%ci/, /%cp/, /option\s+tcplog/, /option\s+httplog/])
      assert.doesNotMatch(text.replace(/#.*$/gm, ''), forbidden);
    // Passthrough: the proxy holds no certificate or key of its own.
    assert.doesNotMatch(text.replace(/#.*$/gm, ''), /\bbind\b.*\bssl\b|(^|\s)crt\s/);
    const proxyName = proxyService();
    const proxyMounts = serviceSecrets(services[proxyName] as YamlMap);
    for (const [backendName, portVariable] of [
      ['app_public', 'APP_PUBLIC_PORT'],
      ['app_internal', 'APP_INTERNAL_PORT'],
    ] as const) {
      const backend = section(haproxy, 'backend', backendName);
      const servers = backend.lines.filter((l) => l[0] === 'server');
      assert.deepEqual(
        servers.map((s) => (s[2] ?? '').split(':')[0]).sort(),
        [...appReplicas()].sort(),
        `${backendName} lists every replica`,
      );
      const defaultServer = backend.lines.find((l) => l[0] === 'default-server') ?? [];
      for (const server of servers) {
        const [host, port] = (server[2] ?? '').split(':');
        const env = serviceEnvironment(services[host as string] as YamlMap);
        assert.equal(port, env[portVariable], `${backendName}: ${host} port`);
        const options = [...defaultServer, ...server];
        assert.ok(options.includes('check') && options.includes('check-ssl'), 'TLS health check');
        const checkPort = wordAfter(options, 'port') ?? port;
        assert.equal(checkPort, env.APP_PUBLIC_PORT, `${backendName}: checked on the public port`);
        assert.equal(wordAfter(options, 'verify'), 'required');
        const caFile = wordAfter(options, 'ca-file') ?? '';
        assert.ok(proxyMounts.has(caFile), `${caFile} is mounted into ${proxyName}`);
        assert.equal(proxyMounts.get(caFile), 'ca.crt');
        assert.equal(wordAfter(options, 'verifyhost'), IDENTITIES.appBackend);
      }
      assert.ok(
        backend.lines.some((l) => l.join(' ').startsWith('http-check send meth GET uri /readyz')),
      );
    }
    assert.match(readRepo('app-backend/src/http.ts'), /app\.get\('\/readyz'/);
    // The configuration is mounted where the image reads it.
    const volumes = asList(services[proxyName]?.volumes).map(String);
    const config = volumes.find((v) => v.endsWith(':/usr/local/etc/haproxy/haproxy.cfg:ro'));
    assert.ok(config, 'haproxy.cfg mounted read-only');
    assert.ok(exists(join(repoPath('deploy'), config.split(':')[0] as string)));
  });

  it('names only files that exist or that the setup tool makes, and never ca.key', () => {
    const topSecrets = asMap(compose.secrets, 'secrets');
    const used = new Set(Object.values(services).flatMap((s) => [...serviceSecrets(s).values()]));
    const made = new Set<string>(Object.values(SECRET_FILES));
    for (const [name, spec] of Object.entries(topSecrets)) {
      const file = String(asMap(spec, name).file);
      assert.ok(used.has(name), `secret ${name} is used`);
      assert.equal(dirname(file), secretsDir, `${name} is in the secrets folder`);
      assert.ok(made.has(basename(file)), `${basename(file)} is made by the setup tool`);
      assert.ok(exists(file), `${file} exists once the setup tool has run`);
      assert.notEqual(basename(file), 'ca.key');
    }
    for (const name of used) assert.ok(topSecrets[name], `secret ${name} is declared`);
    assert.deepEqual(
      [...made].sort(),
      Object.values(topSecrets)
        .map((s) => basename(String(asMap(s, 'secret').file)))
        .sort(),
      'every file the setup tool makes is used',
    );
    // Other variables: each has a default, and deploy/README.md documents it.
    const readme = readRepo('deploy/README.md');
    for (const [name, { hasDefault }] of variables) {
      assert.ok(hasDefault, `compose variable ${name} has a default`);
      assert.ok(readme.includes(`\`${name}\``), `deploy/README.md documents ${name}`);
    }
    for (const [name, service] of Object.entries(services)) {
      for (const volume of asList(service.volumes).map(String)) {
        const [source] = volume.split(':');
        if (source?.startsWith('.') || source?.startsWith('/'))
          assert.ok(exists(join(repoPath('deploy'), source)), `${name}: ${source} exists`);
        else
          assert.ok(
            source && asMap(compose.volumes, 'volumes')[source] !== undefined,
            `${name}: volume ${source} declared`,
          );
      }
      const image = String(service.image ?? '');
      if (isMap(service.build)) {
        const context = join(repoPath('deploy'), String(service.build.context));
        assert.equal(relative(context, ROOT), '', `${name} builds from the repository root`);
        const dockerfile = join(context, String(service.build.dockerfile));
        assert.ok(exists(dockerfile), `${dockerfile} exists`);
        assert.ok(exists(`${dockerfile}.dockerignore`), `${dockerfile}.dockerignore exists`);
      } else {
        // Third-party images are pinned to a release line, never "latest".
        assert.match(image, /^[a-z0-9./-]+:\d+(\.\d+)*(-[a-z0-9]+)?$/, `${name}: pinned image`);
      }
    }
  });

  function proxyService(): string {
    const found = Object.entries(services).find(([, s]) =>
      asList(s.volumes).some((v) => String(v).includes('haproxy.cfg')),
    );
    assert.ok(found, 'a proxy service mounts haproxy.cfg');
    return found[0];
  }

  for (const backend of ['app-backend', 'police-backend'] as const) {
    describe(`${backend} image`, () => {
      const dockerfilePath = `deploy/docker/${backend}.Dockerfile`;
      let stages: Stage[];
      let runtime: Stage;
      let copies: Map<string, string>;
      const entries =
        backend === 'app-backend'
          ? ['dist/app-backend/src/main.js']
          : [
              'dist/police-backend/src/main.js',
              'dist/police-backend/src/add-officer.js',
              'dist/police-backend/src/audit-verify.js',
            ];

      before(() => {
        stages = parseDockerfile(readRepo(dockerfilePath));
        runtime = stages.at(-1) as Stage;
        copies = runtimeFiles(stages);
      });

      it('builds in stages on Node 20 and runs as its own non-root user', () => {
        for (const stage of stages) assert.equal(stage.from.split(':')[0], 'node');
        for (const stage of stages) assert.match(stage.from, /^node:20-bookworm-slim$/);
        const build = stages.find((s) => s.name === 'build') as Stage;
        const runs = (s: Stage) => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.raw);
        assert.ok(runs(build).some((r) => /\bnpm ci\b/.test(r)));
        assert.ok(runs(build).some((r) => /\bnpm run build\b/.test(r)));
        const deps = stages.find((s) => s.name === 'deps') as Stage;
        assert.ok(
          runs(deps).some((r) => /npm ci\b.*--omit=dev/.test(r)),
          'production deps only',
        );
        const user = runtime.instructions.filter((i) => i.op === 'USER').at(-1);
        const uid =
          backend === 'app-backend' ? CONTAINER_IDS.appBackend : CONTAINER_IDS.policeBackend;
        assert.equal(user?.args[0], `${uid}:${uid}`, 'the user the secrets folder is given to');
        const entrypoint = runtime.instructions.find((i) => i.op === 'ENTRYPOINT');
        assert.deepEqual(entrypoint?.args, ['secret-env']);
        const cmd = runtime.instructions.find((i) => i.op === 'CMD');
        // With the V8 flags the benches measured (deploy/runtime-env.ts), for the app backend.
        const flags = backend === 'app-backend' ? APP_NODE_FLAGS : [];
        assert.deepEqual(cmd?.args, ['node', ...flags, entries[0]]);
        const health = runtime.instructions.find((i) => i.op === 'HEALTHCHECK');
        assert.ok(health?.raw.includes(`"dist/deploy/docker/healthcheck.js", "${backend}"`));
        const exposed = runtime.instructions
          .filter((i) => i.op === 'EXPOSE')
          .flatMap((i) => i.args.map(Number));
        const name = backend === 'app-backend' ? appReplicas()[0] : policeServices()[0];
        const env = serviceEnvironment(services[name as string] as YamlMap);
        const ports =
          backend === 'app-backend'
            ? [env.APP_PUBLIC_PORT, env.APP_INTERNAL_PORT]
            : [env.POLICE_OFFICER_PORT, env.POLICE_INTERNAL_PORT];
        assert.deepEqual(exposed, ports.map(Number));
        // The runtime tuning the benches measured (none for the police backend).
        const imageEnv = parseEnvAssignments(
          runtime.instructions.filter((i) => i.op === 'ENV').flatMap((i) => i.args),
        );
        for (const [key, value] of Object.entries(APP_RUNTIME_ENV))
          assert.equal(imageEnv[key], backend === 'app-backend' ? value : undefined, key);
      });

      it('bakes in no secret and copies only files that exist and are not ignored', () => {
        const ignore = readIgnoreFile(repoPath(`${dockerfilePath}.dockerignore`));
        for (const secretish of ['x.key', 'deploy/x.pem', 'dist', '.git', 'node_modules', '.data'])
          assert.ok(dockerIgnored(ignore, secretish), `${secretish} is kept out of the context`);
        for (const stage of stages) {
          for (const i of stage.instructions) {
            if (i.op === 'ENV' || i.op === 'ARG')
              assert.doesNotMatch(i.raw, /KEK|PASSWORD|KEY|SECRET|TLS/i, `no secret in ${i.raw}`);
            if (i.op !== 'COPY' || i.flags.from) continue;
            for (const source of i.args.slice(0, -1)) {
              if (source === '.') continue;
              assert.ok(exists(repoPath(source)), `${source} exists`);
              assert.ok(!dockerIgnored(ignore, source), `${source} is not ignored`);
            }
          }
        }
        assert.doesNotMatch(readRepo(dockerfilePath), /secrets\/|ca\.key|\.key\b/);
      });

      it('ships every file the service imports, and its migrations, where the code looks', () => {
        const pkg = JSON.parse(readRepo('package.json')) as {
          dependencies: Record<string, string>;
        };
        for (const entry of entries) {
          const { files, packages } = importClosure(entry);
          for (const file of files) assert.ok(copies.has(file), `${file} is in the image`);
          for (const name of packages)
            assert.ok(pkg.dependencies[name], `${name} is a production dependency`);
          if (backend === 'police-backend') {
            // The privacy split: nothing that opens tokens or holds the app's logic.
            for (const file of files) assert.doesNotMatch(file, /app-backend|protocol\/token/);
          }
        }
        if (backend === 'police-backend') {
          for (const file of copies.keys())
            assert.doesNotMatch(file, /^dist\/(app-backend|protocol)\//, `${file} in police image`);
        }
        const migrations = relative(
          ROOT,
          backend === 'app-backend' ? APP_MIGRATIONS : POLICE_MIGRATIONS,
        );
        for (const sql of listFiles(repoPath(migrations)))
          assert.ok(copies.has(`${migrations}/${sql}`), `${migrations}/${sql} is in the image`);
        assert.ok(copies.has('package.json'), 'package.json ("type": "module")');
        assert.ok(copies.has('dist/deploy/docker/healthcheck.js'));
        if (backend === 'police-backend') {
          const dashboard = relative(ROOT, DASHBOARD_DIR);
          assert.ok(copies.has(`${dashboard}/index.html`), 'the dashboard is in the image');
        }
      });
    });
  }

  describe('systemd units', () => {
    const UNITS: Record<Backend, { unit: string; env: string; user: string }> = {
      'app-backend': {
        unit: 'deploy/systemd/smartbeacon-app-backend.service',
        env: 'deploy/systemd/app-backend.env.example',
        user: 'smartbeacon-app',
      },
      'police-backend': {
        unit: 'deploy/systemd/smartbeacon-police-backend.service',
        env: 'deploy/systemd/police-backend.env.example',
        user: 'smartbeacon-police',
      },
    };

    for (const backend of ['app-backend', 'police-backend'] as const) {
      it(`${backend}: hardened, restarted on failure, and configured completely`, () => {
        const files = UNITS[backend];
        const unit = parseUnit(readRepo(files.unit));
        const one = (key: string) => unitValues(unit, 'Service', key).at(-1);
        for (const [key, value] of [
          ['NoNewPrivileges', 'yes'],
          ['ProtectSystem', 'strict'],
          ['PrivateTmp', 'yes'],
          ['ProtectHome', 'yes'],
          ['Restart', 'on-failure'],
          ['User', files.user],
          ['CapabilityBoundingSet', ''],
        ] as const)
          assert.equal(one(key), value, `${files.unit}: ${key}=${value}`);
        assert.match(
          readRepo('deploy/systemd/smartbeacon.sysusers.conf'),
          new RegExp(`^u ${files.user} `, 'm'),
        );
        // Writable: only the state folder (data of the embedded database, unused with PostgreSQL).
        const state = unitValues(unit, 'Service', 'StateDirectory').map((d) => `/var/lib/${d}`);
        for (const path of unitValues(unit, 'Service', 'ReadWritePaths').flatMap((v) =>
          v.split(/\s+/),
        ))
          assert.ok(state.includes(path), `${path} is the state folder`);

        // Credentials come from the secrets folder, under the names the setup tool gives them.
        const credentials = unitValues(unit, 'Service', 'LoadCredential').map((v) => {
          const [id, source] = v.split(':');
          assert.equal(dirname(source as string), '/etc/smartbeacon/secrets');
          assert.equal(basename(source as string), id, 'credential named after its file');
          assert.ok(Object.values(SECRET_FILES).includes(id as never), `${id} is made by setup`);
          return id as string;
        });
        assert.ok(!credentials.includes('ca.key'));

        // The environment as systemd builds it: Environment=, then the env file over it.
        const env: Record<string, string> = {
          ...parseEnvAssignments(unitValues(unit, 'Service', 'Environment')),
        };
        for (const [key, value] of Object.entries(APP_RUNTIME_ENV))
          assert.equal(env[key], backend === 'app-backend' ? value : undefined, key);
        const envFiles = unitValues(unit, 'Service', 'EnvironmentFile');
        assert.deepEqual(envFiles, [`/etc/smartbeacon/${basename(files.env, '.example')}`]);
        Object.assign(env, parseEnvAssignments(readRepo(files.env).split('\n')));
        for (const [key, value] of Object.entries(env)) {
          if (!value.includes('%d')) continue;
          const id = value.replace('%d/', '');
          assert.ok(credentials.includes(id), `${key} names a loaded credential`);
          env[key] = join(secretsDir, id);
        }
        const read = variablesRead(backend);
        const resolved = throughSecretEnv(env);
        for (const variable of read)
          assert.ok(
            variable in resolved || variable in DEFAULTED[backend],
            `${files.unit}: ${variable} is neither set nor deliberately defaulted`,
          );
        for (const variable of Object.keys(env)) {
          const viaFile =
            variable.endsWith('_FILE') && fileVariables().includes(variable.slice(0, -5));
          assert.ok(
            read.has(variable) || NOT_CONFIG.has(variable) || viaFile,
            `${variable} is read`,
          );
        }
        assert.equal(env.APP_KEK, undefined, 'the KEK only as a credential');
        assert.doesNotMatch(env.DATABASE_URL ?? '', /:[^/@]+@/, 'no password in DATABASE_URL');
        const config = LOADERS[backend](resolved) as { host: string };
        assert.equal(config.host, '0.0.0.0');

        // ExecStart runs the repository's entrypoint script and the built service.
        const exec = (one('ExecStart') ?? '').split(/\s+/);
        const workdir = one('WorkingDirectory') ?? '';
        assert.equal(workdir, '/opt/smartbeacon');
        const script = repoPath(relative(workdir, exec[0] as string));
        assert.equal(script, SECRET_ENV_SCRIPT);
        accessSync(script, constants.X_OK);
        const main = `dist/${backend}/src/main.js`;
        const flags = backend === 'app-backend' ? APP_NODE_FLAGS : [];
        assert.deepEqual(exec.slice(1), ['/usr/bin/node', ...flags, main]);
        assert.ok(exists(repoPath(main)), `${main} is built`);
      });
    }
  });
});

function bindPort(frontend: HaproxySection): number {
  const bind = frontend.lines.find((l) => l[0] === 'bind')?.[1] ?? '';
  return Number(bind.split(':').pop());
}

/** The files in the final image (relative to its WORKDIR), from the runtime stage's COPYs. */
function runtimeFiles(stages: Stage[]): Map<string, string> {
  const runtime = stages.at(-1) as Stage;
  const workdir = runtime.instructions.find((i) => i.op === 'WORKDIR')?.args[0] ?? '/';
  const buildWorkdir = new Map(
    stages.map((s) => [s.name, s.instructions.find((i) => i.op === 'WORKDIR')?.args[0] ?? '/']),
  );
  const files = new Map<string, string>();
  for (const i of runtime.instructions) {
    if (i.op !== 'COPY') continue;
    const dest = i.args.at(-1) as string;
    if (!dest.startsWith('.') && !dest.startsWith(workdir)) continue; // e.g. /usr/local/bin
    const destDir = dest.startsWith(workdir) ? relative(workdir, dest) : relative('.', dest);
    for (const source of i.args.slice(0, -1)) {
      // A stage's path maps to the repository: the build stage works on a copy of it.
      let repoSource = source;
      if (i.flags.from) {
        const from = buildWorkdir.get(i.flags.from) ?? '/';
        if (i.flags.from !== 'build') continue; // deps: node_modules, checked by its RUN line
        repoSource = relative(from, source);
      }
      const matches = matching(repoSource);
      assert.ok(matches.length > 0, `COPY ${source}: nothing matches`);
      for (const [from, to] of matches) {
        const target =
          dest.endsWith('/') || /[*?]/.test(source)
            ? join(destDir, basename(from))
            : join(destDir, to);
        files.set(target.split('\\').join('/'), from);
      }
    }
  }
  return files;
}

/** Repository files a COPY source names: a file, a folder's files, or a glob. */
function matching(source: string): [string, string][] {
  if (/[*?]/.test(source)) {
    const dir = dirname(source);
    const re = globToRegExp(basename(source));
    return listFiles(repoPath(dir))
      .filter((f) => !f.includes('/') && re.test(f))
      .map((f) => [`${dir}/${f}`, f]);
  }
  if (!exists(repoPath(source))) return [];
  try {
    return listFiles(repoPath(source)).map((f) => [`${source}/${f}`, f]);
  } catch {
    return [[source, '']];
  }
}
