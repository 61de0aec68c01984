/**
 * One run of `bench:ingest` or `bench:scale-out`: the PKI, KEK and people, the database (a
 * throw-away schema on PostgreSQL, prepared once), and a round of load against one or more
 * servers with where the CPU went.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../backend-kit/db.js';
import { createDeploymentPki } from '../deploy/pki/pki.js';
import { BodyMaker, makePeople, prepareDatabase, writePeople } from './ingest-fixture.js';
import {
  PostgresCpu,
  type ServerProcess,
  machineCpu,
  runLoad,
  startServer,
  withApplicationName,
} from './ingest-procs.js';
import type { ServerSpec } from './ingest-server.js';
import type { LoadResult } from './load.js';

export interface RunOptions {
  readonly databaseUrl: string | undefined;
  readonly quarantines: number;
  readonly real: number;
  readonly connections: number;
}

export interface Round extends LoadResult {
  readonly label: string;
  readonly kind: 'mix' | 'dummy';
  readonly rate: number | null;
  /** CPU seconds of each server process, its queued validation included. */
  readonly serverCpu: number[];
  /** Requests per CPU-second of the servers together. */
  readonly reqPerCpuSecond: number;
  readonly pgCpu: number | null;
  /** Cores busy on the whole machine during the round (others' work included). */
  readonly machineBusyCores: number;
  readonly tokensPerSecond: number;
}

export class IngestRun {
  readonly database: 'PostgreSQL' | 'PGlite';
  readonly setupSeconds: number;
  readonly #work: string;
  readonly #common: Pick<ServerSpec, 'certFile' | 'keyFile' | 'kek'>;
  readonly #bodies: BodyMaker;
  readonly #schema: string;
  readonly #appName: string;
  readonly #drop: () => Promise<void>;
  readonly #pgCpu: PostgresCpu | undefined;

  private constructor(
    readonly options: RunOptions,
    parts: {
      work: string;
      common: Pick<ServerSpec, 'certFile' | 'keyFile' | 'kek'>;
      bodies: BodyMaker;
      schema: string;
      appName: string;
      drop: () => Promise<void>;
      pgCpu: PostgresCpu | undefined;
      setupSeconds: number;
    },
  ) {
    this.database = options.databaseUrl ? 'PostgreSQL' : 'PGlite';
    this.#work = parts.work;
    this.#common = parts.common;
    this.#bodies = parts.bodies;
    this.#schema = parts.schema;
    this.#appName = parts.appName;
    this.#drop = parts.drop;
    this.#pgCpu = parts.pgCpu;
    this.setupSeconds = parts.setupSeconds;
  }

  static async open(options: RunOptions): Promise<IngestRun> {
    const started = Date.now();
    const work = mkdtempSync(join(tmpdir(), 'smartbeacon-ingest-'));
    const pki = await createDeploymentPki({ environment: 'bench' });
    const certFile = join(work, 'cert.pem');
    const keyFile = join(work, 'key.pem');
    writeFileSync(certFile, pki.appBackend.cert);
    writeFileSync(keyFile, pki.appBackend.key, { mode: 0o600 });
    const kek = randomBytes(32);
    const people = makePeople(options.real);
    const id = randomBytes(6).toString('hex');
    const schema = `bench_${id}`;
    const appName = `bench_ingest_${id}`;
    let drop = async () => undefined as void;
    let pgCpu: PostgresCpu | undefined;
    const url = options.databaseUrl;
    if (url) {
      const db = await openDatabase({ url, schema });
      await prepareDatabase(db, kek, people, options.quarantines, Date.now());
      drop = async () => {
        await db.query(`DROP SCHEMA ${schema} CASCADE`);
        await db.close();
      };
      pgCpu = new PostgresCpu(url, appName);
      await pgCpu.open();
    } else writePeople(join(work, 'people.json'), people);
    return new IngestRun(options, {
      work,
      common: { certFile, keyFile, kek: kek.toString('base64') },
      bodies: new BodyMaker(people),
      schema,
      appName,
      drop,
      pgCpu,
      setupSeconds: (Date.now() - started) / 1000,
    });
  }

  startBare(profileDir?: string): Promise<ServerProcess> {
    return startServer({ mode: 'bare', ...this.#common }, profileDir);
  }

  /** An app backend process on the run's database (PGlite: its own, prepared in the child). */
  startApp(profileDir?: string): Promise<ServerProcess> {
    const url = this.options.databaseUrl;
    return startServer(
      url
        ? {
            mode: 'app',
            ...this.#common,
            databaseUrl: withApplicationName(url, this.#appName),
            schema: this.#schema,
          }
        : {
            mode: 'app',
            ...this.#common,
            peopleFile: join(this.#work, 'people.json'),
            quarantines: this.options.quarantines,
          },
      profileDir,
    );
  }

  /** Load on `servers` (connections spread over them), fresh real bodies, CPU of every part. */
  async round(
    label: string,
    servers: readonly ServerProcess[],
    kind: 'mix' | 'dummy',
    seconds: number,
    rate?: number,
  ): Promise<Round> {
    const realFile = join(this.#work, 'real.bin');
    this.#bodies.write(realFile, Date.now());
    const before = await Promise.all(servers.map((s) => s.usage()));
    const m0 = machineCpu();
    await this.#pgCpu?.mark();
    const load = await runLoad({
      urls: servers.map((s) => `https://127.0.0.1:${s.port}`),
      realBodies: realFile,
      realEvery: kind === 'mix' ? 10 : 0,
      seconds,
      connections: this.options.connections,
      ...(rate ? { rate } : {}),
    });
    const after = await Promise.all(servers.map((s) => s.flush()));
    const m1 = machineCpu();
    const serverCpu = after.map((a, i) => a.cpuSeconds - (before[i]?.cpuSeconds ?? 0));
    const tokens = after.reduce((sum, a, i) => sum + a.tokens - (before[i]?.tokens ?? 0), 0);
    return {
      ...load,
      label,
      kind,
      rate: rate ?? null,
      serverCpu,
      reqPerCpuSecond: load.requests / serverCpu.reduce((a, b) => a + b, 0),
      pgCpu: this.#pgCpu ? await this.#pgCpu.since() : null,
      machineBusyCores: ((m1.busy - m0.busy) / (m1.total - m0.total)) * cpus().length,
      tokensPerSecond: tokens / seconds,
    };
  }

  /** CPU per real request of the app's validation alone (fresh tokens, `batch` a flush). */
  async validationCost(app: ServerProcess, batch: number): Promise<number> {
    const realFile = join(this.#work, 'real.bin');
    this.#bodies.write(realFile, Date.now());
    const { cpuSeconds, requests } = await app.validate(realFile, batch);
    return cpuSeconds / requests;
  }

  async close(): Promise<void> {
    await this.#pgCpu?.close();
    await this.#drop();
    rmSync(this.#work, { recursive: true, force: true });
  }
}

/** One line per round, for whoever watches the run. */
export function printRound(r: Round): void {
  console.log(
    `  ${r.label.padEnd(10)} ${r.kind.padEnd(5)} ${(r.rate ? `@${r.rate}` : 'max').padStart(7)}` +
      ` ${Math.round(r.rps).toString().padStart(7)} req/s ${Math.round(r.reqPerCpuSecond).toString().padStart(7)} req/CPU-s` +
      ` p99 ${r.latency.p99.toFixed(1).padStart(6)} ms  server ${r.serverCpu.map((c) => c.toFixed(1)).join('+')} s,` +
      ` load ${r.cpuSeconds.toFixed(1)} s${r.pgCpu === null ? '' : `, pg ${r.pgCpu.toFixed(1)} s`},` +
      ` machine ${r.machineBusyCores.toFixed(2)} cores  errors ${r.errors + r.non2xx}`,
  );
}
