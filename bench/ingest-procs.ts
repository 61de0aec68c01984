/**
 * The processes of `bench:ingest` and `bench:scale-out`: servers (bench/ingest-server.ts) and the
 * load generator (bench/load.ts) as children, and where the CPU of a round went — each server,
 * the load generator, PostgreSQL's backends serving the bench, and the whole machine.
 */
import { type ChildProcess, execFile, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { APP_NODE_FLAGS, APP_RUNTIME_ENV } from '../deploy/runtime-env.js';
import type { LoadResult, LoadSpec } from './load.js';
import type { ServerSpec, Usage } from './ingest-server.js';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

export interface ServerProcess {
  readonly port: number;
  readonly pid: number;
  usage(): Promise<Usage>;
  /** Validate everything queued, then the usage: the validation is part of the request's cost. */
  flush(): Promise<Usage>;
  /** The app's validation alone: the bodies in `file` queued `batch` at a time and validated. */
  validate(file: string, batch: number): Promise<{ cpuSeconds: number; requests: number }>;
  close(): Promise<void>;
}

/**
 * Start a server child; with `profileDir`, under `--cpu-prof` (the profile is written on close).
 * `script` runs another build of ingest-server.js (comparing two versions of the app in one run).
 */
export async function startServer(
  spec: ServerSpec,
  profileDir?: string,
  script = here('./ingest-server.js'),
): Promise<ServerProcess> {
  const child: ChildProcess = fork(script, [], {
    env: {
      // The app as deployed (its malloc arenas); the bare server as Node comes.
      ...(spec.mode === 'app' ? { MALLOC_ARENA_MAX: APP_RUNTIME_ENV.MALLOC_ARENA_MAX } : {}),
      ...process.env,
      BENCH_SERVER: JSON.stringify(spec),
    },
    execArgv: [
      // Node flags for the app: as deployed, unless BENCH_APP_NODE_OPTIONS weighs another setting.
      ...(spec.mode === 'app'
        ? (
            process.env.BENCH_APP_NODE_OPTIONS ??
            [APP_RUNTIME_ENV.NODE_OPTIONS, ...APP_NODE_FLAGS].join(' ')
          )
            .split(' ')
            .filter(Boolean)
        : []),
      ...(profileDir
        ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${spec.mode}.cpuprofile`]
        : []),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${spec.mode} server exited (${code})`)));
    child.on('message', (m: { ready?: boolean; port?: number }) => {
      if (m.ready) resolve(m.port as number);
    });
  });
  let nextId = 0;
  const call = <T>(cmd: string, args: Record<string, unknown> = {}) =>
    new Promise<T>((resolve) => {
      const id = ++nextId;
      const on = (m: { id?: number; value?: T }) => {
        if (m.id !== id) return;
        child.off('message', on);
        resolve(m.value as T);
      };
      child.on('message', on);
      child.send({ ...args, cmd, id });
    });
  return {
    port,
    pid: child.pid as number,
    usage: () => call<Usage>('usage'),
    flush: () => call<Usage>('flush'),
    validate: (file, batch) => call('validate', { file, batch }),
    close: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      await call('close');
      await exited;
    },
  };
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [here('./load.js'), JSON.stringify(spec)],
    { maxBuffer: 1 << 24 },
  );
  return JSON.parse(stdout) as LoadResult;
}

const TICK = 100; // USER_HZ on Linux

/** utime + stime of a process, seconds; 0 when it is gone or unreadable. */
function procCpu(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICK;
  } catch {
    return 0;
  }
}

/** Busy and total CPU seconds of the whole machine (all cores) since boot. */
export function machineCpu(): { busy: number; total: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.split(/\s+/).slice(1) ?? [];
  const n = cpu.map(Number);
  const idle = (n[3] ?? 0) + (n[4] ?? 0);
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / TICK, total: total / TICK };
}

/**
 * CPU of the PostgreSQL backends serving connections named `applicationName` (the servers add
 * it to their URL): the database's share of a round, when it runs on this machine.
 */
export class PostgresCpu {
  readonly #client: pg.Client;
  readonly #start = new Map<number, number>();

  constructor(
    url: string,
    private readonly applicationName: string,
  ) {
    this.#client = new pg.Client({ connectionString: url });
  }

  async open(): Promise<void> {
    await this.#client.connect();
  }

  async #pids(): Promise<number[]> {
    const { rows } = await this.#client.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
      [this.applicationName],
    );
    return rows.map((r) => r.pid);
  }

  async mark(): Promise<void> {
    this.#start.clear();
    for (const pid of await this.#pids()) this.#start.set(pid, procCpu(pid));
  }

  /** CPU seconds since `mark()`; backends started since count from zero. */
  async since(): Promise<number> {
    let sum = 0;
    for (const pid of await this.#pids()) sum += procCpu(pid) - (this.#start.get(pid) ?? 0);
    return sum;
  }

  close(): Promise<void> {
    return this.#client.end();
  }
}

/** The URL with an application_name, so PostgresCpu can find the backends serving it. */
export function withApplicationName(url: string, name: string): string {
  const u = new URL(url);
  u.searchParams.set('application_name', name);
  return u.toString();
}
