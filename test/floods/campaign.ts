/**
 * The long floods, against both backends running as processes of their own (test/floods/child.ts),
 * configured as in production. Per flood: its rate, the legitimate traffic's success rate and
 * p99 during it, and the servers' peak resident memory (sampled VmRSS; VmHWM from /proc).
 *
 *   npm run build && node dist/test/floods/campaign.js
 *
 * FLOODS=presence,relay,intake,slowloris (all by default), FLOOD_SECONDS=20, FLOOD_CONNECTIONS=32,
 * SLOW_CONNECTIONS=800; DATABASE_URL puts both backends on PostgreSQL (throw-away schemas).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { TestBeacon, authorityJwt } from '../../app-backend/test/harness.js';
import { createDeploymentPki } from '../../deploy/pki/pki.js';
import { alertMessage } from '../../police-backend/test/harness.js';
import { encodePresenceBody } from '../../protocol/presence.js';
import { type Shot, type Tally, flood, shoot, steady } from './load.js';
import { type Pair, RssSampler, memoryOf, startPair } from './procs.js';
import { type SlowEnd, type SlowKind, slowConnection } from './slow-clients.js';

const env = process.env;
const FLOODS = (env.FLOODS ?? 'presence,relay,intake,slowloris').split(',');
const SECONDS = Number(env.FLOOD_SECONDS ?? 20);
const CONNECTIONS = Number(env.FLOOD_CONNECTIONS ?? 32);
const SLOW = Number(env.SLOW_CONNECTIONS ?? 800);
const PEOPLE = 20;

const pki = await createDeploymentPki({ environment: 'floods' });
const publicTls = { ca: pki.ca.cert };
const asPolice = { ca: pki.ca.cert, cert: pki.policeBackend.cert, key: pki.policeBackend.key };
const asApp = { ca: pki.ca.cert, cert: pki.appBackend.cert, key: pki.appBackend.key };

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const pct = (x: number) => `${fmt(100 * x, 2)} %`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function line(label: string, text: string): void {
  console.log(`  ${label.padEnd(28)} ${text}`);
}

function legit(name: string, t: Tally, ok: string[]): void {
  line(
    name,
    `${fmt(t.count)} requests, ${pct(t.rate(...ok))} answered ${ok.join('/')}, ` +
      `p50 ${fmt(t.percentile(50), 1)} ms, p99 ${fmt(t.percentile(99), 1)} ms (${t.describe()})`,
  );
}

function memory(name: string, pid: number, before: number, sampler: RssSampler): void {
  const now = memoryOf(pid);
  line(
    `${name} memory`,
    `RSS ${fmt(before)} MB before, highest ${fmt(sampler.highest.get(pid) ?? NaN)} MB during ` +
      `(VmHWM ${fmt(now.peakMb)} MB), ${fmt(now.rssMb)} MB after`,
  );
}

/** Register and enable `n` people through the real routes; their beacons make real tokens. */
async function people(pair: Pair, n: number): Promise<TestBeacon[]> {
  const list = Array.from({ length: n }, () => new TestBeacon());
  for (const b of list) {
    const body = b.registration();
    const r = await shoot(
      pair.app.publicPort,
      publicTls,
      {
        path: '/v1/quarantines',
        body,
        headers: {
          authorization: `Bearer ${authorityJwt('POST /v1/quarantines', body, Date.now())}`,
          'content-type': 'application/json',
        },
      },
      false,
    );
    const e = await shoot(
      pair.app.internalPort,
      asPolice,
      { path: `/internal/v1/beacons/${b.beaconId}/enable`, body: '' },
      false,
    );
    if (r !== '201' || e !== '200') throw new Error(`set-up failed: ${r} ${e}`);
  }
  return list;
}

const presenceShot = (skTPast: Uint8Array, tokens: Uint8Array[]): Shot => ({
  path: '/v1/presence',
  body: encodePresenceBody(skTPast, tokens),
});

async function presenceFlood(): Promise<void> {
  console.log(
    `\nflood 1: presence far beyond the rate limits (${CONNECTIONS} connections, ${SECONDS} s)`,
  );
  const pair = await startPair(pki);
  try {
    const persons = await people(pair, PEOPLE);
    const flooder = new TestBeacon();
    const junk = () => new Uint8Array(randomBytes(64));
    const before = memoryOf(pair.app.pid).rssMb;
    const sampler = new RssSampler([pair.app.pid]);
    const start = Date.now();
    const until = start + SECONDS * 1000;
    const [one, many, relays] = await Promise.all([
      flood(pair.app.publicPort, publicTls, CONNECTIONS / 2, until, () =>
        presenceShot(flooder.skTPast, [junk()]),
      ),
      flood(pair.app.publicPort, publicTls, CONNECTIONS / 2, until, () =>
        presenceShot(new Uint8Array(randomBytes(32)), [junk(), junk()]),
      ),
      // Real relays, each well inside its own limit, on new connections as phones make them.
      steady(250, until, (i) => {
        const p = persons[i % PEOPLE] as TestBeacon;
        return shoot(
          pair.app.publicPort,
          publicTls,
          presenceShot(p.skTPast, [p.token(Date.now())]),
          false,
        );
      }),
    ]);
    sampler.stop();
    await sleep(1500); // the validation loop runs every 100 ms
    const rows = await pair.app.query<{ last_presence_at: number }>(
      'SELECT last_presence_at FROM quarantines',
    );
    // Token times are whole seconds of the beacon's clock.
    const recorded = rows.filter((r) => Number(r.last_presence_at) >= start - 1000).length;
    const sent = Math.min(PEOPLE, relays.count);
    line('flood, one key', `${fmt(one.count / SECONDS)} requests/s (${one.describe()})`);
    line('flood, fresh keys', `${fmt(many.count / SECONDS)} requests/s (${many.describe()})`);
    legit('real relays', relays, ['202']);
    line(
      'presence recorded',
      `${recorded} of the ${sent} people who uploaded, proof from during the flood`,
    );
    memory('app backend', pair.app.pid, before, sampler);
  } finally {
    await pair.stop();
  }
}

function relayFlood(): void {
  console.log('\nflood 2: the relay flooded with spoofed frames (phone-relay/test/flood.test.ts)');
  const mocha = fileURLToPath(new URL('../../../node_modules/mocha/bin/mocha.js', import.meta.url));
  const spec = fileURLToPath(new URL('../../phone-relay/test/flood.test.js', import.meta.url));
  const run = spawnSync(
    process.execPath,
    [mocha, '--no-config', '--timeout', '120000', '--reporter', 'spec', spec],
    {
      encoding: 'utf8',
      env: { ...env, DATABASE_URL: env.DATABASE_URL ?? '' },
    },
  );
  for (const l of run.stdout.split('\n'))
    if (/flood|passing|failing|✔|\d\)/.test(l)) line('', l.trim());
}

async function intakeFlood(bound?: number): Promise<void> {
  console.log(
    `\nflood 3: a valid mutual-TLS client floods the police intake (${CONNECTIONS} connections, ${SECONDS} s, ` +
      `${bound ? `intake bound ${bound}` : 'default intake bound'})`,
  );
  // Short window and no grace: the people's alerts fall due during the flood.
  const pair = await startPair(pki, {
    APP_WINDOW_SECONDS: '10',
    APP_GRACE_SECONDS: '0',
    ...(bound ? { POLICE_INTAKE_MAX_PENDING: String(bound) } : {}),
  });
  try {
    const persons = await people(pair, PEOPLE);
    for (const p of persons)
      await shoot(
        pair.app.publicPort,
        publicTls,
        presenceShot(p.skTPast, [p.token(Date.now())]),
        false,
      );
    const before = memoryOf(pair.police.pid).rssMb;
    const sampler = new RssSampler([pair.police.pid, pair.app.pid]);
    const start = Date.now();
    const until = start + SECONDS * 1000;
    const flooded = (i: number): Shot =>
      i % 2
        ? {
            path: '/internal/v1/alerts',
            body: JSON.stringify(alertMessage({ beaconId: `SB-FLOOD-${i % 500}` })),
            headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
          }
        : {
            path: '/internal/v1/alert-batches',
            body: JSON.stringify({
              alerts: Array.from({ length: 64 }, (_, k) =>
                alertMessage({ beaconId: `SB-FLOOD-${k}` }),
              ),
            }),
            headers: { 'content-type': 'application/json' },
          };
    const [attack] = await Promise.all([
      flood(pair.police.internalPort, asApp, CONNECTIONS, until, flooded),
      // The people left with their phones: the relays keep asking, hearing no beacon.
      steady(2000, until, async () => {
        await Promise.all(
          persons.map((p) =>
            shoot(pair.app.publicPort, publicTls, presenceShot(p.skTPast, []), false),
          ),
        );
        return 'ok';
      }),
    ]);
    const ids = persons.map((p) => p.beaconId);
    const arrived = () =>
      pair.police.query<{ received_at: number; confirmed_at: number }>(
        `SELECT received_at, (detail::jsonb->>'confirmedAt')::bigint AS confirmed_at
           FROM alerts WHERE kind = 'NO_PRESENCE' AND beacon_id = ANY($1::text[])`,
        [ids],
      );
    const during = (await arrived()).length;
    const end = Date.now();
    let rows = await arrived();
    while (rows.length < PEOPLE && Date.now() - end < 300_000) {
      await sleep(500);
      rows = await arrived();
    }
    sampler.stop();
    const waits = rows
      .map((r) => Number(r.received_at) - Number(r.confirmed_at))
      .sort((a, b) => a - b);
    const outbox = await pair.app.query<{ attempts: number; last_error: string | null }>(
      'SELECT attempts, last_error FROM outbox',
    );
    const retried = outbox.filter((r) => r.attempts > 1);
    const [stored] = await pair.police.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM alerts WHERE beacon_id LIKE 'SB-FLOOD-%'",
    );
    line(
      'flood',
      `${fmt(attack.count / SECONDS)} posts/s (half single alerts, half batches of 64), ` +
        `${fmt(Number(stored?.n) / SECONDS)} alerts/s stored (${attack.describe()})`,
    );
    line(
      "app backend's alerts",
      `${rows.length} of ${PEOPLE} arrived (${during} during the flood` +
        `${rows.length > during ? `, the rest within ${fmt((Date.now() - end) / 1000, 1)} s after it` : ''}); ` +
        `decided → stored p50 ${fmt((waits[Math.floor(waits.length / 2)] ?? NaN) / 1000, 1)} s, max ${fmt((waits.at(-1) ?? NaN) / 1000, 1)} s; ` +
        `${retried.length} needed a retry (errors seen: ${[...new Set(outbox.map((r) => r.last_error ?? 'none'))].join(', ')})`,
    );
    memory('police backend', pair.police.pid, before, sampler);
  } finally {
    await pair.stop();
  }
}

async function slowloris(): Promise<void> {
  console.log(`\nflood 4: slowloris — ${SLOW} slow or idle connections, production timeouts`);
  const pair = await startPair(pki);
  try {
    const before = memoryOf(pair.app.pid).rssMb;
    const beforePolice = memoryOf(pair.police.pid).rssMb;
    const sampler = new RssSampler([pair.app.pid, pair.police.pid]);
    const kinds: [string, SlowKind][] = [
      ['no handshake', { kind: 'no-handshake' }],
      ['idle after handshake', { kind: 'idle' }],
      ['headers byte by byte', { kind: 'headers', path: '/v1/presence', everyMs: 500 }],
      [
        'body byte by byte',
        {
          kind: 'body',
          path: '/v1/presence',
          length: 4130,
          contentType: 'application/octet-stream',
          everyMs: 500,
        },
      ],
    ];
    // Most on the public listeners; a few on the internal ones, which have a lower cap (256).
    const targets = [
      { port: pair.app.publicPort, tls: publicTls, share: 0.45 },
      { port: pair.police.publicPort, tls: publicTls, share: 0.45 },
      { port: pair.app.internalPort, tls: asPolice, share: 0.05 },
      { port: pair.police.internalPort, tls: asApp, share: 0.05 },
    ];
    const ends: { kind: string; end: Promise<SlowEnd> }[] = [];
    for (const t of targets)
      for (const [kind, how] of kinds)
        for (let i = 0; i < Math.round((SLOW * t.share) / kinds.length); i++)
          ends.push({ kind, end: slowConnection(t.port, t.tls, how).ended });
    const until = Date.now() + Math.max(SECONDS, 35) * 1000;
    const [phones, intake] = await Promise.all([
      steady(100, until, () =>
        shoot(
          pair.app.publicPort,
          publicTls,
          presenceShot(new Uint8Array(randomBytes(32)), []),
          false,
        ),
      ),
      steady(250, until, () =>
        shoot(
          pair.police.internalPort,
          asApp,
          {
            path: '/internal/v1/alerts',
            body: JSON.stringify(alertMessage()),
            headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
          },
          false,
        ),
      ),
    ]);
    const settled = await Promise.race([
      Promise.all(ends.map((e) => e.end)),
      sleep(60_000).then(() => undefined),
    ]);
    sampler.stop();
    line(
      'slow connections',
      `${fmt(ends.length)} opened; ${settled ? 'all' : 'NOT all'} closed by the servers`,
    );
    for (const [kind] of kinds) {
      const ms = (settled ?? []).filter((_, i) => ends[i]?.kind === kind).map((e) => e.ms);
      line(`  ${kind}`, `held at most ${fmt(Math.max(...ms) / 1000, 1)} s`);
    }
    legit('phones (presence)', phones, ['202']);
    legit('app → police (alert)', intake, ['200']);
    memory('app backend', pair.app.pid, before, sampler);
    memory('police backend', pair.police.pid, beforePolice, sampler);
  } finally {
    await pair.stop();
  }
}

console.log(
  `SmartBeacon flood campaign, ${new Date().toISOString()}, ${env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'}, node ${process.version}`,
);
if (FLOODS.includes('presence')) await presenceFlood();
if (FLOODS.includes('relay')) relayFlood();
if (FLOODS.includes('intake')) {
  await intakeFlood();
  // The smallest bound allowed: the flood now meets it, and the app backend's delivery must retry.
  await intakeFlood(256);
}
if (FLOODS.includes('slowloris')) await slowloris();
