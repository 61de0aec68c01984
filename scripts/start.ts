/**
 * `npm start`: the whole system on this machine — development PKI, both backends in processes of
 * their own, a demo officer, emulated beacons running the real firmware bundle, provisioned at the
 * door, registered by the health authority's CLI, phone relays sending presence — then one person
 * leaves home and the alert reaches the officers' dashboard. `npm start -- --help` for options.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PoliceClient } from '../firmware/provisioning/police-client.js';
import { bundlePath } from '../firmware/scripts/boards.js';
import { buildBoard } from '../firmware/scripts/build.js';
import { type LocalSecrets, ensureLocalSecrets } from './start/local-secrets.js';
import { ensureDemoOfficer } from './start/officer.js';
import { HELP, type StartOptions, parseStartOptions } from './start/options.js';
import {
  type Home,
  demoDir,
  installBeacon,
  newHome,
  newPersonKey,
  registerQuarantine,
  startRelay,
} from './start/scenario.js';
import {
  ServiceProcess,
  choosePorts,
  logsDir,
  separateDatabases,
  waitHealthy,
} from './start/services.js';
import { renderTable } from './start/table.js';
import { RealTimeWorld } from './start/world.js';

const say = (line: string) => void process.stdout.write(`${line}\n`);

interface Running {
  app?: ServiceProcess;
  police?: ServiceProcess;
  world?: RealTimeWorld;
  homes: Home[];
  officer?: PoliceClient;
  timers: NodeJS.Timeout[];
  stopping?: Promise<void>;
  /** Ends the running scenario with an exit code (Ctrl-C, the alert, the time limit). */
  finish?: (code: number) => void;
}

function backendEnvironment(
  o: StartOptions,
  secrets: LocalSecrets,
  ports: readonly number[],
  dbs: { app: string; police: string } | undefined,
) {
  const [appPublic, appInternal, policeOfficer, policeInternal] = ports.map(String);
  const app: Record<string, string> = {
    APP_TLS_CERT: secrets.appCert,
    APP_TLS_KEY: secrets.appKey,
    APP_TLS_CA: secrets.ca,
    APP_KEK: readFileSync(secrets.kekFile, 'utf8').trim(),
    APP_HA_PUBLIC_KEY: secrets.authorityPub,
    POLICE_BACKEND_URL: `https://localhost:${policeInternal}`,
    APP_PUBLIC_PORT: appPublic ?? '',
    APP_INTERNAL_PORT: appInternal ?? '',
    APP_DATA_DIR: join(o.dataDir, 'app-backend'),
    // The demo's pace: what is shown on screen, nothing else changed.
    APP_WINDOW_SECONDS: String(o.window),
    APP_GRACE_SECONDS: String(o.grace),
    APP_RELAY_SILENT_SECONDS: String(Math.max(5, Math.ceil(o.upload * 2.5))),
    APP_PRESENCE_PER_10MIN: String(Math.ceil((600 / o.upload) * 2) + 10),
    APP_WATCHDOG_INTERVAL_MS: '1000',
    APP_DELIVERY_INTERVAL_MS: '500',
    ...(dbs ? { DATABASE_URL: dbs.app } : {}),
  };
  const police: Record<string, string> = {
    POLICE_TLS_CERT: secrets.policeCert,
    POLICE_TLS_KEY: secrets.policeKey,
    POLICE_TLS_CA: secrets.ca,
    APP_BACKEND_INTERNAL_URL: `https://localhost:${appInternal}`,
    POLICE_OFFICER_PORT: policeOfficer ?? '',
    POLICE_INTERNAL_PORT: policeInternal ?? '',
    POLICE_DATA_DIR: join(o.dataDir, 'police-backend'),
    POLICE_SESSION_PRIVATE_KEY: secrets.sessionPrivate,
    POLICE_SESSION_PUBLIC_KEY: secrets.sessionPublic,
    POLICE_COMMAND_INTERVAL_MS: '1000',
    ...(dbs ? { DATABASE_URL: dbs.police } : {}),
  };
  return { app, police };
}

/** Beacons a previous run left monitoring (it was killed): end them so they raise no alerts. */
async function endLeftovers(officer: PoliceClient, stateFile: string): Promise<number> {
  if (!existsSync(stateFile)) return 0;
  const { beaconIds } = JSON.parse(readFileSync(stateFile, 'utf8')) as { beaconIds: string[] };
  let ended = 0;
  for (const id of beaconIds) {
    try {
      await officer.post(`/api/beacons/${encodeURIComponent(id)}/end`, {});
      ended++;
    } catch {
      // Already ended, or never registered: nothing to do.
    }
  }
  return ended;
}

async function endDemoQuarantines(officer: PoliceClient, homes: readonly Home[]): Promise<void> {
  const ids = homes.map((h) => h.beaconId).filter((id): id is string => id !== null);
  for (const id of ids)
    await officer.post(`/api/beacons/${encodeURIComponent(id)}/end`, {}).catch(() => undefined);
  // The police backend passes each end to the app backend over mutual TLS; wait until it has.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const { beacons } = (await officer.get('/api/beacons').catch(() => ({ beacons: [] }))) as {
      beacons: { beaconId: string; status: string }[];
    };
    if (beacons.filter((b) => ids.includes(b.beaconId)).every((b) => b.status === 'ended')) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function run(o: StartOptions, r: Running): Promise<number> {
  mkdirSync(o.dataDir, { recursive: true });
  say('SmartBeacon — the whole system on this machine\n');
  if (!existsSync(bundlePath('PUCKJS'))) {
    say('building the beacon firmware bundle…');
    await buildBoard('PUCKJS');
  }
  const secrets = await ensureLocalSecrets(o.dataDir);
  if (secrets.made.length) say(`made in ${o.dataDir}/: ${secrets.made.join(', ')}`);
  const ports = await choosePorts(o.portBase);
  const dbs = o.databaseUrl ? await separateDatabases(o.databaseUrl) : undefined;
  const officerAccount = await ensureDemoOfficer(o.dataDir, {
    url: dbs?.police,
    dir: join(o.dataDir, 'police-backend'),
  });
  const env = backendEnvironment(o, secrets, ports, dbs);
  const logs = logsDir(o.dataDir);
  r.app = new ServiceProcess(
    'app backend',
    'app-backend/src/main.js',
    env.app,
    join(logs, 'app-backend.log'),
  );
  r.police = new ServiceProcess(
    'police backend',
    'police-backend/src/main.js',
    env.police,
    join(logs, 'police-backend.log'),
  );
  const ca = readFileSync(secrets.ca, 'utf8');
  const [appPublic, , policeOfficer] = ports;
  await Promise.all([waitHealthy(r.app, appPublic, ca), waitHealthy(r.police, policeOfficer, ca)]);
  const appUrl = `https://localhost:${appPublic}`;
  const dashboard = `https://localhost:${policeOfficer}/`;
  say(
    `app backend     ${appUrl} (pid ${r.app.pid}), database: ${dbs ? dbs.app : 'embedded, ' + env.app.APP_DATA_DIR}`,
  );
  say(
    `police backend  ${dashboard} (pid ${r.police.pid}), database: ${dbs ? dbs.police : 'embedded, ' + env.police.POLICE_DATA_DIR}`,
  );
  say(`logs            ${logs}/`);
  say('');
  say(`Dashboard: ${dashboard}`);
  say(`  sign in as ${officerAccount.username} / ${officerAccount.password}`);
  say(
    `  (the certificate is from the development CA ${secrets.ca}: trust it, or accept the warning)`,
  );
  say('');
  say(
    `Pace for the demonstration: tokens every ${o.cadence} s (production 60), uploads every ${o.upload} s (300), ` +
      `window ${o.window} s (360), grace ${o.grace} s (1200).`,
  );
  say('');

  const officer = await PoliceClient.signIn(
    `https://localhost:${policeOfficer}`,
    ca,
    officerAccount.username,
    officerAccount.password,
  );
  r.officer = officer;
  const stateFile = join(demoDir(o.dataDir), 'state.json');
  const leftovers = await endLeftovers(officer, stateFile);
  if (leftovers) say(`ended ${leftovers} quarantine(s) left by an earlier run`);

  const world = new RealTimeWorld();
  r.world = world;
  world.start();
  const relayLog: string[] = [];
  for (let i = 0; i < o.beacons; i++) r.homes.push(newHome(i, world));
  for (const home of r.homes) {
    const sealed = await installBeacon(
      home,
      world,
      officer,
      secrets,
      o,
      join(demoDir(o.dataDir), 'sealed'),
    );
    writeFileSync(
      stateFile,
      JSON.stringify({ beaconIds: r.homes.map((h) => h.beaconId).filter(Boolean) }),
    );
    const skTPast = newPersonKey();
    home.step = 'registering';
    await registerQuarantine(sealed, skTPast, secrets, appUrl);
    home.step = 'relaying';
    await startRelay(
      home,
      world,
      skTPast,
      secrets,
      appUrl,
      o,
      join(demoDir(o.dataDir), 'relays', String(home.index + 1)),
      (l) => relayLog.push(l),
    );
    say(
      `home ${home.index + 1}: beacon ${home.beaconId} installed at ${home.address}, quarantine registered, relay running`,
    );
  }
  say('');

  const leaver = o.scenario === 'leave' ? r.homes.at(-1) : undefined;
  const started = Date.now();
  return new Promise<number>((resolve) => {
    r.finish = resolve;
    if (leaver)
      r.timers.push(
        setTimeout(() => {
          leaver.source.stop(); // their phone goes with them: it no longer hears the beacon
          leaver.leftAt = Date.now();
          say(
            `home ${leaver.index + 1}: the person leaves home, phone in pocket (${new Date().toISOString().slice(11, 19)} UTC)`,
          );
        }, o.leaveAfter * 1000),
      );
    // A time limit ends a demo normally; it is a failure only when the alert was being waited for.
    if (o.timeout)
      r.timers.push(setTimeout(() => resolve(o.exitAfterAlert ? 1 : 0), o.timeout * 1000));
    let last = '';
    const tick = async () => {
      const { alerts } = (await officer
        .get('/api/alerts?view=queue')
        .catch(() => ({ alerts: [] }))) as {
        alerts: { beaconId: string; kind: string; state: string; receivedAt: number }[];
      };
      for (const home of r.homes) {
        const a = alerts.find((x) => x.beaconId === home.beaconId && x.kind === 'NO_PRESENCE');
        if (a && !home.alert) {
          home.alert = { kind: a.kind, state: a.state, receivedAt: a.receivedAt };
          const after =
            home.leftAt === null
              ? ''
              : `, ${Math.round((Date.now() - home.leftAt) / 1000)} s after they left`;
          say(
            `home ${home.index + 1}: the police backend shows ${a.kind} for ${home.address}${after} — see ${dashboard}`,
          );
          if (o.exitAfterAlert && home === leaver) resolve(0);
        } else if (a && home.alert) home.alert.state = a.state;
      }
      const table = renderTable(r.homes, Date.now());
      if (o.plain || !process.stdout.isTTY) {
        if (table !== last && Math.round((Date.now() - started) / 1000) % 10 === 0)
          say(table + '\n');
      } else process.stdout.write(`\x1b[s\x1b[J${table}\n\x1b[u`);
      last = table;
    };
    const loop = setInterval(() => void tick(), 1000);
    r.timers.push(loop);
  });
}

async function stop(r: Running): Promise<void> {
  r.stopping ??= (async () => {
    r.timers.forEach((t) => clearTimeout(t));
    for (const h of r.homes) h.relay?.stop();
    if (r.officer) await endDemoQuarantines(r.officer, r.homes).catch(() => undefined);
    r.world?.stop();
    await Promise.all([r.police?.stop(), r.app?.stop()]);
  })();
  return r.stopping;
}

async function main(): Promise<void> {
  let options: StartOptions | 'help';
  try {
    options = parseStartOptions(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}\n`);
    process.exit(2);
  }
  if (options === 'help') return say(HELP);
  const r: Running = { homes: [], timers: [] };
  let code = 1;
  const onSignal = () => {
    say('\nstopping…');
    if (r.finish) r.finish(0);
    // Still starting: stop what has started and leave at once.
    else void stop(r).then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    code = await run(options, r);
    if (code !== 0) say('gave up: the time limit passed before the alert reached the police');
  } catch (err) {
    process.stderr.write(`npm start failed: ${(err as Error).message}\n`);
  }
  await stop(r);
  say('stopped: both backends and every relay');
  process.exit(code);
}

await main();
