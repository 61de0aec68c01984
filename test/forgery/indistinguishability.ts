/**
 * `npm run stats:dummy`: can an observer of the network tell a dummy presence request from a
 * real one? Starts the real app backend as a process of its own (PGlite, or PostgreSQL with
 * DATABASE_URL), registers and enables a number of people, then sends dummy and real presence
 * requests in a random interleaving over one keep-alive HTTPS connection through a tap that
 * sees only TLS bytes and their times. For the request and answer sizes on the wire, the answer
 * time on the wire and the client's round trip it reports the two-sample Kolmogorov–Smirnov
 * statistic D, its p-value and the sample sizes.
 *
 * Options (environment): STATS_REQUESTS requests of each kind (default 2000), STATS_PEOPLE
 * registered people the real requests rotate over (default 50), STATS_WARMUP exchanges first
 * discarded (default 200), STATS_JSON a file to write the results to. Unless STATS_DIAGNOSE=0,
 * two more kinds ride in the same interleaving to split the real request's path: a registered key
 * without tokens and an unknown key with a token, each compared with the dummies.
 */
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { TestBeacon, authorityKeys } from '../../app-backend/test/harness.js';
import { testPki } from '../support/pki.js';
import type { AppListening, AppStart } from './app-process.js';
import {
  bodies,
  compare,
  diagnosticBodies,
  enrol,
  exchanges,
  formatResults,
  shuffled,
} from './campaign.js';
import { PresenceClient, WireTap, headerShape } from './wire.js';

const count = (name: string, fallback: number): number => {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} must be a positive integer`);
  return n;
};

async function main(): Promise<void> {
  const requests = count('STATS_REQUESTS', 2000);
  const peopleCount = count('STATS_PEOPLE', 50);
  const warmup = count('STATS_WARMUP', 200);
  const pki = await testPki();
  const child = fork(fileURLToPath(new URL('./app-process.js', import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const listening = new Promise<AppListening>((resolve, reject) => {
    child.once('message', (m: AppListening) => resolve(m));
    child.once('exit', (code) => reject(new Error(`app backend exited (${code})`)));
  });
  const start: AppStart = {
    tls: { cert: pki.appBackend.cert, key: pki.appBackend.key, ca: pki.ca.cert },
    authorityPublicKey: authorityKeys.publicKey,
    ...(process.env.DATABASE_URL ? { databaseUrl: process.env.DATABASE_URL } : {}),
  };
  child.send(start);
  const app = await listening;
  const tap = await WireTap.open(app.publicPort);
  const client = new PresenceClient(tap, pki.ca.cert);
  try {
    const people = Array.from({ length: peopleCount }, () => new TestBeacon());
    for (const b of people) await enrol(app, b, Date.now());
    const make: Record<string, () => Buffer> = {
      ...bodies(people, Date.now),
      ...(process.env.STATS_DIAGNOSE === '0' ? {} : diagnosticBodies(people, Date.now)),
    };
    const kinds = Object.keys(make);
    await exchanges(client, shuffled(kinds, Math.ceil(warmup / kinds.length)), make);
    const started = Date.now();
    const sampled = await exchanges(client, shuffled(kinds, requests), make);
    const of = (kind: string) => sampled[kind] ?? [];
    const samples = { dummy: of('dummy'), real: of('real') };
    const seconds = (Date.now() - started) / 1000;

    const all = Object.values(sampled).flat();
    const statuses = new Set(all.map((e) => e.status));
    const shapes = new Set(all.map((e) => headerShape(e.headers)));
    const results = compare(samples);
    const when = new Date().toISOString();
    console.log(
      `dummy vs real presence, ${when}, ${app.database}, ${peopleCount} people, ` +
        `${all.length} requests in ${seconds.toFixed(1)} s over one keep-alive connection ` +
        `(${cpus().length} CPUs, Node ${process.version})`,
    );
    console.log(
      `status codes: ${[...statuses].join(', ')}; distinct header sets (but date): ${shapes.size}; ` +
        `TCP connections: ${tap.connections}`,
    );
    console.log(formatResults(results));
    const diagnostics = kinds
      .filter((k) => k !== 'dummy' && k !== 'real')
      .map((k) => ({ kind: k, results: compare(samples, of(k)) }));
    for (const d of diagnostics) {
      console.log(`\ndummy vs ${d.kind}:`);
      console.log(formatResults(d.results, 'other'));
    }
    if (process.env.STATS_JSON)
      writeFileSync(
        process.env.STATS_JSON,
        JSON.stringify(
          {
            when,
            database: app.database,
            people: peopleCount,
            statuses: [...statuses],
            headerSets: shapes.size,
            results,
          },
          null,
          2,
        ),
      );
    const sizes = [results, ...diagnostics.map((d) => d.results)].flatMap((r) => r.slice(0, 2));
    if (
      statuses.size !== 1 ||
      shapes.size !== 1 ||
      tap.connections !== 1 ||
      sizes.some((r) => r.d !== 0)
    ) {
      console.error('dummy and real requests differ in status, headers or size on the wire');
      process.exitCode = 1;
    }
  } finally {
    client.close();
    await tap.close();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.disconnect();
    await exited;
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
